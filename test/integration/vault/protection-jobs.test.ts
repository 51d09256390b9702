import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../provider/clock';
import { GiB, MINUTE } from '../../../provider/units';
import { Harness, ScriptedAgent, type ErrorBody, type JobBody, type ObjectBody } from './harness';

const ITEM = '/v1/vaults/contoso/protectedItems/web01';

interface Pair {
  readonly src: ScriptedAgent;
  readonly dst: ScriptedAgent;
}

/** Register hv01 (hq, runs web01 with two disks) and hvdr01 (dr, room and an endpoint). */
async function hosts(h: Harness, free = 100 * GiB): Promise<Pair> {
  const key = await h.registrationKey();
  const src = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
  const dst = new ScriptedAgent(h, 'contoso', 'hvdr01', 'dr');
  await src.register(key);
  await dst.register(key);
  await src.announce({ vms: [{ name: 'web01', sizes: [1 * GiB, 2 * GiB] }] });
  await dst.announce({ freeBytes: free, port: 45001 });
  return { src, dst };
}

async function item(h: Harness): Promise<ObjectBody> {
  return h.ok<ObjectBody>('GET', ITEM);
}

async function jobOf(h: Harness, id: string, commands = false): Promise<JobBody & { commands?: { type: string; state: string }[] }> {
  return h.ok('GET', `/v1/vaults/contoso/jobs/${id}${commands ? '?commands=true' : ''}`);
}

describe('vault jobs: protection through the API with scripted agents', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('enables protection step by step, takes reports, resyncs on request, and disables it', async () => {
    h = await Harness.start();
    await h.seedTopology('contoso', { deleteReplicaOnDisable: true, replicationFrequencySeconds: 30 });
    const { src, dst } = await hosts(h);
    const put = await h.api<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold', targetVm: { cpuCount: 2 } });
    assert.equal(put.status, 201);
    assert.equal(put.body.status.replicationState, 'EnablingProtection');
    const jobId = put.body.status.activeJob!.id;
    assert.equal(put.body.status.activeJob!.type, 'protection.enable');

    const create = await dst.next('replica.create');
    assert.equal(create.jobId, jobId);
    assert.equal(create.payload.item, 'web01');
    assert.equal(create.payload.itemUid, put.body.uid);
    assert.equal(create.payload.sourceHost, 'hv01');
    assert.deepEqual(create.payload.disks, [{ id: 'disk-0', sizeBytes: GiB }, { id: 'disk-1', sizeBytes: 2 * GiB }]);
    assert.equal((create.payload.policy as { replicationFrequencySeconds: number }).replicationFrequencySeconds, 30);
    assert.equal((create.payload.policy as { recoveryPointRetentionHours: number }).recoveryPointRetentionHours, 24, 'defaults filled in');
    assert.equal((await dst.report(create.id, { state: 'Running', progress: 50, message: 'allocating' })).status, 200);
    await dst.succeed(create);

    const enable = await src.next('replication.enable');
    assert.deepEqual(enable.payload.target, { kind: 'host', host: 'hvdr01', address: '127.0.0.1', port: 45001, serverName: 'hvdr01' });
    await src.succeed(enable);

    const copy = await src.next('replication.start');
    assert.equal(copy.payload.method, 'online');
    assert.equal((await item(h)).status.replicationState, 'InitialReplicationInProgress');
    await src.report(copy.id, { state: 'Running', progress: 60, message: 'copying disk-1: 1.2 GiB of 2 GiB' });
    await src.succeed(copy, { firstRecoveryPoint: 'p-1' });

    const configure = await dst.next('replica.configure');
    assert.deepEqual(configure.payload.targetVm, { cpuCount: 2 });
    await dst.succeed(configure);
    await h.server.jobSettled(jobId);

    const job = await jobOf(h, jobId, true);
    assert.equal(job.state, 'Succeeded');
    assert.equal(job.progress, 100);
    assert.deepEqual(job.steps.map((s) => `${s.name}:${s.state}`), [
      'checkPrerequisites:Succeeded', 'createReplica:Succeeded', 'enableReplication:Succeeded', 'waitForStartTime:Skipped',
      'initialReplication:Succeeded', 'finalizeProtection:Succeeded',
    ]);
    assert.deepEqual(job.commands!.map((c) => `${c.type}:${c.state}`), ['replica.create:Succeeded', 'replication.enable:Succeeded', 'replication.start:Succeeded', 'replica.configure:Succeeded']);
    let it = await item(h);
    assert.equal(it.status.replicationState, 'Protected');
    assert.equal(it.status.health, 'Normal');
    assert.equal(it.status.sourceHost, 'hv01');
    assert.equal(it.status.targetHost, 'hvdr01');
    assert.equal(it.status.initialReplicationPercent, 100);
    assert.equal(it.status.activeJob, undefined);
    assert.deepEqual(it.status.lastJob, { id: jobId, type: 'protection.enable', state: 'Succeeded' });

    // Reports from the agents.
    const report = await src.reportItems([{
      item: 'web01', health: 'Warning', rpoSeconds: 95, lastReplicatedTime: '2026-01-01T00:00:00Z', statistics: { bytesTransferred: 123 },
      recoveryPoints: [{ id: 'p-1', time: '2026-01-01T00:00:00Z', kind: 'crashConsistent' }, { id: 'p-2', time: '2026-01-01T00:00:30Z', kind: 'appConsistent' }],
    }, { item: 'db99', rpoSeconds: 1 }]);
    assert.deepEqual(report.body.accepted, ['web01']);
    assert.deepEqual(report.body.refused.map((r) => r.code), ['object.notFound']);
    it = await item(h);
    assert.equal(it.status.rpoSeconds, 95);
    assert.equal(it.status.health, 'Warning');
    const points = await h.ok<{ items: { id: string; kind: string }[] }>('GET', `${ITEM}/recoveryPoints`);
    assert.deepEqual(points.items.map((p) => `${p.id}:${p.kind}`), ['p-1:crashConsistent', 'p-2:appConsistent']);
    // Only the source host reports replication states, and only allowed transitions.
    assert.deepEqual((await dst.reportItems([{ item: 'web01', replicationState: 'ResynchronizationRequired' }])).body.refused.map((r) => r.code), ['report.notSourceHost']);
    assert.deepEqual((await src.reportItems([{ item: 'web01', replicationState: 'InitialReplicationInProgress' }])).body.refused.map((r) => r.code), ['state.notAllowed']);
    assert.deepEqual((await src.reportItems([{ item: 'web01', health: 'Normal' }])).body.refused, []);

    // An operator resync.
    const resync = await h.api<JobBody>('POST', `${ITEM}/resync`);
    assert.equal(resync.status, 202);
    assert.equal(resync.body.type, 'resync.run');
    const again = await h.api<ErrorBody>('POST', `${ITEM}/resync`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.job, resync.body.id);
    const rs = await src.next('resync.run');
    assert.equal((await item(h)).status.replicationState, 'Resynchronizing');
    await src.succeed(rs);
    await h.server.jobSettled(resync.body.id);
    assert.equal((await item(h)).status.replicationState, 'Protected');

    // Disable: stop on the source, delete the replica (policy), remove the item.
    const del = await h.api<JobBody>('DELETE', ITEM);
    assert.equal(del.status, 202);
    assert.equal(del.body.type, 'protection.disable');
    assert.equal((await item(h)).status.replicationState, 'DisablingProtection');
    const repeat = await h.api<JobBody>('DELETE', ITEM);
    assert.equal(repeat.status, 202);
    assert.equal(repeat.body.id, del.body.id, 'DELETE again returns the same job');
    const stop = await src.next('replication.disable');
    assert.equal(stop.payload.deleteLogs, true);
    await src.succeed(stop);
    await dst.succeed(await dst.next('replica.delete'));
    await h.server.jobSettled(del.body.id);
    assert.equal((await jobOf(h, del.body.id)).state, 'Succeeded');
    assert.equal((await h.api('GET', ITEM)).status, 404);
    assert.equal((await h.api('DELETE', '/v1/vaults/contoso/replicationPolicies/gold')).status, 204, 'the policy is free again');
  });

  it('pushes changed settings to both hosts: an item\'s target VM settings, then its policy\'s frequency', async () => {
    h = await Harness.start();
    await h.seedTopology();
    const { src, dst } = await hosts(h);
    const enableId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    await dst.succeed(await dst.next('replica.create'));
    await src.succeed(await src.next('replication.enable'));
    await src.succeed(await src.next('replication.start'));
    await dst.succeed(await dst.next('replica.configure'));
    await h.server.jobSettled(enableId);

    const changed = await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold', targetVm: { memoryMiB: 8192 } });
    assert.equal(changed.generation, 2);
    assert.equal(changed.status.activeJob?.type, 'protection.update');
    const onSource = await src.next('replication.configure');
    assert.deepEqual(onSource.payload.targetVm, { memoryMiB: 8192 });
    await src.succeed(onSource);
    await dst.succeed(await dst.next('replica.configure'));
    await h.server.jobSettled(changed.status.activeJob!.id);

    const policy = await h.ok<ObjectBody>('PUT', '/v1/vaults/contoso/replicationPolicies/gold', { target: 'secondary-site', replicationFrequencySeconds: 900, associations: [{ source: 'hq', target: 'dr' }] });
    assert.equal(policy.generation, 2);
    const reconfigure = await src.next('replication.configure');
    assert.equal((reconfigure.payload.policy as { replicationFrequencySeconds: number }).replicationFrequencySeconds, 900);
    await src.succeed(reconfigure);
    await dst.succeed(await dst.next('replica.configure'));
    const it = await item(h);
    await h.server.jobSettled(it.status.activeJob?.id ?? it.status.lastJob!.id);
    assert.deepEqual((await item(h)).status.lastJob?.type, 'protection.update');
    assert.equal((await item(h)).status.replicationState, 'Protected');
  });

  it('protects to Azure: no recovery host, the source host writes the blobs and deletes them on disable', async () => {
    h = await Harness.start();
    await h.ok('PUT', '/v1/vaults/contoso', {});
    await h.ok('PUT', '/v1/vaults/contoso/sites/hq', { kind: 'hyperv-site' });
    await h.ok('PUT', '/v1/vaults/contoso/replicationPolicies/cloud', {
      target: 'azure', deleteReplicaOnDisable: true, azure: { storageAccount: 'contosodr', endpoint: 'http://127.0.0.1:10000/devstoreaccount1', accountKey: 'c2VjcmV0LWtleQ==' }, associations: [{ source: 'hq' }],
    });
    const src = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    await src.register(await h.registrationKey());
    await src.announce({ vms: [{ name: 'web01', sizes: [GiB] }] });
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'cloud' })).status.activeJob!.id;
    const enable = await src.next('replication.enable');
    // The key is the vault's (docs/azure-failover.md §2): the command carries its fingerprint only.
    const { credentialsFingerprint, ...target } = enable.payload.target as Record<string, unknown>;
    assert.deepEqual(target, { kind: 'azure', storageAccount: 'contosodr', endpoint: 'http://127.0.0.1:10000/devstoreaccount1', container: 'lifeboat-replicas' });
    assert.match(String(credentialsFingerprint), /^[0-9a-f]{16}$/);
    assert.ok(!JSON.stringify(enable).includes('c2VjcmV0LWtleQ=='));
    await src.succeed(enable);
    await src.succeed(await src.next('replication.start'));
    await h.server.jobSettled(jobId);
    const job = await jobOf(h, jobId);
    assert.equal(job.state, 'Succeeded');
    assert.deepEqual(job.steps.filter((s) => s.state === 'Skipped').map((s) => s.name), ['createReplica', 'waitForStartTime']);
    assert.equal((await item(h)).status.targetHost, undefined);
    assert.equal((await item(h)).status.replicationState, 'Protected');
    const del = await h.ok<JobBody>('DELETE', ITEM);
    await src.succeed(await src.next('replication.disable'));
    await src.succeed(await src.next('replica.delete'));
    await h.server.jobSettled(del.id);
    assert.equal((await h.api('GET', ITEM)).status, 404);
  });

  it('resumes a job after a vault restart at its first unfinished step, without redoing finished ones', async () => {
    h = await Harness.start();
    await h.seedTopology();
    const { src, dst } = await hosts(h);
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    await dst.succeed(await dst.next('replica.create'));
    const enable = await src.next('replication.enable');

    // The vault stops between steps (as a kill would), then starts again on the same database.
    await h.restart();
    assert.equal((await jobOf(h, jobId)).state, 'InProgress');
    // The agent reports on the command it holds; the resumed job takes it.
    await src.succeed(enable);
    await src.succeed(await src.next('replication.start'));
    await dst.succeed(await dst.next('replica.configure'));
    await h.server.jobSettled(jobId);
    const job = await jobOf(h, jobId, true);
    assert.equal(job.state, 'Succeeded');
    assert.deepEqual(job.commands!.map((c) => c.type), ['replica.create', 'replication.enable', 'replication.start', 'replica.configure'], 'nothing sent twice');
    assert.deepEqual(job.steps.map((s) => s.attempts), [1, 1, 2, 1, 1, 1], 'only the interrupted step ran again');
    assert.equal((await item(h)).status.replicationState, 'Protected');
  });

  it('redelivers a command that was not acknowledged within its lease (an agent restart)', async () => {
    const clock = new ManualClock(Date.now());
    h = await Harness.start({ clock, commandLeaseMs: MINUTE });
    await h.seedTopology('contoso', {}, { heartbeatIntervalSeconds: 600 });
    const { dst } = await hosts(h);
    await h.ok('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' });
    const first = await dst.next('replica.create');
    assert.equal(first.deliveries, 1);
    await clock.advance(MINUTE - 1);
    assert.deepEqual(await dst.poll(0), [], 'still leased');
    // Not acknowledged: handed out again once the lease ends.
    await clock.advance(1);
    const [second] = await dst.poll(0);
    assert.equal(second?.id, first.id);
    assert.equal(second?.deliveries, 2);
    // Acknowledged, it stays with the agent while the agent keeps reporting.
    await clock.advance(MINUTE / 2);
    await dst.report(first.id, { state: 'Running', progress: 10 });
    await clock.advance(MINUTE / 2);
    await dst.report(first.id, { state: 'Running', progress: 20 });
    await clock.advance(MINUTE / 2);
    assert.deepEqual(await dst.poll(0), []);
  });

  it('fails with the reason when the VM is nowhere, returns the item to NotProtected, and PUT starts again', async () => {
    h = await Harness.start();
    await h.seedTopology();
    const { src, dst } = await hosts(h);
    const put = await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web02', policy: 'gold' });
    const jobId = put.status.activeJob!.id;
    await h.server.jobSettled(jobId);
    const job = await jobOf(h, jobId);
    assert.equal(job.state, 'Failed');
    assert.equal(job.errors[0]?.code, 'vm.notFound');
    assert.match(job.errors[0]?.hint ?? '', /web01/, 'the hint lists the VMs that exist');
    const it = await item(h);
    assert.equal(it.status.replicationState, 'NotProtected');
    assert.equal(it.status.health, 'Critical');
    assert.equal(it.status.issues?.[0]?.code, 'job.failed');

    await src.announce({ vms: [{ name: 'web01', sizes: [GiB] }, { name: 'web02', sizes: [GiB] }] });
    const retry = await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web02', policy: 'gold' });
    assert.equal(retry.generation, 1, 'the same body does not bump the generation');
    assert.notEqual(retry.status.activeJob?.id, jobId, 'but starts enabling again');
    assert.equal(retry.status.replicationState, 'EnablingProtection');
    // Cancelled while the replica is being created: the compensation deletes it; then the item goes at once.
    await dst.next('replica.create');
    await h.ok('POST', `/v1/vaults/contoso/jobs/${retry.status.activeJob!.id}/cancel`);
    await dst.succeed(await dst.next('replica.delete'));
    await h.server.jobSettled(retry.status.activeJob!.id);
    assert.equal((await item(h)).status.replicationState, 'NotProtected');
    assert.equal((await h.api('DELETE', ITEM)).status, 204);
  });

  it('retries a recoverable agent failure on the back-off schedule, with health Warning meanwhile', async () => {
    const clock = new ManualClock(Date.now());
    h = await Harness.start({ clock, random: () => 0 });
    await h.seedTopology('contoso', {}, { heartbeatIntervalSeconds: 600 });
    const { src, dst } = await hosts(h);
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    await dst.succeed(await dst.next('replica.create'));
    const enable = await src.next('replication.enable');
    const t = clock.now();
    await src.report(enable.id, { state: 'Failed', error: { code: 'network.unreachable', category: 'recoverable', message: 'hvdr01:45001 unreachable', hint: 'check the firewall' } });
    await clock.advance(0);
    let job = await jobOf(h, jobId);
    assert.equal(job.retry?.failures, 1);
    assert.equal(Date.parse(job.retry!.nextAttemptAt), t + MINUTE);
    let it = await item(h);
    assert.equal(it.status.health, 'Warning');
    assert.equal(it.status.issues?.find((i) => i.code === 'job.retrying')?.severity, 'Warning');
    await clock.advance(MINUTE);
    const again = await src.next('replication.enable');
    assert.notEqual(again.id, enable.id, 'a retry sends a new command');
    await src.succeed(again);
    await src.next('replication.start');
    job = await jobOf(h, jobId);
    assert.equal(job.retry, undefined);
    it = await item(h);
    assert.equal(it.status.health, 'Normal', 'the warning clears once the step succeeds');
  });

  it('cancels enabling during initial replication: commands withdrawn, what was created removed, NotProtected', async () => {
    h = await Harness.start();
    await h.seedTopology();
    const { src, dst } = await hosts(h);
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    await dst.succeed(await dst.next('replica.create'));
    await src.succeed(await src.next('replication.enable'));
    const copy = await src.next('replication.start');
    const cancel = await h.api<JobBody>('POST', `/v1/vaults/contoso/jobs/${jobId}/cancel`);
    assert.equal(cancel.status, 202);
    assert.ok(['Cancelling', 'Cancelled'].includes(cancel.body.state));
    const undo = await src.next('replication.disable');
    assert.equal((await src.report(copy.id, { state: 'Running', progress: 70 })).body.cancelRequested, true, 'the agent learns the copy was withdrawn');
    await src.succeed(undo);
    await dst.succeed(await dst.next('replica.delete'));
    await h.server.jobSettled(jobId);
    assert.equal((await jobOf(h, jobId)).state, 'Cancelled');
    assert.equal((await item(h)).status.replicationState, 'NotProtected');
    const twice = await h.api<ErrorBody>('POST', `/v1/vaults/contoso/jobs/${jobId}/cancel`);
    assert.equal(twice.status, 409);
    assert.equal((await h.api('DELETE', ITEM)).status, 204);
  });

  it('refuses to delete an item while another job owns it, naming the job', async () => {
    h = await Harness.start();
    await h.seedTopology();
    await hosts(h);
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    const del = await h.api<ErrorBody>('DELETE', ITEM);
    assert.equal(del.status, 409);
    assert.equal(del.body.error.code, 'job.inProgress');
    assert.equal(del.body.error.job, jobId);
  });

  it('waits for room on the recovery host (recoverable) and names the shortfall', async () => {
    const clock = new ManualClock(Date.now());
    h = await Harness.start({ clock, random: () => 0 });
    // Long heartbeat interval: the hosts stay Connected while the test moves the clock.
    await h.seedTopology('contoso', {}, { heartbeatIntervalSeconds: 600 });
    const { dst } = await hosts(h, 1 * GiB);
    const jobId = (await h.ok<ObjectBody>('PUT', ITEM, { site: 'hq', vm: 'web01', policy: 'gold' })).status.activeJob!.id;
    await clock.advance(0);
    const job = await jobOf(h, jobId);
    assert.equal(job.state, 'InProgress');
    assert.equal(job.errors[0]?.code, 'target.lowDiskSpace');
    assert.match(job.errors[0]?.message ?? '', /3\.00 GiB free/);
    await dst.announce({ freeBytes: 10 * GiB, port: 45001 });
    await clock.advance(MINUTE);
    assert.equal((await dst.next('replica.create')).jobId, jobId);
  });
});
