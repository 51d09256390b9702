/**
 * Copying a point's snapshot to a standalone export blob
 * (docs/azure-target.md §8), for the writer and the read-only open alike.
 */
import { type ContainerClient, type PageBlobClient } from '@azure/storage-blob';
import { type MaterialisedDisk } from '../../replication/target';
import { MiB } from '../../units';
import { azureCall } from './azure-errors';
import { bounded } from './bounded';
import { EXPORTS_PREFIX, encodeDiskId, metaEncode } from './blob-names';
import { isZero } from './checksum-index';

const CHUNK = 4 * MiB;

/** What `exportSnapshot` copies. */
export interface ExportSnapshotArgs {
  readonly container: ContainerClient;
  /** The point's snapshot (a client with `snapshot=`). */
  readonly source: PageBlobClient;
  /** Length of the base blob: data, padding and footer (§3). */
  readonly blobBytes: number;
  readonly diskId: string;
  readonly pointId: string;
  /** The export's name: the blob `exports/<encoded name>.vhd`. */
  readonly name: string;
  readonly concurrency: number;
}

/**
 * Copy the snapshot to `exports/<name>.vhd` through this process (4 MiB
 * reads, zero spans skipped) and mark it complete (`lbcomplete = 1`). Only
 * the export blob is written. Idempotent: an export of the same name is
 * replaced. Throws `replica.invalidDiskId` for a bad name or a classified
 * Azure error; a failure leaves a partial export (`lbcomplete = 0`).
 */
export async function exportSnapshot(a: ExportSnapshotArgs): Promise<MaterialisedDisk> {
  const target = a.container.getPageBlobClient(`${EXPORTS_PREFIX}${encodeDiskId(a.name)}.vhd`);
  const what = `export point ${a.pointId} of disk ${a.diskId}`;
  // Not Copy Blob: Azurite 3.37 shares the pages of a copy with its source
  // snapshot, so a VM writing to the export would change the point (§8).
  await azureCall(what, () => target.create(a.blobBytes, { metadata: { lbdiskid: metaEncode(a.diskId), lbpoint: a.pointId, lbcomplete: '0' } }));
  const jobs: Array<() => Promise<void>> = [];
  for (let at = 0; at < a.blobBytes; at += CHUNK) {
    const n = Math.min(CHUNK, a.blobBytes - at);
    jobs.push(async () => {
      const data = await azureCall(what, () => a.source.downloadToBuffer(at, n));
      if (!isZero(data)) await azureCall(what, () => target.uploadPages(data, at, n));
    });
  }
  await bounded(a.concurrency, jobs);
  await azureCall(what, () => target.setMetadata({ lbdiskid: metaEncode(a.diskId), lbpoint: a.pointId, lbcomplete: '1' }));
  return { location: target.url, zeroCopy: false };
}
