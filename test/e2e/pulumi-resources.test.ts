/**
 * What only the real engine shows, for Lifeboat's resources against a lab:
 * a ProtectedVm whose initial replication outlives its deadline fails with
 * its id (partial state) and the next `up` waits for the same job; the
 * state file holds neither the registration key nor the admin token in
 * plain text; the preview of a VM identity change is a replace whose reason
 * names the GiB to re-seed. The full YAML scenario is the examples' test.
 */

import { strict as assert } from 'node:assert';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestLab, waitFor } from '../integration/lab/lab-harness';
import { createTempStack, destroyStack, type TempStack } from './pulumi-harness';

const MiB = 1024 * 1024;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe('Pulumi resources through the real engine (lab)', function () {
  this.timeout(480_000);
  let lab: TestLab;
  let t: TempStack;
  let token: string;
  const engineLog = (): string => t.log.join('');

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '1024', '--frequency-ms', '500']);
    token = (await readFile(lab.state.adminTokenFile, 'utf8')).trim();
    // A stack name of this process: its config file in the shared stack folder is not another run's.
    t = await createTempStack({ workDir: path.join(__dirname, 'stacks', 'resources'), stackName: `resources-${process.pid}` });
    await t.stack.setConfig('lifeboat:vaultUrl', { value: lab.state.vaultUrl });
    await t.stack.setConfig('lifeboat:token', { value: token, secret: true });
    // The copy skips zeros: 2 MiB of data at 1 Mbit/s is 16 s of copy at least.
    await waitFor('db01 to hold 2 MiB of data', async () => {
      const disk = await lab.sourceDisk('primary-1', 'db01');
      let written = 0;
      for (let at = 0; at < disk.length; at += 4096) if (disk.subarray(at, at + 4096).some((b) => b !== 0)) written += 4096;
      return written >= 2 * MiB ? true : undefined;
    }, 60_000, 200);
    // Shut down (flushed), so the copy is bounded by the data there, not by a guest outwriting the limit.
    const off = await lab.cli(['agent', 'vm', 'shutdown', 'db01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.equal(off.code, 0, off.stderr);
  });
  after(async () => {
    await destroyStack(t, async () => lab?.down());
  });

  const enableJobs = async () => lab.client.listJobs('lab', { type: 'protection.enable', target: { kind: 'protectedItem', name: 'db' } });

  it('waitForInitialReplication timing out fails with the resource id; the next up resumes the same job', async () => {
    await t.stack.setConfig('waitMinutes', { value: '0.05' });
    await assert.rejects(t.stack.up({ onOutput: t.onOutput }), (e: Error) => {
      assert.match(e.message + engineLog(), /did not finish initial replication in time/);
      return true;
    });
    const state = await t.stack.exportStack();
    const resources = (state.deployment as { resources: { type: string; id?: string; initErrors?: string[] }[] }).resources;
    const db = resources.find((r) => r.type === 'pulumi-nodejs:dynamic/lifeboat:ProtectedVm');
    assert.equal(db?.id, 'lab/protectedItems/db', 'the engine kept the resource with its id');
    assert.ok((db?.initErrors ?? []).some((m) => /initial replication in time/.test(m)), JSON.stringify(db?.initErrors));
    const jobs = await enableJobs();
    assert.equal(jobs.length, 1);

    await t.stack.setConfig('waitMinutes', { value: '5' });
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', engineLog());
    assert.equal(res.outputs.replicationState.value, 'Protected');
    assert.deepEqual((await enableJobs()).map((j) => j.id), [jobs[0]!.id], 'the second up started no new protection.enable');
    assert.equal(res.outputs.enableJob.value, jobs[0]!.id);
    assert.match(engineLog(), /db: initial replication \d+ %/, 'progress reached the engine');
  });

  it('refresh finds no drift while replication runs; the state file holds no plaintext registration key or admin token, before or after it', async () => {
    const key = await lab.client.registrationKey('lab');
    const refreshed = await t.stack.refresh({ onOutput: t.onOutput });
    assert.equal(refreshed.summary.result, 'succeeded', engineLog());
    const changes = refreshed.summary.resourceChanges ?? {};
    assert.deepEqual(Object.keys(changes).filter((k) => k !== 'same'), [], `refresh changed something: ${JSON.stringify(changes)}\n${engineLog()}`);
    const backend = t.stack.workspace.envVars.PULUMI_BACKEND_URL!;
    const files = await filesUnder(fileURLToPath(backend));
    const stateFiles = files.filter((f) => f.endsWith('.json') && f.includes(`${path.sep}stacks${path.sep}`));
    assert.ok(stateFiles.length > 0, `no stack state among ${files.join(', ')}`);
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      assert.ok(!text.includes(key), `${f} holds the registration key in plain text`);
      assert.ok(!text.includes(token), `${f} holds the admin token in plain text`);
    }
    const outputs = await t.stack.outputs();
    assert.equal(outputs.registrationKey.secret, true);
  });

  it('the preview of a VM identity change is a replace whose reason names the GiB to re-seed', async () => {
    await t.stack.setConfig('vm', { value: 'app01' });
    const before = t.log.length;
    const res = await t.stack.preview({ onOutput: t.onOutput, diff: true });
    const text = t.log.slice(before).join('');
    assert.equal(res.changeSummary.replace, 1, text);
    assert.match(text, /replacementReason\s*:\s*"changing vm replaces the protection: it is disabled and enabled again, a full re-seed of 0\.00391 GiB"/);
    await t.stack.removeConfig('vm');
  });

  it('loadProtection: resources with their dependencies and parents; destroy disables protection and releases the adopted vault and sites; a bad file fails with file:line:col and no stack trace', async () => {
    const y = await createTempStack({ workDir: path.join(__dirname, 'stacks', 'resources', 'yaml'), stackName: `yaml-${process.pid}` });
    const log = (): string => y.log.join('');
    try {
      await y.stack.setConfig('lifeboat:vaultUrl', { value: lab.state.vaultUrl });
      await y.stack.setConfig('lifeboat:token', { value: token, secret: true });

      await y.stack.setConfig('file', { value: 'bad.yaml' });
      await assert.rejects(y.stack.preview({ onOutput: y.onOutput }));
      assert.match(log(), /bad\.yaml:8:\d+: \/policies\/0\/replicationFrequencySeconds: /);
      assert.match(log(), /bad\.yaml:9:\d+: .*nowhere/);
      assert.doesNotMatch(log(), /^\s+at .*\.(js|ts):\d+/m, 'no stack trace for a bad file');
      await y.stack.removeConfig('file');

      const up = await y.stack.up({ onOutput: y.onOutput });
      assert.equal(up.summary.result, 'succeeded', log());
      assert.ok(['WaitingForInitialReplication', 'InitialReplicationInProgress', 'Protected'].includes(String(up.outputs.appState.value)));
      const deployment = (await y.stack.exportStack()).deployment as { resources: { urn: string; type: string; parent?: string; dependencies?: string[] }[] };
      const byName = (type: string, name: string) => deployment.resources.find((r) => r.type === `pulumi-nodejs:dynamic/lifeboat:${type}` && r.urn.endsWith(`::${name}`))!;
      const vault = byName('Vault', 'lab');
      const app = byName('ProtectedVm', 'app');
      for (const [type, name] of [['Site', 'primary'], ['Site', 'recovery'], ['ReplicationPolicy', 'yaml-gold'], ['NetworkMapping', 'prod']] as const) {
        assert.ok(app.dependencies?.includes(byName(type, name).urn), `app depends on ${type} ${name}: ${JSON.stringify(app.dependencies)}`);
      }
      assert.ok(byName('RecoveryPlan', 'apps').dependencies?.includes(app.urn));
      assert.ok(byName('ReplicationPolicy', 'yaml-gold').dependencies?.includes(byName('Site', 'recovery').urn));
      assert.equal(app.parent, vault.urn);

      const down = await y.stack.destroy({ onOutput: y.onOutput });
      assert.equal(down.summary.result, 'succeeded', log());
      const items = (await lab.client.listProtectedItems('lab')).map((i) => i.name);
      assert.ok(!items.includes('app'), `protection of app was disabled: ${items.join(', ')}`);
      await lab.client.getVault('lab');
      await lab.client.getObject('lab', 'sites', 'primary');
      await lab.client.getObject('lab', 'sites', 'recovery');
      await assert.rejects(lab.client.getObject('lab', 'replicationPolicies', 'yaml-gold'), (e: { status?: number }) => e.status === 404);
    } finally {
      await y.dispose();
    }
  });
});
