import * as pulumi from '@pulumi/pulumi';
import { ProtectedVm, ReplicationPolicy, Site, Vault } from 'lifeboat';

const config = new pulumi.Config();
const vault = new Vault('lab', { adopt: true });
const primary = new Site('primary', { vault: vault.name, kind: 'hyperv-site', adopt: true });
const recovery = new Site('recovery', { vault: vault.name, kind: 'hyperv-site', adopt: true });
// 1 Mbit/s day and night: initial replication of a few MiB of data lasts seconds.
const slow = new ReplicationPolicy('slow', {
  vault: vault.name,
  target: 'secondary-site',
  replicationFrequencySeconds: 30,
  bandwidthLimitMbps: 1,
  offHoursBandwidthLimitMbps: 1,
  associations: [{ source: 'primary', target: 'recovery' }],
}, { dependsOn: [primary, recovery] });
const db = new ProtectedVm('db', {
  vault: vault.name,
  site: 'primary',
  vm: config.get('vm') ?? 'db01',
  policy: slow.name,
  waitForInitialReplication: { timeoutMinutes: config.requireNumber('waitMinutes') },
}, { dependsOn: [primary, recovery, slow] });

export const registrationKey = vault.registrationKey;
export const replicationState = db.replicationState;
export const enableJob = db.enableJob;
