/**
 * Recovery from code, through the real engine against a lab (docs/pulumi.md
 * §11, §12):
 *
 * - a `TestFailover` drill of a two-group plan: the report names each VM
 *   with its group, host, RTO and point age, and each disk's SHA-256 of its
 *   recovery point, which for a VM shut down before the drill equals the
 *   source disk (the oracle); the test VMs run; a new runId with
 *   `expiresAfter` replaces the drill (cleanup, then a new one), the vault
 *   cleans it up at expiry and `refresh` shows it `expired`;
 * - `RecoveryPlan.activeLocation`: an unplanned failover from the CLI shows
 *   on `refresh` as drift (`recovery`); `up` with `primary` declared refuses
 *   to undo an uncommitted failover; declaring `recovery` commits and
 *   reprotects; declaring `primary` again fails back (planned failover,
 *   commit, reprotect), replication in the original direction.
 */

import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { TestLab, waitFor } from '../integration/lab/lab-harness';
import { itemStatus, mapNetworks, protect, vmExists } from '../integration/failover/failover-harness';
import { createTempStack, destroyStack, type TempStack } from './pulumi-harness';

interface Report {
  job: string;
  status: string;
  passed: boolean;
  expiresAt?: string;
  vms: { name: string; group: string; host?: string; testVm?: string; state: string; rtoSeconds?: number; point?: { id: string; ageSeconds?: number }; disks: { name: string; bytes: number; sha256?: string; matchesPoint?: boolean }[] }[];
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A resource's outputs in the stack's state (refresh updates these, not the program's exports). */
async function stateOutputs(t: TempStack, type: string): Promise<Record<string, unknown>> {
  const state = await t.stack.exportStack();
  const r = (state.deployment as { resources: { type: string; outputs?: Record<string, unknown> }[] }).resources.find((x) => x.type === `pulumi-nodejs:dynamic/lifeboat:${type}`);
  assert.ok(r?.outputs !== undefined, `no ${type} in the state`);
  return r.outputs;
}

describe('Pulumi: TestFailover drills and RecoveryPlan.activeLocation through the real engine (lab)', function () {
  this.timeout(900_000);
  let lab: TestLab;
  let t: TempStack;
  const uids = new Map<string, string>();
  const engineLog = (): string => t.log.join('');

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '128', '--frequency-ms', '500']);
    await mapNetworks(lab);
    for (const [item, vm] of [['web', 'web01'], ['db', 'db01']] as const) uids.set(item, await protect(lab, item, vm));
    // db01 stops (flushed) so that its disk is the oracle of its latest point.
    const off = await lab.cli(['agent', 'vm', 'shutdown', 'db01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.equal(off.code, 0, off.stderr);
    const source = await lab.sourceDisk('primary-1', 'db01');
    await waitFor('the latest point of db to hold the stopped disk', async () => {
      const r = await lab.replicaAtLatestPoint('recovery-1', uids.get('db')!, source.length);
      return r.bytes.equals(source) ? true : undefined;
    }, 60_000, 250);
    const token = (await readFile(lab.state.adminTokenFile, 'utf8')).trim();
    t = await createTempStack({ workDir: path.join(__dirname, 'stacks', 'recovery'), stackName: `recovery-${process.pid}` });
    await t.stack.setConfig('lifeboat:vaultUrl', { value: lab.state.vaultUrl });
    await t.stack.setConfig('lifeboat:token', { value: token, secret: true });
  });
  after(async () => {
    await destroyStack(t, async () => lab?.down());
  });

  it('a drill reports RTO, point age and a data check equal to the source; a new runId with expiresAfter replaces it, the vault expires it and refresh shows it', async () => {
    await t.stack.setConfig('drill', { value: 'run-1' });
    const up = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(up.summary.result, 'succeeded', engineLog());
    const report = up.outputs.report!.value as Report;
    assert.equal(report.passed, true, JSON.stringify(report));
    assert.equal(report.status, 'running');
    assert.deepEqual(report.vms.map((v) => [v.name, v.group, v.state, v.host, v.testVm]), [['db', 'data', 'Succeeded', 'recovery-1', 'db01-test'], ['web', 'web', 'Succeeded', 'recovery-1', 'web01-test']]);
    for (const v of report.vms) {
      assert.ok(v.rtoSeconds !== undefined && v.rtoSeconds > 0, `${v.name}: RTO ${String(v.rtoSeconds)} in ${JSON.stringify(report)}`);
      assert.ok(v.point !== undefined && v.point.ageSeconds !== undefined && v.point.ageSeconds >= 0, `${v.name}: point ${JSON.stringify(v.point)}`);
      assert.equal(v.disks.length, 1);
      assert.equal(v.disks[0]!.matchesPoint, true);
      assert.equal(v.disks[0]!.bytes, 4 * 1024 * 1024);
      assert.ok(vmExists(lab, 'recovery-1', `${v.name === 'db' ? 'db01' : 'web01'}-test`));
    }
    // Groups in order: data's VM ran before web's started.
    assert.ok(report.vms[0]!.rtoSeconds! <= report.vms[1]!.rtoSeconds!);
    assert.equal(report.vms[0]!.disks[0]!.sha256, sha256(await lab.sourceDisk('primary-1', 'db01')), 'the point of db equals the stopped source disk');
    assert.match(engineLog(), /drill erp: db Succeeded, RTO [\d.]+ s, point [\d.]+ s old, data matches the point/);

    const refreshed = await t.stack.refresh({ onOutput: t.onOutput });
    assert.deepEqual(Object.keys(refreshed.summary.resourceChanges ?? {}).filter((k) => k !== 'same'), [], engineLog());

    await t.stack.setConfig('drill', { value: 'run-2' });
    await t.stack.setConfig('expiresAfter', { value: '8s' });
    const again = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(again.summary.resourceChanges?.replace, 1, engineLog());
    const second = again.outputs.report!.value as Report;
    assert.notEqual(second.job, report.job);
    assert.equal(second.passed, true);
    assert.ok(second.expiresAt !== undefined);
    await waitFor('the vault to clean the drill up at its expiry', async () => ((await lab.client.getRecoveryPlan('lab', 'erp')).status.testFailover === undefined ? true : undefined), 120_000, 250);
    assert.equal(vmExists(lab, 'recovery-1', 'db01-test') || vmExists(lab, 'recovery-1', 'web01-test'), false, 'no test VM is left');
    await t.stack.refresh({ onOutput: t.onOutput });
    assert.equal((await stateOutputs(t, 'TestFailover')).status, 'expired');

    await t.stack.removeConfig('drill');
    await t.stack.removeConfig('expiresAfter');
    const removed = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(removed.summary.resourceChanges?.delete, 1, engineLog());
  });

  it('activeLocation: an unplanned failover from the CLI is drift on refresh; primary declared refuses to undo it; recovery commits and reprotects; primary again fails back', async () => {
    await t.stack.setConfig('activeLocation', { value: 'primary' });
    const first = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(first.outputs.location!.value, 'primary');

    const failover = await lab.cli(['failover', '--plan', 'erp', '--type', 'unplanned']);
    assert.equal(failover.code, 0, failover.stdout + failover.stderr);
    const refreshed = await t.stack.refresh({ onOutput: t.onOutput });
    assert.equal(refreshed.summary.resourceChanges?.update, 1, engineLog());
    assert.equal((await stateOutputs(t, 'RecoveryPlan')).activeLocation, 'recovery', 'refresh shows where the plan runs now');

    const before = t.log.length;
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }));
    assert.match(t.log.slice(before).join(''), /failed over to the recovery site and not committed: db, web[\s\S]*pulumi\.uncommittedFailover/);
    assert.equal((await itemStatus(lab, 'db')).replicationState, 'FailedOver', 'nothing was undone');

    await t.stack.setConfig('activeLocation', { value: 'recovery' });
    const moved = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(moved.outputs.location!.value, 'recovery', engineLog());
    assert.match(engineLog(), /erp: committing the failover[\s\S]*erp: reprotecting/);
    for (const item of ['db', 'web']) {
      const s = await itemStatus(lab, item);
      assert.deepEqual([s.replicationState, s.activeLocation, s.sourceHost], ['Protected', 'recovery', 'recovery-1'], `${item}: ${JSON.stringify(s)}`);
    }

    await t.stack.setConfig('activeLocation', { value: 'primary' });
    const back = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(back.outputs.location!.value, 'primary', engineLog());
    assert.match(engineLog(), /erp: planned failover toPrimary/);
    for (const item of ['db', 'web']) {
      const s = await itemStatus(lab, item);
      assert.deepEqual([s.replicationState, s.activeLocation, s.sourceHost, s.targetHost], ['Protected', 'primary', 'primary-1', 'recovery-1'], `${item}: ${JSON.stringify(s)}`);
    }
    const refreshedAgain = await t.stack.refresh({ onOutput: t.onOutput });
    assert.deepEqual(Object.keys(refreshedAgain.summary.resourceChanges ?? {}).filter((k) => k !== 'same'), [], engineLog());
  });
});
