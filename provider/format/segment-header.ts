/**
 * The segment header codec (docs/log-format.md §3.2). Pure.
 */

import { InvalidInputError } from '../errors';
import { crc32 } from './crc';
import {
  FLAG_FIRST_OF_GENERATION,
  FORMAT_VERSION,
  MAX_DISK_ID_LENGTH,
  SECTOR_SIZE,
  SEGMENT_HEADER_SIZE,
  SEGMENT_MAGIC,
} from './layout';
import { type Checked, type Refusal, refusalError } from './outcome';
import { assertDiskId, generationFromBytes, generationToBytes, isDiskId, isSequenceNumber } from './segment-name';
import { isZero, readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './u64';

/** The fields of a segment header (§3.2). */
export interface SegmentHeader {
  readonly diskId: string;
  /** 16 lowercase hex digits. */
  readonly generation: string;
  /** 1 … 2^53 − 1; 1 exactly for the first segment of a generation. */
  readonly seq: number;
  /** Bytes; a positive multiple of 512. */
  readonly diskSize: number;
  /** Milliseconds since the Unix epoch. */
  readonly createdAt: number;
  /** Segment checksum of segment `seq − 1`; 0 when `seq` is 1 (§5). */
  readonly previousChecksum: number;
}

/**
 * The 128 header bytes of `header` (§3.2). Pure. Throws `InvalidInputError`
 * (`segment.invalidHeader`, or the codes of segment-name.ts) if a field is out
 * of range.
 */
export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  assertDiskId(header.diskId);
  const invalid = headerFieldProblem(header);
  if (invalid !== undefined) throw new InvalidInputError('segment.invalidHeader', invalid);
  const buf = Buffer.alloc(SEGMENT_HEADER_SIZE);
  SEGMENT_MAGIC.copy(buf, 0);
  writeU16(buf, 8, FORMAT_VERSION);
  writeU16(buf, 10, SEGMENT_HEADER_SIZE);
  writeU32(buf, 12, header.seq === 1 ? FLAG_FIRST_OF_GENERATION : 0);
  generationToBytes(header.generation).copy(buf, 16);
  writeU64(buf, 24, header.seq);
  writeU64(buf, 32, header.diskSize);
  writeU64(buf, 40, header.createdAt);
  writeU32(buf, 48, header.previousChecksum);
  buf[52] = header.diskId.length;
  buf.write(header.diskId, 53, 'latin1');
  writeU32(buf, 124, crc32(buf.subarray(0, 124)));
  return buf;
}

/**
 * Check the header at the start of `bytes` (which may be a whole segment or
 * just its first bytes) in the order of §3.6. Pure; never throws.
 */
export function checkSegmentHeader(bytes: Uint8Array): Checked<SegmentHeader> {
  const refuse = (outcome: Refusal['outcome'], message: string): Checked<SegmentHeader> => ({
    ok: false,
    refusal: { outcome, at: 0, message },
  });
  const magicBytes = Math.min(bytes.length, SEGMENT_MAGIC.length);
  for (let i = 0; i < magicBytes; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) return refuse('badMagic', 'not a replication log segment (bad magic)');
  }
  if (bytes.length < 10) return refuse('tornTail', `segment header cut short at ${bytes.length} bytes`);
  const version = readU16(bytes, 8);
  if (version !== FORMAT_VERSION) {
    return refuse('unknownVersion', `segment format version ${version} is not supported (this code reads version ${FORMAT_VERSION})`);
  }
  if (bytes.length < SEGMENT_HEADER_SIZE) return refuse('tornTail', `segment header cut short at ${bytes.length} bytes`);
  if (readU32(bytes, 124) !== crc32(bytes.subarray(0, 124))) return refuse('checksumMismatch', 'segment header checksum mismatch');
  if (readU16(bytes, 10) !== SEGMENT_HEADER_SIZE) return refuse('invalidHeader', `header size ${readU16(bytes, 10)} is not ${SEGMENT_HEADER_SIZE}`);
  const flags = readU32(bytes, 12);
  if ((flags & ~FLAG_FIRST_OF_GENERATION) !== 0) return refuse('invalidHeader', `unknown header flags 0x${flags.toString(16)}`);
  const seq = readU64(bytes, 24);
  const diskSize = readU64(bytes, 32);
  const createdAt = readU64(bytes, 40);
  const idLength = bytes[52];
  if (seq === undefined || diskSize === undefined || createdAt === undefined) {
    return refuse('invalidHeader', 'a header number exceeds 2^53 − 1');
  }
  if (idLength < 1 || idLength > MAX_DISK_ID_LENGTH || !isZero(bytes, 53 + idLength, 124)) {
    return refuse('invalidHeader', 'disk id length or padding invalid');
  }
  const diskId = Buffer.from(bytes.buffer, bytes.byteOffset + 53, idLength).toString('latin1');
  if (!isDiskId(diskId)) return refuse('invalidHeader', `disk id ${JSON.stringify(diskId)} is invalid`);
  const header: SegmentHeader = {
    diskId,
    generation: generationFromBytes(bytes.subarray(16, 24)),
    seq,
    diskSize,
    createdAt,
    previousChecksum: readU32(bytes, 48),
  };
  const problem = headerFieldProblem(header);
  if (problem !== undefined) return refuse('invalidHeader', problem);
  if (((flags & FLAG_FIRST_OF_GENERATION) !== 0) !== (seq === 1)) {
    return refuse('invalidHeader', `first-of-generation flag disagrees with sequence number ${seq}`);
  }
  return { ok: true, value: header };
}

/**
 * The header at the start of `bytes` (§3.2). Pure. Throws
 * `InvalidInputError` (`segment.unknownVersion`) for another format version,
 * `ResyncRequiredError` (`segment.<outcome>` of §3.6) for anything else
 * wrong.
 */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader {
  const checked = checkSegmentHeader(bytes);
  if (!checked.ok) throw refusalError(checked.refusal, 'segment header');
  return checked.value;
}

function headerFieldProblem(h: SegmentHeader): string | undefined {
  if (!isSequenceNumber(h.seq)) return `sequence number ${h.seq} is not an integer 1 … 2^53 − 1`;
  if (!Number.isSafeInteger(h.diskSize) || h.diskSize <= 0 || h.diskSize % SECTOR_SIZE !== 0) {
    return `disk size ${h.diskSize} is not a positive multiple of ${SECTOR_SIZE}`;
  }
  if (!Number.isSafeInteger(h.createdAt) || h.createdAt < 0) return `creation time ${h.createdAt} is invalid`;
  if (!Number.isInteger(h.previousChecksum) || h.previousChecksum < 0 || h.previousChecksum > 0xffff_ffff) {
    return `previous checksum ${h.previousChecksum} is not a u32`;
  }
  if (h.seq === 1 && h.previousChecksum !== 0) return 'the first segment of a generation has previous checksum 0';
  return undefined;
}
