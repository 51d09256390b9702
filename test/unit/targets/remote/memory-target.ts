/**
 * A small in-memory `ReplicaTarget` used as the replica server's backing
 * store in the protocol tests: it is not the behaviour under test, only a
 * store whose state the tests can inspect directly, with hooks to slow down
 * or fail its calls. Cycles stage copies of their writes and apply them at
 * commit; points keep full snapshots (test disks are small).
 */
import { createHash } from 'node:crypto';
import { InvalidInputError, ReplicaStateError } from '../../../../provider/errors';
import {
  type BlockDigests,
  type CycleMeta,
  type CycleWriter,
  type DiskView,
  type MaterialisedDisk,
  type OpenDiskOptions,
  type RecoveryPointInfo,
  type ReplicaDisk,
  type ReplicaDiskState,
  type ReplicaTarget,
} from '../../../../provider/replication/target';

/** Test hooks; each may wait or throw. */
export interface MemoryHooks {
  /** Before a write is staged; `nth` counts writes of the target from 1. */
  beforeWrite?(offset: number, length: number, nth: number): Promise<void> | void;
  /** Before a commit applies its writes. */
  beforeCommit?(meta: CycleMeta): Promise<void> | void;
}

export class MemoryReplicaTarget implements ReplicaTarget {
  readonly disks = new Map<string, MemoryDisk>();
  hooks: MemoryHooks = {};
  /** Counters of calls, for assertions. */
  readonly counts = { openDisk: 0, writes: 0, commits: 0, aborts: 0, diskCloses: 0 };

  constructor(readonly kind: string = 'memory') {}

  async openDisk(o: OpenDiskOptions): Promise<ReplicaDisk> {
    this.counts.openDisk++;
    if (!Number.isSafeInteger(o.sizeBytes) || o.sizeBytes <= 0 || o.sizeBytes % 512 !== 0) {
      throw new InvalidInputError('replica.invalidSize', `Disk size ${o.sizeBytes} is not a positive multiple of 512`, { hint: 'Use a multiple of 512.', where: { path: '/sizeBytes' } });
    }
    const d = this.disks.get(o.diskId);
    if (d !== undefined) {
      if (d.sizeBytes !== o.sizeBytes) throw new ReplicaStateError('replica.sizeMismatch', `Disk ${o.diskId} has another size`);
      return d;
    }
    const fresh = new MemoryDisk(this, o.diskId, o.sizeBytes);
    this.disks.set(o.diskId, fresh);
    return fresh;
  }

  async listDisks(): Promise<readonly string[]> {
    return [...this.disks.keys()].sort();
  }

  async deleteDisk(diskId: string): Promise<void> {
    this.disks.delete(diskId);
  }

  async close(): Promise<void> {}
}

export class MemoryDisk implements ReplicaDisk {
  bytes: Buffer;
  generation: string | undefined;
  appliedSeq = 0;
  points: Array<{ info: RecoveryPointInfo; snapshot: Buffer }> = [];
  open: MemoryCycle | undefined;
  private nextPoint = 1;

  constructor(
    readonly target: MemoryReplicaTarget,
    readonly diskId: string,
    readonly sizeBytes: number,
  ) {
    this.bytes = Buffer.alloc(sizeBytes);
  }

  async state(): Promise<ReplicaDiskState> {
    return { diskId: this.diskId, sizeBytes: this.sizeBytes, generation: this.generation, appliedSeq: this.appliedSeq, points: this.points.map((p) => p.info) };
  }

  async beginCycle(meta: CycleMeta): Promise<CycleWriter> {
    if (this.open !== undefined) throw new ReplicaStateError('replica.cycleOpen', `Disk ${this.diskId} already has an open cycle`);
    if (meta.generation === this.generation && meta.seq <= this.appliedSeq) {
      throw new ReplicaStateError('cycle.alreadyApplied', `Cycle seq ${meta.seq} is not above ${this.appliedSeq}`, { hint: 'Resume after appliedSeq.', details: { seq: meta.seq } });
    }
    this.open = new MemoryCycle(this, meta);
    return this.open;
  }

  async listPoints(): Promise<readonly RecoveryPointInfo[]> {
    return this.points.map((p) => p.info);
  }

  async prunePoints(olderThan: number): Promise<readonly RecoveryPointInfo[]> {
    const removed = this.points.filter((p, i) => i < this.points.length - 1 && p.info.time < olderThan);
    this.points = this.points.filter((p) => !removed.includes(p));
    return removed.map((p) => p.info);
  }

  async hashBlocks(blockSize: number, firstBlock: number, count: number): Promise<BlockDigests> {
    const blocks = Math.ceil(this.sizeBytes / blockSize);
    if (!(blockSize > 0) || !(firstBlock >= 0) || !(count >= 0) || firstBlock + count > blocks) {
      throw new InvalidInputError('replica.invalidBlockRange', `Blocks ${firstBlock}+${count} of ${blockSize} bytes are outside the disk`);
    }
    const digests: Buffer[] = [];
    for (let i = firstBlock; i < firstBlock + count; i++) {
      digests.push(createHash('sha256').update(this.bytes.subarray(i * blockSize, Math.min((i + 1) * blockSize, this.sizeBytes))).digest());
    }
    return { blockSize, firstBlock, digests };
  }

  async openView(pointId: string): Promise<DiskView> {
    const p = this.point(pointId);
    const size = this.sizeBytes;
    let closed = false;
    return {
      sizeBytes: size,
      point: p.info,
      read: async (offset: number, length: number) => {
        if (closed) throw new ReplicaStateError('replica.viewClosed', 'closed');
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
          throw new InvalidInputError('replica.readOutOfRange', `Read of ${length} at ${offset} is outside the disk`);
        }
        return Buffer.from(p.snapshot.subarray(offset, offset + length));
      },
      close: async () => {
        closed = true;
      },
    };
  }

  async materialise(pointId: string): Promise<MaterialisedDisk> {
    const p = this.point(pointId);
    const latest = this.points[this.points.length - 1] === p && p.snapshot.equals(this.bytes);
    this.bytes = Buffer.from(p.snapshot);
    this.points = this.points.slice(0, this.points.indexOf(p) + 1);
    this.appliedSeq = p.info.seq;
    this.generation = p.info.generation;
    return { location: `memory:${this.diskId}`, zeroCopy: latest };
  }

  async close(): Promise<void> {
    this.target.counts.diskCloses++;
  }

  private point(id: string): { info: RecoveryPointInfo; snapshot: Buffer } {
    const p = this.points.find((x) => x.info.id === id);
    if (p === undefined) throw new ReplicaStateError('replica.pointNotFound', `No point ${id}`);
    return p;
  }

  /** Called by a cycle at commit. */
  apply(meta: CycleMeta, writes: ReadonlyArray<readonly [number, Buffer]>): RecoveryPointInfo | undefined {
    for (const [o, b] of writes) b.copy(this.bytes, o);
    this.generation = meta.generation;
    this.appliedSeq = meta.seq;
    if (meta.point === undefined) return undefined;
    const info: RecoveryPointInfo = { id: `p-${this.nextPoint++}`, seq: meta.seq, generation: meta.generation, time: meta.time, kind: meta.point };
    this.points.push({ info, snapshot: Buffer.from(this.bytes) });
    return info;
  }
}

export class MemoryCycle implements CycleWriter {
  status: 'open' | 'committed' | 'aborted' = 'open';
  readonly writes: Array<readonly [number, Buffer]> = [];
  private result: RecoveryPointInfo | undefined;

  constructor(
    private readonly disk: MemoryDisk,
    readonly meta: CycleMeta,
  ) {}

  async write(offset: number, data: Buffer): Promise<void> {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.disk.sizeBytes) {
      throw new InvalidInputError('replica.writeOutOfRange', `Write of ${data.length} at ${offset} is outside the disk`);
    }
    const t = this.disk.target;
    await t.hooks.beforeWrite?.(offset, data.length, ++t.counts.writes);
    if (this.status !== 'open') throw new ReplicaStateError('replica.cycleClosed', `Cycle is ${this.status}`);
    this.writes.push([offset, Buffer.from(data)]);
  }

  async commit(): Promise<RecoveryPointInfo | undefined> {
    if (this.status === 'committed') return this.result;
    if (this.status !== 'open') throw new ReplicaStateError('replica.cycleClosed', `Cycle is ${this.status}`);
    await this.disk.target.hooks.beforeCommit?.(this.meta);
    this.result = this.disk.apply(this.meta, this.writes);
    this.status = 'committed';
    this.disk.open = undefined;
    this.disk.target.counts.commits++;
    return this.result;
  }

  async abort(): Promise<void> {
    if (this.status === 'aborted') return;
    if (this.status === 'committed') throw new ReplicaStateError('cycle.alreadyApplied', 'Cycle is committed');
    this.status = 'aborted';
    if (this.disk.open === this) this.disk.open = undefined;
    this.disk.target.counts.aborts++;
  }
}
