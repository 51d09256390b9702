/**
 * The writes of one open cycle (docs/replica-format.md §7.2): queued in
 * memory up to the batch size, then applied with undo-before-overwrite (I2)
 * and first-touch-only undo (I3). Commit and abort are carried out by the
 * disk (replica-disk.ts), which owns the manifest.
 */
import { InvalidInputError, ReplicaStateError } from '../../errors';
import { type CycleMeta, type CycleWriter, type RecoveryPointInfo } from '../../replication/target';
import { type FileHandleLike } from './file-ops';
import { classifyIoError } from './io-errors';
import { KiB, MiB } from '../../units';
import { CoverageSet } from './extent-map';
import { encodeUndoRecord, MAX_RECORD_PAYLOAD, RECORD_HEADER_BYTES, type UndoExtent, type UndoFileAppender } from './undo-log';

/**
 * Where a cycle stands. `open`: accepts writes. `failed`: a step failed; only
 * `abort()` is accepted. `committed`, `aborted`: finished. `closed`: the disk
 * was closed under it (rolled back when the disk is next opened).
 */
export type CycleStatus = 'open' | 'failed' | 'committed' | 'aborted' | 'closed';

/** What a cycle needs from its disk. */
export interface CycleHost {
  readonly sizeBytes: number;
  /** Run under the disk's lock; refuses if the disk is closed. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
  /** §7.3, under the lock. */
  commitCycle(cycle: HostCycleWriter): Promise<RecoveryPointInfo | undefined>;
  /** §7.4, under the lock. */
  abortCycle(cycle: HostCycleWriter): Promise<void>;
}

interface QueuedWrite {
  readonly offset: number;
  readonly data: Buffer;
}

const ZEROS = Buffer.alloc(MAX_RECORD_PAYLOAD);

/** Reads of old bytes in flight while a batch is saved (§7.2 step 1). */
const OLD_READS_IN_FLIGHT = 16;

/**
 * Largest single write to the replica without undo data. Filling fresh
 * page-cache pages costs less in pieces of this size than in 1 MiB ones
 * (docs/benchmarks.md §8: 2.3 × on the benchmark machine).
 */
const WRITE_PIECE = 128 * KiB;

/**
 * The `CycleWriter` of a host replica. Calls are applied in the order they are
 * made, even without awaiting each. Memory: at most the batch size of queued
 * data, plus one batch of old bytes while it is applied; writes at least as
 * large as the batch size are applied directly without a copy, and so is
 * every write of a cycle without undo data (§7.2a).
 */
export class HostCycleWriter implements CycleWriter {
  status: CycleStatus = 'open';
  /** What `commit()` returned, once committed. */
  result: RecoveryPointInfo | undefined;
  /** Extents saved in the undo file so far (durable ones only). */
  readonly coverage = new CoverageSet();
  /** Replica bytes were written without undo (§7.2a). */
  wroteWithoutUndo = false;
  /** §7.2a: a sync of the replica started during the cycle, and the first failure of one. */
  private earlySync: Promise<void> | undefined;
  private syncFailure: unknown;
  private unsyncedBytes = 0;
  private queue: QueuedWrite[] = [];
  private queuedBytes = 0;

  constructor(
    private readonly host: CycleHost,
    readonly meta: CycleMeta,
    /** Cycle number (§1). */
    readonly cycle: number,
    readonly appender: UndoFileAppender,
    private readonly replica: FileHandleLike,
    private readonly batchBytes: number,
    /** False for a cycle without undo data (§7.2a): writes go straight to the replica. */
    readonly keepsUndo = true,
    /** §7.2a: bytes after which a sync starts in the background; 0 never. */
    private readonly earlySyncBytes = 16 * MiB,
  ) {}

  write(offset: number, data: Buffer): Promise<void> {
    if (!Buffer.isBuffer(data) || !Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.host.sizeBytes) {
      return Promise.reject(
        new InvalidInputError('replica.writeOutOfRange', `Write of ${Buffer.isBuffer(data) ? data.length : 'non-buffer'} bytes at ${offset} is outside the disk (${this.host.sizeBytes} bytes)`, {
          details: { offset, length: Buffer.isBuffer(data) ? data.length : undefined, sizeBytes: this.host.sizeBytes, seq: this.meta.seq },
          hint: 'The log and the replica disagree on the disk size; resynchronise after resizing a disk.',
        }),
      );
    }
    return this.host.locked(() => this.applyWrite(offset, data));
  }

  commit(): Promise<RecoveryPointInfo | undefined> {
    return this.host.locked(async () => (this.status === 'committed' ? this.result : this.host.commitCycle(this)));
  }

  abort(): Promise<void> {
    return this.host.locked(() => this.host.abortCycle(this));
  }

  /** Refuse unless the cycle accepts work. */
  assertOpen(): void {
    if (this.status === 'open') return;
    if (this.status === 'failed') {
      throw new ReplicaStateError('replica.cycleFailed', `Cycle seq ${this.meta.seq} failed earlier; abort it before retrying`, {
        details: { seq: this.meta.seq, generation: this.meta.generation },
        hint: 'Call abort() and apply the cycle again.',
      });
    }
    throw new ReplicaStateError('replica.cycleClosed', `Cycle seq ${this.meta.seq} is already ${this.status}`, {
      details: { seq: this.meta.seq, generation: this.meta.generation, status: this.status },
      hint: 'Begin a new cycle.',
    });
  }

  /** Apply every queued write (§7.2). Under the lock; marks the cycle failed on error. */
  async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    await this.guard(() => this.applyBatch(batch));
  }

  /**
   * Wait for a sync started during the cycle; throw its failure, if any (an
   * `fsync` error is reported once per file: the commit must not miss it).
   */
  async settleEarlySync(): Promise<void> {
    await this.earlySync;
    if (this.syncFailure !== undefined) throw this.syncFailure;
  }

  /** Forget queued writes (abort: they never reached the replica). */
  dropQueued(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  /**
   * Overlay the head's bytes saved by this cycle onto `buf` (which holds the
   * replica's bytes at `offset`): §9, reads during an open cycle.
   */
  async overlayHead(buf: Buffer, offset: number): Promise<void> {
    const end = offset + buf.length;
    const h = this.appender.readHandle;
    for (const e of this.coverage.overlapping(offset, end)) {
      const from = Math.max(e.offset, offset);
      const to = Math.min(e.offset + e.length, end);
      if (e.zero) buf.fill(0, from - offset, to - offset);
      else if (h === undefined || (await h.read(buf, from - offset, to - from, e.payloadPos + (from - e.offset))) !== to - from) {
        throw new ReplicaStateError('replica.corrupt', `The undo file of the open cycle seq ${this.meta.seq} is shorter than its records`, {
          details: { file: this.appender.file },
          hint: 'Abort the cycle and apply it again.',
        });
      }
    }
  }

  private async applyWrite(offset: number, data: Buffer): Promise<void> {
    this.assertOpen();
    if (data.length === 0) return;
    if (!this.keepsUndo) {
      // §7.2a: nothing to save first, so nothing to batch: written at once, without a copy.
      this.wroteWithoutUndo = true;
      await this.guard(async () => {
        if (this.syncFailure !== undefined) throw this.syncFailure;
        // The pieces go to the thread pool together, not one after another: no event-loop round trip between
        // them, and the pool's threads fill the page cache side by side (docs/benchmarks.md §11). All settle
        // before the write does, so `data` is no longer read once it returns.
        const pieces: Array<Promise<void>> = [];
        for (let at = 0; at < data.length; at += WRITE_PIECE) pieces.push(this.replica.write(data, at, Math.min(WRITE_PIECE, data.length - at), offset + at));
        const failed = (await Promise.allSettled(pieces)).find((r) => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      });
      this.unsyncedBytes += data.length;
      if (this.earlySyncBytes > 0 && this.unsyncedBytes >= this.earlySyncBytes && this.earlySync === undefined) {
        // Start write-back now, while the next writes come, instead of all of it at commit. The commit still
        // syncs after the last write; this only shortens that wait.
        this.unsyncedBytes = 0;
        this.earlySync = this.replica.sync().then(
          () => { this.earlySync = undefined; },
          (e: unknown) => { this.syncFailure = e; this.earlySync = undefined; },
        );
      }
      return;
    }
    if (data.length >= this.batchBytes) {
      await this.flush();
      await this.guard(() => this.applyBatch([{ offset, data }]));
      return;
    }
    this.queue.push({ offset, data: Buffer.from(data) });
    this.queuedBytes += data.length;
    if (this.queuedBytes >= this.batchBytes) await this.flush();
  }

  private async guard(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.status = 'failed';
      throw classifyIoError(e, `apply cycle seq ${this.meta.seq}`);
    }
  }

  /** §7.2 steps 1–3. */
  private async applyBatch(batch: readonly QueuedWrite[]): Promise<void> {
    if (batch.length === 0) return;
    const records: Buffer[] = [];
    const added: UndoExtent[] = [];
    // Step 1 in two passes: find the parts to save (marking them covered, so later writes of the batch to the
    // same bytes save nothing, I3), then read their old bytes concurrently: a resync saves thousands of 4 KiB parts.
    const parts: Array<{ readonly at: number; readonly old: Buffer; readonly mark: UndoExtent }> = [];
    let pos = this.appender.nextPosition;
    try {
      for (const w of batch) {
        for (const [start, end] of this.coverage.gaps(w.offset, w.offset + w.data.length)) {
          for (let at = start; at < end; at += MAX_RECORD_PAYLOAD) {
            const length = Math.min(MAX_RECORD_PAYLOAD, end - at);
            const mark: UndoExtent = { offset: at, length, zero: false, payloadPos: 0 };
            this.coverage.add(mark);
            parts.push({ at, old: Buffer.alloc(length), mark });
          }
        }
      }
      for (let i = 0; i < parts.length; i += OLD_READS_IN_FLIGHT) {
        await Promise.all(parts.slice(i, i + OLD_READS_IN_FLIGHT).map((p) => this.replica.read(p.old, 0, p.old.length, p.at)));
      }
      for (const p of parts) {
        this.coverage.remove(p.mark);
        const length = p.old.length;
        const zero = p.old.equals(ZEROS.subarray(0, length));
        const record = encodeUndoRecord(p.at, length, zero ? undefined : p.old);
        const extent: UndoExtent = { offset: p.at, length, zero, payloadPos: zero ? 0 : pos + RECORD_HEADER_BYTES };
        pos += record.length;
        records.push(record);
        this.coverage.add(extent);
        added.push(extent);
      }
      if (records.length > 0) await this.appender.appendDurably(records);
    } catch (e) {
      // Only durable records may be in the coverage: views overlay it.
      for (const p of parts) this.coverage.remove(p.mark);
      for (const x of added) this.coverage.remove(x);
      throw e;
    }
    for (const w of batch) await this.replica.write(w.data, 0, w.data.length, w.offset);
  }
}
