/**
 * loadProtection's mapping of a protection file to resource inputs, under
 * Pulumi's mock runtime (the engine is faked; the mapping is what is
 * tested). Dependencies and parents are checked through the real engine in
 * test/e2e/pulumi-resources.test.ts.
 */

import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { loadProtection, readProtectionModel } from '../../../provider/pulumi/load-protection';

const FILE = `apiVersion: lifeboat/v1
vault: { name: contoso-dr }
sites:
  - { name: hq, kind: hyperv-site, hosts: [hv01, hv02] }
  - { name: dr, kind: hyperv-site, hosts: [hvdr01] }
policies:
  - name: gold
    target: secondary-site
    replicationFrequencySeconds: 30
    recoveryPointRetentionHours: 24
    appConsistentSnapshotFrequencyHours: 4
    associations: [{ source: HQ, target: dr }]
  - name: cloud
    target: azure
    azure: { storageAccount: contosodr }
    associations: [{ source: hq }]
networkMappings:
  - { name: prod, source: { site: hq, network: Prod }, target: { site: dr, network: Prod-DR }, testNetwork: Isolated }
protectedVms:
  - { name: web01, site: hq, vm: web01, policy: gold }
  - { name: db01, site: hq, vm: db01, policy: cloud }
recoveryPlans:
  - name: app
    groups:
      - { vms: [db01], after: [{ script: checks/db.sh, timeoutSeconds: 300 }] }
      - { vms: [WEB01], before: [{ manual: "Lower the DNS TTL" }] }
`;

function value<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

describe('pulumi/load-protection', () => {
  let dir: string;
  const created: { type: string; name: string; inputs: Record<string, unknown> }[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-load-'));
    await pulumi.runtime.setMocks({
      newResource: (args) => {
        created.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    }, 'project', 'stack', true);
  });
  after(async () => {
    // Leave the process's runtime as it was: no engine, no mocks.
    pulumi.runtime.resetOptions('', '', -1, '', '', false, '');
    await rm(dir, { recursive: true, force: true });
  });

  it('creates one resource per object, by the file\'s names, with the model\'s values', async () => {
    const file = path.join(dir, 'protection.yaml');
    await writeFile(file, FILE);
    const p = loadProtection(file, { adopt: { vault: true, sites: true }, waitForInitialReplication: { timeoutMinutes: 30 } });
    assert.deepEqual(Object.keys(p.sites).sort(), ['dr', 'hq']);
    assert.deepEqual(Object.keys(p.policies).sort(), ['cloud', 'gold']);
    assert.deepEqual(Object.keys(p.protectedVms).sort(), ['db01', 'web01']);
    assert.deepEqual(Object.keys(p.recoveryPlans), ['app']);
    assert.equal(await value(p.vault.name), 'contoso-dr');
    const all = [p.vault, ...Object.values(p.sites), ...Object.values(p.policies), ...Object.values(p.networkMappings), ...Object.values(p.protectedVms), ...Object.values(p.recoveryPlans)];
    await Promise.all(all.map((r) => value(r.urn)));
    assert.equal(created.length, 9);

    const inputs = (type: string, name: string) => created.find((c) => c.type === `pulumi-nodejs:dynamic/lifeboat:${type}` && c.name === name)!.inputs;
    assert.equal(inputs('Vault', 'contoso-dr').adopt, true);
    assert.equal(inputs('Site', 'hq').adopt, true);
    assert.equal(inputs('ReplicationPolicy', 'gold').adopt, false);
    // Defaults of the schema are applied; references resolved to their declared spelling.
    assert.equal(inputs('ReplicationPolicy', 'gold').replicationFrequencySeconds, 30);
    assert.equal(inputs('ReplicationPolicy', 'gold').deleteReplicaOnDisable, false);
    assert.deepEqual(inputs('ReplicationPolicy', 'gold').associations, [{ source: 'hq', target: 'dr' }]);
    assert.deepEqual(inputs('ReplicationPolicy', 'cloud').associations, [{ source: 'hq' }]);
    const web = inputs('ProtectedVm', 'web01');
    assert.deepEqual({ site: web.site, vm: web.vm, policy: web.policy, targetKind: web.targetKind, target: web.target, vault: web.vault, name: web.name },
      { site: 'hq', vm: 'web01', policy: 'gold', targetKind: 'secondary-site', target: { site: 'dr' }, vault: 'contoso-dr', name: 'web01' });
    assert.deepEqual(web.waitForInitialReplication, { timeoutMinutes: 30 });
    assert.equal(inputs('ProtectedVm', 'db01').targetKind, 'azure');
    assert.equal(inputs('ProtectedVm', 'db01').target, undefined);
    assert.deepEqual(inputs('RecoveryPlan', 'app').groups, [
      { name: 'Group 1', vms: ['db01'], before: [], after: [{ script: 'checks/db.sh', timeoutSeconds: 300 }] },
      { name: 'Group 2', vms: ['web01'], before: [{ manual: 'Lower the DNS TTL' }], after: [] },
    ]);
  });

  it('a bad file is one RunError listing every problem with file:line:col, and nothing is created', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, FILE.replace('replicationFrequencySeconds: 30', 'replicationFrequencySeconds: 60').replace('policy: cloud', 'policy: silver'));
    const before = created.length;
    assert.throws(() => loadProtection(file), (e: Error) => {
      assert.ok(pulumi.RunError.isInstance(e), 'a RunError: printed without stack trace');
      assert.match(e.message, /bad\.yaml: 2 problems/);
      assert.match(e.message, /bad\.yaml:9:34: \/policies\/0\/replicationFrequencySeconds: must be one of 30, 300, 900 \(got 60\)/);
      assert.match(e.message, /bad\.yaml:21:47: \/protectedVms\/1\/policy: .*silver/);
      return true;
    });
    assert.equal(created.length, before);
    assert.throws(() => readProtectionModel(path.join(dir, 'missing.yaml')), /cannot read the file: no such file/);
  });
});
