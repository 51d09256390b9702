/**
 * AzureRecoveredVm with Pulumi's mocks (no Azure is reachable): the
 * resources it registers, their inputs, and that the VM depends on the
 * imported disks and the NICs (their ids flow into it). The component's own
 * @pulumi/pulumi is the one mocked; the test checks that @pulumi/azure-native
 * resolves that same instance.
 */

import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { AzureRecoveredVm, type AzureFailoverRecord, pulumi } from '../../../../components/azure-vm';

const COMPONENT = path.resolve(__dirname, '../../../../components/azure-vm');

interface Registered {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

const registered: Registered[] = [];

pulumi.runtime.setMocks({
  newResource: (args) => {
    registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
    const state = { ...(args.inputs as Record<string, unknown>), ...(args.type === 'azure-native:network:PublicIPAddress' ? { ipAddress: '203.0.113.7' } : {}) };
    return { id: `${args.name}_id`, state };
  },
  call: (args) => args.inputs,
}, 'lifeboat', 'test', false);

function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => {
    resolve(v);
    return v;
  }));
}

const RECORD: AzureFailoverRecord = {
  name: 'web01',
  size: 'Standard_D4s_v5',
  publicIp: true,
  nics: [{ name: 'nic0', network: 'dr-vnet', subnet: 'apps' }, { name: 'nic1', network: 'dr-backend' }],
  disks: [
    { id: 'disk0', sizeBytes: 64 * 1024 * 1024, blobUrl: 'https://acct.blob.core.windows.net/lifeboat-replicas/exports/web01--disk0.vhd' },
    { id: 'disk1', sizeBytes: 32 * 1024 * 1024, blobUrl: 'https://acct.blob.core.windows.net/lifeboat-replicas/exports/web01--disk1.vhd' },
  ],
  resourceGroup: 'dr-rg',
  region: 'westeurope',
  subscriptionId: '00000000-0000-0000-0000-000000000001',
};

describe('components/azure-vm: AzureRecoveredVm (Pulumi mocks)', () => {
  beforeEach(() => {
    registered.length = 0;
  });

  it('uses one @pulumi/pulumi: the component and @pulumi/azure-native resolve the same file', () => {
    const mine = require.resolve('@pulumi/pulumi', { paths: [COMPONENT] });
    const native = path.dirname(require.resolve('@pulumi/azure-native/package.json', { paths: [COMPONENT] }));
    assert.equal(require.resolve('@pulumi/pulumi', { paths: [native] }), mine);
  });

  it('imports each blob as a managed disk, makes the public IP, the NICs on the mapped subnets, and the VM attaching them', async () => {
    const vm = new AzureRecoveredVm('failover', { failover: RECORD, storageAccountId: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct' });
    assert.equal(await valueOf(vm.vmId), 'failover-vm_id');
    assert.deepEqual(await Promise.all(vm.diskIds.map(valueOf)), ['failover-disk-disk0_id', 'failover-disk-disk1_id']);
    assert.deepEqual(await Promise.all(vm.nicIds.map(valueOf)), ['failover-nic0_id', 'failover-nic1_id']);
    assert.equal(await valueOf(vm.publicIpAddress), '203.0.113.7');

    assert.deepEqual(registered.map((r) => r.type).sort(), [
      'azure-native:compute:Disk', 'azure-native:compute:Disk', 'azure-native:compute:VirtualMachine',
      'azure-native:network:NetworkInterface', 'azure-native:network:NetworkInterface', 'azure-native:network:PublicIPAddress',
      'lifeboat:azure:AzureRecoveredVm',
    ]);
    const byName = (n: string): Record<string, unknown> => registered.find((r) => r.name === n)!.inputs;
    const disk0 = byName('failover-disk-disk0');
    assert.deepEqual(disk0.creationData, { createOption: 'Import', sourceUri: RECORD.disks[0]!.blobUrl, storageAccountId: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct' });
    assert.equal(disk0.osType, 'Linux');
    assert.equal(disk0.hyperVGeneration, 'V1');
    assert.equal(disk0.resourceGroupName, 'dr-rg');
    assert.equal(disk0.location, 'westeurope');
    assert.equal(byName('failover-disk-disk1').osType, undefined);

    const nic0 = byName('failover-nic0');
    const ip0 = (nic0.ipConfigurations as Record<string, unknown>[])[0]!;
    assert.deepEqual(ip0.subnet, { id: '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/dr-rg/providers/Microsoft.Network/virtualNetworks/dr-vnet/subnets/apps' });
    assert.deepEqual(ip0.publicIPAddress, { id: 'failover-pip_id' });
    const ip1 = (byName('failover-nic1').ipConfigurations as Record<string, unknown>[])[0]!;
    assert.equal(ip1.publicIPAddress, undefined);
    assert.match(String((ip1.subnet as { id: string }).id), /virtualNetworks\/dr-backend\/subnets\/default$/);

    const v = byName('failover-vm');
    assert.deepEqual(v.hardwareProfile, { vmSize: 'Standard_D4s_v5' });
    assert.equal(v.vmName, 'web01');
    // The dependencies: the VM's inputs are the disks' and NICs' ids.
    assert.deepEqual(v.storageProfile, {
      osDisk: { createOption: 'Attach', osType: 'Linux', managedDisk: { id: 'failover-disk-disk0_id' } },
      dataDisks: [{ lun: 0, createOption: 'Attach', managedDisk: { id: 'failover-disk-disk1_id' } }],
    });
    assert.deepEqual(v.networkProfile, { networkInterfaces: [{ id: 'failover-nic0_id', primary: true }, { id: 'failover-nic1_id', primary: false }] });
  });

  it('makes no public IP unless asked, takes the size default and the arguments over the record', async () => {
    const vm = new AzureRecoveredVm('plain', {
      failover: { ...RECORD, publicIp: false, size: null, nics: [RECORD.nics[0]!], disks: [RECORD.disks[0]!] },
      storageAccountId: 'sa', resourceGroupName: 'other-rg', location: 'northeurope', networkResourceGroupName: 'net-rg', osType: 'Windows', hyperVGeneration: 'V2',
    });
    assert.equal(await valueOf(vm.publicIpAddress), undefined);
    await valueOf(vm.vmId);
    assert.ok(!registered.some((r) => r.type === 'azure-native:network:PublicIPAddress'));
    const v = registered.find((r) => r.type === 'azure-native:compute:VirtualMachine')!.inputs;
    assert.deepEqual(v.hardwareProfile, { vmSize: 'Standard_D2s_v5' });
    assert.equal(v.resourceGroupName, 'other-rg');
    const d = registered.find((r) => r.type === 'azure-native:compute:Disk')!.inputs;
    assert.equal(d.location, 'northeurope');
    assert.equal(d.osType, 'Windows');
    assert.equal(d.hyperVGeneration, 'V2');
    const nic = registered.find((r) => r.type === 'azure-native:network:NetworkInterface')!.inputs;
    assert.match(String(((nic.ipConfigurations as Record<string, unknown>[])[0]!.subnet as { id: string }).id), /resourceGroups\/net-rg\//);
  });

  it('refuses a record without disks or blob URLs, and a missing resource group', () => {
    assert.throws(() => new AzureRecoveredVm('x', { failover: { ...RECORD, disks: [] }, storageAccountId: 'sa' }), /no disk/);
    assert.throws(() => new AzureRecoveredVm('y', { failover: { ...RECORD, disks: [{ id: 'd', sizeBytes: 1, blobUrl: '' }] }, storageAccountId: 'sa' }), /no blob URL/);
    const { resourceGroup: _rg, ...noRg } = RECORD;
    assert.throws(() => new AzureRecoveredVm('z', { failover: noRg, storageAccountId: 'sa' }), /resourceGroupName/);
  });
});
