/**
 * Undo files (docs/replica-format.md §5): the codec of header, records, index
 * and trailer, the appender used by an open cycle, and the two readers: the
 * index of a sealed file (views, §9) and the record scan of an unsealed one
 * (rollback, §8 step 3).
 */
import { crc32 } from 'node:zlib';
import { type PointKind } from '../../replication/target';
import { BugError, ReplicaStateError } from '../../errors';
import { MiB } from '../../units';
import { type FileHandleLike, type FileOps } from './file-ops';

/** §5.1 */
export const UNDO_MAGIC = Buffer.from('LBUNDO\0\0', 'latin1');
/** §5.3 */
export const TRAILER_MAGIC = Buffer.from('LBUNDOIX', 'latin1');
/** §11 */
export const UNDO_VERSION = 1;
/** §5.2: Kind … CRC. */
export const RECORD_HEADER_BYTES = 20;
/** §5.3 */
export const INDEX_ENTRY_BYTES = 24;
/** §5.3 */
export const TRAILER_BYTES = 24;
/** §5.2: largest payload of a data record. */
export const MAX_RECORD_PAYLOAD = 1 * MiB;
/** §5.1 */
export const MAX_GENERATION_BYTES = 1024;

const HEADER_FIXED_BYTES = 52;
/** Longest possible header (§5.1): read this much to decode one. */
export const MAX_UNDO_HEADER_BYTES = HEADER_FIXED_BYTES + MAX_GENERATION_BYTES + 4;

const KIND_DATA = 1;
const KIND_ZERO = 2;
const KIND_INDEX = 3;

/** Header fields (§5.1). */
export interface UndoHeader {
  readonly cycle: number;
  readonly diskSize: number;
  readonly seq: number;
  readonly time: number;
  readonly point: PointKind | undefined;
  readonly generation: string;
}

/** One saved extent: its old bytes are at `payloadPos` in the file, or all zero. */
export interface UndoExtent {
  readonly offset: number;
  readonly length: number;
  /** True for a zero record (§5.2 kind 2): no payload. */
  readonly zero: boolean;
  /** File position of the payload; 0 for zero records. */
  readonly payloadPos: number;
}

function corrupt(what: string, file: string, details: Record<string, unknown> = {}): ReplicaStateError {
  return new ReplicaStateError('replica.corrupt', `Undo file ${file} is damaged: ${what}`, {
    details: { file, ...details },
    hint: 'Points older than this cycle cannot be viewed. Prune them, or resynchronise the disk to start a clean chain.',
  });
}

function readU64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

const POINT_CODES: Record<PointKind, number> = { crashConsistent: 1, appConsistent: 2 };

/** Encode a header (§5.1). */
export function encodeUndoHeader(h: UndoHeader): Buffer {
  const gen = Buffer.from(h.generation, 'utf8');
  if (gen.length > MAX_GENERATION_BYTES) throw new RangeError('generation too long');
  const buf = Buffer.alloc(HEADER_FIXED_BYTES + gen.length + 4);
  UNDO_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(UNDO_VERSION, 8);
  buf.writeUInt32LE(buf.length, 12);
  buf.writeBigUInt64LE(BigInt(h.cycle), 16);
  buf.writeBigUInt64LE(BigInt(h.diskSize), 24);
  buf.writeBigUInt64LE(BigInt(h.seq), 32);
  buf.writeDoubleLE(h.time, 40);
  buf.writeUInt8(h.point === undefined ? 0 : POINT_CODES[h.point], 48);
  buf.writeUInt8(0, 49);
  buf.writeUInt16LE(gen.length, 50);
  gen.copy(buf, HEADER_FIXED_BYTES);
  buf.writeUInt32LE(crc32(buf.subarray(0, buf.length - 4)), buf.length - 4);
  return buf;
}

/** Outcome of decoding a header: the header and its length, or why not. */
export type HeaderDecoding =
  | { readonly ok: true; readonly header: UndoHeader; readonly length: number }
  | { readonly ok: false; readonly reason: 'torn' | 'version'; readonly version?: number };

/**
 * Decode a header from the first bytes of a file (§5.1). `torn` covers a short
 * or checksum-failing header; `version` an intact header of another version.
 */
export function decodeUndoHeader(buf: Buffer): HeaderDecoding {
  if (buf.length < HEADER_FIXED_BYTES + 4 || !buf.subarray(0, 8).equals(UNDO_MAGIC)) return { ok: false, reason: 'torn' };
  const length = buf.readUInt32LE(12);
  const genLength = buf.readUInt16LE(50);
  if (length !== HEADER_FIXED_BYTES + genLength + 4 || genLength > MAX_GENERATION_BYTES || buf.length < length) {
    return { ok: false, reason: 'torn' };
  }
  if (crc32(buf.subarray(0, length - 4)) !== buf.readUInt32LE(length - 4)) return { ok: false, reason: 'torn' };
  const version = buf.readUInt32LE(8);
  if (version !== UNDO_VERSION) return { ok: false, reason: 'version', version };
  const pointCode = buf.readUInt8(48);
  const point: PointKind | undefined = pointCode === 1 ? 'crashConsistent' : pointCode === 2 ? 'appConsistent' : undefined;
  return {
    ok: true,
    length,
    header: {
      cycle: readU64(buf, 16),
      diskSize: readU64(buf, 24),
      seq: readU64(buf, 32),
      time: buf.readDoubleLE(40),
      point,
      generation: buf.subarray(HEADER_FIXED_BYTES, HEADER_FIXED_BYTES + genLength).toString('utf8'),
    },
  };
}

/** A data record (old bytes) or, with `data` undefined, a zero record of `length` bytes (§5.2). */
export function encodeUndoRecord(offset: number, length: number, data: Buffer | undefined): Buffer {
  const buf = Buffer.alloc(RECORD_HEADER_BYTES + (data?.length ?? 0));
  buf.writeUInt8(data === undefined ? KIND_ZERO : KIND_DATA, 0);
  buf.writeBigUInt64LE(BigInt(offset), 4);
  buf.writeUInt32LE(length, 12);
  if (data !== undefined) data.copy(buf, RECORD_HEADER_BYTES);
  const crc = crc32(buf.subarray(RECORD_HEADER_BYTES), crc32(buf.subarray(0, 16)));
  buf.writeUInt32LE(crc, 16);
  return buf;
}

/** Index record and trailer that seal a file (§5.3); the index record starts at `indexPos`. */
export function encodeUndoSeal(extents: readonly UndoExtent[], indexPos: number): Buffer {
  const payload = extents.length * INDEX_ENTRY_BYTES;
  const buf = Buffer.alloc(RECORD_HEADER_BYTES + payload + TRAILER_BYTES);
  buf.writeUInt8(KIND_INDEX, 0);
  buf.writeUInt32LE(payload, 12);
  let at = RECORD_HEADER_BYTES;
  for (const e of extents) {
    buf.writeBigUInt64LE(BigInt(e.offset), at);
    buf.writeUInt32LE(e.length, at + 8);
    buf.writeUInt8(e.zero ? KIND_ZERO : KIND_DATA, at + 12);
    buf.writeBigUInt64LE(BigInt(e.payloadPos), at + 16);
    at += INDEX_ENTRY_BYTES;
  }
  buf.writeUInt32LE(crc32(buf.subarray(RECORD_HEADER_BYTES, at), crc32(buf.subarray(0, 16))), 16);
  TRAILER_MAGIC.copy(buf, at);
  buf.writeBigUInt64LE(BigInt(indexPos), at + 8);
  buf.writeUInt32LE(extents.length, at + 16);
  buf.writeUInt32LE(crc32(buf.subarray(at, at + 20)), at + 20);
  return buf;
}

async function readExactly(h: FileHandleLike, length: number, position: number): Promise<Buffer | undefined> {
  const buf = Buffer.alloc(length);
  const n = await h.read(buf, 0, length, position);
  return n === length ? buf : undefined;
}

/**
 * Read and check the header of an open undo file against the cycle and disk
 * size it must have. Throws `ReplicaStateError` (`replica.corrupt`,
 * `replica.formatVersion`).
 */
export async function readUndoHeader(h: FileHandleLike, file: string, expect: { cycle: number; diskSize: number }): Promise<{ header: UndoHeader; length: number }> {
  const first = Buffer.alloc(MAX_UNDO_HEADER_BYTES);
  const n = await h.read(first, 0, first.length, 0);
  const d = decodeUndoHeader(first.subarray(0, n));
  if (!d.ok) {
    if (d.reason === 'version') {
      throw new ReplicaStateError('replica.formatVersion', `Undo file ${file} has format version ${d.version}; this agent reads version ${UNDO_VERSION}`, {
        details: { file, version: d.version },
        hint: 'Upgrade the agent on this host to the version that wrote the store.',
      });
    }
    throw corrupt('torn or unreadable header', file);
  }
  if (d.header.cycle !== expect.cycle || d.header.diskSize !== expect.diskSize) {
    throw corrupt('header does not match its name or disk', file, { cycle: d.header.cycle, diskSize: d.header.diskSize });
  }
  return { header: d.header, length: d.length };
}

/**
 * The extents of a sealed undo file, from its trailer and index (§5.3): two
 * reads, no data. Throws `ReplicaStateError` (`replica.corrupt`) if the file
 * is not sealed or the index is damaged.
 */
export async function readUndoIndex(h: FileHandleLike, file: string, expect: { cycle: number; diskSize: number }): Promise<UndoExtent[]> {
  const { length: headerLength } = await readUndoHeader(h, file, expect);
  const size = await h.size();
  const trailer = size >= headerLength + RECORD_HEADER_BYTES + TRAILER_BYTES ? await readExactly(h, TRAILER_BYTES, size - TRAILER_BYTES) : undefined;
  if (trailer === undefined || !trailer.subarray(0, 8).equals(TRAILER_MAGIC) || crc32(trailer.subarray(0, 20)) !== trailer.readUInt32LE(20)) {
    throw corrupt('not sealed (no valid trailer)', file);
  }
  const indexPos = readU64(trailer, 8);
  const count = trailer.readUInt32LE(16);
  const payload = count * INDEX_ENTRY_BYTES;
  if (!(indexPos >= headerLength) || indexPos + RECORD_HEADER_BYTES + payload + TRAILER_BYTES !== size) {
    throw corrupt('trailer points outside the file', file, { indexPos, count });
  }
  const rec = await readExactly(h, RECORD_HEADER_BYTES + payload, indexPos);
  if (rec === undefined || rec.readUInt8(0) !== KIND_INDEX || rec.readUInt32LE(12) !== payload) throw corrupt('bad index record', file);
  const body = rec.subarray(RECORD_HEADER_BYTES);
  if (crc32(body, crc32(rec.subarray(0, 16))) !== rec.readUInt32LE(16)) throw corrupt('index checksum mismatch', file);
  const extents: UndoExtent[] = [];
  for (let at = 0; at < payload; at += INDEX_ENTRY_BYTES) {
    const offset = readU64(body, at);
    const length = body.readUInt32LE(at + 8);
    const kind = body.readUInt8(at + 12);
    const payloadPos = readU64(body, at + 16);
    const zero = kind === KIND_ZERO;
    if ((kind !== KIND_DATA && !zero) || length === 0 || !(offset + length <= expect.diskSize) || (!zero && !(payloadPos + length <= indexPos))) {
      throw corrupt('index entry out of range', file, { offset, length, kind });
    }
    extents.push({ offset, length, zero, payloadPos });
  }
  return extents;
}

/**
 * Visit the valid records of an undo file in order (§8 step 3), stopping at
 * the first torn, invalid or index record. Each payload is read in one piece
 * (at most 1 MiB). `visit` gets `undefined` data for a zero record. Returns
 * the number of records visited.
 */
export async function scanUndoRecords(
  h: FileHandleLike,
  headerLength: number,
  diskSize: number,
  visit: (offset: number, length: number, data: Buffer | undefined) => Promise<void>,
): Promise<number> {
  let pos = headerLength;
  let count = 0;
  for (;;) {
    const head = await readExactly(h, RECORD_HEADER_BYTES, pos);
    if (head === undefined) return count;
    const kind = head.readUInt8(0);
    const offset = readU64(head, 4);
    const length = head.readUInt32LE(12);
    if ((kind !== KIND_DATA && kind !== KIND_ZERO) || head.readUIntLE(1, 3) !== 0) return count;
    if (length === 0 || !(offset + length <= diskSize) || (kind === KIND_DATA && length > MAX_RECORD_PAYLOAD)) return count;
    const payloadLength = kind === KIND_DATA ? length : 0;
    const payload = payloadLength === 0 ? Buffer.alloc(0) : await readExactly(h, payloadLength, pos + RECORD_HEADER_BYTES);
    if (payload === undefined) return count;
    if (crc32(payload, crc32(head.subarray(0, 16))) !== head.readUInt32LE(16)) return count;
    await visit(offset, length, kind === KIND_DATA ? payload : undefined);
    count++;
    pos += RECORD_HEADER_BYTES + payloadLength;
  }
}

/**
 * The undo file of an open cycle, appended batch by batch (§7.2) and sealed at
 * commit (§7.3). The file is created by the first `appendDurably`. Not safe
 * for concurrent use; the disk serialises calls.
 */
export class UndoFileAppender {
  private handle: FileHandleLike | undefined;
  private position = 0;

  constructor(
    private readonly ops: FileOps,
    readonly file: string,
    private readonly dir: string,
    private readonly header: UndoHeader,
  ) {}

  /** Whether the file exists (a batch was appended). */
  get created(): boolean {
    return this.handle !== undefined;
  }

  /** File position the next appended byte will get. */
  get nextPosition(): number {
    return this.handle === undefined ? encodeUndoHeader(this.header).length : this.position;
  }

  /** The open handle, for reads of payloads by views of the open cycle. */
  get readHandle(): FileHandleLike | undefined {
    return this.handle;
  }

  /**
   * Append encoded records and make them durable (with the header and the
   * directory entry on the first call): §7.2 step 2, I2.
   */
  async appendDurably(records: readonly Buffer[]): Promise<void> {
    const first = this.handle === undefined;
    const parts = first ? [encodeUndoHeader(this.header), ...records] : [...records];
    if (first) {
      this.handle = await this.ops.open(this.file, 'create');
      this.position = 0;
    }
    const h = this.handle!;
    const all = Buffer.concat(parts);
    await h.write(all, 0, all.length, this.position);
    this.position += all.length;
    await h.sync();
    if (first) await this.ops.syncDir(this.dir);
  }

  /** Append the index and trailer and make them durable (§7.3 step 2, I4). */
  async seal(extents: readonly UndoExtent[]): Promise<void> {
    const h = this.handle;
    if (h === undefined) throw new BugError('replica.sealUnwritten', `Seal of undo file ${this.file}, which was never written`);
    const seal = encodeUndoSeal(extents, this.position);
    await h.write(seal, 0, seal.length, this.position);
    this.position += seal.length;
    await h.sync();
  }

  /** Size of the file so far. */
  get bytes(): number {
    return this.handle === undefined ? 0 : this.position;
  }

  /** Close the handle (idempotent). */
  async close(): Promise<void> {
    const h = this.handle;
    if (h !== undefined) await h.close();
  }
}
