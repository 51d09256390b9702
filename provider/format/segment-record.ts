/**
 * Record codecs (docs/log-format.md §3.3 write record, §3.4 flush marker,
 * §3.5 seal): each is a 32-byte header, the write record followed by its
 * data. Pure.
 */

import { InvalidInputError } from '../errors';
import { crc32 } from './crc';
import { MAX_RECORD_DATA, MAX_RECORDS_PER_SEGMENT, RECORD_HEADER_SIZE, RecordType } from './layout';
import { type Checked, type Refusal, refusalError } from './outcome';
import { isZero, readU32, readU64, writeU32, writeU64 } from './u64';

/** Header of a write record (§3.3); its data follows it in the file. */
export interface WriteRecordHeader {
  readonly type: 'write';
  /** Record index within the segment (§3.3). */
  readonly index: number;
  /** Disk offset of the data. */
  readonly offset: number;
  /** Data bytes, 1 … 32 MiB. */
  readonly length: number;
  /** CRC-32 of the data. */
  readonly dataChecksum: number;
}

/** A flush marker (§3.4). */
export interface FlushMarker {
  readonly type: 'flush';
  readonly index: number;
  /** File position of the marker itself. */
  readonly position: number;
}

/** A seal (§3.5). */
export interface Seal {
  readonly type: 'seal';
  /** Records before the seal, writes and flush markers. */
  readonly recordCount: number;
  /** Sum of the lengths of the write records. */
  readonly dataBytes: number;
  /** Milliseconds since the Unix epoch. */
  readonly sealedAt: number;
  /** CRC-32 of every byte of the segment before the seal (§4). */
  readonly segmentChecksum: number;
}

/** Any record header. */
export type RecordHeader = WriteRecordHeader | FlushMarker | Seal;

/** What a record header is checked against. */
export interface RecordContext {
  /** Disk size from the segment header. */
  readonly diskSize: number;
  /** The index the next record must have (records so far). */
  readonly expectedIndex: number;
  /** File position of the record header. */
  readonly position: number;
}

/**
 * The 32 header bytes of a write record (§3.3), written into `target` at
 * `targetOffset` when given (to avoid an allocation per write), else into a
 * new buffer. Pure apart from writing `target`. Throws `InvalidInputError`
 * (`record.invalid`) if a field is out of range; `offset + length ≤ disk
 * size` is the caller's to check.
 */
export function encodeWriteRecordHeader(
  fields: Omit<WriteRecordHeader, 'type'>,
  target: Buffer = Buffer.alloc(RECORD_HEADER_SIZE),
  targetOffset = 0,
): Buffer {
  assertIndex(fields.index);
  if (!Number.isInteger(fields.length) || fields.length < 1 || fields.length > MAX_RECORD_DATA) {
    throw new InvalidInputError('record.invalid', `record length ${fields.length} is not 1 … ${MAX_RECORD_DATA}`);
  }
  if (!Number.isSafeInteger(fields.offset) || fields.offset < 0) {
    throw new InvalidInputError('record.invalid', `record offset ${fields.offset} is not a non-negative safe integer`);
  }
  assertU32(fields.dataChecksum, 'data checksum');
  const b = target.subarray(targetOffset, targetOffset + RECORD_HEADER_SIZE);
  b.fill(0);
  b[0] = RecordType.write;
  writeU32(b, 4, fields.length);
  writeU64(b, 8, fields.offset);
  writeU32(b, 16, fields.dataChecksum);
  writeU32(b, 20, fields.index);
  writeU32(b, 28, crc32(b.subarray(0, 28)));
  return target;
}

/** The 32 bytes of a flush marker (§3.4). Pure. Throws `InvalidInputError` (`record.invalid`). */
export function encodeFlushMarker(fields: Omit<FlushMarker, 'type'>): Buffer {
  assertIndex(fields.index);
  if (!Number.isSafeInteger(fields.position) || fields.position < 0) {
    throw new InvalidInputError('record.invalid', `flush marker position ${fields.position} is invalid`);
  }
  const b = Buffer.alloc(RECORD_HEADER_SIZE);
  b[0] = RecordType.flush;
  writeU64(b, 8, fields.position);
  writeU32(b, 20, fields.index);
  writeU32(b, 28, crc32(b.subarray(0, 28)));
  return b;
}

/** The 32 bytes of a seal (§3.5). Pure. Throws `InvalidInputError` (`record.invalid`). */
export function encodeSeal(fields: Omit<Seal, 'type'>): Buffer {
  if (!Number.isInteger(fields.recordCount) || fields.recordCount < 0 || fields.recordCount > MAX_RECORDS_PER_SEGMENT) {
    throw new InvalidInputError('record.invalid', `record count ${fields.recordCount} is out of range`);
  }
  for (const [name, v] of [['data byte count', fields.dataBytes], ['seal time', fields.sealedAt]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidInputError('record.invalid', `${name} ${v} is invalid`);
  }
  assertU32(fields.segmentChecksum, 'segment checksum');
  const b = Buffer.alloc(RECORD_HEADER_SIZE);
  b[0] = RecordType.seal;
  writeU32(b, 4, fields.recordCount);
  writeU64(b, 8, fields.dataBytes);
  writeU64(b, 16, fields.sealedAt);
  writeU32(b, 24, fields.segmentChecksum);
  writeU32(b, 28, crc32(b.subarray(0, 28)));
  return b;
}

/**
 * Check the record header at `bytes[pos, pos + 32)` (§3.6 order: checksum,
 * then type and fields). A seal's counts and segment checksum depend on the
 * bytes before it and are checked by the scanner. Pure; never throws.
 */
export function checkRecordHeader(bytes: Uint8Array, pos: number, context: RecordContext): Checked<RecordHeader> {
  const at = context.position;
  const refuse = (outcome: Refusal['outcome'], message: string): Checked<RecordHeader> => ({
    ok: false,
    refusal: { outcome, at, message },
  });
  if (bytes.length - pos < RECORD_HEADER_SIZE) return refuse('tornTail', 'record header cut short');
  const h = bytes.subarray(pos, pos + RECORD_HEADER_SIZE);
  if (readU32(h, 28) !== crc32(h.subarray(0, 28))) return refuse('checksumMismatch', 'record checksum mismatch');
  const type = h[0];
  if (!isZero(h, 1, 4)) return refuse('invalidRecord', 'reserved record bytes are not zero');
  if (type === RecordType.seal) {
    const dataBytes = readU64(h, 8);
    const sealedAt = readU64(h, 16);
    if (dataBytes === undefined || sealedAt === undefined) return refuse('invalidRecord', 'a seal number exceeds 2^53 − 1');
    return {
      ok: true,
      value: { type: 'seal', recordCount: readU32(h, 4), dataBytes, sealedAt, segmentChecksum: readU32(h, 24) },
    };
  }
  if (type !== RecordType.write && type !== RecordType.flush) return refuse('invalidRecord', `unknown record type ${type}`);
  if (!isZero(h, 24, 28)) return refuse('invalidRecord', 'reserved record bytes are not zero');
  const index = readU32(h, 20);
  if (index !== context.expectedIndex) {
    return refuse('invalidRecord', `record index ${index} where ${context.expectedIndex} was expected`);
  }
  const length = readU32(h, 4);
  const offset = readU64(h, 8);
  const dataChecksum = readU32(h, 16);
  if (type === RecordType.flush) {
    if (length !== 0 || dataChecksum !== 0) return refuse('invalidRecord', 'flush marker with data');
    if (offset !== context.position) return refuse('invalidRecord', `flush marker names position ${offset}, found at ${context.position}`);
    return { ok: true, value: { type: 'flush', index, position: offset } };
  }
  if (length < 1 || length > MAX_RECORD_DATA) return refuse('invalidRecord', `record length ${length} is not 1 … ${MAX_RECORD_DATA}`);
  if (offset === undefined || offset + length > context.diskSize) {
    return refuse('invalidRecord', `write of ${length} bytes at ${offset ?? '> 2^53'} ends beyond the disk (${context.diskSize} bytes)`);
  }
  return { ok: true, value: { type: 'write', index, offset, length, dataChecksum } };
}

/**
 * The record header at `bytes[pos, pos + 32)`. Pure. Throws
 * `ResyncRequiredError` (`segment.<outcome>`, §3.6) if it is invalid.
 */
export function decodeRecordHeader(bytes: Uint8Array, pos: number, context: RecordContext): RecordHeader {
  const checked = checkRecordHeader(bytes, pos, context);
  if (!checked.ok) throw refusalError(checked.refusal, 'record header');
  return checked.value;
}

/**
 * True when `bytes[pos, pos + 32)` is a valid flush marker recorded at file
 * position `position` (the search of §8 step 6). Pure.
 */
export function isFlushMarkerAt(bytes: Uint8Array, pos: number, position: number): boolean {
  if (bytes.length - pos < RECORD_HEADER_SIZE || bytes[pos] !== RecordType.flush) return false;
  if (readU64(bytes, pos + 8) !== position) return false;
  const h = bytes.subarray(pos, pos + RECORD_HEADER_SIZE);
  return readU32(h, 28) === crc32(h.subarray(0, 28)) && isZero(h, 1, 8) && isZero(h, 16, 20) && isZero(h, 24, 28);
}

function assertIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_RECORDS_PER_SEGMENT) {
    throw new InvalidInputError('record.invalid', `record index ${index} is out of range`);
  }
}

function assertU32(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new InvalidInputError('record.invalid', `${name} ${v} is not a u32`);
}
