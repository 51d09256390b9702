/**
 * One open cycle on the server side (docs/replication-protocol.md §7.2–7.5):
 * the WRITEs, commit and abort of a cycle applied strictly in arrival order on
 * the backing `CycleWriter`, with credits for the window and the abort that a
 * lost connection requires.
 */

import { type CycleWriter, type RecoveryPointInfo } from '../../replication/target';
import { type CycleHolder } from './disk-registry';
import { decodePayload } from './payload-compression';
import { connectionLost } from './remote-errors';

/** What a slot needs from its session. */
export interface SlotHost {
  /** True once the session is ending: queued work is dropped (§7.5 step 1). */
  readonly ending: boolean;
  /** `bytes` of WRITE payload left the server's buffer (applied or dropped). */
  settleBytes(bytes: number): void;
  /** Send CREDIT for a cycle, with the cycle's first failure if `error` is set (§7.3). */
  sendCredit(handle: number, bytes: number, error: unknown): void;
  /** A WRITE payload was malformed: end the session with this protocol error. */
  violation(error: unknown): void;
  /** End the session (supersession, §7.5). */
  end(reason: 'superseded'): void;
  /** The slot's cycle is committed or aborted (or abandoned): forget its holder record. */
  finished(slot: CycleSlot, aborted: boolean): void;
}

export class CycleSlot implements CycleHolder {
  private tail: Promise<void> = Promise.resolve();
  private done = false;
  /** First refused write; later writes are dropped and commit answers with it (§7.3). */
  private failure: unknown = undefined;
  private failureSent = false;
  /** Abort requested or the slot is shutting down: queued writes are dropped. */
  private dropping = false;
  private queued = 0;
  private pendingCredit = 0;
  private shutdownRun: Promise<void> | undefined;

  constructor(
    private readonly host: SlotHost,
    /** The cycle handle. */
    readonly handle: number,
    readonly diskId: string,
    /** The disk handle the cycle was begun through. */
    readonly diskHandle: number,
    private readonly writer: CycleWriter,
    /** Pending credit at which a CREDIT is sent even while writes are queued. */
    private readonly creditThreshold: number,
  ) {}

  get owner(): object {
    return this.host;
  }

  /**
   * Queue one WRITE (§7.2). Its bytes count as buffered until it is applied or
   * dropped; then `release` (if any) gives the payload's buffer back for reuse,
   * so the backing writer must not keep `data` once its `write` settled.
   */
  enqueueWrite(offset: number, length: number, flags: number, payload: Buffer, release?: () => void): void {
    this.queued++;
    this.tail = this.tail.then(async () => {
      try {
        if (this.host.ending || this.dropping || this.failure !== undefined) return;
        let data: Buffer;
        try {
          data = await decodePayload(payload, flags, length);
        } catch (e) {
          this.host.violation(e);
          return;
        }
        try {
          await this.writer.write(offset, data);
        } catch (e) {
          this.failure = e;
        }
      } finally {
        release?.();
        this.queued--;
        this.pendingCredit += length;
        this.host.settleBytes(length);
        this.maybeCredit();
      }
    });
  }

  /** `cycle.commit`: after every earlier WRITE; answers a recorded write failure instead (§7.3). */
  commit(): Promise<RecoveryPointInfo | undefined> {
    return this.enqueue(async () => {
      if (this.failure !== undefined) throw this.failure;
      const point = await this.writer.commit();
      this.finish(false);
      return point;
    });
  }

  /** `cycle.abort`: drops queued WRITEs, then aborts the backing writer. */
  abort(): Promise<void> {
    this.dropping = true;
    return this.enqueue(async () => {
      await this.writer.abort();
      this.failure = undefined;
      this.finish(true);
    });
  }

  /**
   * Abandon the cycle: drop what is queued, wait for the backing call in
   * progress, abort unless it was committed or aborted (§7.5). Idempotent;
   * never throws (a failed abort is rolled back by the store when the disk is
   * next opened).
   */
  shutdown(): Promise<void> {
    if (this.shutdownRun === undefined) {
      this.dropping = true;
      this.shutdownRun = this.tail.then(async () => {
        if (this.done) return;
        try {
          await this.writer.abort();
        } catch {
          // See above: the store rolls an unfinished cycle back on open.
        }
        this.finish(true);
      });
      this.tail = this.shutdownRun;
    }
    return this.shutdownRun;
  }

  /** Supersession (§7.5): end the owning session, then wait for this cycle's abort. */
  supersede(): Promise<void> {
    this.host.end('superseded');
    return this.shutdown();
  }

  private finish(aborted: boolean): void {
    if (this.done) return;
    this.done = true;
    this.host.finished(this, aborted);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.host.ending) throw connectionLost('network', 'The session ended before the request was applied');
      return fn();
    });
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private maybeCredit(): void {
    if (this.host.ending) return;
    const errorDue = this.failure !== undefined && !this.failureSent;
    if (this.pendingCredit === 0 && !errorDue) return;
    if (!errorDue && this.queued > 0 && this.pendingCredit < this.creditThreshold) return;
    this.host.sendCredit(this.handle, this.pendingCredit, errorDue ? this.failure : undefined);
    this.pendingCredit = 0;
    if (errorDue) this.failureSent = true;
  }
}
