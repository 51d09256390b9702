/**
 * The client's `CycleWriter` (docs/replication-protocol.md §7.1–7.5): writes
 * stream to the server as WRITE chunks within the window, without waiting for
 * each to be applied; a refused write or a lost connection is reported by the
 * next call.
 */

import { InvalidInputError, type LifeboatError, ReplicaStateError } from '../../errors';
import { type CycleMeta, type CycleWriter, type RecoveryPointInfo } from '../../replication/target';
import { type ClientConnection } from './client-connection';
import { parsePoint } from './wire-values';

type Status = 'open' | 'committed' | 'aborted';

export class RemoteCycleWriter implements CycleWriter {
  private status: Status = 'open';
  private tail: Promise<void> = Promise.resolve();
  private failure: LifeboatError | undefined;
  private readonly unwatch: () => void;

  constructor(
    private readonly conn: ClientConnection,
    /** The server's cycle handle. */
    private readonly handle: number,
    private readonly meta: CycleMeta,
    private readonly sizeBytes: number,
  ) {
    this.unwatch = conn.watchCycle(handle, (e) => {
      this.failure ??= e;
    });
  }

  /**
   * Stream `data` to the server (§7.1). Resolves once every chunk is in the
   * window and queued on the socket (not applied); `data` may be reused then. Throws
   * `InvalidInputError` (`replica.writeOutOfRange`) for a range outside the
   * disk, leaving the cycle usable; `ReplicaStateError` `replica.cycleClosed`
   * after commit or abort; the server's refusal of an earlier write, or
   * `remote.connectionLost`/`remote.timeout`, after which the cycle must be
   * aborted and retried.
   */
  write(offset: number, data: Buffer): Promise<void> {
    return this.inOrder(() => this.send(offset, data));
  }

  private async send(offset: number, data: Buffer): Promise<void> {
    if (this.status !== 'open') throw this.closedError();
    if (this.failure !== undefined) throw this.failure;
    if (!Buffer.isBuffer(data) || !Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.sizeBytes) {
      throw new InvalidInputError(
        'replica.writeOutOfRange',
        `Write of ${Buffer.isBuffer(data) ? data.length : 'non-buffer'} bytes at ${offset} is outside the disk (${this.sizeBytes} bytes)`,
        {
          details: { offset, length: Buffer.isBuffer(data) ? data.length : undefined, sizeBytes: this.sizeBytes, seq: this.meta.seq },
          hint: 'The log and the replica disagree on the disk size; resynchronise after resizing a disk.',
        },
      );
    }
    const step = this.conn.maxChunkBytes;
    for (let at = 0; at < data.length; at += step) {
      const raw = data.subarray(at, Math.min(at + step, data.length));
      const encoded = await this.conn.compressor.encode(raw);
      await this.conn.acquire(raw.length);
      if (this.failure !== undefined) {
        this.conn.release(raw.length);
        throw this.failure;
      }
      await this.conn.queueWrite(this.handle, offset + at, raw, encoded.flags, encoded.payload === raw ? undefined : encoded.payload);
    }
  }

  /**
   * Commit after every write was applied (§7.2). Throws the first refused
   * write's error, the server's commit error, or `remote.connectionLost`; a
   * commit in flight when the connection drops may have been applied
   * (§7.5: check `state().appliedSeq`).
   */
  commit(): Promise<RecoveryPointInfo | undefined> {
    return this.inOrder(() => this.sendCommit());
  }

  private async sendCommit(): Promise<RecoveryPointInfo | undefined> {
    if (this.status === 'aborted') throw this.closedError();
    if (this.failure !== undefined) throw this.failure;
    const r = await this.conn.request('cycle.commit', { cycle: this.handle });
    this.status = 'committed';
    this.unwatch();
    return r.json.point === null || r.json.point === undefined ? undefined : parsePoint(r.json.point);
  }

  /**
   * Abort the cycle. If the connection is gone the server aborts it by itself
   * (§7.5), so this resolves. Idempotent; after a commit it fails with
   * `cycle.alreadyApplied` as the backing target does.
   */
  abort(): Promise<void> {
    return this.inOrder(() => this.sendAbort());
  }

  private async sendAbort(): Promise<void> {
    if (this.status === 'aborted') return;
    if (this.conn.failure !== undefined && this.status === 'open') {
      this.status = 'aborted';
      this.unwatch();
      return;
    }
    try {
      await this.conn.request('cycle.abort', { cycle: this.handle });
    } catch (e) {
      if (this.conn.failure === undefined || this.status !== 'open') throw e;
    }
    this.status = 'aborted';
    this.unwatch();
  }

  /**
   * Calls take effect in the order they are made, even when the caller does
   * not await each (as with a local writer): a write's chunks are all queued
   * before the next call's, and a commit is sent after them.
   */
  private inOrder<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private closedError(): ReplicaStateError {
    return new ReplicaStateError('replica.cycleClosed', `Cycle seq ${this.meta.seq} is already ${this.status}`, {
      details: { seq: this.meta.seq, generation: this.meta.generation, status: this.status },
      hint: 'Begin a new cycle.',
    });
  }
}
