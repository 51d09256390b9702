// Scenario B of Azure Site Recovery (README.md beside this file): the VMs of a
// Hyper-V site replicate straight into page blobs of an Azure storage account.
import * as pulumi from '@pulumi/pulumi';
import { NetworkMapping, ProtectedVm, ReplicationPolicy } from 'lifeboat';

const config = new pulumi.Config();
// The vault and the site exist already (the agents registered into them).
const vault = config.get('vault') ?? 'lab';
const site = config.get('site') ?? 'primary';
const vms = (config.get('vms') ?? 'web01').split(',');

// The storage account. The key is a secret (`pulumi config set --secret accountKey …`):
// the vault seals it and never answers it.
const storage = {
  storageAccount: config.require('storageAccount'),
  container: config.get('container') ?? 'lifeboat-replicas',
  ...(config.get('endpoint') === undefined ? {} : { endpoint: config.require('endpoint') }),
  ...(config.get('resourceGroup') === undefined ? {} : { resourceGroup: config.require('resourceGroup') }),
  ...(config.get('region') === undefined ? {} : { region: config.require('region') }),
};
const accountKey = config.requireSecret('accountKey');

const toAzure = new ReplicationPolicy('to-azure', {
  vault,
  target: 'azure',
  replicationFrequencySeconds: 30,
  recoveryPointRetentionHours: 24,
  azure: pulumi.secret(accountKey.apply((key) => ({ ...storage, accountKey: key }))),
  associations: [{ source: site }],
});

// Failed-over VMs attach to this virtual network and subnet.
const vnet = new NetworkMapping('to-vnet', {
  vault,
  source: { site, network: config.get('sourceNetwork') ?? 'lab-net' },
  target: { azure: true, network: config.get('virtualNetwork') ?? 'dr-vnet', subnet: config.get('subnet') ?? 'default' },
});

const protectedVms = vms.map((vm) => new ProtectedVm(vm, {
  vault,
  site,
  vm,
  policy: toAzure.name,
  targetVm: { azureVmSize: config.get('vmSize') ?? 'Standard_D2s_v5', publicIp: config.getBoolean('publicIp') ?? false },
  waitForInitialReplication: { timeoutMinutes: 10 },
}, { dependsOn: [vnet] }));

export const policy = toAzure.name;
export const items = protectedVms.map((v) => ({ name: v.name, state: v.replicationState, health: v.health }));
