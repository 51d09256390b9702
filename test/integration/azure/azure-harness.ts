/**
 * What the Azure lab tests share: the lab's page blobs read through the
 * target's read-only open (docs/azure-target.md §8a: the agents keep
 * writing them), the container's blob names, and the source disk at a cut.
 */

import { AZURITE_ACCOUNT, AZURITE_DEV_KEY, azuriteEndpoint, LAB_AZURE_CONTAINER } from '../../../provider/cli/lab/lab-azure';
import { type RecoveryPointInfo } from '../../../provider/replication/target';
import { AzureBlobReplicaTarget, containerClientOf } from '../../../provider/targets/azure-blob';
import { type TestLab, waitFor } from '../lab/lab-harness';
import { itemStatus } from '../failover/failover-harness';

function config(lab: TestLab): { accountName: string; accountKey: string; endpoint: string; container: string } {
  const port = (lab.state as unknown as { azurite: { port: number } }).azurite.port;
  return { accountName: AZURITE_ACCOUNT, accountKey: AZURITE_DEV_KEY, endpoint: azuriteEndpoint(port), container: LAB_AZURE_CONTAINER };
}

/** The lab's network mapped to an Azure virtual network (with `testNetwork` if given); web01 of primary-1 protected as `web` into the lab's blobs. Returns the item's uid. */
export async function protectToAzure(lab: TestLab, testNetwork?: string): Promise<string> {
  await lab.client.putObject('lab', 'networkMappings', 'lab-to-vnet', {
    source: { site: 'primary', network: 'lab-net' }, target: { azure: true, network: 'dr-vnet', subnet: 'default' }, ...(testNetwork === undefined ? {} : { testNetwork }),
  } as never);
  const created = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-azure-policy' });
  await lab.jobSucceeds(created.status.activeJob!.id);
  await waitFor('two recovery points', async () => ((await lab.client.recoveryPoints('lab', 'web')).length >= 2 ? true : undefined));
  return created.uid;
}

/** The bytes of an item's disk at a point (the latest by default) in the lab's blobs, and the point. */
export async function blobPoint(lab: TestLab, itemUid: string, sizeBytes: number, pointId?: string, disk = 'disk0'): Promise<{ bytes: Buffer; point: RecoveryPointInfo; points: readonly RecoveryPointInfo[] }> {
  const target = await AzureBlobReplicaTarget.open({ ...config(lab), createContainer: false });
  try {
    const d = await target.openDiskReadOnly({ diskId: `${itemUid}/${disk}`, sizeBytes });
    const points = await d.listPoints();
    const point = pointId === undefined ? points.at(-1) : points.find((p) => p.id === pointId);
    if (point === undefined) throw new Error(`no point ${pointId ?? '(latest)'} among ${points.map((p) => p.id).join(', ')}`);
    const view = await d.openView(point.id);
    return { bytes: await view.read(0, sizeBytes), point, points };
  } finally {
    await target.close();
  }
}

/** Every blob name in the lab's container. */
export async function blobNames(lab: TestLab): Promise<string[]> {
  const names: string[] = [];
  for await (const b of containerClientOf(config(lab)).listBlobsFlat()) names.push(b.name);
  return names.sort();
}

/** The bytes of a blob of the lab's container given by its URL. */
export async function blobBytes(lab: TestLab, url: string): Promise<Buffer> {
  const name = decodeURIComponent(new URL(url).pathname).split(`/${LAB_AZURE_CONTAINER}/`)[1]!;
  return containerClientOf(config(lab)).getPageBlobClient(name).downloadToBuffer();
}

/**
 * Shut `vm` down (guest flush) and wait until a cycle after the shutdown
 * reached the blobs: then the latest point equals the source disk, which
 * stays as it is while the VM is off. Returns that disk (the oracle of the
 * point) and the point.
 */
export async function sourceAtCut(lab: TestLab, item: string, host: string, vm: string): Promise<{ bytes: Buffer; point: { id: string; time: string } }> {
  const off = await lab.cli(['agent', 'vm', 'shutdown', vm, '--host', host, '--lab-dir', lab.dir]);
  if (off.code !== 0) throw new Error(`shutdown of ${vm}: ${off.stderr}`);
  const shutAt = Date.now();
  await waitFor(`a cycle of ${item} after the shutdown`, async () => {
    const s = await itemStatus(lab, item);
    return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > shutAt ? true : undefined;
  }, 60_000, 100);
  const bytes = await lab.sourceDisk(host, vm);
  const point = (await lab.client.recoveryPoints('lab', item)).at(-1)!;
  return { bytes, point };
}

/** Start a lab VM again. */
export async function startVm(lab: TestLab, host: string, vm: string): Promise<void> {
  const on = await lab.cli(['agent', 'vm', 'start', vm, '--host', host, '--lab-dir', lab.dir]);
  if (on.code !== 0) throw new Error(`start of ${vm}: ${on.stderr}`);
}

/** Wait until `item` has `n` points newer than `time`. */
export async function pointsAfter(lab: TestLab, item: string, time: string, n: number): Promise<void> {
  await waitFor(`${n} points of ${item} after ${time}`, async () => {
    const points = await lab.client.recoveryPoints('lab', item);
    return points.filter((p) => Date.parse(p.time) > Date.parse(time)).length >= n ? true : undefined;
  }, 60_000, 100);
}
