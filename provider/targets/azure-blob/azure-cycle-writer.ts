/**
 * The writes of one cycle on an Azure replica (docs/azure-target.md §5): queued
 * over whole index blocks (copied: the caller may reuse its buffers), flushed
 * by the disk in batches, committed by a snapshot.
 */
import { InvalidInputError, ReplicaStateError } from '../../errors';
import { type CycleMeta, type CycleWriter, type RecoveryPointInfo } from '../../replication/target';
import { INDEX_BLOCK_SIZE } from './checksum-index';

/** One index block the cycle touched: its new bytes where `covered`, the rest to be read. */
export interface QueuedBlock {
  readonly index: number;
  readonly data: Buffer;
  /** Covered byte ranges `[from, to)` within the block, in write order (may overlap). */
  readonly covered: Array<[number, number]>;
}

/** What the writer needs from its disk. */
export interface CycleHost {
  readonly sizeBytes: number;
  locked<T>(fn: () => Promise<T>): Promise<T>;
  /** Write the blocks taken from the queue (synchronously, before its first await). */
  flush(c: AzureCycleWriter, blocks: readonly QueuedBlock[]): Promise<void>;
  commitCycle(c: AzureCycleWriter): Promise<RecoveryPointInfo | undefined>;
  abortCycle(c: AzureCycleWriter): Promise<void>;
}

export type CycleStatus = 'open' | 'failed' | 'committed' | 'aborted' | 'closed';

export class AzureCycleWriter implements CycleWriter {
  status: CycleStatus = 'open';
  result: RecoveryPointInfo | undefined;
  /** Queued blocks by index. */
  readonly queued = new Map<number, QueuedBlock>();
  queuedBytes = 0;
  /** New index entries of every block this cycle flushed (the last flush of a block wins). */
  readonly entries = new Map<number, Buffer>();
  /** Whether the base blob carries this cycle's journal (A2). */
  marked = false;
  /** The flush running while the next batch is queued (at most one: a flush's read-modify-write must see the previous one's pages). */
  private inFlight: Promise<void> | undefined;

  constructor(private readonly host: CycleHost, readonly meta: CycleMeta, readonly cycle: number, private readonly batchBytes: number) {}

  write(offset: number, data: Buffer): Promise<void> {
    const size = this.host.sizeBytes;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > size) {
      return Promise.reject(new InvalidInputError('replica.writeOutOfRange', `Write [${offset}, ${offset + data.length}) is outside the disk (${size} bytes)`, {
        details: { offset, length: data.length, sizeBytes: size },
      }));
    }
    return this.host.locked(async () => {
      this.assertOpen();
      const end = offset + data.length;
      for (let b = Math.floor(offset / INDEX_BLOCK_SIZE); b * INDEX_BLOCK_SIZE < end; b++) {
        const start = b * INDEX_BLOCK_SIZE;
        let q = this.queued.get(b);
        if (q === undefined) {
          q = { index: b, data: Buffer.alloc(Math.min(INDEX_BLOCK_SIZE, size - start)), covered: [] };
          this.queued.set(b, q);
          this.queuedBytes += q.data.length;
        }
        const from = Math.max(offset, start);
        const to = Math.min(end, start + q.data.length);
        data.copy(q.data, from - start, from - offset, to - offset);
        q.covered.push([from - start, to - start]);
      }
      if (this.queuedBytes >= this.batchBytes) {
        await this.runStep(async () => {
          await this.settle();
          const p = this.host.flush(this, this.takeQueued());
          p.catch(() => undefined);
          this.inFlight = p;
        });
      }
    });
  }

  commit(): Promise<RecoveryPointInfo | undefined> {
    return this.host.locked(async () => {
      if (this.status === 'committed') return this.result;
      this.assertOpen();
      return this.runStep(() => this.host.commitCycle(this));
    });
  }

  abort(): Promise<void> {
    return this.host.abortCycle(this);
  }

  /** Refuse use after the end or a failed step. */
  assertOpen(): void {
    if (this.status === 'failed') {
      throw new ReplicaStateError('replica.cycleFailed', `Cycle seq ${this.meta.seq} failed; abort it before retrying`, { hint: 'Call abort(), then begin the cycle again.' });
    }
    if (this.status !== 'open') {
      throw new ReplicaStateError('replica.cycleClosed', `Cycle seq ${this.meta.seq} is ${this.status}`, { hint: 'Begin a new cycle.' });
    }
  }

  /** The queued blocks in offset order; the queue is emptied. */
  takeQueued(): QueuedBlock[] {
    const blocks = [...this.queued.values()].sort((a, b) => a.index - b.index);
    this.dropQueued();
    return blocks;
  }

  /** Wait for the flush in flight; rethrows its failure. */
  async settle(): Promise<void> {
    const p = this.inFlight;
    this.inFlight = undefined;
    await p;
  }

  /** Wait for the flush in flight, ignoring its failure (abort, close). */
  async quiesce(): Promise<void> {
    await this.settle().catch(() => undefined);
  }

  /** Drop queued writes (abort, close). */
  dropQueued(): void {
    this.queued.clear();
    this.queuedBytes = 0;
  }

  private async runStep<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (this.status === 'open') this.status = 'failed';
      throw e;
    }
  }
}
