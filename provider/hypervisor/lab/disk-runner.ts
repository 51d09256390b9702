/**
 * The guest of a running lab VM, one disk at a time (docs/lab.md §5): a
 * `DiskRunner` feeds the disk's workload stream to `runWorkload`, keeps the
 * guest journal in step, and can be paused between operations (quiesce,
 * shutdown, switching the disk between tracked and plain) and resumed where
 * it stopped.
 */

import { crc32 } from 'node:zlib';
import { type Clock } from '../../clock';
import { MiB } from '../../units';
import { type GuestDisk } from './guest-disk';
import { type GuestJournal } from './guest-journal';
import { type LabWorkloadSpec } from './vm-config';
import { runWorkload, type WorkloadOp, type WorkloadOptions, workloadOps, type WorkloadTarget } from './workload';

/** Default write rate of a lab disk. */
export const DEFAULT_LAB_BYTES_PER_SECOND = MiB;

/**
 * The workload stream of one disk of a VM: the VM's spec with a seed of its
 * own (the VM's seed mixed with the CRC-32 of the disk id, so disks of one
 * VM write different data) and the disk's size. Pure; a verifier calls it
 * to recompute what the disk holds.
 */
export function diskWorkloadOptions(spec: LabWorkloadSpec, diskId: string, diskSize: number): WorkloadOptions {
  const { bytesPerSecond: _rate, seed, ...rest } = spec;
  return { ...rest, seed: (seed ^ crc32(Buffer.from(diskId, 'utf8'))) | 0, diskSize };
}

/** The operations of a workload from index `from` on. Pure. */
export function* workloadOpsFrom(options: WorkloadOptions, from: number): Generator<{ readonly index: number; readonly op: WorkloadOp }, never, undefined> {
  let index = 0;
  for (const op of workloadOps(options)) {
    if (index >= from) yield { index, op };
    index++;
  }
  throw new Error('unreachable: workloads are endless');
}

/** What a runner did since it was made (not persisted). */
export interface DiskRunnerStats {
  readonly writes: number;
  readonly bytes: number;
  readonly flushes: number;
}

export interface DiskRunnerOptions {
  readonly disk: GuestDisk;
  readonly journal: GuestJournal;
  /** The disk's stream (`diskWorkloadOptions`). */
  readonly workload: WorkloadOptions;
  readonly bytesPerSecond: number;
  readonly clock: Clock;
  /** Called once per failed run (an I/O error of the disk); the runner has stopped. Must not throw. */
  readonly onError: (e: unknown) => void;
}

/** Let timers and I/O callbacks run: tracked writes are synchronous system calls. */
function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs one disk's workload from the journal's `nextOp`. Not for concurrent
 * control: the driver calls `start`, `pause`, `flush` and `setDisk` under
 * its VM lock.
 */
export class DiskRunner {
  private controller: AbortController | undefined;
  private run: Promise<void> | undefined;
  private disk: GuestDisk;
  private current = 0;
  private counts = { writes: 0, bytes: 0, flushes: 0 };

  constructor(private readonly o: DiskRunnerOptions) {
    this.disk = o.disk;
  }

  /** The runner is executing (or about to execute) operations. */
  get active(): boolean {
    return this.run !== undefined;
  }

  get stats(): DiskRunnerStats {
    return { ...this.counts };
  }

  /** The disk the guest writes. */
  get guestDisk(): GuestDisk {
    return this.disk;
  }

  /** Start (or continue) at the journal's `nextOp`. Harmless if active. */
  start(): void {
    if (this.run !== undefined) return;
    const controller = new AbortController();
    this.controller = controller;
    const journal = this.o.journal;
    const ops = this.journaledOps();
    const target: WorkloadTarget = {
      write: async (offset, data) => {
        await yieldToLoop();
        await this.disk.write(offset, data);
        this.counts.writes++;
        this.counts.bytes += data.length;
      },
      flush: async () => {
        await this.disk.flush();
        journal.setFlushed(this.current + 1);
        this.counts.flushes++;
      },
    };
    const run = runWorkload(target, ops, { clock: this.o.clock, bytesPerSecond: this.o.bytesPerSecond, signal: controller.signal }).then(
      () => undefined,
      (e: unknown) => {
        if (this.run === run) {
          this.run = undefined;
          this.controller = undefined;
        }
        this.o.onError(e);
      },
    );
    this.run = run;
  }

  /** The stream from the journal's `nextOp`, recording each operation in the journal before it runs. */
  private *journaledOps(): Generator<WorkloadOp, void, undefined> {
    for (const { index, op } of workloadOpsFrom(this.o.workload, this.o.journal.state.nextOp)) {
      this.o.journal.setNext(index);
      this.current = index;
      yield op;
    }
  }

  /**
   * Stop before the next operation and wait for the one in flight. Once it
   * resolves, no operation runs and every operation before the journal's
   * `nextOp` completed. Idempotent.
   */
  async pause(): Promise<void> {
    const run = this.run;
    if (run === undefined) return;
    this.controller?.abort(new Error('paused'));
    await run;
    if (this.run === run) {
      this.run = undefined;
      this.controller = undefined;
    }
  }

  /**
   * Flush the disk and record in the journal that every operation before
   * `nextOp` is flushed, then `fsync` the journal. Call while paused.
   */
  async flush(): Promise<void> {
    await this.disk.flush();
    this.o.journal.setFlushed(this.o.journal.state.nextOp);
    await this.o.journal.sync();
  }

  /** Replace the disk the guest writes (tracked ↔ plain). Call while paused. */
  setDisk(disk: GuestDisk): void {
    this.disk = disk;
  }
}
