/**
 * Failover to Azure in the lab (docs/azure-failover.md §4), across real
 * processes: `lifeboat lab up --azure` (vault, agents, Azurite and an agent
 * in the azure role). A running lab VM is protected into page blobs; a
 * planned failover shuts it down with a flush, ships the rest of its log,
 * exports the final point as a standalone blob, and the azure agent runs
 * the VM from its download. Every flushed write is in the export: it equals
 * the source disk byte for byte. The item records the VM to create in Azure.
 */

import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { BlobClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_DEV_KEY } from '../../../provider/cli/lab/lab-azure';
import { AzureBlobReplicaTarget } from '../../../provider/targets/azure-blob';
import { TestLab, waitFor } from '../lab/lab-harness';

const DISK = 16 * 1024 * 1024;
const BLOCK = 64 * 1024;

interface AzureVm {
  readonly name: string;
  readonly host: string;
  readonly nics: readonly { readonly name: string; readonly network: string; readonly subnet?: string }[];
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number; readonly blobUrl: string }[];
  readonly size: string | null;
  readonly publicIp: boolean;
}

describe('azure: planned failover to Azure and failback (lab up --azure)', function () {
  this.timeout(240_000);
  let lab: TestLab | undefined;

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '16', '--rate-kib', '16', '--frequency-ms', '500']);
  });

  after(async () => {
    await lab?.down();
  });

  it('runs the VM at the azure host from an export equal to the source; commit keeps one point; failback brings back every Azure-side write, sending only the changed blocks; an unplanned failover after it starts from the primary\'s disk', async () => {
    const l = lab!;
    await l.client.putObject('lab', 'networkMappings', 'lab-to-vnet', { source: { site: 'primary', network: 'lab-net' }, target: { azure: true, network: 'dr-vnet', subnet: 'default' } } as never);
    const created = await l.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-azure-policy', targetVm: { azureVmSize: 'Standard_D2s_v5', publicIp: true } } as never);
    await l.jobSucceeds(created.status.activeJob!.id);
    await waitFor('two recovery points', async () => ((await l.client.recoveryPoints('lab', 'web')).length >= 2 ? true : undefined));

    const job = await l.client.failover('lab', 'web', { type: 'planned' } as never);
    const done = await l.jobSucceeds(job.id, 120_000);
    assert.deepEqual(done.steps.map((s) => s.state), ['Succeeded', 'Succeeded', 'Succeeded']);
    const item = await l.client.getProtectedItem('lab', 'web');
    assert.equal(item.status.replicationState, 'FailedOver');
    assert.equal(item.status.activeLocation, 'recovery');
    const azureVm = (item.status as unknown as { azureVm: AzureVm }).azureVm;
    assert.equal(azureVm.name, 'web01');
    assert.equal(azureVm.host, 'azure-1');
    assert.equal(azureVm.size, 'Standard_D2s_v5');
    assert.equal(azureVm.publicIp, true);
    assert.deepEqual(azureVm.nics, [{ name: 'nic0', network: 'dr-vnet', subnet: 'default' }]);
    assert.equal(azureVm.disks.length, 1);
    assert.match(azureVm.disks[0]!.blobUrl, /\/lab-replicas\/exports\/.+\.vhd$/);

    const azureHost = (await l.client.listHosts('lab')).find((h) => h.name === 'azure-1')!;
    const running = await waitFor('the azure host to report web01 running', async () => {
      const h = (await l.client.listHosts('lab')).find((x) => x.name === 'azure-1');
      return h?.status.inventory?.vms.find((v) => v.name === 'web01' && v.powerState === 'Running');
    });
    assert.ok(running !== undefined && azureHost !== undefined);

    // The source is off (fenced, flushed): the export must hold every byte of it, footer after the data.
    const source = await l.sourceDisk('primary-1', 'web01');
    assert.ok(!source.equals(Buffer.alloc(DISK)), 'the guest wrote something');
    const blob = new BlobClient(azureVm.disks[0]!.blobUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_DEV_KEY));
    const exported = await blob.downloadToBuffer();
    assert.equal(exported.length, DISK + 512, 'a fixed VHD: the data (a whole number of MiB) and the footer');
    assert.ok(exported.subarray(0, DISK).equals(source), 'the export differs from the source');
    assert.equal(exported.subarray(DISK, DISK + 8).toString('latin1'), 'conectix');

    const commit = await l.client.commitFailover('lab', 'web');
    await l.jobSucceeds(commit.id);
    const committed = await l.client.getProtectedItem('lab', 'web');
    assert.equal(committed.status.replicationState, 'FailoverCommitted');
    assert.equal((await l.client.recoveryPoints('lab', 'web')).length, 1);

    // The VM runs on the downloaded disk and keeps writing; a flushed shutdown makes its disk final.
    const localFile = path.join(l.dir, 'hosts', 'azure-1', 'lab', 'azure-disks', 'web01', 'disk0.raw');
    await waitFor('an Azure-side write', async () => (!(await readFile(localFile)).equals(source) ? true : undefined), 60_000, 200);
    const off = await l.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'azure-1', '--lab-dir', l.dir]);
    assert.equal(off.code, 0, off.stderr);
    const azureFinal = await readFile(localFile);
    let changedBlocks = 0;
    for (let at = 0; at < DISK; at += BLOCK) if (!azureFinal.subarray(at, at + BLOCK).equals(source.subarray(at, at + BLOCK))) changedBlocks++;
    assert.ok(changedBlocks > 0);

    // The operator's command: one job for an azure item (failback.fromAzure).
    const fb = await l.cli(['failback', 'web', '--lab-dir', l.dir]);
    assert.equal(fb.code, 0, `${fb.stdout}${fb.stderr}`);
    assert.match(fb.stdout, /failback from Azure of web: job /);
    const lastJob = (await l.client.getProtectedItem('lab', 'web')).status.lastJob as { type: string; state: string } | undefined;
    assert.deepEqual([lastJob?.type, lastJob?.state], ['failback.fromAzure', 'Succeeded']);
    const protectedAgain = await l.client.getProtectedItem('lab', 'web');
    assert.equal(protectedAgain.status.replicationState, 'Protected');
    assert.equal(protectedAgain.status.activeLocation, 'primary');
    const failback = (protectedAgain.status as unknown as { failback: { delta: boolean; regionBytes: number; bytesReceived: number } }).failback;
    assert.equal(failback.delta, true);
    // Every changed block was sent, and nothing but the blocks the Azure-side VM wrote (planned failover: B is empty).
    assert.ok(failback.regionBytes >= changedBlocks * BLOCK, `${failback.regionBytes} bytes cover fewer than the ${changedBlocks} changed blocks`);
    assert.ok(failback.bytesReceived <= failback.regionBytes);
    assert.ok(failback.bytesReceived < DISK / 4, `failback moved ${failback.bytesReceived} of ${DISK} bytes`);
    const hosts = await l.client.listHosts('lab');
    assert.ok(!(hosts.find((h) => h.name === 'azure-1')?.status.inventory?.vms ?? []).some((v) => v.name === 'web01'), 'the Azure-side VM is removed');

    // The primary runs again from exactly the Azure-side disk; after its own flushed shutdown and a later cycle, the blob holds it.
    const restarted = await waitFor('web01 running on primary-1', async () => (await l.client.listHosts('lab')).find((h) => h.name === 'primary-1')?.status.inventory?.vms.find((v) => v.name === 'web01' && v.powerState === 'Running'));
    assert.ok(restarted !== undefined);
    const off2 = await l.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'primary-1', '--lab-dir', l.dir]);
    assert.equal(off2.code, 0, off2.stderr);
    const shutAt = Date.now();
    await waitFor('a cycle after the shutdown', async () => {
      const st = (await l.client.getProtectedItem('lab', 'web')).status;
      return st.replicationState === 'Protected' && st.lastReplicatedTime !== undefined && Date.parse(st.lastReplicatedTime) > shutAt ? true : undefined;
    }, 60_000);
    // The VM is off and its last writes are in the blob: its file is final (Azurite must keep running to read the blob).
    const primaryFinal = await l.sourceDisk('primary-1', 'web01');
    const target = await AzureBlobReplicaTarget.open({ connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_DEV_KEY};BlobEndpoint=${endpointOf(azureVm.disks[0]!.blobUrl)};`, container: 'lab-replicas', createContainer: false });
    try {
      const disk = await target.openDisk({ diskId: `${item.uid}/disk0`, sizeBytes: DISK });
      const points = await disk.listPoints();
      // Points: the committed one, the Azure-side VM's final disk (P'), then the resumed protection's.
      const pPrime = await disk.openView(points[1]!.id);
      assert.ok((await pPrime.read(0, DISK)).equals(azureFinal), 'the blob\'s point after the Azure-side shutdown differs from that VM\'s disk');
      await pPrime.close();
      const latest = await disk.openView(points.at(-1)!.id);
      assert.ok((await latest.read(0, DISK)).equals(primaryFinal), 'the blob differs from the primary after the failback');
      await latest.close();
      await disk.close();
      // Whatever the primary wrote after it restarted, it started from the Azure-side disk: every byte it did not write is that disk's.
      let fromElsewhere = 0;
      for (let at = 0; at < DISK; at += BLOCK) {
        const a = azureFinal.subarray(at, at + BLOCK);
        if (!primaryFinal.subarray(at, at + BLOCK).equals(a) && source.subarray(at, at + BLOCK).equals(primaryFinal.subarray(at, at + BLOCK)) && !a.equals(source.subarray(at, at + BLOCK))) fromElsewhere++;
      }
      assert.equal(fromElsewhere, 0, 'blocks of the Azure-side disk were lost (the primary still has its pre-failover content there)');
    } finally {
      await target.close();
    }

    // A second round, unplanned this time (the primary is off and in step): the Azure-side VM starts from the latest point, equal to the primary's disk.
    const unplanned = await l.client.failover('lab', 'web', { type: 'unplanned', point: 'latest' } as never);
    await l.jobSucceeds(unplanned.id, 120_000);
    const again = (await l.client.getProtectedItem('lab', 'web')).status as unknown as { replicationState: string; azureVm: AzureVm };
    assert.equal(again.replicationState, 'FailedOver');
    const second = await new BlobClient(again.azureVm.disks[0]!.blobUrl, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_DEV_KEY)).downloadToBuffer();
    assert.ok(second.subarray(0, DISK).equals(primaryFinal), 'the second export differs from the primary\'s disk');
    await l.jobSucceeds((await l.client.commitFailover('lab', 'web')).id);
    assert.equal((await l.client.getProtectedItem('lab', 'web')).status.replicationState, 'FailoverCommitted');
  });
});

function endpointOf(blobUrl: string): string {
  const u = new URL(blobUrl);
  return `${u.protocol}//${u.host}/${AZURITE_ACCOUNT}`;
}
