/**
 * `AzureBlobReplicaTarget`: replicas as page blobs (fixed VHDs) in the vault's
 * container of an Azure Storage account, recovery points as snapshots
 * (docs/azure-target.md). Azurite serves the same API locally.
 */
import { type ContainerClient } from '@azure/storage-blob';
import { InvalidInputError, NonRecoverableError, ReplicaStateError } from '../../errors';
import { type OpenDiskOptions, type ReplicaTarget } from '../../replication/target';
import { MiB } from '../../units';
import { AsyncMutex } from './async-mutex';
import { type AzureBlobTargetConfig, containerClientOf, describeConfig } from './azure-config';
import { azureCall, classifyAzureError, isNotFound, statusOf } from './azure-errors';
import { AzureReadOnlyDisk } from './azure-read-only-disk';
import { type AzureDiskTuning, AzureReplicaDisk } from './azure-replica-disk';
import { DISKS_PREFIX, diskBlobNames, diskIdOfBaseBlob, EXPORTS_PREFIX, encodeDiskId } from './blob-names';

export interface AzureBlobReplicaTargetOptions extends AzureBlobTargetConfig {
  /** Put Page requests in flight per flush (§11). @default 8 */
  readonly writeConcurrency?: number;
  /** Reads in flight (read-modify-write, index checks, views). @default 8 */
  readonly readConcurrency?: number;
  /** Bytes of whole blocks a cycle queues before writing them (§5 step 2). @default 16 MiB */
  readonly batchBytes?: number;
  /** Fraction of the blocks of an index answer read back to verify it (§9); at least one block per call. @default 1/64 */
  readonly verifySampleFraction?: number;
  /** Random numbers in [0, 1) for the sample (tests make it deterministic). @default Math.random */
  readonly random?: () => number;
  /** Create the container when missing. @default true */
  readonly createContainer?: boolean;
  /** Time for VHD footers, ms since the epoch. @default Date.now */
  readonly now?: () => number;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new InvalidInputError('azure.invalidConfig', `${name} must be a positive integer, not ${v}`, { where: { path: `/${name}` } });
  }
  return v;
}

/** `replica.invalidDiskId` or `replica.invalidSize`, or `undefined` when the options are valid. */
function checkDiskOptions(diskId: string, sizeBytes: number): InvalidInputError | undefined {
  try {
    encodeDiskId(diskId);
  } catch (e) {
    return e as InvalidInputError;
  }
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % 512 !== 0) {
    return new InvalidInputError('replica.invalidSize', `Disk size ${sizeBytes} is not a positive multiple of 512`, { where: { path: '/sizeBytes' }, details: { diskId, sizeBytes } });
  }
  return undefined;
}

/**
 * A `ReplicaTarget` over one container. Open it with
 * `AzureBlobReplicaTarget.open(options)`; one instance per container and
 * process (§11).
 */
export class AzureBlobReplicaTarget implements ReplicaTarget {
  readonly kind = 'azure-blob';
  private readonly disks = new Map<string, AzureReplicaDisk>();
  private readonly readers = new Set<AzureReadOnlyDisk>();
  private readonly mutex = new AsyncMutex();
  private closed = false;

  private constructor(private readonly container: ContainerClient, private readonly options: AzureBlobReplicaTargetOptions, private readonly tuning: AzureDiskTuning) {}

  /**
   * Check the configuration and reach the container, creating it if missing
   * (unless `createContainer` is false). Throws `InvalidInputError`
   * (`azure.invalidConfig`, `azure.insecureEndpoint`), `NonRecoverableError`
   * (`azure.authenticationFailed`, `azure.accessDenied`,
   * `azure.containerNotFound`) or `RecoverableError` (`azure.network`,
   * `azure.throttled`, `azure.serverError`). Creates nothing else.
   */
  static async open(options: AzureBlobReplicaTargetOptions): Promise<AzureBlobReplicaTarget> {
    const container = containerClientOf(options);
    const fraction = options.verifySampleFraction ?? 1 / 64;
    if (!(fraction >= 0 && fraction <= 1)) throw new InvalidInputError('azure.invalidConfig', `verifySampleFraction must be in [0, 1], not ${fraction}`, { where: { path: '/verifySampleFraction' } });
    const tuning = {
      writeConcurrency: positive('writeConcurrency', options.writeConcurrency, 8),
      readConcurrency: positive('readConcurrency', options.readConcurrency, 8),
      batchBytes: positive('batchBytes', options.batchBytes, 16 * MiB),
      verifySampleFraction: fraction,
      random: options.random ?? Math.random,
    };
    const where = describeConfig(options);
    let exists: boolean;
    try {
      exists = await container.exists();
    } catch (e) {
      throw classifyAzureError(e, `reach ${where}`);
    }
    if (!exists) {
      if (options.createContainer === false) throw AzureBlobReplicaTarget.noContainer(where);
      try {
        await container.create();
      } catch (e) {
        if (statusOf(e) === 403) {
          const c = classifyAzureError(e, `create ${where}`);
          if (c.code === 'azure.authenticationFailed') throw c;
          throw AzureBlobReplicaTarget.noContainer(where, e);
        }
        if (statusOf(e) !== 409) throw classifyAzureError(e, `create ${where}`);
      }
    }
    return new AzureBlobReplicaTarget(container, options, tuning);
  }

  private static noContainer(where: string, cause?: unknown): NonRecoverableError {
    return new NonRecoverableError('azure.containerNotFound', `The container of the vault does not exist and cannot be created (${where})`, {
      ...(cause === undefined ? {} : { cause }),
      hint: 'Create the container in the storage account, or give credentials allowed to create it.',
    });
  }

  /** The container's URL (no credentials). */
  get containerUrl(): string {
    return this.container.url;
  }

  /**
   * Open (creating if needed, §4) and recover the replica of a disk; the
   * same instance while it stays open. Throws `InvalidInputError`
   * (`replica.invalidDiskId`, `replica.invalidSize`), `ReplicaStateError`
   * (`replica.sizeMismatch`, `replica.corrupt`, `replica.formatVersion`) or
   * a classified Azure error.
   */
  openDisk(options: OpenDiskOptions): Promise<AzureReplicaDisk> {
    const { diskId, sizeBytes } = options;
    const bad = checkDiskOptions(diskId, sizeBytes);
    if (bad !== undefined) return Promise.reject(bad);
    return this.locked(async () => {
      const open = this.disks.get(diskId);
      if (open !== undefined) {
        if (open.sizeBytes !== sizeBytes) {
          throw new ReplicaStateError('replica.sizeMismatch', `The replica of disk ${diskId} has ${open.sizeBytes} bytes, not ${sizeBytes}`, {
            hint: 'A resized disk needs protection disabled and re-enabled (a new replica).',
          });
        }
        return open;
      }
      const disk = await AzureReplicaDisk.open({
        container: this.container, diskId, sizeBytes, tuning: this.tuning, now: this.options.now ?? Date.now,
        onClose: (d) => {
          if (this.disks.get(d.diskId) === d) this.disks.delete(d.diskId);
        },
      });
      this.disks.set(diskId, disk);
      return disk;
    });
  }

  /**
   * Open an existing replica read-only (§8a): points, views and exports,
   * without crash recovery or any write to the replica, so a process other
   * than the disk's writer may read it while replication goes on. Not the
   * instance `openDisk` returns; closed with the target. Throws
   * `InvalidInputError` (`replica.invalidDiskId`, `replica.invalidSize`),
   * `ReplicaStateError` (`replica.diskNotFound`, `replica.sizeMismatch`,
   * `replica.corrupt`, `replica.formatVersion`) or a classified Azure error.
   */
  openDiskReadOnly(options: OpenDiskOptions): Promise<AzureReadOnlyDisk> {
    const { diskId, sizeBytes } = options;
    const bad = checkDiskOptions(diskId, sizeBytes);
    if (bad !== undefined) return Promise.reject(bad);
    return this.locked(async () => {
      const d = await AzureReadOnlyDisk.open({
        container: this.container, diskId, sizeBytes, readConcurrency: this.tuning.readConcurrency, writeConcurrency: this.tuning.writeConcurrency,
        onClose: (x) => this.readers.delete(x),
      });
      this.readers.add(d);
      return d;
    });
  }

  /** Ids of the disks in the container, sorted. */
  listDisks(): Promise<readonly string[]> {
    return this.locked(() => azureCall('list disks', async () => {
      const ids: string[] = [];
      for await (const item of this.container.listBlobsFlat({ prefix: DISKS_PREFIX })) {
        const id = diskIdOfBaseBlob(item.name);
        if (id !== undefined) ids.push(id);
      }
      return ids.sort();
    }));
  }

  /**
   * Delete a disk's index, then its base blob with every snapshot (§4),
   * closing it first. Idempotent.
   */
  deleteDisk(diskId: string): Promise<void> {
    let names: ReturnType<typeof diskBlobNames>;
    try {
      names = diskBlobNames(diskId);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.locked(async () => {
      await this.disks.get(diskId)?.close();
      for (const name of [names.journal, names.index, names.base]) {
        try {
          await this.container.getBlobClient(name).delete({ deleteSnapshots: 'include' });
        } catch (e) {
          if (!isNotFound(e)) throw classifyAzureError(e, `delete disk ${diskId}`);
        }
      }
    });
  }

  /** Delete an export made by `AzureReplicaDisk.exportPoint`. Idempotent. */
  deleteExport(name: string): Promise<void> {
    return this.locked(async () => {
      try {
        await this.container.getBlobClient(`${EXPORTS_PREFIX}${encodeDiskId(name)}.vhd`).delete();
      } catch (e) {
        if (!isNotFound(e)) throw classifyAzureError(e, `delete export ${name}`);
      }
    });
  }

  /** Close every open disk. Idempotent; later calls fail with `replica.targetClosed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      this.closed = true;
      for (const d of [...this.disks.values()]) await d.close();
      for (const d of [...this.readers]) await d.close();
      this.disks.clear();
    });
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      if (this.closed) throw new ReplicaStateError('replica.targetClosed', `The Azure target of ${this.container.url} is closed`, { hint: 'Open the target again.' });
      return fn();
    });
  }
}
