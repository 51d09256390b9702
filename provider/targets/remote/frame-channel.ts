/**
 * Frames over a byte stream (a TLS socket): decoding what arrives, writing
 * frames with the payload uncopied (docs/replication-protocol.md §3, §10), and
 * one place where the stream's end is observed.
 */

import { type Socket } from 'node:net';
import { type BufferPool } from './buffer-pool';
import { encodeFrameHead, FrameDecoder } from './frame-codec';
import { type Frame, FrameType, type FrameTypeCode } from './protocol';
import { toWireError } from './wire-errors';

export interface FrameChannelHandlers {
  /** A frame arrived. Throwing here ends the channel with that error. */
  onFrame(frame: Frame): void;
  /**
   * The stream ended or failed, or a frame was malformed, or `onFrame` threw
   * (then the peer was sent that error as ERROR id 0 first, §3). Called once;
   * `error` is undefined for a clean end by either side.
   */
  onClose(error: unknown): void;
}

/** A sent frame could not be written because the channel is closed. */
export class ChannelClosedError extends Error {
  readonly code = 'ERR_LIFEBOAT_CHANNEL_CLOSED';
}

export class FrameChannel {
  private readonly decoder: FrameDecoder;
  private ended = false;
  private readonly waiting = new Set<(e: unknown) => void>();

  constructor(
    private readonly stream: Socket,
    private readonly handlers: FrameChannelHandlers,
    maxFrameLength?: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameLength);
    stream.on('data', (piece: Buffer) => this.receive(piece));
    stream.on('error', (e: unknown) => this.finish(e));
    stream.on('close', () => this.finish(undefined));
    stream.on('end', () => {
      // The peer finished writing; we have nothing more to say either.
      stream.end();
    });
  }

  /**
   * Assemble frames that span several reads into buffers of `pool` (when they
   * fit); such frames carry `release`, which the receiver must call.
   */
  usePool(pool: BufferPool): void {
    this.decoder.pool = pool;
  }

  /** True once the stream ended or failed. */
  get closed(): boolean {
    return this.ended;
  }

  /**
   * Write one frame; resolves when the stream has taken all its bytes (so the
   * caller may reuse `payload`), rejects with `ChannelClosedError` or the
   * stream's error if the channel closes first.
   */
  send(type: FrameTypeCode, flags: number, id: number, json: object | undefined, payload?: Buffer): Promise<void> {
    if (this.ended) return Promise.reject(new ChannelClosedError('The connection is closed'));
    const head = encodeFrameHead(type, flags, id, json, payload?.length ?? 0);
    return new Promise<void>((resolve, reject) => {
      const settle = (e: unknown): void => {
        if (!this.waiting.delete(settle)) return;
        if (e === undefined || e === null) resolve();
        else reject(e);
      };
      this.waiting.add(settle);
      this.stream.cork();
      if (payload !== undefined && payload.length > 0) {
        this.stream.write(head);
        this.stream.write(payload, (e) => settle(e));
      } else {
        this.stream.write(head, (e) => settle(e));
      }
      this.stream.uncork();
    });
  }

  /**
   * Resolves when the stream wants more data: at once unless it is over its
   * high-water mark, else at its next `drain`. Lets a sender keep the socket
   * busy without piling data up in it. Rejects if the channel closes first.
   */
  writable(): Promise<void> {
    if (this.ended) return Promise.reject(new ChannelClosedError('The connection is closed'));
    if (!this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const settle = (e: unknown): void => {
        if (!this.waiting.delete(settle)) return;
        this.stream.off('drain', onDrain);
        if (e === undefined || e === null) resolve();
        else reject(e);
      };
      const onDrain = (): void => settle(undefined);
      this.waiting.add(settle);
      this.stream.once('drain', onDrain);
    });
  }

  /**
   * End the session with an error: send it as ERROR id 0 (§5), close the
   * stream once that is written, and report `error` to `onClose`. Never throws.
   */
  fail(error: unknown): void {
    if (this.ended) return;
    try {
      this.stream.write(encodeFrameHead(FrameType.Error, 0, 0, toWireError(error), 0));
    } catch {
      // Nothing more can be said to this peer.
    }
    closeSoon(this.stream);
    this.finish(error);
  }

  /** Tear the stream down now, without a word to the peer. */
  destroy(error?: unknown): void {
    this.stream.destroy();
    this.finish(error);
  }

  private receive(piece: Buffer): void {
    if (this.ended) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(piece);
    } catch (e) {
      this.fail(e);
      return;
    }
    for (const f of frames) {
      if (this.ended) return;
      try {
        this.handlers.onFrame(f);
      } catch (e) {
        this.fail(e);
        return;
      }
    }
  }

  private finish(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const closed = error ?? new ChannelClosedError('The connection is closed');
    for (const settle of [...this.waiting]) settle(closed);
    this.handlers.onClose(error);
  }
}

/** How long a closing stream may take to flush its last frame before it is torn down. */
const FLUSH_GRACE_MS = 5_000;

/**
 * End `stream` once what was written has left, and tear it down regardless
 * after a grace period, so a peer that stops reading cannot keep it open (a
 * safety valve on real time, not part of the protocol's timing).
 */
export function closeSoon(stream: Socket): void {
  stream.destroySoon();
  setTimeout(() => stream.destroy(), FLUSH_GRACE_MS).unref();
}
