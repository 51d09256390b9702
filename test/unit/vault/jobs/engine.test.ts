import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '../../../../provider/clock';
import { NonRecoverableError, RecoverableError } from '../../../../provider/errors';
import { MINUTE } from '../../../../provider/units';
import { applyCommandUpdate } from '../../../../provider/vault/control/commands';
import { Notifier } from '../../../../provider/vault/control/notifier';
import type { VaultServices } from '../../../../provider/vault/control/services';
import { JobEngine } from '../../../../provider/vault/jobs/engine';
import type { JobHandler, StepContext } from '../../../../provider/vault/jobs/job-handler';
import type { JobRecord, JsonObject } from '../../../../provider/vault/store/records';
import { SqliteStore } from '../../../../provider/vault/store/sqlite/sqlite-store';

/** A gate a test opens to let a step finish. */
class Gate {
  private open: (() => void) | undefined;
  readonly reached: Promise<void>;
  private markReached!: () => void;
  private readonly opened: Promise<void>;
  constructor() {
    this.reached = new Promise((r) => { this.markReached = r; });
    this.opened = new Promise((r) => { this.open = r; });
  }
  /** Called by the step: signal arrival, then wait for the test (or the abort). */
  async pass(signal: AbortSignal): Promise<void> {
    this.markReached();
    await new Promise<void>((resolve, reject) => {
      void this.opened.then(resolve);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
  release(): void {
    this.open?.();
  }
}

interface Rig {
  readonly services: VaultServices;
  readonly clock: ManualClock;
  readonly store: SqliteStore;
  readonly log: string[];
}

describe('vault/jobs/engine', () => {
  let dir: string;
  let file: string;
  const rigs: SqliteStore[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-engine-'));
    file = path.join(dir, 'vault.db');
  });
  afterEach(async () => {
    for (const s of rigs.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  function rig(clock = new ManualClock()): Rig {
    const store = SqliteStore.open({ path: file });
    rigs.push(store);
    const log: string[] = [];
    const services: VaultServices = {
      store, clock, notifier: new Notifier(), random: () => 0,
      timings: { commandLeaseMs: MINUTE, maxLongPollMs: MINUTE, recheckMs: 10 * MINUTE },
      log: (level, message) => log.push(`${level}: ${message}`),
    };
    return { services, clock, store, log };
  }

  function job(r: Rig, id: string): JobRecord {
    return r.store.getJob(id)!;
  }

  it('runs the steps in order, records progress by weight and ends Succeeded', async () => {
    const r = rig();
    const calls: string[] = [];
    const events: string[] = [];
    const handler: JobHandler = {
      type: 'test.run', targetKind: 'site',
      steps: [
        { name: 'a', title: 'A', run: async (ctx) => { calls.push('a'); ctx.progress(50, 'half of a'); assert.equal(job(r, ctx.job.id).progress, 10); } },
        { name: 'b', title: 'B', weight: 4, run: async () => { calls.push('b'); return 'skipped'; } },
      ],
      onSucceeded: () => events.push('succeeded'),
      onEnded: ({ job: j }) => events.push(`ended ${j.state}`),
    };
    const engine = new JobEngine({ services: r.services, handlers: [handler] });
    const j = engine.createJob('v', 'test.run', { kind: 'site', name: 'hq' }, { why: 'test' });
    assert.equal(j.state, 'NotStarted');
    engine.kick(j.id);
    await engine.settled(j.id);
    const done = job(r, j.id);
    assert.deepEqual(calls, ['a', 'b']);
    assert.equal(done.state, 'Succeeded');
    assert.deepEqual(done.steps.map((s) => [s.state, s.attempts]), [['Succeeded', 1], ['Skipped', 1]]);
    assert.equal(done.progress, 100);
    assert.deepEqual(events, ['succeeded', 'ended Succeeded']);
    assert.ok(done.startedAt !== undefined && done.endedAt !== undefined);
  });

  it('resumes at the first unfinished step after a stop and a reopen of the store', async () => {
    const r1 = rig();
    const counts = { a: 0, b: 0, c: 0 };
    let gate = new Gate();
    const handler: JobHandler = {
      type: 'test.resume', targetKind: 'site',
      steps: [
        { name: 'a', title: 'A', run: async (ctx) => { counts.a++; ctx.set({ chosen: 'hv01' }); } },
        { name: 'b', title: 'B', run: async (ctx) => { counts.b++; assert.equal(ctx.get('chosen'), 'hv01'); await gate.pass(ctx.signal); } },
        { name: 'c', title: 'C', run: async () => { counts.c++; } },
      ],
    };
    const e1 = new JobEngine({ services: r1.services, handlers: [handler] });
    const j = e1.createJob('v', 'test.resume', { kind: 'site', name: 'hq' });
    e1.kick(j.id);
    await gate.reached;
    await e1.stop();
    r1.store.close();
    assert.equal(SqliteStore.open({ path: file }).getJob(j.id)?.state, 'InProgress', 'a stop changes nothing persisted');

    const r2 = rig();
    assert.deepEqual(job(r2, j.id).steps.map((s) => s.state), ['Succeeded', 'InProgress', 'NotStarted']);
    gate = new Gate();
    const e2 = new JobEngine({ services: r2.services, handlers: [handler] });
    e2.start();
    await gate.reached;
    gate.release();
    await e2.settled(j.id);
    assert.deepEqual(counts, { a: 1, b: 2, c: 1 });
    const done = job(r2, j.id);
    assert.equal(done.state, 'Succeeded');
    assert.deepEqual(done.steps.map((s) => s.attempts), [1, 2, 1]);
  });

  it('retries recoverable failures on the back-off schedule (1, 2, 4 min …) and flags a stuck job', async () => {
    const r = rig();
    let failuresLeft = 4;
    let runs = 0;
    const events: string[] = [];
    const handler: JobHandler = {
      type: 'test.retry', targetKind: 'site',
      steps: [{
        name: 'flaky', title: 'Flaky', run: async () => {
          runs++;
          if (failuresLeft-- > 0) throw new RecoverableError('network.unreachable', 'no route to hv-dr', { hint: 'check the VPN' });
        },
      }],
      onRetry: (_ctx, error) => events.push(`retry ${String(error.code)}`),
      onStuck: (_ctx, reason) => events.push(`stuck: ${reason}`),
      onRecovered: () => events.push('recovered'),
    };
    const engine = new JobEngine({ services: r.services, handlers: [handler], stuckAfterFailures: 3 });
    const j = engine.createJob('v', 'test.retry', { kind: 'site', name: 'hq' });
    const t0 = r.clock.now();
    engine.kick(j.id);
    await r.clock.advance(0);
    assert.equal(runs, 1);
    let cur = job(r, j.id);
    assert.equal(cur.state, 'InProgress');
    assert.deepEqual(cur.retry, { step: 'flaky', failures: 1, firstFailureAt: t0, nextAttemptAt: t0 + MINUTE });
    assert.match(cur.steps[0]!.message ?? '', /attempt 1 failed: no route to hv-dr; retrying at .* \(in 1 min\)/);
    await r.clock.advance(MINUTE - 1);
    assert.equal(runs, 1, 'not before the delay');
    await r.clock.advance(1);
    assert.equal(runs, 2);
    assert.equal(job(r, j.id).retry?.nextAttemptAt, t0 + MINUTE + 2 * MINUTE);
    await r.clock.advance(2 * MINUTE);
    assert.equal(runs, 3);
    cur = job(r, j.id);
    assert.equal(cur.retry?.nextAttemptAt, t0 + 3 * MINUTE + 4 * MINUTE);
    assert.match(cur.stuck?.reason ?? '', /Flaky failed 3 times in a row/);
    assert.equal(cur.stuck?.hint, 'check the VPN');
    assert.deepEqual(events.filter((e) => !e.startsWith('retry')).length, 1);
    await r.clock.advance(4 * MINUTE);
    await r.clock.advance(8 * MINUTE);
    await engine.settled(j.id);
    cur = job(r, j.id);
    assert.equal(runs, 5);
    assert.equal(cur.state, 'Succeeded');
    assert.equal(cur.stuck, undefined);
    assert.equal(cur.errors.length, 4);
    assert.deepEqual(events.map((e) => e.replace(/:.*/, '')), ['retry network.unreachable', 'retry network.unreachable', 'retry network.unreachable', 'stuck', 'retry network.unreachable', 'recovered']);
  });

  it('adds jitter on top of the schedule, never before it', async () => {
    const r = rig();
    const services = { ...r.services, random: () => 0.5 };
    const handler: JobHandler = { type: 'test.jitter', targetKind: 'site', steps: [{ name: 's', title: 'S', run: async () => { throw new RecoverableError('x.y', 'fails'); } }] };
    const engine = new JobEngine({ services, handlers: [handler] });
    const j = engine.createJob('v', 'test.jitter', { kind: 'site', name: 'hq' });
    const t0 = r.clock.now();
    engine.kick(j.id);
    await r.clock.advance(0);
    assert.equal(job(r, j.id).retry?.nextAttemptAt, t0 + MINUTE + Math.floor(0.5 * 0.1 * MINUTE));
    engine.requestCancel(j.id);
    await engine.settled(j.id);
    assert.equal(job(r, j.id).state, 'Cancelled');
  });

  it('fails on a non-recoverable error after running the compensation, and says why', async () => {
    const r = rig();
    const events: string[] = [];
    const handler: JobHandler = {
      type: 'test.fail', targetKind: 'site',
      steps: [
        { name: 'a', title: 'A', run: async () => undefined },
        { name: 'b', title: 'B', run: async () => { throw new NonRecoverableError('vm.notFound', 'VM web01 is not on any host', { hint: 'check the name' }); } },
        { name: 'c', title: 'C', run: async () => { events.push('c ran'); } },
      ],
      compensate: async (_ctx, why) => { events.push(`compensate ${why}`); },
      onFailed: (_ctx, error) => events.push(`failed ${String(error.code)}`),
      onEnded: ({ job: j }) => events.push(`ended ${j.state}`),
    };
    const engine = new JobEngine({ services: r.services, handlers: [handler] });
    const j = engine.createJob('v', 'test.fail', { kind: 'site', name: 'hq' });
    engine.kick(j.id);
    await engine.settled(j.id);
    const done = job(r, j.id);
    assert.equal(done.state, 'Failed');
    assert.deepEqual(done.steps.map((s) => s.state), ['Succeeded', 'Failed', 'NotStarted']);
    assert.deepEqual(done.errors.map((e) => [e.code, e.category, e.step, e.hint]), [['vm.notFound', 'nonRecoverable', 'b', 'check the name']]);
    assert.deepEqual(events, ['compensate failed', 'failed vm.notFound', 'ended Failed']);
  });

  it('cancels: the waiting step stops, its command is withdrawn, the compensation runs, the job ends Cancelled', async () => {
    const r = rig();
    const events: string[] = [];
    const handler: JobHandler = {
      type: 'test.cancel', targetKind: 'site',
      steps: [{ name: 'wait', title: 'Wait', run: async (ctx) => { await ctx.runCommand('x', { host: 'hv01', type: 'replication.start', payload: {} }); } }],
      compensate: async (_ctx, why) => { events.push(`compensate ${why}`); },
      onEnded: ({ job: j }) => events.push(`ended ${j.state}`),
    };
    r.store.putObject('v', 'host', 'hv01', {}, [], 0, { connectionState: 'Connected' });
    const engine = new JobEngine({ services: r.services, handlers: [handler] });
    const j = engine.createJob('v', 'test.cancel', { kind: 'site', name: 'hq' });
    engine.kick(j.id);
    await r.clock.advance(0);
    const [cmd] = r.store.commandsOfJob(j.id);
    assert.equal(cmd?.state, 'Pending');
    const answer = engine.requestCancel(j.id);
    assert.ok(answer !== undefined && !('refused' in answer));
    assert.equal(answer.job.state, 'Cancelling');
    await engine.settled(j.id);
    const done = job(r, j.id);
    assert.equal(done.state, 'Cancelled');
    assert.equal(done.steps[0]!.state, 'Cancelled');
    assert.equal(r.store.getCommand(cmd!.id)?.state, 'Cancelled');
    assert.deepEqual(events, ['compensate cancelled', 'ended Cancelled']);
    // Finished jobs refuse cancellation.
    const again = engine.requestCancel(j.id);
    assert.ok(again !== undefined && 'refused' in again);
  });

  it('a compensation interrupted by a restart waits for its own command instead of withdrawing it', async () => {
    const r1 = rig();
    const handler: JobHandler = {
      type: 'test.undo', targetKind: 'site',
      steps: [{ name: 'wait', title: 'Wait', run: async (ctx) => { await ctx.runCommand('x', { host: 'hv01', type: 'replication.start', payload: {} }); } }],
      compensate: async (ctx) => { await ctx.runCommand('undo', { host: 'hv01', type: 'replica.delete', payload: {} }); },
    };
    r1.store.putObject('v', 'host', 'hv01', {}, [], 0, { connectionState: 'Connected' });
    const e1 = new JobEngine({ services: r1.services, handlers: [handler] });
    const j = e1.createJob('v', 'test.undo', { kind: 'site', name: 'hq' });
    e1.kick(j.id);
    await r1.clock.advance(0);
    e1.requestCancel(j.id);
    await r1.clock.advance(0);
    const undo = r1.store.commandsOfJob(j.id).find((c) => c.type === 'replica.delete')!;
    assert.equal(undo.state, 'Pending');
    await e1.stop();
    r1.store.close();

    const r2 = rig();
    const e2 = new JobEngine({ services: r2.services, handlers: [handler] });
    e2.start();
    await r2.clock.advance(0);
    assert.equal(r2.store.getCommand(undo.id)?.state, 'Pending', 'not withdrawn by the resumed cancellation');
    assert.equal(r2.store.commandsOfJob(j.id).filter((c) => c.type === 'replica.delete').length, 1, 'not sent twice');
    applyCommandUpdate(r2.services, 'v', 'hv01', undo.id, { state: 'Succeeded' });
    await e2.settled(j.id);
    assert.equal(job(r2, j.id).state, 'Cancelled');
  });

  it('cancels a job that never started without running any step', async () => {
    const r = rig();
    let ran = false;
    const handler: JobHandler = { type: 'test.idle', targetKind: 'site', steps: [{ name: 's', title: 'S', run: async () => { ran = true; } }] };
    const engine = new JobEngine({ services: r.services, handlers: [handler] });
    const j = engine.createJob('v', 'test.idle', { kind: 'site', name: 'hq' });
    engine.requestCancel(j.id);
    await engine.settled(j.id);
    assert.equal(ran, false);
    assert.equal(job(r, j.id).state, 'Cancelled');
    assert.equal(job(r, j.id).startedAt, undefined);
  });

  it('waits for the same command after a restart, and sends a new one after a recoverable command failure', async () => {
    const r1 = rig();
    const results: JsonObject[] = [];
    const progress: number[] = [];
    const handler: JobHandler = {
      type: 'test.command', targetKind: 'site',
      steps: [{
        name: 'copy', title: 'Copy', run: async (ctx: StepContext) => {
          results.push(await ctx.runCommand('copy', { host: 'hv01', type: 'replication.start', payload: { item: 'web01' } }, (p) => progress.push(p)));
        },
      }],
    };
    r1.store.putObject('v', 'host', 'hv01', {}, [], 0, { connectionState: 'Connected' });
    const e1 = new JobEngine({ services: r1.services, handlers: [handler] });
    const j = e1.createJob('v', 'test.command', { kind: 'site', name: 'hq' });
    e1.kick(j.id);
    await r1.clock.advance(0);
    const first = r1.store.commandsOfJob(j.id);
    assert.equal(first.length, 1);
    await e1.stop();
    r1.store.close();

    const r2 = rig();
    const e2 = new JobEngine({ services: r2.services, handlers: [handler] });
    e2.start();
    await r2.clock.advance(0);
    assert.equal(r2.store.commandsOfJob(j.id).length, 1, 'no second command after the restart');
    applyCommandUpdate(r2.services, 'v', 'hv01', first[0]!.id, { state: 'Running', progress: 40, message: 'copying' });
    await r2.clock.advance(0);
    assert.equal(job(r2, j.id).steps[0]!.progress, 40);
    assert.equal(job(r2, j.id).steps[0]!.message, 'copying');
    applyCommandUpdate(r2.services, 'v', 'hv01', first[0]!.id, { state: 'Failed', error: { code: 'network.reset', category: 'recoverable', message: 'connection reset' } });
    await r2.clock.advance(0);
    assert.equal(job(r2, j.id).retry?.failures, 1);
    await r2.clock.advance(MINUTE);
    const cmds = r2.store.commandsOfJob(j.id);
    assert.equal(cmds.length, 2, 'the retry sent a new command');
    applyCommandUpdate(r2.services, 'v', 'hv01', cmds[1]!.id, { state: 'Succeeded', result: { firstPoint: 'p-1' } });
    await e2.settled(j.id);
    assert.equal(job(r2, j.id).state, 'Succeeded');
    assert.deepEqual(results, [{ firstPoint: 'p-1' }]);
    assert.ok(progress.includes(40));
    assert.equal(job(r2, j.id).steps[0]!.message, 'replication.start on hv01: done', 'a finished step does not still read "running"');
  });

  it('fails a step whose host was unregistered while it waited', async () => {
    const r = rig();
    const handler: JobHandler = {
      type: 'test.gone', targetKind: 'site',
      steps: [{ name: 's', title: 'S', run: async (ctx) => { await ctx.runCommand('x', { host: 'hv01', type: 'replica.create', payload: {} }); } }],
    };
    r.store.putObject('v', 'host', 'hv01', {}, [], 0, { connectionState: 'Connected' });
    const engine = new JobEngine({ services: r.services, handlers: [handler] });
    const j = engine.createJob('v', 'test.gone', { kind: 'site', name: 'hq' });
    engine.kick(j.id);
    await r.clock.advance(0);
    r.store.deleteObject('v', 'host', 'hv01');
    await r.clock.advance(10 * MINUTE);
    await engine.settled(j.id);
    assert.equal(job(r, j.id).state, 'Failed');
    assert.equal(job(r, j.id).errors[0]?.code, 'host.notRegistered');
  });
});
