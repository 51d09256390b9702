/**
 * The snapshots of a base blob as the target reads them (docs/azure-target.md
 * §5 A1, §6): the head and the recovery points, from their metadata only.
 * Shared by the writer (`AzureReplicaDisk`) and the read-only open
 * (`AzureReadOnlyDisk`).
 */
import { type BlobGetPropertiesResponse, type ContainerClient, type PageBlobClient } from '@azure/storage-blob';
import { ReplicaStateError } from '../../errors';
import { type PointKind, type RecoveryPointInfo } from '../../replication/target';
import { azureCall, isNotFound } from './azure-errors';
import { metaDecode, pointIdOf } from './blob-names';

/** The base blob's format (§13). */
export const FORMAT = '1';
const POINT_KINDS: readonly PointKind[] = ['crashConsistent', 'appConsistent'];

/** A snapshot of the base blob: the head or a point (§6). */
export interface Snap {
  readonly cycle: number;
  readonly snapshot: string;
  readonly kind: PointKind | 'head';
  readonly seq: number;
  readonly generation: string;
  readonly time: number;
}

export function isPointKind(k: unknown): k is PointKind {
  return POINT_KINDS.includes(k as PointKind);
}

export function infoOf(s: Snap): RecoveryPointInfo {
  return { id: pointIdOf(s.cycle), seq: s.seq, generation: s.generation, time: s.time, kind: s.kind as PointKind };
}

export function isPoint(s: Snap): boolean {
  return s.kind !== 'head';
}

function snapOf(snapshot: string, m: Record<string, string> | undefined): Snap | undefined {
  if (m === undefined || !/^\d+$/.test(m.lbcycle ?? '') || !/^\d+$/.test(m.lbseq ?? '')) return undefined;
  const kind = m.lbkind === 'head' ? 'head' : POINT_KINDS.find((k) => k === m.lbkind);
  if (kind === undefined) return undefined;
  return { cycle: Number(m.lbcycle), snapshot, kind, seq: Number(m.lbseq), generation: metaDecode(m.lbgeneration ?? ''), time: Number(m.lbtime) };
}

/** The snapshots of `base` with Lifeboat metadata, ascending cycle (the last is the head). Throws a classified Azure error. */
export async function listSnapshots(container: ContainerClient, base: PageBlobClient, diskId: string): Promise<Snap[]> {
  const name = base.name;
  const found: Snap[] = [];
  await azureCall(`list the points of disk ${diskId}`, async () => {
    for await (const item of container.listBlobsFlat({ prefix: name, includeSnapshots: true, includeMetadata: true })) {
      if (item.name !== name || item.snapshot === undefined || item.snapshot === '') continue;
      const s = snapOf(item.snapshot, item.metadata);
      if (s !== undefined) found.push(s);
    }
  });
  return found.sort((a, b) => a.cycle - b.cycle);
}

export function pointNotFound(pointId: string, diskId: string): ReplicaStateError {
  return new ReplicaStateError('replica.pointNotFound', `Disk ${diskId} has no recovery point ${pointId}`, {
    details: { pointId, diskId },
    hint: 'List the points again: it may have been pruned by retention or discarded by a failover commit.',
  });
}

/** The base blob's properties, or `undefined` when it does not exist. Throws a classified Azure error. */
export async function baseProperties(base: PageBlobClient, diskId: string): Promise<BlobGetPropertiesResponse | undefined> {
  try {
    return await base.getProperties();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    return azureCall(`open the replica of disk ${diskId}`, () => Promise.reject(e));
  }
}

/**
 * Check that the base blob's metadata (§2) names this disk, size and format;
 * returns its `lbinstance`. Throws `ReplicaStateError` `replica.corrupt`,
 * `replica.formatVersion` or `replica.sizeMismatch`.
 */
export function checkBaseMetadata(m: Record<string, string>, baseName: string, diskId: string, sizeBytes: number): string {
  if (m.lbformat !== FORMAT) {
    throw new ReplicaStateError(m.lbformat === undefined ? 'replica.corrupt' : 'replica.formatVersion', `Blob ${baseName} is not a Lifeboat replica of format ${FORMAT} (lbformat ${String(m.lbformat)})`, {
      hint: 'Use a container of its own for each vault; a newer Lifeboat wrote this replica if the format is higher.',
    });
  }
  if (m.lbsize !== String(sizeBytes)) {
    throw new ReplicaStateError('replica.sizeMismatch', `The replica of disk ${diskId} has ${String(m.lbsize)} bytes, not ${sizeBytes}`, {
      details: { diskId, replicaBytes: Number(m.lbsize), requestedBytes: sizeBytes },
      hint: 'A resized disk needs protection disabled and re-enabled (a new replica).',
    });
  }
  if (!/^[0-9a-f]{32}$/.test(m.lbinstance ?? '') || metaDecode(m.lbdiskid ?? '') !== diskId) {
    throw new ReplicaStateError('replica.corrupt', `Blob ${baseName} does not hold disk ${diskId}`, { hint: 'Do not rename or edit replica blobs by hand.' });
  }
  return m.lbinstance!;
}
