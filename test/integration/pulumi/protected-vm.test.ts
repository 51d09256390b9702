/**
 * The ProtectedVm provider against a real lab (vault + agents as processes):
 * create returns once protection is enabled; waiting for initial replication
 * logs progress; a timeout fails with the resource id and outputs, and the
 * update that follows waits for the same job (no second protection.enable);
 * the replacement reason names the GiB to re-seed; an out-of-band delete is
 * drift; adopt; delete waits for protection.disable.
 */

import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { providerOf } from '../../../provider/pulumi/registry';
import { type Props } from '../../../provider/pulumi/props';
import { mapNetworks } from '../failover/failover-harness';
import { TestLab, waitFor } from '../lab/lab-harness';
import { contextFor, thrown } from './provider-harness';

const DISK_MIB = 4;
const MiB = 1024 * 1024;

describe('pulumi providers: ProtectedVm (real lab)', function () {
  this.timeout(240_000);
  let lab: TestLab;
  let token: string;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', String(DISK_MIB), '--rate-kib', '1024', '--frequency-ms', '500']);
    token = (await readFile(lab.state.adminTokenFile, 'utf8')).trim();
  });
  after(async () => {
    await lab?.down();
  });

  const enableJobs = async (name: string) => (await lab.client.listJobs('lab', { type: 'protection.enable', target: { kind: 'protectedItem', name } }));

  it('create returns once enabled with full outputs; check gives the re-seed size of a replacement; waiting logs until Protected; an out-of-band delete is drift', async () => {
    const ctx = contextFor(lab.state.vaultUrl, token, { pollMs: 200 });
    const p = providerOf('protectedVm', ctx);
    const inputs: Props = { vault: 'lab', name: 'web', site: 'primary', vm: 'web01', policy: 'lab-policy', implVersion: 1 };
    assert.deepEqual((await p.check!({}, inputs)).failures, []);
    const created = await p.create(inputs);
    assert.equal(created.id, 'lab/protectedItems/web');
    const o = created.outs!;
    assert.ok(['WaitingForInitialReplication', 'InitialReplicationInProgress', 'Protected'].includes(String(o.replicationState)), String(o.replicationState));
    assert.equal(o.activeLocation, 'primary');
    assert.equal(o.sourceHost, 'primary-1');
    assert.equal(o.targetHost, 'recovery-1');
    assert.equal(o.diskSizeBytes, DISK_MIB * 1024 * 1024);
    assert.match(String(o.enableJob), /./);
    assert.ok(['Normal', 'Warning', 'Critical'].includes(String(o.health)));

    // A changed VM replaces the item; check says how much it re-seeds.
    const moved = await p.check!(inputs, { ...inputs, vm: 'db01' });
    assert.equal(moved.inputs!.replacementReason, 'changing vm replaces the protection: it is disabled and enabled again, a full re-seed of 0.00391 GiB');
    const d = await p.diff!(created.id, o, moved.inputs!);
    assert.deepEqual(d.replaces, ['vm', 'replacementReason']);
    // The same VM in other letter case is no change.
    const cased = await p.check!(inputs, { ...inputs, vm: 'WEB01', site: 'Primary' });
    assert.equal(cased.inputs!.replacementReason, undefined);
    assert.equal((await p.diff!(created.id, o, cased.inputs!)).changes, false);

    const waiting = { ...inputs, waitForInitialReplication: { timeoutMinutes: 3 } };
    const u = await p.update!(created.id, o, waiting);
    assert.equal(u.outs!.replicationState, 'Protected');
    assert.equal(u.outs!.initialReplicationPercent, 100);
    assert.equal((await enableJobs('web')).length, 1, 'the update started no second enable job');

    // Refresh while nothing changed but telemetry: same outputs.
    const r = await p.read!(created.id, u.outs!);
    assert.equal(r.props!.replicationState, 'Protected');
    assert.equal(r.props!.rpoSeconds, u.outs!.rpoSeconds);

    // Out-of-band disable: once the item is gone, read reports the resource gone.
    const del = await lab.client.deleteProtectedItem('lab', 'web');
    if (!del.removed) await lab.jobSucceeds(del.job.id);
    assert.equal((await p.read!(created.id, u.outs!)).id, undefined);
    await p.delete!(created.id, u.outs!); // already gone
  });

  it('waitForInitialReplication timing out fails with the id and outputs; the next update waits for the same job until Protected, logging progress; delete waits for the disable job', async () => {
    await lab.client.putObject('lab', 'replicationPolicies', 'slow', {
      target: 'secondary-site', replicationFrequencySeconds: 30, associations: [{ source: 'primary', target: 'recovery' }],
      bandwidthLimitMbps: 1, offHoursBandwidthLimitMbps: 1,
    });
    // The copy skips zeros: with 2 MiB of data and 1 Mbit/s, initial replication lasts 16 s at least.
    await waitFor('db01 to hold 2 MiB of data', async () => {
      const disk = await lab.sourceDisk('primary-1', 'db01');
      let written = 0;
      for (let at = 0; at < disk.length; at += 4096) if (disk.subarray(at, at + 4096).some((b) => b !== 0)) written += 4096;
      return written >= 2 * MiB ? true : undefined;
    }, 60_000, 200);
    // Shut down (flushed), so the copy is bounded by the data there, not by a guest outwriting the limit.
    const off = await lab.cli(['agent', 'vm', 'shutdown', 'db01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.equal(off.code, 0, off.stderr);
    const ctx = contextFor(lab.state.vaultUrl, token, { pollMs: 250 });
    const p = providerOf('protectedVm', ctx);
    const inputs: Props = { vault: 'lab', name: 'db', site: 'primary', vm: 'db01', policy: 'slow', waitForInitialReplication: { timeoutMinutes: 0.05 } };
    const e = await thrown(() => p.create(inputs));
    assert.equal(e.code, 'pulumi.deadline', e.message);
    assert.equal(e.id, 'lab/protectedItems/db');
    assert.equal(e.properties?.vault, 'lab');
    assert.match(String(e.hint), /run `pulumi up` again/);
    const firstJob = (await enableJobs('db'))[0]!;
    assert.equal((await enableJobs('db')).length, 1);

    const resumed = await p.update!(e.id!, e.properties!, { ...inputs, waitForInitialReplication: { timeoutMinutes: 3 } });
    assert.equal(resumed.outs!.replicationState, 'Protected');
    assert.equal(resumed.outs!.enableJob, firstJob.id);
    const jobs = await enableJobs('db');
    assert.deepEqual(jobs.map((j) => j.id), [firstJob.id], 'the resumed wait started no second protection.enable');
    const progress = ctx.messages.filter((m) => m.startsWith('db: initial replication '));
    assert.ok(progress.length >= 1, `progress messages: ${JSON.stringify(ctx.messages)}`);
    assert.match(progress[0]!, /^db: initial replication \d+ % \([\d.]+ of 0\.00391 GiB(, [\d.]+ MiB\/s)?\)$/);

    await p.delete!(e.id!, resumed.outs!);
    assert.equal((await lab.client.request('GET', '/v1/vaults/lab/protectedItems/db').catch((x: { status?: number }) => x)).status, 404);
    const disable = (await lab.client.listJobs('lab', { type: 'protection.disable', target: { kind: 'protectedItem', name: 'db' } }))[0]!;
    assert.equal(disable.state, 'Succeeded', 'delete returned after the disable job ended');
  });

  it('adopt takes over an item protected out of band without a second enable job; without adopt create fails saying to set it', async () => {
    const put = await lab.client.putProtectedItem('lab', 'app', { site: 'primary', vm: 'app01', policy: 'lab-policy' });
    await lab.jobSucceeds(put.status.activeJob!.id);
    const p = providerOf('protectedVm', contextFor(lab.state.vaultUrl, token, { pollMs: 200 }));
    const inputs: Props = { vault: 'lab', name: 'app', site: 'primary', vm: 'app01', policy: 'lab-policy' };
    const e = await thrown(() => p.create(inputs));
    assert.equal(e.code, 'pulumi.alreadyExists');
    const adopted = await p.create({ ...inputs, adopt: true });
    assert.equal(adopted.outs!.adopted, true);
    assert.equal(adopted.outs!.replicationState, 'Protected');
    assert.equal((await enableJobs('app')).length, 1);
    await p.delete!(adopted.id, adopted.outs!);
    await waitFor('the adopted item to be gone', async () => ((await lab.client.listProtectedItems('lab')).some((i) => i.name === 'app') ? undefined : true));
  });

  it('delete refuses a failed-over item, saying to fail back first; read shows it active on the recovery site', async () => {
    await mapNetworks(lab);
    const p = providerOf('protectedVm', contextFor(lab.state.vaultUrl, token, { pollMs: 200 }));
    const inputs: Props = { vault: 'lab', name: 'web', site: 'primary', vm: 'web01', policy: 'lab-policy', waitForInitialReplication: { timeoutMinutes: 3 } };
    const created = await p.create(inputs);
    assert.equal(created.outs!.replicationState, 'Protected');
    await waitFor('a recovery point of web', async () => ((await lab.client.recoveryPoints('lab', 'web')).length >= 1 ? true : undefined), 60_000, 200);
    const f = await lab.cli(['failover', 'web', '--type', 'planned']);
    assert.equal(f.code, 0, `${f.stdout}\n${f.stderr}`);

    const r = await p.read!(created.id, created.outs!);
    assert.equal(r.props!.replicationState, 'FailedOver');
    assert.equal(r.props!.activeLocation, 'recovery');

    const e = await thrown(() => p.delete!(created.id, r.props!));
    assert.equal(e.code, 'pulumi.failedOver');
    assert.match(e.message, /is failed over/);
    assert.match(String(e.hint), /fail back first/);
    assert.equal((await lab.client.getProtectedItem('lab', 'web')).status.replicationState, 'FailedOver', 'nothing was disabled');
  });
});
