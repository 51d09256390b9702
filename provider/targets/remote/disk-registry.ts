/**
 * The server's disks (docs/replication-protocol.md §6.2): each disk id is
 * opened once on the backing target and lent to every session that opens it;
 * it is closed when the last loan is returned. Also records which session
 * holds an open cycle on each disk, for supersession (§7.5).
 */

import { type OpenDiskOptions, type ReplicaDisk, type ReplicaTarget } from '../../replication/target';

/** One backing disk and the number of handles lent on it. */
export interface DiskLoan {
  readonly diskId: string;
  readonly disk: ReplicaDisk;
}

interface Entry {
  readonly disk: ReplicaDisk;
  refs: number;
}

/** Something that holds an open cycle on a disk and can be made to let go. */
export interface CycleHolder {
  /** The session the cycle belongs to. */
  readonly owner: object;
  /** End the owner's session and resolve when this cycle is aborted (or finished). */
  supersede(): Promise<void>;
}

export class DiskRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly holders = new Map<string, CycleHolder>();
  /** Opens, closes and deletes run one at a time, so a close never races a reopen. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly target: ReplicaTarget) {}

  /**
   * Open a disk for a new handle. Calls the backing `openDisk` every time, so
   * its validation (size mismatch, bad id) always applies; a second instance
   * it may return for an id already lent out is closed again. Throws what the
   * backing target throws; then nothing is lent.
   */
  acquire(options: OpenDiskOptions): Promise<DiskLoan> {
    return this.serial(async () => {
      const disk = await this.target.openDisk(options);
      const entry = this.entries.get(options.diskId);
      if (entry !== undefined) {
        if (entry.disk !== disk) await disk.close();
        entry.refs++;
        return { diskId: options.diskId, disk: entry.disk };
      }
      this.entries.set(options.diskId, { disk, refs: 1 });
      return { diskId: options.diskId, disk };
    });
  }

  /** Return a loan; the last one closes the backing disk. Never throws. */
  release(loan: DiskLoan): Promise<void> {
    return this.serial(async () => {
      const entry = this.entries.get(loan.diskId);
      if (entry === undefined || entry.disk !== loan.disk) {
        // The disk was deleted or replaced since: this loan is its only user.
        await loan.disk.close().catch(() => undefined);
        return;
      }
      entry.refs--;
      if (entry.refs > 0) return;
      this.entries.delete(loan.diskId);
      await entry.disk.close().catch(() => undefined);
    });
  }

  /**
   * Delete a disk on the backing target, forgetting its lent instance (loans
   * still out close it when returned). Throws what the backing target throws.
   */
  delete(diskId: string): Promise<void> {
    return this.serial(async () => {
      this.entries.delete(diskId);
      await this.target.deleteDisk(diskId);
    });
  }

  /** Whether the backing target still lists `diskId`. */
  async exists(diskId: string): Promise<boolean> {
    return (await this.target.listDisks()).includes(diskId);
  }

  /** Who holds an open cycle on `diskId`, if anyone. */
  holderOf(diskId: string): CycleHolder | undefined {
    return this.holders.get(diskId);
  }

  /** Record `holder` as holding the open cycle of `diskId`. */
  hold(diskId: string, holder: CycleHolder): void {
    this.holders.set(diskId, holder);
  }

  /** Clear the record if `holder` still holds `diskId`. */
  letGo(diskId: string, holder: CycleHolder): void {
    if (this.holders.get(diskId) === holder) this.holders.delete(diskId);
  }

  /** Close every backing disk still lent (server shut-down). Never throws. */
  closeAll(): Promise<void> {
    return this.serial(async () => {
      const all = [...this.entries.values()];
      this.entries.clear();
      this.holders.clear();
      await Promise.all(all.map((e) => e.disk.close().catch(() => undefined)));
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
