/**
 * Frame encoding and decoding, docs/replication-protocol.md §3.
 *
 * Frame = Length u32 || Type u8 || Flags u8 || Reserved u16 || Id u32 || JsonLength u32 || Json || Payload,
 * big-endian.
 */

import { BugError } from '../../errors';
import {
  FRAME_HEAD_BYTES,
  FRAME_HEADER_AFTER_LENGTH,
  type Frame,
  type FrameTypeCode,
  KNOWN_FLAGS,
  MAX_FRAME_LENGTH,
} from './protocol';
import { type BufferPool } from './buffer-pool';
import { protocolError } from './remote-errors';

const EMPTY = Buffer.alloc(0);
const MAX_TYPE = 9;

/**
 * The bytes of a frame before its payload: Length, header and Json. The
 * payload is written after it by the caller, uncopied (§10). Throws
 * `BugError` if the frame would exceed the protocol's limit.
 */
export function encodeFrameHead(
  type: FrameTypeCode,
  flags: number,
  id: number,
  json: object | undefined,
  payloadLength: number,
): Buffer {
  const text = json === undefined ? '' : JSON.stringify(json);
  const jsonLength = Buffer.byteLength(text, 'utf8');
  const length = FRAME_HEADER_AFTER_LENGTH + jsonLength + payloadLength;
  if (length > MAX_FRAME_LENGTH) {
    throw new BugError('remote.frameTooLarge', `Frame of ${length} bytes exceeds the protocol limit of ${MAX_FRAME_LENGTH}`);
  }
  const head = Buffer.allocUnsafe(FRAME_HEAD_BYTES + jsonLength);
  head.writeUInt32BE(length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt8(flags, 5);
  head.writeUInt16BE(0, 6);
  head.writeUInt32BE(id >>> 0, 8);
  head.writeUInt32BE(jsonLength, 12);
  if (jsonLength > 0) head.write(text, FRAME_HEAD_BYTES, 'utf8');
  return head;
}

/** A whole frame in one buffer (tests and small messages). */
export function encodeFrame(type: FrameTypeCode, flags: number, id: number, json: object | undefined, payload: Buffer = EMPTY): Buffer {
  return Buffer.concat([encodeFrameHead(type, flags, id, json, payload.length), payload]);
}

/**
 * Incremental decoder: feed it the stream in pieces of any size, get whole
 * frames. A frame that arrives in one piece is returned as views into it (no
 * copy); one spread over several pieces is copied once. Memory held: at most
 * one frame plus the piece that completed it.
 */
export class FrameDecoder {
  private readonly pieces: Buffer[] = [];
  /** Read position in pieces[0]. */
  private start = 0;
  private buffered = 0;

  /** Where frames that must be assembled from several pieces are copied to, if they fit. */
  pool: BufferPool | undefined;

  constructor(private readonly maxLength: number = MAX_FRAME_LENGTH) {}

  /** Bytes received and not yet returned as frames. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Add bytes; return the frames they complete, in order. Throws
   * `remote.protocolError` on a malformed frame; the decoder must not be used
   * afterwards.
   */
  push(piece: Buffer): Frame[] {
    if (piece.length > 0) {
      this.pieces.push(piece);
      this.buffered += piece.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= 4) {
      const length = this.peekLength();
      if (length > this.maxLength) throw protocolError(`Frame of ${length} bytes exceeds the limit of ${this.maxLength}`, { length });
      if (length < FRAME_HEADER_AFTER_LENGTH) throw protocolError(`Frame length ${length} is shorter than its header`, { length });
      if (this.buffered < 4 + length) break;
      const n = 4 + length;
      const pooled = this.pool !== undefined && n <= this.pool.size && this.needsCopy(n) ? this.pool.take() : undefined;
      const frame = parseFrame(this.take(n, pooled));
      if (pooled === undefined) {
        frames.push(frame);
      } else {
        const pool = this.pool!;
        let released = false;
        frames.push({
          ...frame,
          release: () => {
            if (released) return;
            released = true;
            pool.give(pooled);
          },
        });
      }
    }
    return frames;
  }

  private peekLength(): number {
    const first = this.pieces[0]!;
    if (first.length - this.start >= 4) return first.readUInt32BE(this.start);
    const four = Buffer.allocUnsafe(4);
    let got = 0;
    let pos = this.start;
    for (const p of this.pieces) {
      const n = Math.min(4 - got, p.length - pos);
      p.copy(four, got, pos, pos + n);
      got += n;
      pos = 0;
      if (got === 4) break;
    }
    return four.readUInt32BE(0);
  }

  /** Whether the next `n` bytes span several pieces (so `take` must copy them). */
  private needsCopy(n: number): boolean {
    return this.pieces[0]!.length - this.start < n;
  }

  /** The next `n` bytes: a view if they lie in one piece, else copied into `into` (or a new buffer). */
  private take(n: number, into?: Buffer): Buffer {
    const first = this.pieces[0]!;
    this.buffered -= n;
    if (first.length - this.start >= n) {
      const out = first.subarray(this.start, this.start + n);
      this.start += n;
      if (this.start === first.length) {
        this.pieces.shift();
        this.start = 0;
      }
      return out;
    }
    const out = into === undefined ? Buffer.allocUnsafe(n) : into.subarray(0, n);
    let got = 0;
    while (got < n) {
      const p = this.pieces[0]!;
      const k = Math.min(n - got, p.length - this.start);
      p.copy(out, got, this.start, this.start + k);
      got += k;
      this.start += k;
      if (this.start === p.length) {
        this.pieces.shift();
        this.start = 0;
      }
    }
    return out;
  }
}

/** Parse one complete frame (Length included). */
function parseFrame(bytes: Buffer): Frame {
  const length = bytes.readUInt32BE(0);
  const type = bytes.readUInt8(4);
  const flags = bytes.readUInt8(5);
  const reserved = bytes.readUInt16BE(6);
  const id = bytes.readUInt32BE(8);
  const jsonLength = bytes.readUInt32BE(12);
  if (type < 1 || type > MAX_TYPE) throw protocolError(`Unknown frame type ${type}`, { type });
  if ((flags & ~KNOWN_FLAGS) !== 0) throw protocolError(`Unknown frame flags 0x${flags.toString(16)}`, { flags });
  if (reserved !== 0) throw protocolError('Reserved header field is not 0', { reserved });
  if (jsonLength > length - FRAME_HEADER_AFTER_LENGTH) throw protocolError(`JSON length ${jsonLength} exceeds the frame`, { jsonLength, length });
  let json: Record<string, unknown> = {};
  if (jsonLength > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8', FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + jsonLength));
    } catch {
      throw protocolError('Frame metadata is not valid JSON', { type });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw protocolError('Frame metadata is not a JSON object', { type });
    json = parsed as Record<string, unknown>;
  }
  return { type: type as FrameTypeCode, flags, id, json, payload: bytes.subarray(FRAME_HEAD_BYTES + jsonLength) };
}
