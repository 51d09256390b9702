/**
 * A read-only open of a disk of the Azure target (docs/azure-target.md §8a):
 * its points, views of them and exports, for a process that is not the
 * disk's writer — the azure host of a test failover while the source keeps
 * replicating into the same blobs.
 *
 * It reads the base blob's metadata and its snapshots only: no footer, no
 * journal, no crash recovery (§5 recovery would restore the extents of the
 * writer's cycle in flight and so undo it), no index, no snapshot deleted.
 * Points are snapshots (A3), so what it reads never changes under it; the
 * only blobs it writes are exports.
 */
import { type ContainerClient, type PageBlobClient } from '@azure/storage-blob';
import { ReplicaStateError } from '../../errors';
import { type DiskView, type MaterialisedDisk, type RecoveryPointInfo } from '../../replication/target';
import { AzureDiskView } from './azure-disk-view';
import { diskBlobNames, pointIdOf } from './blob-names';
import { exportSnapshot } from './export-point';
import { baseProperties, checkBaseMetadata, infoOf, isPoint, listSnapshots, pointNotFound, type Snap } from './point-snapshots';
import { VHD_FOOTER_BYTES, vhdVirtualSize } from './vhd-footer';

/** What `AzureReadOnlyDisk.open` needs; made by the target. */
export interface AzureReadOnlyDiskArgs {
  readonly container: ContainerClient;
  readonly diskId: string;
  readonly sizeBytes: number;
  readonly readConcurrency: number;
  readonly writeConcurrency: number;
  readonly onClose: (d: AzureReadOnlyDisk) => void;
}

/**
 * A disk's points as its snapshots show them now. Every call lists the
 * snapshots again (the writer adds and prunes points meanwhile). Never
 * writes the replica.
 */
export class AzureReadOnlyDisk {
  readonly diskId: string;
  readonly sizeBytes: number;
  private readonly base: PageBlobClient;
  private readonly views = new Set<AzureDiskView>();
  private closed = false;

  private constructor(private readonly args: AzureReadOnlyDiskArgs) {
    this.diskId = args.diskId;
    this.sizeBytes = args.sizeBytes;
    this.base = args.container.getPageBlobClient(diskBlobNames(args.diskId).base);
  }

  /**
   * Open an existing replica without touching it. Throws `ReplicaStateError`
   * `replica.diskNotFound` (no replica of this disk), `replica.sizeMismatch`,
   * `replica.corrupt`, `replica.formatVersion`, or a classified Azure error.
   */
  static async open(args: AzureReadOnlyDiskArgs): Promise<AzureReadOnlyDisk> {
    const d = new AzureReadOnlyDisk(args);
    const props = await baseProperties(d.base, args.diskId);
    if (props === undefined) {
      throw new ReplicaStateError('replica.diskNotFound', `There is no replica of disk ${args.diskId} in ${args.container.url}`, {
        details: { diskId: args.diskId }, hint: 'Protect the VM and wait for its first recovery point.',
      });
    }
    checkBaseMetadata(props.metadata ?? {}, d.base.name, args.diskId, args.sizeBytes);
    return d;
  }

  /** Retained points, oldest first (§6). */
  async listPoints(): Promise<readonly RecoveryPointInfo[]> {
    return (await this.points()).map(infoOf);
  }

  /** A view at a point: reads of its snapshot (§8). Throws `replica.pointNotFound`. */
  async openView(pointId: string): Promise<DiskView> {
    const s = await this.point(pointId);
    const v = new AzureDiskView(this.sizeBytes, infoOf(s), this.base.withSnapshot(s.snapshot), this.args.readConcurrency, (x) => this.views.delete(x));
    this.views.add(v);
    return v;
  }

  /**
   * `AzureReplicaDisk.exportPoint` without the writer (§8): the point's
   * snapshot copied to `exports/<name>.vhd`. Throws `replica.pointNotFound`
   * (also when retention prunes the point during the copy) or a classified
   * Azure error; a failure leaves a partial export, replaced by the next try.
   */
  async exportPoint(pointId: string, name: string): Promise<MaterialisedDisk> {
    const s = await this.point(pointId);
    try {
      return await exportSnapshot({
        container: this.args.container, source: this.base.withSnapshot(s.snapshot), blobBytes: vhdVirtualSize(this.sizeBytes) + VHD_FOOTER_BYTES,
        diskId: this.diskId, pointId, name, concurrency: this.args.writeConcurrency,
      });
    } catch (e) {
      if (!(await this.points()).some((x) => x.cycle === s.cycle)) throw pointNotFound(pointId, this.diskId);
      throw e;
    }
  }

  /** Close its views. Idempotent; later calls fail with `replica.diskClosed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const v of [...this.views]) await v.close();
    this.args.onClose(this);
  }

  private async points(): Promise<Snap[]> {
    if (this.closed) {
      throw new ReplicaStateError('replica.diskClosed', `Disk ${this.diskId} is closed`, { details: { diskId: this.diskId }, hint: 'Open the disk again from its target.' });
    }
    return (await listSnapshots(this.args.container, this.base, this.diskId)).filter(isPoint);
  }

  private async point(pointId: string): Promise<Snap> {
    const s = (await this.points()).find((x) => pointIdOf(x.cycle) === pointId);
    if (s === undefined) throw pointNotFound(pointId, this.diskId);
    return s;
  }
}
