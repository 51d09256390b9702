/**
 * Recovery plan jobs on the real job engine with a ManualClock, the test
 * acting as the agents: groups in order and the VMs of a group in
 * parallel, a failing script that stops the plan in WaitingForAction until
 * it is resumed (the script runs again), a manual action that waits for an
 * acknowledgement, the plan record (points, runningAt, output), the request
 * checks (direction, readiness, one plan job at a time), cancellation of the
 * children, and the expiry of a test failover re-armed after a restart.
 */

import { strict as assert } from 'node:assert';
import { LifeboatError } from '../../../../provider/errors';
import { SECOND } from '../../../../provider/units';
import { applyCommandUpdate } from '../../../../provider/vault/control/commands';
import { initialItemStatus, itemStatus } from '../../../../provider/vault/control/item-status';
import { planDirection, planLocation, planStatus, planStatusView, requestPlanOperation } from '../../../../provider/vault/control/plans';
import { JobEngine } from '../../../../provider/vault/jobs/engine';
import { planRecordOf } from '../../../../provider/vault/jobs/handlers/plan-run';
import { armPlanTestExpiry } from '../../../../provider/vault/jobs/handlers/plan-test-expiry';
import { JOB_HANDLERS } from '../../../../provider/vault/jobs/job-types';
import type { CommandRecord, JsonObject } from '../../../../provider/vault/store/records';
import { controlRig, type ControlRig } from '../control/rig';

const started = (vm: string): JsonObject => ({
  vm, point: { id: 'p-2', time: '2026-01-01T00:00:02.000Z', kind: 'crashConsistent' }, disks: { disk0: { id: 'p-2' } },
});

describe('vault/jobs: recovery plan jobs', () => {
  let r: ControlRig;
  let engine: JobEngine;

  beforeEach(async () => {
    r = await controlRig();
    engine = new JobEngine({ services: r.services, handlers: JOB_HANDLERS });
    r.store.putObject('v', 'replicationPolicy', 'gold', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] }, [], 0);
    r.store.putObject('v', 'networkMapping', 'corp', { source: { site: 'hq', network: 'corp' }, target: { site: 'dr', network: 'dr-corp' }, testNetwork: 'dr-test' }, [], 0);
    host('hv01', 'hq', ['web01', 'db01']);
    host('hv02', 'hq', ['app01']);
    host('hvdr01', 'dr', []);
    for (const [item, vm, src] of [['web', 'web01', 'hv01'], ['db', 'db01', 'hv01'], ['app', 'app01', 'hv02']] as const) {
      r.store.putObject('v', 'protectedItem', item, { site: 'hq', vm, policy: 'gold' }, [], 0, {
        ...initialItemStatus(), replicationState: 'Protected', sourceHost: src, targetHost: 'hvdr01', disks: [{ id: 'disk0', sizeBytes: 4096 }],
      });
    }
    r.store.putObject('v', 'recoveryPlan', 'erp', {
      groups: [
        { name: 'web', vms: ['web'], before: [{ script: 'pre.sh', timeoutSeconds: 30 }] },
        { name: 'data', vms: ['db'], after: [{ script: 'post.sh' }] },
        { name: 'app', vms: ['app'], before: [{ manual: 'Check DNS' }] },
      ],
    }, [], 0);
  });

  afterEach(async () => {
    await engine.stop();
    await r.close();
  });

  function host(name: string, site: string, vms: string[]): void {
    const inventory = { vms: vms.map((vm) => ({ name: vm, disks: [{ id: 'disk0', sizeBytes: 4096 }], networks: ['corp'] })) };
    r.store.putObject('v', 'host', name, { site }, [], 0, { connectionState: 'Connected', inventory });
  }

  /** Let the engine run until `host` has a pending command of `type`; return it. */
  async function pending(hostName: string, type: string): Promise<CommandRecord> {
    for (let i = 0; i < 300; i++) {
      const c = r.store.commandsOfHost('v', hostName, ['Pending']).find((x) => x.type === type);
      if (c !== undefined) return c;
      await r.clock.advance(0);
    }
    throw new Error(`no ${type} command for ${hostName}`);
  }

  async function answer(hostName: string, type: string, result: JsonObject = {}): Promise<CommandRecord> {
    const c = await pending(hostName, type);
    applyCommandUpdate(r.services, 'v', hostName, c.id, { state: 'Succeeded', result });
    return c;
  }

  async function until(what: string, check: () => boolean): Promise<void> {
    for (let i = 0; i < 300 && !check(); i++) await r.clock.advance(0);
    assert.ok(check(), what);
  }

  function refusal(fn: () => unknown): string {
    try {
      fn();
    } catch (e) {
      return LifeboatError.isInstance(e) ? e.code : String(e);
    }
    return 'accepted';
  }

  it('direction: derived from the items, skipped items listed, mixed refused', () => {
    const at = (p: string[], rec: string[]): { item: string; activeLocation: 'primary' | 'recovery' }[] => [
      ...p.map((item) => ({ item, activeLocation: 'primary' as const })), ...rec.map((item) => ({ item, activeLocation: 'recovery' as const })),
    ];
    assert.deepEqual(planDirection(at(['a', 'b'], [])), { direction: 'toRecovery', skipped: [] });
    assert.deepEqual(planDirection(at([], ['a', 'b'])), { direction: 'toPrimary', skipped: [] });
    assert.deepEqual(planDirection(at(['a'], ['b'])), { mixed: { primary: ['a'], recovery: ['b'] } });
    assert.deepEqual(planDirection(at(['a'], ['b']), 'toRecovery'), { direction: 'toRecovery', skipped: ['b'] });
    assert.deepEqual(planDirection(at(['a'], ['b']), 'toPrimary'), { direction: 'toPrimary', skipped: ['a'] });
    assert.deepEqual([planLocation(['primary', 'primary']), planLocation(['recovery']), planLocation(['primary', 'recovery'])], ['primary', 'recovery', 'mixed']);
  });

  it('request checks: mixed location, items not ready, one plan job at a time, nothing to do', () => {
    r.store.updateStatus('v', 'protectedItem', 'db', (s) => ({ ...s, activeLocation: 'recovery', replicationState: 'FailedOver' }), 0);
    assert.equal(refusal(() => requestPlanOperation(r.services, r.jobs, 'v', 'erp', 'failover', { type: 'planned' })), 'plan.mixedLocation');
    const skipped = requestPlanOperation(r.services, r.jobs, 'v', 'erp', 'failover', { type: 'planned', direction: 'toRecovery' });
    assert.deepEqual(planRecordOf(skipped).groups.map((g) => [g.state, g.vms.map((v) => v.state)]), [['NotStarted', ['NotStarted']], ['Skipped', ['Skipped']], ['NotStarted', ['NotStarted']]]);
    assert.deepEqual(planStatus(r.store.getObject('v', 'recoveryPlan', 'erp')!).activeJob, { id: skipped.id, type: 'plan.failover' });
    assert.equal(refusal(() => requestPlanOperation(r.services, r.jobs, 'v', 'erp', 'commit')), 'job.inProgress', 'one plan job at a time');
    r.store.updateJob({ ...skipped, state: 'Cancelled' });
    r.store.updateStatus('v', 'protectedItem', 'db', (s) => ({ ...s, activeLocation: 'primary', replicationState: 'InitialReplicationInProgress' }), 0);
    assert.equal(refusal(() => requestPlanOperation(r.services, r.jobs, 'v', 'erp', 'failover', { type: 'test' })), 'plan.itemsNotReady');
    assert.equal(refusal(() => requestPlanOperation(r.services, r.jobs, 'v', 'erp', 'reprotect')), 'plan.nothingToDo');
    assert.equal(planStatusView(r.services, 'v', r.store.getObject('v', 'recoveryPlan', 'erp')!).activeLocation, 'primary');
  });

  it('test failover: groups in order, a failing script stops the plan until resumed, a manual action waits for ack', async () => {
    const job = requestPlanOperation(r.services, engine, 'v', 'erp', 'failover', { type: 'test' });
    engine.kick(job.id);
    const pre = await answer('hvdr01', 'plan.runScript', { exitCode: 0, timedOut: false, output: 'pre ok\n' });
    assert.deepEqual({ script: pre.payload.script, timeout: pre.payload.timeoutSeconds }, { script: 'pre.sh', timeout: 30 });
    assert.deepEqual(pre.payload.environment, {
      LIFEBOAT_PLAN: 'erp', LIFEBOAT_GROUP: 'web', LIFEBOAT_FAILOVER_TYPE: 'test', LIFEBOAT_DIRECTION: 'toRecovery', LIFEBOAT_JOB: job.id, LIFEBOAT_PHASE: 'before',
    });
    const web = await answer('hvdr01', 'failover.start', started('web01-test'));
    assert.equal(web.payload.vm, 'web01', 'group 1 after its before-script');
    assert.equal(r.store.commandsOfHost('v', 'hvdr01', ['Pending']).filter((c) => c.payload.vm === 'db01').length, 0, 'group 2 waits for group 1');
    await answer('hvdr01', 'failover.start', started('db01-test'));
    const post = await answer('hvdr01', 'plan.runScript', { exitCode: 3, timedOut: false, output: 'cannot reach the database\n' });
    assert.equal(post.payload.script, 'post.sh');

    await until('the plan stops at the failed script', () => r.store.getJob(job.id)!.state === 'WaitingForAction');
    let j = r.store.getJob(job.id)!;
    let rec = planRecordOf(j);
    assert.deepEqual(rec.groups.map((g) => g.state), ['Succeeded', 'Failed', 'NotStarted']);
    const failed = rec.groups[1]!.actions[0]!;
    assert.deepEqual({ state: failed.state, exit: failed.exitCode, output: failed.output, code: failed.error?.code, host: failed.host }, {
      state: 'Failed', exit: 3, output: 'cannot reach the database\n', code: 'plan.scriptFailed', host: 'hvdr01',
    });
    assert.match(String(j.message), /group 2\/3 'data' stopped: after-script 'post.sh' on hvdr01 exited with 3; .*lifeboat jobs resume/);
    assert.equal(r.store.commandsOfHost('v', 'hvdr01', ['Pending']).length, 0, 'nothing runs while it waits');
    assert.equal(engine.answerOperator(job.id, 'acknowledgement')?.job.state, 'WaitingForAction', 'not waiting for an acknowledgement');
    assert.ok('refused' in engine.answerOperator(job.id, 'acknowledgement')!);

    assert.equal(engine.answerOperator(job.id, 'resume')?.job.state, 'InProgress');
    const again = await answer('hvdr01', 'plan.runScript', { exitCode: 0, timedOut: false, output: 'ok\n' });
    assert.notEqual(again.id, post.id, 'the failed script runs again as a new command');

    await until('the manual action waits', () => r.store.getJob(job.id)!.state === 'WaitingForAction');
    j = r.store.getJob(job.id)!;
    assert.match(String(j.message), /waiting for acknowledgement of 'Check DNS' .* run `lifeboat jobs ack job-/);
    assert.equal(planRecordOf(j).groups[2]!.actions[0]!.state, 'WaitingForAcknowledgement');
    assert.equal(r.store.commandsOfHost('v', 'hvdr01', ['Pending']).length, 0, 'group 3 does not start before the acknowledgement');
    assert.ok('refused' in engine.answerOperator(job.id, 'resume')!, 'resume is not an acknowledgement');
    engine.answerOperator(job.id, 'acknowledgement', { comment: 'dns points at dr' });
    const app = await answer('hvdr01', 'failover.start', started('app01-test'));
    assert.equal(app.payload.vm, 'app01');
    await engine.settled(job.id);

    j = r.store.getJob(job.id)!;
    assert.equal(j.state, 'Succeeded', JSON.stringify(j.errors));
    rec = planRecordOf(j);
    assert.deepEqual(rec.groups.map((g) => g.state), ['Succeeded', 'Succeeded', 'Succeeded']);
    const vms = rec.groups.flatMap((g) => g.vms);
    assert.ok(vms.every((v) => v.state === 'Succeeded' && v.point?.id === 'p-2' && v.runningAt !== undefined && v.startedAt !== undefined), JSON.stringify(vms));
    assert.ok(vms.every((v) => r.store.getJob(v.job!)?.type === 'failover.test'));
    const ack = rec.groups[2]!.actions[0]!;
    assert.deepEqual({ state: ack.state, comment: ack.comment, at: typeof ack.acknowledgedAt }, { state: 'Succeeded', comment: 'dns points at dr', at: 'string' });
    assert.equal(rec.groups[1]!.actions[0]!.attempts, 2);
    assert.equal(itemStatus(r.store.getObject('v', 'protectedItem', 'app')!).testFailover?.vm, 'app01-test');
    const ps = planStatus(r.store.getObject('v', 'recoveryPlan', 'erp')!);
    assert.deepEqual({ last: ps.lastJob, active: ps.activeJob, test: ps.testFailover?.job }, { last: { id: job.id, type: 'plan.failover', state: 'Succeeded' }, active: undefined, test: job.id });
  });

  function azureItem(location: 'primary' | 'recovery'): void {
    r.store.putObject('v', 'site', 'cloud', { kind: 'azure' }, [], 0);
    host('azure-1', 'cloud', []);
    r.store.putObject('v', 'replicationPolicy', 'to-azure', { target: 'azure', associations: [{ source: 'hq' }], azure: { storageAccount: 'acct' } }, [], 0);
    r.store.putObject('v', 'protectedItem', 'ledger', { site: 'hq', vm: 'ledger01', policy: 'to-azure' }, [], 0, {
      ...initialItemStatus(), replicationState: 'Protected', activeLocation: location, sourceHost: 'hv02', disks: [{ id: 'disk0', sizeBytes: 4096 }],
    });
    r.store.putObject('v', 'recoveryPlan', 'books', { groups: [{ name: 'ledger', vms: ['ledger'], before: [{ script: 'pre.sh' }] }] }, [], 0);
  }

  it('the scripts of a group of items replicating to Azure run on the azure-role host on the way there', async () => {
    azureItem('primary');
    const job = requestPlanOperation(r.services, engine, 'v', 'books', 'failover', { type: 'test' });
    engine.kick(job.id);
    const pre = await answer('azure-1', 'plan.runScript', { exitCode: 0, timedOut: false, output: '' });
    assert.equal(pre.payload.script, 'pre.sh');
    assert.equal(planRecordOf(r.store.getJob(job.id)!).groups[0]!.actions[0]!.host, 'azure-1');
  });

  it('… and on the primary host on the way back', async () => {
    azureItem('recovery');
    const job = requestPlanOperation(r.services, engine, 'v', 'books', 'failover', { type: 'planned', direction: 'toPrimary' });
    engine.kick(job.id);
    const pre = await answer('hv02', 'plan.runScript', { exitCode: 0, timedOut: false, output: '' });
    assert.equal(pre.payload.script, 'pre.sh');
  });

  it('a failed item job stops the plan; resume starts a new one; cancel cancels the running children', async () => {
    r.store.putObject('v', 'recoveryPlan', 'two', { groups: [{ vms: ['web', 'db'] }, { vms: ['app'] }] }, [], 0);
    const job = requestPlanOperation(r.services, engine, 'v', 'two', 'failover', { type: 'test' });
    engine.kick(job.id);
    const first = await pending('hvdr01', 'failover.start');
    await until('both VMs of the group start together', () => r.store.commandsOfHost('v', 'hvdr01', ['Pending']).filter((c) => c.type === 'failover.start').length === 2);
    const [a, b] = r.store.commandsOfHost('v', 'hvdr01', ['Pending']);
    applyCommandUpdate(r.services, 'v', 'hvdr01', a!.id, { state: 'Failed', error: { code: 'replica.pointNotFound', category: 'nonRecoverable', message: 'no point' } });
    applyCommandUpdate(r.services, 'v', 'hvdr01', b!.id, { state: 'Succeeded', result: started(String(b!.payload.vmName)) });
    void first;
    await answer('hvdr01', 'failover.removeVm');
    await until('the plan stops at the failed VM', () => r.store.getJob(job.id)!.state === 'WaitingForAction');
    let rec = planRecordOf(r.store.getJob(job.id)!);
    const bad = rec.groups[0]!.vms.find((v) => v.state === 'Failed')!;
    assert.equal(bad.error?.code, 'replica.pointNotFound');
    const firstJob = bad.job!;

    engine.answerOperator(job.id, 'resume');
    await until('a new child job for the failed VM', () => planRecordOf(r.store.getJob(job.id)!).groups[0]!.vms.some((v) => v.jobs.length === 2));
    rec = planRecordOf(r.store.getJob(job.id)!);
    const retried = rec.groups[0]!.vms.find((v) => v.jobs.length === 2)!;
    assert.deepEqual(retried.jobs[0], firstJob);
    assert.equal(rec.groups[0]!.vms.find((v) => v !== retried)!.jobs.length, 1, 'the VM that succeeded is not touched');

    await pending('hvdr01', 'failover.start');
    engine.requestCancel(job.id);
    await answer('hvdr01', 'failover.removeVm');
    await engine.settled(job.id);
    const child = r.store.getJob(retried.job!)!;
    assert.equal(child.state, 'Cancelled', 'the running child job is cancelled with the plan');
    rec = planRecordOf(r.store.getJob(job.id)!);
    assert.equal(r.store.getJob(job.id)!.state, 'Cancelled');
    assert.deepEqual(rec.groups.map((g) => g.state), ['Cancelled', 'Cancelled']);
    assert.equal(rec.groups[1]!.vms[0]!.state, 'Cancelled');
  });

  it('an expired test failover is cleaned up by the vault, also after a restart', async () => {
    r.store.putObject('v', 'recoveryPlan', 'one', { groups: [{ vms: ['web'] }] }, [], 0);
    engine.start();
    const t0 = r.clock.now();
    const job = requestPlanOperation(r.services, engine, 'v', 'one', 'failover', { type: 'test', expiresAfterSeconds: 600 });
    armPlanTestExpiry(r.services, 'v', 'one');
    engine.kick(job.id);
    await answer('hvdr01', 'failover.start', started('web01-test'));
    await engine.settled(job.id);
    assert.equal(planStatus(r.store.getObject('v', 'recoveryPlan', 'one')!).testFailover?.expiresAt, new Date(t0 + 600 * SECOND).toISOString());

    // A vault restart: a new engine re-arms the timer from the store.
    await engine.stop();
    await r.clock.advance(300 * SECOND);
    assert.deepEqual(r.store.listJobs('v', { type: 'plan.testCleanup', states: [], limit: 10 }), [], 'a stopped engine starts nothing');
    engine = new JobEngine({ services: r.services, handlers: JOB_HANDLERS });
    engine.start();
    await r.clock.advance(299 * SECOND);
    assert.deepEqual(r.store.listJobs('v', { type: 'plan.testCleanup', states: [], limit: 10 }), [], 'not before it expires');
    await r.clock.advance(1 * SECOND);
    const remove = await answer('hvdr01', 'failover.removeVm');
    assert.equal(remove.payload.vmName, 'web01-test');
    const cleanup = r.store.listJobs('v', { type: 'plan.testCleanup', states: [], limit: 10 })[0]!;
    assert.equal(cleanup.input.automatic, true);
    await engine.settled(cleanup.id);
    assert.equal(r.store.getJob(cleanup.id)!.state, 'Succeeded');
    assert.equal(planStatus(r.store.getObject('v', 'recoveryPlan', 'one')!).testFailover, undefined);
    assert.equal(itemStatus(r.store.getObject('v', 'protectedItem', 'web')!).testFailover, undefined);
  });
});
