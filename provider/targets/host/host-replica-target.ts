/**
 * `HostReplicaTarget`: the replica store of a recovery-site host, a plain
 * local directory (docs/replica-format.md). No networking: the recovery-site
 * agent serves it to the primary site.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { InvalidInputError, ReplicaStateError } from '../../errors';
import { type OpenDiskOptions, type ReplicaTarget } from '../../replication/target';
import { MiB } from '../../units';
import { AsyncMutex } from './async-mutex';
import { type FileOps, nodeFileOps } from './file-ops';
import { classifyIoError } from './io-errors';
import { initialManifest, writeManifest } from './points-manifest';
import { HostReplicaDisk } from './replica-disk';
import { type BlockHasher } from '../../replication/block-hasher';
import { diskIdOfName, diskNameOf, DiskPaths, StorePaths } from './store-layout';

export interface HostReplicaTargetOptions {
  /** Directory of the store; created if missing. */
  readonly root: string;
  /** File operations (tests inject faults here). @default nodeFileOps */
  readonly fileOps?: FileOps;
  /**
   * Bytes of writes a cycle queues before applying them as one batch: one
   * undo fsync per batch (§7.2). Bounds a cycle's memory. @default 8 MiB
   */
  readonly undoBatchBytes?: number;
  /** Threads that hash blocks for `hashBlocks`. @default sharedBlockHasher */
  readonly hasher?: BlockHasher;
  /**
   * In a cycle without undo data (§7.2a), start a sync of the replica in the
   * background after this many bytes, so write-back overlaps the next
   * writes instead of all waiting for the commit; 0 never. @default 16 MiB
   */
  readonly earlySyncBytes?: number;
}

/**
 * A `ReplicaTarget` over a local directory. One instance per directory and
 * process. Open it with `HostReplicaTarget.open`.
 */
export class HostReplicaTarget implements ReplicaTarget {
  readonly kind = 'host';
  private readonly paths: StorePaths;
  private readonly ops: FileOps;
  private readonly batchBytes: number;
  private readonly hasher: BlockHasher | undefined;
  private readonly earlySyncBytes: number;
  private readonly disks = new Map<string, HostReplicaDisk>();
  private readonly mutex = new AsyncMutex();
  private closed = false;

  private constructor(options: HostReplicaTargetOptions) {
    this.paths = new StorePaths(options.root);
    this.ops = options.fileOps ?? nodeFileOps;
    this.batchBytes = options.undoBatchBytes ?? 8 * MiB;
    this.hasher = options.hasher;
    this.earlySyncBytes = options.earlySyncBytes ?? 16 * MiB;
  }

  /**
   * Open (creating if needed) a store, removing folders left by an
   * interrupted disk creation or deletion (§7.1, §7.7). Throws
   * `InvalidInputError` for a bad option, or a classified I/O error.
   */
  static async open(options: HostReplicaTargetOptions): Promise<HostReplicaTarget> {
    if (options.undoBatchBytes !== undefined && !(Number.isSafeInteger(options.undoBatchBytes) && options.undoBatchBytes > 0)) {
      throw new InvalidInputError('replica.invalidOption', `undoBatchBytes must be a positive integer, not ${options.undoBatchBytes}`, { where: { path: '/undoBatchBytes' } });
    }
    if (options.earlySyncBytes !== undefined && !(Number.isSafeInteger(options.earlySyncBytes) && options.earlySyncBytes >= 0)) {
      throw new InvalidInputError('replica.invalidOption', `earlySyncBytes must be a whole number, not ${options.earlySyncBytes}`, { where: { path: '/earlySyncBytes' } });
    }
    const t = new HostReplicaTarget(options);
    try {
      await t.ops.mkdir(t.paths.disksDir);
      for (const name of await t.ops.readdir(t.paths.disksDir)) {
        if (name.startsWith('.staging-') || name.startsWith('.deleting-')) await t.ops.removeTree(path.join(t.paths.disksDir, name));
      }
    } catch (e) {
      throw classifyIoError(e, `open store ${options.root}`);
    }
    return t;
  }

  /** Root directory of the store. */
  get root(): string {
    return this.paths.root;
  }

  /**
   * Open, creating if needed (§7.1), the replica of a disk; the same instance
   * while it stays open. Throws `InvalidInputError` (`replica.invalidDiskId`,
   * `replica.invalidSize`), `ReplicaStateError` (`replica.sizeMismatch` for an
   * existing replica of another size, `replica.corrupt`,
   * `replica.formatVersion`) or a classified I/O error. A failed creation
   * leaves no disk.
   */
  openDisk(options: OpenDiskOptions): Promise<HostReplicaDisk> {
    const { diskId, sizeBytes } = options;
    try {
      diskNameOf(diskId);
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % 512 !== 0) {
        throw new InvalidInputError('replica.invalidSize', `Disk size ${sizeBytes} is not a positive multiple of 512`, {
          where: { path: '/sizeBytes' },
          details: { diskId, sizeBytes },
        });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.locked(async () => {
      const open = this.disks.get(diskId);
      if (open !== undefined) {
        if (open.sizeBytes !== sizeBytes) {
          throw new ReplicaStateError('replica.sizeMismatch', `The replica of disk ${diskId} has ${open.sizeBytes} bytes, not ${sizeBytes}`, {
            details: { diskId, replicaBytes: open.sizeBytes, requestedBytes: sizeBytes },
            hint: 'A resized disk needs protection disabled and re-enabled (a new replica).',
          });
        }
        return open;
      }
      const paths = this.paths.disk(diskId);
      try {
        if (!(await this.ops.exists(paths.dir))) await this.create(paths, diskId, sizeBytes);
      } catch (e) {
        throw classifyIoError(e, `create disk ${diskId}`);
      }
      const disk = await HostReplicaDisk.open({
        ops: this.ops,
        paths,
        diskId,
        sizeBytes,
        undoBatchBytes: this.batchBytes,
        earlySyncBytes: this.earlySyncBytes,
        ...(this.hasher === undefined ? {} : { hasher: this.hasher }),
        onClose: (d) => {
          if (this.disks.get(d.diskId) === d) this.disks.delete(d.diskId);
        },
      });
      this.disks.set(diskId, disk);
      return disk;
    });
  }

  /** Ids of the disks in the store, sorted. */
  listDisks(): Promise<readonly string[]> {
    return this.locked(async () => {
      try {
        const ids: string[] = [];
        for (const name of await this.ops.readdir(this.paths.disksDir)) {
          const id = diskIdOfName(name);
          if (id !== undefined && (await this.ops.exists(this.paths.disk(id).manifest))) ids.push(id);
        }
        return ids.sort();
      } catch (e) {
        throw classifyIoError(e, `list ${this.paths.disksDir}`);
      }
    });
  }

  /**
   * Delete a disk's replica and all its points (§7.7), closing it first (its
   * open cycle and views become unusable). Idempotent. After a failure the
   * disk is either intact or gone for good (a leftover folder is removed on
   * the next open of the store).
   */
  deleteDisk(diskId: string): Promise<void> {
    try {
      diskNameOf(diskId);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.locked(async () => {
      await this.disks.get(diskId)?.close();
      const paths = this.paths.disk(diskId);
      try {
        if (!(await this.ops.exists(paths.dir))) return;
        const doomed = this.paths.scratch('deleting', randomBytes(8).toString('hex'));
        await this.ops.rename(paths.dir, doomed);
        await this.ops.syncDir(this.paths.disksDir);
        await this.ops.removeTree(doomed);
      } catch (e) {
        throw classifyIoError(e, `delete disk ${diskId}`);
      }
    });
  }

  /** Close every open disk. Idempotent; later calls fail with `replica.targetClosed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      this.closed = true;
      for (const d of [...this.disks.values()]) await d.close();
      this.disks.clear();
    });
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      if (this.closed) {
        throw new ReplicaStateError('replica.targetClosed', `The replica store ${this.paths.root} is closed`, {
          hint: 'Open the store again.',
        });
      }
      return fn();
    });
  }

  /** §7.1: build the disk in a staging folder, then rename it into place. */
  private async create(paths: DiskPaths, diskId: string, sizeBytes: number): Promise<void> {
    const staging = new DiskPaths(this.paths.scratch('staging', randomBytes(8).toString('hex')));
    await this.ops.mkdir(staging.undoDir);
    const h = await this.ops.open(staging.replica, 'create');
    try {
      await h.truncate(sizeBytes);
      await h.sync();
    } finally {
      await h.close();
    }
    await writeManifest(this.ops, staging, initialManifest(diskId, sizeBytes));
    await this.ops.syncDir(staging.dir);
    await this.ops.rename(staging.dir, paths.dir);
    await this.ops.syncDir(this.paths.disksDir);
  }
}
