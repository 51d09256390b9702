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
import { TestLab, waitFor } from '../lab/lab-harness';

const DISK = 4 * 1024 * 1024;

interface AzureVm {
  readonly name: string;
  readonly host: string;
  readonly nics: readonly { readonly name: string; readonly network: string; readonly subnet?: string }[];
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number; readonly blobUrl: string }[];
  readonly size: string | null;
  readonly publicIp: boolean;
}

describe('azure: planned failover of a running lab VM to Azure (lab up --azure)', function () {
  this.timeout(240_000);
  let lab: TestLab | undefined;

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '4', '--rate-kib', '128', '--frequency-ms', '500']);
  });

  after(async () => {
    await lab?.down();
  });

  it('runs the VM at the azure host from an export equal to the source; commit keeps one point', async () => {
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

    // The VM runs on the downloaded disk, tracked from its first write.
    const local = await readFile(path.join(l.dir, 'hosts', 'azure-1', 'lab', 'azure-disks', 'web01', 'disk0.raw'));
    assert.equal(local.length, DISK);
  });
});
