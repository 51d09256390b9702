/**
 * The secondary-site example (the resources used directly in TypeScript)
 * with the real `pulumi`, against a lab from its lab.yaml: up protects both
 * VMs hq → dr and waits for their initial replication; refresh finds no
 * drift; a drill (config `drill`) waits at the plan's manual step until it
 * is acknowledged and reports both VMs with their data equal to their
 * points; destroy removes what the stack created (cleaning the drill up)
 * and releases the adopted vault and sites.
 */

import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { TestLab, waitFor } from '../integration/lab/lab-harness';
import { copyExample, EXAMPLES, exampleStack, labEnv, type ExampleCopy } from './example-harness';
import { type TempStack } from './pulumi-harness';

const VAULT = 'contoso';

describe('example secondary-site (real pulumi, lab from its lab.yaml)', function () {
  this.timeout(240_000);
  let lab: TestLab;
  let copy: ExampleCopy;
  let t: TempStack;
  const log = (): string => t.log.join('');

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '2', '--frequency-ms', '500', '--protection', path.join(EXAMPLES, 'secondary-site', 'lab.yaml')]);
    copy = await copyExample('secondary-site');
    t = await exampleStack(copy, labEnv(lab.state));
  });

  after(async () => {
    try {
      await t?.dispose();
    } finally {
      await copy?.dispose();
      await lab?.down();
    }
  });

  it('up protects sql01 and web01 from hq to dr and returns once their initial replication is done', async () => {
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    // Stack, vault, 2 sites, policy, mapping, 2 VMs, plan.
    assert.equal(res.summary.resourceChanges?.create, 9, log());
    assert.equal(res.outputs.vaultName!.value, VAULT);
    assert.equal(res.outputs.registrationKey!.secret, true, 'the registration key is a secret output');
    const vms = res.outputs.protectedVms!.value as { name: string; state: string; health: string }[];
    assert.deepEqual(vms.map((v) => [v.name, v.state, v.health]), [['sql01', 'Protected', 'Normal'], ['web01', 'Protected', 'Normal']]);
    const items = await lab.client.listProtectedItems(VAULT);
    assert.deepEqual(items.map((i) => [i.name, i.spec.site, i.status.replicationState, i.status.targetHost]).sort(), [
      ['sql01', 'hq', 'Protected', 'hvdr01'], ['web01', 'hq', 'Protected', 'hvdr01'],
    ]);
    const policy = await lab.client.getObject<{ associations: { source: string; target: string }[] }>(VAULT, 'replicationPolicies', 'gold');
    assert.deepEqual(policy.spec.associations, [{ source: 'hq', target: 'dr' }]);
    const mapping = await lab.client.getObject<{ source: unknown; target: unknown }>(VAULT, 'networkMappings', 'prod');
    assert.deepEqual([mapping.spec.source, mapping.spec.target], [{ site: 'hq', network: 'Prod' }, { site: 'dr', network: 'Prod-DR' }]);
  });

  it('refresh finds no drift', async () => {
    const res = await t.stack.refresh({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    assert.deepEqual(Object.keys(res.summary.resourceChanges ?? {}).filter((k) => k !== 'same'), [], log());
  });

  it('a drill waits at the manual step until it is acknowledged, then reports both VMs running from points their disks equal', async () => {
    await t.stack.setConfig('drill', { value: 'first' });
    const up = t.stack.up({ onOutput: t.onOutput });
    const waiting = await waitFor('the drill to wait for the acknowledgement of the manual step', async () => {
      const jobs = await lab.client.listJobs(VAULT, { type: 'plan.failover' });
      return jobs.find((j) => j.state === 'WaitingForAction' && j.waiting?.kind === 'acknowledgement');
    }, 120_000, 250);
    assert.match(waiting.waiting!.message, /Lower the DNS TTL of www/);
    await lab.client.ackJob(VAULT, waiting.id, 'TTL lowered');
    const res = await up;
    assert.equal(res.summary.result, 'succeeded', log());
    const report = res.outputs.drillReport!.value as { passed: boolean; status: string; vms: { name: string; group: string; disks: { matchesPoint: boolean }[] }[] };
    assert.equal(report.passed, true, JSON.stringify(report));
    assert.deepEqual(report.vms.map((v) => [v.name, v.disks.every((d) => d.matchesPoint)]), [['sql01', true], ['web01', true]]);
    assert.equal((await lab.client.getRecoveryPlan(VAULT, 'app')).status.testFailover?.job, waiting.id);
  });

  it('destroy removes the stack\'s objects (cleaning the drill up) and releases the adopted vault and sites', async () => {
    const res = await t.stack.destroy({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    // The 9 of the first up and the drill.
    assert.equal(res.summary.resourceChanges?.delete, 10, log());
    assert.deepEqual(await lab.client.listProtectedItems(VAULT), []);
    for (const c of ['replicationPolicies', 'networkMappings', 'recoveryPlans'] as const) assert.deepEqual(await lab.client.listObjects(VAULT, c), [], c);
    assert.deepEqual((await lab.client.listObjects(VAULT, 'sites')).map((s) => s.name).sort(), ['dr', 'hq']);
    assert.equal((await lab.client.listHosts(VAULT)).length, 3, 'the hosts stay registered');
  });
});
