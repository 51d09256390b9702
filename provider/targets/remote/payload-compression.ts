/**
 * Compression of WRITE payloads, docs/replication-protocol.md §8: zstd per
 * chunk, sent compressed only when it pays, and not even tried for a while
 * after it kept not paying.
 *
 * TODO(#4): use provider/replication/compression.ts once it exists, so the
 * shipper and this protocol share one codec and one "does it pay" rule.
 */

import { promisify } from 'node:util';
import { zstdCompress, zstdDecompress, constants as zlibConstants } from 'node:zlib';
import { type CompressionCodec, FLAG_COMPRESSED } from './protocol';
import { protocolError } from './remote-errors';

const compressAsync = promisify(zstdCompress);
const decompressAsync = promisify(zstdDecompress);

/** Chunks smaller than this are never compressed (§8). */
export const MIN_COMPRESS_BYTES = 4096;
/** Compressed size must be at most raw × 7/8 to be sent compressed (§8). */
const PAYS_NUMERATOR = 7;
const PAYS_DENOMINATOR = 8;
/** After this many misses in a row … */
const MISSES_BEFORE_BACKOFF = 8;
/** … send this many chunks raw without trying. */
const BACKOFF_CHUNKS = 56;
/** zstd level 1: the fastest, what a replication link wants (§10). */
const LEVEL = 1;

/** What to put on the wire for one chunk. */
export interface EncodedPayload {
  readonly flags: number;
  readonly payload: Buffer;
}

/** The codec chosen for a session, with its "does it pay" memory. One per session. */
export class PayloadCompressor {
  private misses = 0;
  private skip = 0;

  constructor(readonly codec: CompressionCodec | 'none') {}

  /** Encode `raw`: compressed with flag `COMPRESSED` if it pays, else `raw` itself. */
  async encode(raw: Buffer): Promise<EncodedPayload> {
    if (this.codec === 'none' || raw.length < MIN_COMPRESS_BYTES) return { flags: 0, payload: raw };
    if (this.skip > 0) {
      this.skip--;
      return { flags: 0, payload: raw };
    }
    const packed = await compressAsync(raw, { params: { [zlibConstants.ZSTD_c_compressionLevel]: LEVEL } });
    if (packed.length * PAYS_DENOMINATOR <= raw.length * PAYS_NUMERATOR) {
      this.misses = 0;
      return { flags: FLAG_COMPRESSED, payload: packed };
    }
    if (++this.misses >= MISSES_BEFORE_BACKOFF) {
      this.misses = 0;
      this.skip = BACKOFF_CHUNKS;
    }
    return { flags: 0, payload: raw };
  }
}

/**
 * The raw bytes of a WRITE payload of `length` raw bytes. Throws
 * `remote.protocolError` if the payload does not decode to exactly `length`
 * bytes (never more: the output is capped).
 */
export async function decodePayload(payload: Buffer, flags: number, length: number): Promise<Buffer> {
  if ((flags & FLAG_COMPRESSED) === 0) {
    if (payload.length !== length) throw protocolError(`WRITE payload has ${payload.length} bytes, not ${length}`, { length });
    return payload;
  }
  let raw: Buffer;
  try {
    raw = await decompressAsync(payload, { maxOutputLength: Math.max(1, length) });
  } catch (e) {
    throw protocolError(`Compressed WRITE payload does not decode to ${length} bytes: ${e instanceof Error ? e.message : String(e)}`, { length });
  }
  if (raw.length !== length) throw protocolError(`Compressed WRITE payload decodes to ${raw.length} bytes, not ${length}`, { length });
  return raw;
}
