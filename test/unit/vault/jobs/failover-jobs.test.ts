/**
 * The failover jobs on the real job engine with a ManualClock, the test
 * acting as the agents (it answers each command as an agent would, or
 * fails it): which commands go to which host in which order, what the item
 * becomes, the network prerequisite, waiting for a disconnected source, and
 * the compensation of a failover that could not start its VM. Also the
 * request table (which state allows which operation) and the fence orders
 * of returning primaries.
 */

import { strict as assert } from 'node:assert';
import { LifeboatError } from '../../../../provider/errors';
import { statesOf } from '../../../../provider/states';
import { MINUTE } from '../../../../provider/units';
import { applyCommandUpdate } from '../../../../provider/vault/control/commands';
import { fenceOrdersFor, requestFailover, type FailoverOperation } from '../../../../provider/vault/control/failovers';
import { initialItemStatus, itemStatus } from '../../../../provider/vault/control/item-status';
import { JobEngine } from '../../../../provider/vault/jobs/engine';
import { JOB_HANDLERS } from '../../../../provider/vault/jobs/job-types';
import type { CommandRecord, JsonObject } from '../../../../provider/vault/store/records';
import { controlRig, type ControlRig } from '../control/rig';

describe('vault/jobs: failover jobs', () => {
  let r: ControlRig;
  let engine: JobEngine;

  beforeEach(async () => {
    r = await controlRig();
    engine = new JobEngine({ services: r.services, handlers: JOB_HANDLERS });
    r.store.putObject('v', 'replicationPolicy', 'gold', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] }, [], 0);
    r.store.putObject('v', 'networkMapping', 'corp', { source: { site: 'hq', network: 'corp' }, target: { site: 'dr', network: 'dr-corp' }, testNetwork: 'dr-test' }, [], 0);
    host('hv01', 'hq', ['corp']);
    host('hvdr01', 'dr');
    r.store.putObject('v', 'protectedItem', 'web', { site: 'hq', vm: 'web01', policy: 'gold' }, [], 0, {
      ...initialItemStatus(), replicationState: 'Protected', sourceHost: 'hv01', targetHost: 'hvdr01', disks: [{ id: 'disk0', sizeBytes: 4096 }],
    });
  });

  afterEach(async () => {
    await engine.stop?.();
    await r.close();
  });

  function host(name: string, site: string, networks?: string[], connectionState = 'Connected'): void {
    const vms = networks === undefined ? [] : [{ name: 'web01', disks: [{ id: 'disk0', sizeBytes: 4096 }], networks }];
    r.store.putObject('v', 'host', name, { site }, [], 0, { connectionState, inventory: { vms } });
    r.store.updateStatus('v', 'host', name, (s) => ({ ...s, connectionState, inventory: { vms } }), 0);
  }

  function setConnection(name: string, connectionState: string): void {
    r.store.updateStatus('v', 'host', name, (s) => ({ ...s, connectionState }), r.clock.now());
  }

  function status(): ReturnType<typeof itemStatus> {
    return itemStatus(r.store.getObject('v', 'protectedItem', 'web')!);
  }

  /** Let the engine run until `host` has a pending command; return it. */
  async function nextCommand(hostName: string): Promise<CommandRecord> {
    for (let i = 0; i < 200; i++) {
      const c = r.store.commandsOfHost('v', hostName, ['Pending'])[0];
      if (c !== undefined) return c;
      await r.clock.advance(0);
    }
    throw new Error(`no command for ${hostName}`);
  }

  async function answer(hostName: string, type: string, result: JsonObject = {}): Promise<CommandRecord> {
    const c = await nextCommand(hostName);
    assert.equal(c.type, type);
    applyCommandUpdate(r.services, 'v', hostName, c.id, { state: 'Succeeded', result });
    return c;
  }

  const started = { vm: 'web01', point: { id: 'p-2', time: '2026-01-01T00:00:02.000Z', kind: 'crashConsistent' }, disks: { disk0: { id: 'p-2' } }, points: [
    { id: 'p-1', time: '2026-01-01T00:00:01.000Z', kind: 'crashConsistent' }, { id: 'p-2', time: '2026-01-01T00:00:02.000Z', kind: 'crashConsistent' },
  ] };

  it('request table: which replication state allows which operation', () => {
    const ops: FailoverOperation[] = ['test', 'planned', 'unplanned', 'commit', 'testCleanup'];
    const outcome: Record<string, string> = {};
    for (const state of statesOf('replication')) {
      const row: string[] = [];
      for (const op of ops) {
        r.store.updateStatus('v', 'protectedItem', 'web', () => ({ ...initialItemStatus(), replicationState: state, sourceHost: 'hv01', targetHost: 'hvdr01' }), 0);
        try {
          row.push(`${op}:${requestFailover(r.services, r.jobs, 'v', 'web', op).type}`);
        } catch (e) {
          row.push(`${op}:${LifeboatError.isInstance(e) ? e.code : String(e)}`);
        }
        for (const j of r.jobs.created.splice(0)) r.store.updateJob({ ...j, state: 'Cancelled' });
      }
      outcome[state] = row.join(' ');
    }
    const refused = (state: string): string => `test:protectedItem.notFailoverable planned:protectedItem.notFailoverable unplanned:protectedItem.notFailoverable commit:protectedItem.notCommittable testCleanup:testFailover.none${state}`;
    const allowed = 'test:failover.test planned:failover.planned unplanned:failover.unplanned commit:protectedItem.notCommittable testCleanup:testFailover.none';
    assert.deepEqual(outcome, {
      NotProtected: refused(''),
      EnablingProtection: refused(''),
      WaitingForInitialReplication: refused(''),
      InitialReplicationInProgress: refused(''),
      Protected: allowed,
      ResynchronizationRequired: allowed,
      Resynchronizing: allowed,
      FailoverInProgress: refused(''),
      FailedOver: 'test:protectedItem.notFailoverable planned:protectedItem.notFailoverable unplanned:failover.unplanned commit:failover.commit testCleanup:testFailover.none',
      FailoverCommitted: refused(''),
      Reprotecting: refused(''),
      DisablingProtection: refused(''),
    });
  });

  it('planned failover: fence and drain the source, then start the VM from exactly the drained points on the mapped network; commit', async () => {
    const job = requestFailover(r.services, engine, 'v', 'web', 'planned');
    assert.equal(status().replicationState, 'FailoverInProgress');
    engine.kick(job.id);
    const prepare = await answer('hv01', 'failover.prepareSource', { disks: { disk0: 'p-2' }, pointTime: '2026-01-01T00:00:02.000Z' });
    assert.equal(prepare.payload.vm, 'web01');
    const start = await answer('hvdr01', 'failover.start', started);
    assert.deepEqual(start.payload.point, { ids: { disk0: 'p-2' } }, 'the points the source drained to, not "latest as of now"');
    assert.deepEqual(start.payload.nics, [{ name: 'nic0', network: 'dr-corp' }]);
    assert.equal(start.payload.test, false);
    await engine.settled(job.id);
    assert.equal(r.store.getJob(job.id)!.state, 'Succeeded');
    let s = status();
    assert.equal(s.replicationState, 'FailedOver');
    assert.equal(s.activeLocation, 'recovery');
    assert.deepEqual({ vm: s.failover?.vm, host: s.failover?.host, point: s.failover?.point?.id }, { vm: 'web01', host: 'hvdr01', point: 'p-2' });
    assert.deepEqual(fenceOrdersFor(r.services, 'v', 'hv01').map((f) => f.vm), ['web01'], 'the old primary is told to keep the VM fenced');
    assert.deepEqual(fenceOrdersFor(r.services, 'v', 'hvdr01'), []);

    const commit = requestFailover(r.services, engine, 'v', 'web', 'commit');
    engine.kick(commit.id);
    const c = await answer('hvdr01', 'failover.commit', { points: [started.points[1]!] });
    assert.deepEqual(c.payload.point, { ids: { disk0: 'p-2' } });
    await engine.settled(commit.id);
    s = status();
    assert.equal(s.replicationState, 'FailoverCommitted');
    assert.ok(s.failover?.committedAt !== undefined);
    assert.deepEqual(r.store.recoveryPoints('v', 'web').map((p) => p.id), ['p-2']);
  });

  it('planned failover waits (retrying on the back-off schedule) while the source host is disconnected', async () => {
    setConnection('hv01', 'Disconnected');
    const job = requestFailover(r.services, engine, 'v', 'web', 'planned');
    engine.kick(job.id);
    for (let i = 0; i < 50 && r.store.getJob(job.id)!.retry === undefined; i++) await r.clock.advance(0);
    const waiting = r.store.getJob(job.id)!;
    assert.equal(waiting.state, 'InProgress');
    assert.equal(waiting.retry?.step, 'checkPrerequisites');
    assert.deepEqual(r.store.commandsOfHost('v', 'hv01', ['Pending']), [], 'nothing is sent while it waits');
    setConnection('hv01', 'Connected');
    await r.clock.advance(2 * MINUTE);
    await answer('hv01', 'failover.prepareSource', { disks: { disk0: 'p-2' } });
    await answer('hvdr01', 'failover.start', started);
    await engine.settled(job.id);
    assert.equal(r.store.getJob(job.id)!.state, 'Succeeded');
  });

  it('a recovery VM that cannot start: the source is unfenced and the item returns to Protected', async () => {
    const job = requestFailover(r.services, engine, 'v', 'web', 'planned');
    engine.kick(job.id);
    await answer('hv01', 'failover.prepareSource', { disks: { disk0: 'p-2' } });
    const start = await nextCommand('hvdr01');
    applyCommandUpdate(r.services, 'v', 'hvdr01', start.id, { state: 'Failed', error: { code: 'replica.pointNotFound', category: 'nonRecoverable', message: 'no point p-2' } });
    await answer('hv01', 'failover.cancelSource');
    await engine.settled(job.id);
    assert.equal(r.store.getJob(job.id)!.state, 'Failed');
    const s = status();
    assert.equal(s.replicationState, 'Protected');
    assert.equal(s.activeLocation, 'primary');
  });

  it('unplanned failover sends nothing to the source; a network without a mapping fails the prerequisite naming it', async () => {
    host('hv01', 'hq', ['corp', 'backup']);
    setConnection('hv01', 'Disconnected');
    const job = requestFailover(r.services, engine, 'v', 'web', 'unplanned', { point: 'latest' });
    engine.kick(job.id);
    await engine.settled(job.id);
    const done = r.store.getJob(job.id)!;
    assert.equal(done.state, 'Failed');
    assert.equal(done.errors[0]?.code, 'network.notMapped');
    assert.match(String(done.errors[0]?.message), /network 'backup' of VM 'web01'/);
    assert.equal(status().replicationState, 'Protected', 'nothing changed: back where it started');
    assert.deepEqual(r.store.commandsOfHost('v', 'hv01', ['Pending', 'Running', 'Succeeded', 'Failed']), []);
    assert.deepEqual(r.store.commandsOfHost('v', 'hvdr01', ['Pending', 'Running', 'Succeeded', 'Failed']), []);

    r.store.putObject('v', 'networkMapping', 'backup', { source: { site: 'hq', network: 'backup' }, target: { site: 'dr', network: 'dr-backup' } }, [], 0);
    const again = requestFailover(r.services, engine, 'v', 'web', 'unplanned', { point: '2026-01-01T00:00:01Z' });
    assert.deepEqual(fenceOrdersFor(r.services, 'v', 'hv01').map((f) => f.vm), ['web01'], 'an unplanned failover fences the source as soon as it starts');
    engine.kick(again.id);
    const start = await answer('hvdr01', 'failover.start', started);
    assert.deepEqual(start.payload.point, { time: '2026-01-01T00:00:01.000Z' });
    assert.deepEqual(start.payload.nics, [{ name: 'nic0', network: 'dr-corp' }, { name: 'nic1', network: 'dr-backup' }]);
    await engine.settled(again.id);
    assert.equal(status().replicationState, 'FailedOver');
  });

  it('reprotect: the old primary\'s disk becomes the replica, the running side seeds the delta, resync compares it; hosts swap', async () => {
    r.store.updateStatus('v', 'protectedItem', 'web', (s) => ({
      ...s, replicationState: 'FailoverCommitted', activeLocation: 'recovery',
      failover: { type: 'unplanned', requested: 'latest', job: 'j0', vm: 'web01', host: 'hvdr01', fromHost: 'hv01', diskPoints: { disk0: 'p-2' }, pointGenerations: { disk0: 'g1' } },
    }), 0);
    assert.deepEqual(fenceOrdersFor(r.services, 'v', 'hv01').map((f) => f.vm), ['web01']);
    const job = requestFailover(r.services, engine, 'v', 'web', 'reprotect');
    assert.equal(job.type, 'protection.reprotect');
    assert.equal(status().replicationState, 'Reprotecting');
    engine.kick(job.id);
    const prep = await answer('hv01', 'reprotect.prepareReplica', { endpoint: { address: '10.0.0.1', port: 4443 }, extents: { disk0: [{ offset: 0, length: 4096 }] } });
    assert.deepEqual(prep.payload.pointGenerations, { disk0: 'g1' });
    assert.equal(prep.payload.sourceHost, 'hvdr01');
    const src = await answer('hvdr01', 'reprotect.prepareSource', { delta: true, regionBytes: 65536 });
    assert.deepEqual(fenceOrdersFor(r.services, 'v', 'hv01'), [], 'the old VM is the replica now: nothing to fence');
    assert.deepEqual(src.payload.target, { kind: 'host', host: 'hv01', address: '10.0.0.1', port: 4443, serverName: 'hv01' });
    assert.deepEqual(src.payload.extents, { disk0: [{ offset: 0, length: 4096 }] });
    await answer('hvdr01', 'resync.run');
    assert.deepEqual({ source: status().sourceHost, target: status().targetHost }, { source: 'hvdr01', target: 'hv01' }, 'swapped before the compare: the new source reports');
    await engine.settled(job.id);
    const s = status();
    assert.equal(r.store.getJob(job.id)!.state, 'Succeeded');
    assert.equal(s.replicationState, 'Protected');
    assert.equal(s.activeLocation, 'recovery', 'the workload stays where it runs');
    assert.deepEqual(s.reprotect, { job: job.id, delta: true, regionBytes: 65536 });
    assert.deepEqual(fenceOrdersFor(r.services, 'v', 'hvdr01'), [], 'the new source is never fenced');
  });

  it('reprotect that fails before the hosts swap returns to FailoverCommitted', async () => {
    r.store.updateStatus('v', 'protectedItem', 'web', (s) => ({
      ...s, replicationState: 'FailoverCommitted', activeLocation: 'recovery',
      failover: { type: 'planned', requested: 'latest', job: 'j0', vm: 'web01', host: 'hvdr01', fromHost: 'hv01' },
    }), 0);
    const job = requestFailover(r.services, engine, 'v', 'web', 'reprotect');
    engine.kick(job.id);
    const prep = await nextCommand('hv01');
    applyCommandUpdate(r.services, 'v', 'hv01', prep.id, { state: 'Failed', error: { code: 'reprotect.vmGone', category: 'nonRecoverable', message: 'VM web01 is no longer on this host' } });
    await engine.settled(job.id);
    assert.equal(r.store.getJob(job.id)!.state, 'Failed');
    assert.equal(status().replicationState, 'FailoverCommitted');
    assert.deepEqual({ source: status().sourceHost, target: status().targetHost }, { source: 'hv01', target: 'hvdr01' });
  });

  it('test failover: the mapped test network, no state change; cleanup removes the VM', async () => {
    const job = requestFailover(r.services, engine, 'v', 'web', 'test');
    engine.kick(job.id);
    const start = await answer('hvdr01', 'failover.start', { ...started, vm: 'web01-test' });
    assert.equal(start.payload.vmName, 'web01-test');
    assert.equal(start.payload.test, true);
    assert.deepEqual(start.payload.nics, [{ name: 'nic0', network: 'dr-test' }]);
    await engine.settled(job.id);
    assert.equal(status().replicationState, 'Protected');
    assert.deepEqual(status().testFailover?.vm, 'web01-test');
    assert.equal(requestFailover(r.services, engine, 'v', 'web', 'planned').type, 'failover.planned', 'a test VM does not block a real failover');
    for (const j of r.store.listJobs('v', { states: ['NotStarted'] })) r.store.updateJob({ ...j, state: 'Cancelled' });
    r.store.updateStatus('v', 'protectedItem', 'web', ({ activeJob: _drop, ...s }) => ({ ...s, replicationState: 'Protected' }), 0);

    const cleanup = requestFailover(r.services, engine, 'v', 'web', 'testCleanup');
    engine.kick(cleanup.id);
    const rm = await answer('hvdr01', 'failover.removeVm', { removed: true });
    assert.equal(rm.payload.vmName, 'web01-test');
    await engine.settled(cleanup.id);
    assert.equal(status().testFailover, undefined);
  });
});
