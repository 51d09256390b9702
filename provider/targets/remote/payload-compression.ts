/**
 * Compression of WRITE payloads, docs/replication-protocol.md §8: zstd per
 * chunk, sent compressed only when it pays, and not even tried for a while
 * after it kept not paying. The rule and the adaptive memory are those of
 * provider/replication/compression.ts, shared with the shipper; this file
 * maps them onto the frame's `COMPRESSED` flag and checks what arrives.
 */

import { promisify } from 'node:util';
import { zstdDecompress } from 'node:zlib';
import { AdaptiveCompressor } from '../../replication/compression';
import { type CompressionCodec, FLAG_COMPRESSED } from './protocol';
import { protocolError } from './remote-errors';

const decompressAsync = promisify(zstdDecompress);

/** What to put on the wire for one chunk. */
export interface EncodedPayload {
  readonly flags: number;
  readonly payload: Buffer;
}

/** The codec chosen for a session, with its "does it pay" memory. One per session. */
export class PayloadCompressor {
  private readonly adaptive: AdaptiveCompressor | undefined;

  constructor(readonly codec: CompressionCodec | 'none') {
    this.adaptive = codec === 'zstd' ? new AdaptiveCompressor() : undefined;
  }

  /**
   * Encode `raw`: compressed with flag `COMPRESSED` if it pays, else `raw`
   * itself (no copy). Compression runs on the thread pool.
   */
  async encode(raw: Buffer): Promise<EncodedPayload> {
    if (this.adaptive === undefined) return { flags: 0, payload: raw };
    const c = await this.adaptive.compress(raw);
    return c.compressed ? { flags: FLAG_COMPRESSED, payload: c.payload } : { flags: 0, payload: raw };
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
