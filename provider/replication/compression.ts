/**
 * Optional compression of shipped data (DESIGN.md §3.3, the policy's
 * "compression"; docs/replication-policy.md §7): zstd from node:zlib, one
 * zstd frame per chunk, sent compressed only when it pays.
 *
 * Two layers:
 * - the rule and the adaptive compressor (`compressionPays`,
 *   `AdaptiveCompressor`), for transports that carry their own "compressed"
 *   flag and raw length (the agent-to-agent protocol, docs/replication-protocol.md §8);
 * - a tiny self-describing frame (`encodeChunk` / `decodeChunk`) for
 *   everything else, so that the receiver knows what it got:
 *
 *   ```
 *   frame   = codec || rawLength || payload
 *   codec   = u8: 0 raw, 1 zstd (other values are refused)
 *   rawLength = u32, little-endian: bytes after decoding
 *   payload = the raw bytes (codec 0) or one zstd frame with its content checksum (codec 1)
 *   ```
 *
 * Integrity of the data is not this layer's job (log records and cycles
 * carry their own checksums); the frame check catches a wrong codec, a wrong
 * length, and, through the zstd content checksum, a damaged compressed
 * payload. A damaged raw payload is not detectable here.
 */

import { promisify } from 'node:util';
import { constants as zc, zstdCompress, zstdCompressSync, zstdDecompress, zstdDecompressSync } from 'node:zlib';
import { type ErrorLocation, InvalidInputError, NonRecoverableError, RecoverableError } from '../errors';
import { KiB, MiB } from '../units';

const zstdCompressAsync = promisify(zstdCompress);
const zstdDecompressAsync = promisify(zstdDecompress);

/** Codec byte of a frame. */
export const CODEC_RAW = 0;
export const CODEC_ZSTD = 1;

/** Bytes before the payload: codec (1) and raw length (4). */
export const FRAME_HEADER_BYTES = 5;

/** Compressed output must be smaller than this fraction of the raw size to be sent compressed. */
export const DEFAULT_MAX_RATIO = 0.95;

/** Chunks smaller than this are sent raw without trying (the call costs more than it can save). */
export const DEFAULT_MIN_COMPRESS_BYTES = 4 * KiB;

/**
 * zstd level 1: the fastest. Measured (docs/replication-policy.md §7; 1 MiB
 * chunks, two shared cores): level 1 shrinks source text to 19 % at about
 * 280 MiB/s, level 3 to 18 % at about 180 MiB/s; on disk-like mixed data
 * both give about 40 %. Level 3 costs a third more CPU for a 1–2 % gain.
 */
export const DEFAULT_ZSTD_LEVEL = 1;

/** Largest raw size `decodeChunk` accepts by default (bounds memory on a hostile or corrupt frame). */
export const DEFAULT_MAX_CHUNK_BYTES = 64 * MiB;

/** Largest raw size a frame can state. */
const MAX_FRAME_RAW_BYTES = 0xffff_ffff;

export interface CompressOptions {
  /** zstd level (1–19; negative levels are faster still). @default DEFAULT_ZSTD_LEVEL (1) */
  readonly level?: number;
  /** Send compressed only if compressed < maxRatio × raw. @default DEFAULT_MAX_RATIO (0.95) */
  readonly maxRatio?: number;
  /** Chunks under this many bytes are sent raw. @default DEFAULT_MIN_COMPRESS_BYTES (4 KiB) */
  readonly minBytes?: number;
}

export interface DecodeOptions {
  /** Refuse frames whose raw length is larger. @default DEFAULT_MAX_CHUNK_BYTES (64 MiB) */
  readonly maxChunkBytes?: number;
  /** Where the frame came from, for errors. @default none */
  readonly where?: ErrorLocation;
}

/** True if `compressedBytes` is worth sending instead of `rawBytes`. */
export function compressionPays(rawBytes: number, compressedBytes: number, maxRatio = DEFAULT_MAX_RATIO): boolean {
  return compressedBytes < rawBytes * maxRatio;
}

function zstdParams(level: number): { params: Record<number, number> } {
  return { params: { [zc.ZSTD_c_compressionLevel]: level, [zc.ZSTD_c_checksumFlag]: 1 } };
}

function checkOptions(o: CompressOptions): void {
  if (o.maxRatio !== undefined && !(o.maxRatio > 0 && o.maxRatio <= 1)) {
    throw new InvalidInputError('compression.invalidOptions', `maxRatio ${o.maxRatio} is not in (0, 1]`, { hint: 'use e.g. 0.95' });
  }
  if (o.level !== undefined && !(Number.isInteger(o.level) && o.level >= -7 && o.level <= 22)) {
    throw new InvalidInputError('compression.invalidOptions', `zstd level ${o.level} is not valid`, { hint: 'use 1 (fastest) to 19' });
  }
}

function header(codec: number, rawLength: number): Buffer {
  if (rawLength > MAX_FRAME_RAW_BYTES) {
    throw new InvalidInputError('compression.chunkTooLarge', `chunk of ${rawLength} bytes does not fit a frame`, { hint: 'ship chunks smaller than 4 GiB' });
  }
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt8(codec, 0);
  h.writeUInt32LE(rawLength, 1);
  return h;
}

/** The outcome of compressing one chunk for a transport with its own flag. */
export interface Compressed {
  /** True if `payload` is zstd; false if it is the raw chunk itself. */
  readonly compressed: boolean;
  readonly payload: Buffer;
}

/**
 * Compress `raw` if it pays (sync; for small chunks or worker threads).
 * Returns the raw buffer itself (no copy) when it does not.
 *
 * @throws InvalidInputError `compression.invalidOptions`.
 */
export function compress(raw: Buffer, options: CompressOptions = {}): Compressed {
  checkOptions(options);
  if (raw.length < (options.minBytes ?? DEFAULT_MIN_COMPRESS_BYTES)) return { compressed: false, payload: raw };
  const packed = zstdCompressSync(raw, zstdParams(options.level ?? DEFAULT_ZSTD_LEVEL));
  return compressionPays(raw.length, packed.length, options.maxRatio) ? { compressed: true, payload: packed } : { compressed: false, payload: raw };
}

/** `compress` on the libuv thread pool, so the event loop keeps serving I/O. */
export async function compressAsync(raw: Buffer, options: CompressOptions = {}): Promise<Compressed> {
  checkOptions(options);
  if (raw.length < (options.minBytes ?? DEFAULT_MIN_COMPRESS_BYTES)) return { compressed: false, payload: raw };
  const packed = await zstdCompressAsync(raw, zstdParams(options.level ?? DEFAULT_ZSTD_LEVEL));
  return compressionPays(raw.length, packed.length, options.maxRatio) ? { compressed: true, payload: packed } : { compressed: false, payload: raw };
}

/** A frame (see the file comment) holding `raw`, compressed if it pays. */
export function encodeChunk(raw: Buffer, options: CompressOptions = {}): Buffer {
  const h = header(CODEC_RAW, raw.length);
  const c = compress(raw, options);
  if (c.compressed) h.writeUInt8(CODEC_ZSTD, 0);
  return Buffer.concat([h, c.payload]);
}

/** `encodeChunk` with compression on the thread pool. */
export async function encodeChunkAsync(raw: Buffer, options: CompressOptions = {}): Promise<Buffer> {
  const h = header(CODEC_RAW, raw.length);
  const c = await compressAsync(raw, options);
  if (c.compressed) h.writeUInt8(CODEC_ZSTD, 0);
  return Buffer.concat([h, c.payload]);
}

/** What a frame's header says. */
export interface FrameInfo {
  readonly codec: 'raw' | 'zstd';
  /** Bytes after decoding. */
  readonly rawBytes: number;
  /** Bytes of the payload as framed. */
  readonly payloadBytes: number;
}

function corrupt(message: string, where: ErrorLocation | undefined, cause?: unknown): RecoverableError {
  return new RecoverableError('compression.frameCorrupt', message, {
    cause, where, hint: 'the chunk was damaged in transit; it is sent again from the source log on retry',
  });
}

/**
 * Read a frame's header.
 *
 * @throws RecoverableError `compression.frameCorrupt` (too short, raw length
 *   over the limit); NonRecoverableError `compression.unknownCodec` (a codec
 *   this build does not know: the sender is newer).
 */
export function frameInfo(frame: Buffer, options: DecodeOptions = {}): FrameInfo {
  if (frame.length < FRAME_HEADER_BYTES) throw corrupt(`frame of ${frame.length} bytes is shorter than its header`, options.where);
  const codec = frame.readUInt8(0);
  if (codec !== CODEC_RAW && codec !== CODEC_ZSTD) {
    throw new NonRecoverableError('compression.unknownCodec', `frame codec ${codec} is unknown (this build reads 0 raw, 1 zstd)`, {
      where: options.where, hint: 'upgrade the receiving agent to the sender\'s version',
    });
  }
  const rawBytes = frame.readUInt32LE(1);
  const max = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  if (rawBytes > max) throw corrupt(`frame states ${rawBytes} raw bytes, over the limit of ${max}`, options.where);
  return { codec: codec === CODEC_RAW ? 'raw' : 'zstd', rawBytes, payloadBytes: frame.length - FRAME_HEADER_BYTES };
}

function checkRaw(info: FrameInfo, payload: Buffer, where: ErrorLocation | undefined): Buffer {
  if (payload.length !== info.rawBytes) throw corrupt(`raw frame holds ${payload.length} bytes, its header says ${info.rawBytes}`, where);
  return payload;
}

/**
 * The raw chunk of a frame. For a raw frame the result is a view of `frame`
 * (no copy). Never returns more or fewer bytes than the header states.
 *
 * @throws RecoverableError `compression.frameCorrupt`; NonRecoverableError `compression.unknownCodec`.
 */
export function decodeChunk(frame: Buffer, options: DecodeOptions = {}): Buffer {
  const info = frameInfo(frame, options);
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  if (info.codec === 'raw') return checkRaw(info, payload, options.where);
  let out: Buffer;
  try {
    out = zstdDecompressSync(payload, { maxOutputLength: Math.max(1, info.rawBytes) });
  } catch (e) {
    throw corrupt(`zstd payload does not decode to ${info.rawBytes} bytes: ${e instanceof Error ? e.message : String(e)}`, options.where, e);
  }
  if (out.length !== info.rawBytes) throw corrupt(`zstd payload decodes to ${out.length} bytes, its header says ${info.rawBytes}`, options.where);
  return out;
}

/** `decodeChunk` with decompression on the thread pool. Same errors. */
export async function decodeChunkAsync(frame: Buffer, options: DecodeOptions = {}): Promise<Buffer> {
  const info = frameInfo(frame, options);
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  if (info.codec === 'raw') return checkRaw(info, payload, options.where);
  let out: Buffer;
  try {
    out = await zstdDecompressAsync(payload, { maxOutputLength: Math.max(1, info.rawBytes) });
  } catch (e) {
    throw corrupt(`zstd payload does not decode to ${info.rawBytes} bytes: ${e instanceof Error ? e.message : String(e)}`, options.where, e);
  }
  if (out.length !== info.rawBytes) throw corrupt(`zstd payload decodes to ${out.length} bytes, its header says ${info.rawBytes}`, options.where);
  return out;
}

export interface AdaptiveCompressorOptions extends CompressOptions {
  /** Misses (chunks that did not pay) in a row before backing off. @default 8 */
  readonly missesBeforeBackoff?: number;
  /** Chunks sent raw without trying after backing off. @default 56 */
  readonly backoffChunks?: number;
}

/** Counters of an `AdaptiveCompressor`, for the item's statistics and the benchmarks. */
export interface CompressionStats {
  readonly chunks: number;
  readonly rawBytes: number;
  /** Bytes of payload produced (compressed or raw), headers excluded. */
  readonly payloadBytes: number;
  /** Chunks compressed and sent compressed. */
  readonly compressedChunks: number;
  /** Chunks not even tried (too small, or backing off). */
  readonly untriedChunks: number;
}

/**
 * Compression with memory of what pays, for one stream (a session, a disk):
 * after `missesBeforeBackoff` chunks in a row that did not pay, the next
 * `backoffChunks` are sent raw without trying, then it tries again. On
 * incompressible data (encrypted guests) this costs one try in 64 chunks.
 * Not safe for concurrent use by two streams (the memory would mix).
 */
export class AdaptiveCompressor {
  private readonly options: AdaptiveCompressorOptions;
  private misses = 0;
  private skip = 0;
  private counters = { chunks: 0, rawBytes: 0, payloadBytes: 0, compressedChunks: 0, untriedChunks: 0 };

  /** @throws InvalidInputError `compression.invalidOptions`. */
  constructor(options: AdaptiveCompressorOptions = {}) {
    checkOptions(options);
    this.options = options;
  }

  /** Compress `raw` if it pays and compression is not backing off. */
  async compress(raw: Buffer): Promise<Compressed> {
    const minBytes = this.options.minBytes ?? DEFAULT_MIN_COMPRESS_BYTES;
    let result: Compressed;
    if (raw.length < minBytes || this.skip > 0) {
      if (raw.length >= minBytes) this.skip--;
      this.counters.untriedChunks++;
      result = { compressed: false, payload: raw };
    } else {
      result = await compressAsync(raw, this.options);
      if (result.compressed) {
        this.misses = 0;
      } else if (++this.misses >= (this.options.missesBeforeBackoff ?? 8)) {
        this.misses = 0;
        this.skip = this.options.backoffChunks ?? 56;
      }
    }
    this.counters.chunks++;
    this.counters.rawBytes += raw.length;
    this.counters.payloadBytes += result.payload.length;
    if (result.compressed) this.counters.compressedChunks++;
    return result;
  }

  /** `compress`, framed (see the file comment). */
  async encodeChunk(raw: Buffer): Promise<Buffer> {
    const h = header(CODEC_RAW, raw.length);
    const c = await this.compress(raw);
    if (c.compressed) h.writeUInt8(CODEC_ZSTD, 0);
    return Buffer.concat([h, c.payload]);
  }

  /** Counters since creation. */
  get stats(): CompressionStats {
    return { ...this.counters };
  }
}
