// Scenario A of Azure Site Recovery (README.md beside this file): the Hyper-V hosts
// of site hq replicate their VMs to the secondary site dr every 30 seconds.
import * as pulumi from '@pulumi/pulumi';
import { NetworkMapping, ProtectedVm, RecoveryPlan, ReplicationPolicy, Site, TestFailover, Vault } from 'lifeboat';

const config = new pulumi.Config();
// Agents register into a site that exists, so the vault and its sites are
// often created before the stack (by `lifeboat lab up`, or by hand): adopt
// takes them over. Without them it creates them.
const adopt = config.getBoolean('adopt') ?? true;

const vault = new Vault('vault', { name: 'contoso', description: 'hq to dr', adopt });

const hq = new Site('hq', { vault: vault.name, kind: 'hyperv-site', hosts: ['hv01', 'hv02'], adopt });
const dr = new Site('dr', { vault: vault.name, kind: 'hyperv-site', hosts: ['hvdr01'], adopt });

const gold = new ReplicationPolicy('gold', {
  vault: vault.name,
  target: 'secondary-site',
  replicationFrequencySeconds: 30,
  recoveryPointRetentionHours: 4,
  appConsistentSnapshotFrequencyHours: 1,
  // Disabling protection (pulumi destroy) keeps the replica on dr.
  deleteReplicaOnDisable: false,
  associations: [pulumi.output({ source: hq.name, target: dr.name })],
});

const prod = new NetworkMapping('prod', {
  vault: vault.name,
  source: pulumi.output({ site: hq.name, network: 'Prod' }),
  target: pulumi.output({ site: dr.name, network: 'Prod-DR' }),
  testNetwork: 'Isolated',
});

const vms = ['sql01', 'web01'].map((vm) => new ProtectedVm(vm, {
  vault: vault.name,
  site: hq.name,
  vm,
  policy: gold.name,
  // Return once the first copy is on dr, logging its progress.
  waitForInitialReplication: { timeoutMinutes: 10 },
}, { dependsOn: [prod] }));

// `pulumi config set activeLocation recovery` fails the plan over to dr
// (planned failover, commit, reprotect); `primary` fails it back.
const activeLocation = config.get('activeLocation') as 'primary' | 'recovery' | undefined;
const plan = new RecoveryPlan('app', {
  vault: vault.name,
  groups: [
    { vms: ['sql01'] },
    { vms: ['web01'], before: [{ manual: 'Lower the DNS TTL of www' }] },
  ],
  ...(activeLocation === undefined ? {} : { activeLocation }),
}, { dependsOn: vms });

// A DR drill while `drill` is set (`pulumi config set drill 2026-12`): the
// plan's test failover on the Isolated network, cleaned up after 4 hours;
// a new value runs it again.
const run = config.get('drill');
const drill = run === undefined ? undefined : new TestFailover('drill', { vault: vault.name, plan: plan.name, runId: run, expiresAfter: '4h' });

export const vaultName = vault.name;
export const registrationKey = vault.registrationKey;
export const recoveryPlan = plan.name;
export const activeSite = plan.activeLocation;
export const drillReport = drill === undefined ? undefined : { passed: drill.passed, status: drill.status, vms: drill.vms };
export const protectedVms = vms.map((v) => ({ name: v.name, state: v.replicationState, health: v.health, rpoSeconds: v.rpoSeconds }));
