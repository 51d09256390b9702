/**
 * What the failover integration tests share: a lab with a protected VM and
 * network mappings, and readers of the disks the processes leave behind
 * (read once the lab is down: a replica store and a lab are one process's).
 */

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { type ProtectedItemStatus } from '../../../provider/client';
import { CowOverlay, diskWorkloadOptions, readGuestJournal, readVmConfig, verifyWorkloadDisk, type VmConfig, type WorkloadOptions } from '../../../provider/hypervisor/lab';
import { HostReplicaTarget } from '../../../provider/targets/host';
import { type TestLab, waitFor } from '../lab/lab-harness';

export const MiB = 1024 * 1024;

/** The lab's demo network mapped to a recovery network and a test network. */
export async function mapNetworks(lab: TestLab): Promise<void> {
  await lab.client.putObject('lab', 'networkMappings', 'lab-net', {
    source: { site: 'primary', network: 'lab-net' },
    target: { site: 'recovery', network: 'dr-net' },
    testNetwork: 'dr-test',
  });
}

/** Protect `vm` of primary-1 as `item` and wait until it is Protected with at least `points` points. */
export async function protect(lab: TestLab, item: string, vm: string, points = 2): Promise<string> {
  const created = await lab.client.putProtectedItem('lab', item, { site: 'primary', vm, policy: 'lab-policy' });
  await lab.jobSucceeds(created.status.activeJob!.id, 90_000);
  await waitFor(`${points} recovery points of ${item}`, async () => ((await lab.client.recoveryPoints('lab', item)).length >= points ? true : undefined), 60_000, 200);
  return created.uid;
}

export async function itemStatus(lab: TestLab, item: string): Promise<ProtectedItemStatus> {
  return (await lab.client.getProtectedItem('lab', item)).status;
}

/** A lab VM's vm.json on a host (atomically replaced, so readable while the agent runs). */
export function vmConfig(lab: TestLab, host: string, vm: string): Promise<VmConfig> {
  return readVmConfig(path.join(lab.dataDir(host), 'lab', 'vms', vm, 'vm.json'));
}

export function vmExists(lab: TestLab, host: string, vm: string): boolean {
  return existsSync(path.join(lab.dataDir(host), 'lab', 'vms', vm));
}

/** The workload stream of a source VM's disk and its guest journal. */
export async function sourceStream(lab: TestLab, host: string, vm: string, disk = 'disk0'): Promise<{ workload: WorkloadOptions; flushedOps: number; nextOp: number }> {
  const config = await vmConfig(lab, host, vm);
  const d = config.disks.find((x) => x.id === disk)!;
  assert.ok(config.workload !== null, `${vm} has a guest workload`);
  const journal = await readGuestJournal(path.join(lab.dataDir(host), 'lab', 'vms', vm, `${disk}.guest`));
  return { workload: diskWorkloadOptions(config.workload, disk, d.sizeBytes), ...journal };
}

/**
 * The disk a failover VM on `host` runs, read through its own overlay over
 * the view of its point in the replica store: what its guest sees. The lab
 * must be down.
 */
export async function failoverDisk(lab: TestLab, host: string, vm: string, itemUid: string, sizeBytes: number, disk = 'disk0'): Promise<{ bytes: Buffer; pointId: string }> {
  const config = await vmConfig(lab, host, vm);
  const d = config.disks.find((x) => x.id === disk)!;
  assert.ok(d.overlay !== undefined && 'location' in d.overlay, 'the failover disk is an overlay over a view');
  const location = (d.overlay as { location: string }).location;
  const m = /^view:([^/]+)\/([^/]+)\/([^/]+)$/.exec(location)!;
  assert.equal(m[1], itemUid);
  const pointId = m[3]!;
  const target = await HostReplicaTarget.open({ root: path.join(lab.dataDir(host), 'replicas') });
  try {
    const replica = await target.openDisk({ diskId: `${itemUid}/${disk}`, sizeBytes });
    const overlay = await CowOverlay.open(path.join(lab.dataDir(host), 'lab', d.file), await replica.openView(pointId));
    try {
      return { bytes: await overlay.read(0, sizeBytes), pointId };
    } finally {
      await overlay.close();
    }
  } finally {
    await target.close();
  }
}

/** Whether `bytes` hold every write of the first `ops` operations of `workload` (the guest-journal oracle). */
export async function holdsWrites(bytes: Buffer, workload: WorkloadOptions, ops: number): Promise<boolean> {
  const disk = { sizeBytes: bytes.length, read: async (offset: number, length: number) => bytes.subarray(offset, offset + length) };
  return (await verifyWorkloadDisk({ disk, workload, ops })).ok;
}

/** First differing byte, or -1. */
export function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}
