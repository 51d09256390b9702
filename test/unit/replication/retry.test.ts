import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ManualClock } from '../../../provider/clock';
import {
  BugError, InvalidInputError, LifeboatError, NonRecoverableError, RecoverableError, ResyncRequiredError,
} from '../../../provider/errors';
import { MINUTE } from '../../../provider/units';
import {
  backoffDelay, DEFAULT_JITTER_RATIO, healthOfError, ProgressWatch, Retrier, type RetryReport, seededRandom,
} from '../../../provider/replication/retry';

const net = (): RecoverableError => new RecoverableError('net.unreachable', 'replica host unreachable');

/** An operation that fails `failures` times with `error()` then returns 'done', recording when each attempt ran. */
function flaky(clock: ManualClock, failures: number, error: () => unknown = net): { op: () => Promise<string>; times: number[] } {
  const times: number[] = [];
  return {
    times,
    op: async () => {
      times.push(clock.now());
      if (times.length <= failures) throw error();
      return 'done';
    },
  };
}

describe('replication/retry', () => {
  describe('backoffDelay (the schedule, no jitter)', () => {
    const table: [number, number][] = [[1, 1], [2, 2], [3, 4], [4, 8], [5, 10], [6, 30], [7, 30], [8, 30], [100, 30]];
    for (const [failures, minutes] of table) {
      it(`after ${failures} consecutive failure(s): ${minutes} min`, () => {
        assert.equal(backoffDelay(failures), minutes * MINUTE);
      });
    }

    it('matches the table of docs/replication-policy.md §1', () => {
      const doc = readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'replication-policy.md'), 'utf8');
      const rows = [...doc.matchAll(/^\| (\d+)( and later)? \| (\d+) min \|$/gm)].map((m) => [Number(m[1]), Number(m[3])] as const);
      assert.equal(rows.length, 6);
      for (const [failures, minutes] of rows) assert.equal(backoffDelay(failures), minutes * MINUTE, `row ${failures}`);
      assert.equal(backoffDelay(7), rows[5]![1] * MINUTE);
    });

    it('takes a custom schedule and steady delay', () => {
      const o = { schedule: [10, 20], steadyMs: 50 };
      assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, o)), [10, 20, 50, 50]);
    });

    it('refuses failure counts below 1 or fractional, and invalid options', () => {
      for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => backoffDelay(n), BugError);
      assert.throws(() => backoffDelay(1, { jitterRatio: 2 }), InvalidInputError);
      assert.throws(() => backoffDelay(1, { schedule: [-1] }), InvalidInputError);
      assert.throws(() => new Retrier({ maxAttempts: 0 }), InvalidInputError);
      assert.throws(() => new Retrier({ stuckAfterAttempts: 0 }), InvalidInputError);
    });

    it('jitter only adds, is bounded by the ratio, and is reproducible from a seed', () => {
      for (let seed = 1; seed <= 50; seed++) {
        const random = seededRandom(seed);
        for (let n = 1; n <= 7; n++) {
          const base = backoffDelay(n);
          const d = backoffDelay(n, { jitterRatio: 0.1, random });
          assert.ok(d >= base && d <= base * 1.1, `seed ${seed} n ${n}: ${d} vs ${base}`);
        }
      }
      const sequence = (seed: number): number[] => {
        const random = seededRandom(seed);
        return [1, 2, 3, 6].map((n) => backoffDelay(n, { jitterRatio: 0.5, random }));
      };
      assert.deepEqual(sequence(7), sequence(7));
      assert.notDeepEqual(sequence(7), sequence(8));
    });

    it('jitter spreads a fleet: agents seeded differently do not retry in lockstep', () => {
      const firstRetry = new Set<number>();
      for (let agent = 0; agent < 100; agent++) firstRetry.add(backoffDelay(1, { jitterRatio: DEFAULT_JITTER_RATIO, random: seededRandom(agent) }));
      // 6 s of spread at millisecond resolution: collisions are rare.
      assert.ok(firstRetry.size >= 95, `only ${firstRetry.size} distinct delays`);
    });
  });

  describe('healthOfError', () => {
    it('maps categories to health', () => {
      assert.equal(healthOfError('recoverable'), 'Warning');
      assert.equal(healthOfError('resyncRequired'), 'Warning');
      assert.equal(healthOfError('resyncRequired', { automaticResync: false }), 'Critical');
      assert.equal(healthOfError('nonRecoverable'), 'Critical');
      assert.equal(healthOfError('invalidInput'), 'Critical');
      assert.equal(healthOfError('bug'), 'Critical');
    });
  });

  describe('Retrier with a ManualClock', () => {
    it('runs the documented schedule: attempts at 0, 1, 3, 7, 15, 25, 55, 85 min', async () => {
      const clock = new ManualClock();
      const t0 = clock.now();
      const { op, times } = flaky(clock, 7);
      const reports: RetryReport[] = [];
      const p = new Retrier({ clock, jitterRatio: 0, onAttemptFailed: (r) => reports.push(r) }).run(op);
      await clock.advance(90 * MINUTE);
      assert.equal(await p, 'done');
      assert.deepEqual(times.map((t) => (t - t0) / MINUTE), [0, 1, 3, 7, 15, 25, 55, 85]);
      assert.deepEqual(reports.map((r) => r.delayMs! / MINUTE), [1, 2, 4, 8, 10, 30, 30]);
      assert.ok(reports.every((r) => r.willRetry && r.health === 'Warning' && r.category === 'recoverable'));
      assert.ok(reports.every((r) => r.firstFailureAt === t0));
      assert.deepEqual(reports.map((r) => r.attempt), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(reports.map((r) => r.nextAttemptAt), times.slice(1));
      assert.equal(clock.pendingTimers, 0);
    });

    it('measures each delay from the failure, so a slow attempt does not shorten the next wait', async () => {
      const clock = new ManualClock();
      const t0 = clock.now();
      const times: number[] = [];
      const op = async (): Promise<string> => {
        times.push(clock.now());
        await clock.sleep(3 * MINUTE); // a timeout that takes 3 min to fire
        if (times.length < 3) throw net();
        return 'ok';
      };
      const p = new Retrier({ clock, jitterRatio: 0 }).run(op);
      await clock.advance(30 * MINUTE);
      assert.equal(await p, 'ok');
      // fail at 3 → wait 1 → start 4, fail at 7 → wait 2 → start 9
      assert.deepEqual(times.map((t) => (t - t0) / MINUTE), [0, 4, 9]);
    });

    it('applies seeded jitter in the retrier', async () => {
      const clock = new ManualClock();
      const { op } = flaky(clock, 2);
      const delays: number[] = [];
      const p = new Retrier({ clock, random: seededRandom(42), onAttemptFailed: (r) => delays.push(r.delayMs!) }).run(op);
      await clock.advance(10 * MINUTE);
      await p;
      const random = seededRandom(42);
      assert.deepEqual(delays, [1, 2].map((n) => backoffDelay(n, { jitterRatio: DEFAULT_JITTER_RATIO, random })));
      assert.notDeepEqual(delays, [MINUTE, 2 * MINUTE]);
    });

    const fatal: [string, () => unknown, RetryReport['health']][] = [
      ['nonRecoverable', () => new NonRecoverableError('auth.denied', 'certificate rejected'), 'Critical'],
      ['invalidInput', () => new InvalidInputError('policy.invalid', 'bad policy'), 'Critical'],
      ['bug', () => new BugError('tracker.invariant', 'broken'), 'Critical'],
      ['resyncRequired', () => new ResyncRequiredError('segment.lost', 'segment 9 missing'), 'Warning'],
      ['a foreign error (counts as bug)', () => new TypeError('x is undefined'), 'Critical'],
    ];
    for (const [name, make, health] of fatal) {
      it(`stops at once on ${name}, rethrowing the error unchanged`, async () => {
        const clock = new ManualClock();
        const err = make();
        const { op, times } = flaky(clock, 99, () => err);
        const reports: RetryReport[] = [];
        const p = new Retrier({ clock, onAttemptFailed: (r) => reports.push(r) }).run(op);
        const settled = p.then(() => undefined, (e: unknown) => e);
        await clock.advance(60 * MINUTE);
        assert.equal(await settled, err);
        assert.equal(times.length, 1);
        assert.equal(reports.length, 1);
        assert.equal(reports[0]!.willRetry, false);
        assert.equal(reports[0]!.delayMs, undefined);
        assert.equal(reports[0]!.health, health);
        assert.equal(clock.pendingTimers, 0);
      });
    }

    it('gives up after maxAttempts with the last error and health Critical', async () => {
      const clock = new ManualClock();
      let n = 0;
      const errors: unknown[] = [];
      const op = async (): Promise<never> => {
        const e = new RecoverableError('net.unreachable', `attempt ${++n}`);
        errors.push(e);
        throw e;
      };
      const reports: RetryReport[] = [];
      const p = new Retrier({ clock, jitterRatio: 0, maxAttempts: 3, onAttemptFailed: (r) => reports.push(r) }).run(op);
      const settled = p.then(() => undefined, (e: unknown) => e);
      await clock.advance(60 * MINUTE);
      assert.equal(await settled, errors[2]);
      assert.equal(n, 3);
      assert.deepEqual(reports.map((r) => [r.willRetry, r.health]), [[true, 'Warning'], [true, 'Warning'], [false, 'Critical']]);
    });

    it('aborting while waiting rejects with the reason and leaves no timer', async () => {
      const clock = new ManualClock();
      const { op, times } = flaky(clock, 99);
      const ac = new AbortController();
      const p = new Retrier({ clock, signal: ac.signal }).run(op);
      const settled = p.then(() => undefined, (e: unknown) => e);
      await clock.advance(2 * MINUTE); // attempts at 0 and ~1 min
      const reason = new Error('shutting down');
      ac.abort(reason);
      assert.equal(await settled, reason);
      const attempts = times.length;
      await clock.advance(120 * MINUTE);
      assert.equal(times.length, attempts);
      assert.equal(clock.pendingTimers, 0);
    });

    it('an operation failing after the abort surfaces the abort reason, not its error, and is not reported', async () => {
      const clock = new ManualClock();
      const ac = new AbortController();
      const reports: RetryReport[] = [];
      const p = new Retrier({ clock, signal: ac.signal, onAttemptFailed: (r) => reports.push(r) }).run(async (ctx) => {
        ac.abort('stop');
        assert.equal(ctx.signal.aborted, true);
        throw net();
      });
      await assert.rejects(p, (e: unknown) => e === 'stop');
      assert.equal(reports.length, 0);
    });

    it('reports stuck after stuckAfterAttempts failures without progress, with health Critical, and keeps retrying', async () => {
      const clock = new ManualClock();
      const { op, times } = flaky(clock, 10);
      const reports: RetryReport[] = [];
      const p = new Retrier({ clock, jitterRatio: 0, stuckAfterAttempts: 4, what: 'delta cycle', onAttemptFailed: (r) => reports.push(r) }).run(op);
      await clock.advance(400 * MINUTE);
      assert.equal(await p, 'done');
      assert.equal(times.length, 11);
      assert.deepEqual(reports.map((r) => r.stuck !== undefined), [false, false, false, true, true, true, true, true, true, true]);
      assert.deepEqual(reports.map((r) => r.health), ['Warning', 'Warning', 'Warning', 'Critical', 'Critical', 'Critical', 'Critical', 'Critical', 'Critical', 'Critical']);
      assert.match(reports[3]!.stuck!.reason, /retrying delta cycle made no progress in 4 consecutive cycles \(7 min\)/);
    });

    it('progress within failing attempts resets the back-off and the stuck count', async () => {
      const clock = new ManualClock();
      const t0 = clock.now();
      const times: number[] = [];
      const reports: RetryReport[] = [];
      const op = async (ctx: { progress(): void }): Promise<string> => {
        times.push(clock.now());
        if (times.length > 8) return 'done';
        ctx.progress(); // e.g. one segment applied before the link dropped
        throw net();
      };
      const p = new Retrier({ clock, jitterRatio: 0, stuckAfterAttempts: 2, onAttemptFailed: (r) => reports.push(r) }).run(op);
      await clock.advance(20 * MINUTE);
      assert.equal(await p, 'done');
      assert.deepEqual(times.map((t) => (t - t0) / MINUTE), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      assert.ok(reports.every((r) => r.stuck === undefined && r.consecutiveFailures === 1));
    });

    it('resetOnProgress: false keeps the back-off growing', async () => {
      const clock = new ManualClock();
      const t0 = clock.now();
      const times: number[] = [];
      const op = async (ctx: { progress(): void }): Promise<string> => {
        times.push(clock.now());
        if (times.length > 3) return 'done';
        ctx.progress();
        throw net();
      };
      const p = new Retrier({ clock, jitterRatio: 0, resetOnProgress: false }).run(op);
      await clock.advance(20 * MINUTE);
      await p;
      assert.deepEqual(times.map((t) => (t - t0) / MINUTE), [0, 1, 3, 7]);
    });

    it('giveUpWhenStuck throws retry.stuck (nonRecoverable) with the last error as cause', async () => {
      const clock = new ManualClock();
      const { op } = flaky(clock, 99);
      const p = new Retrier({ clock, jitterRatio: 0, stuckAfterAttempts: 3, giveUpWhenStuck: true }).run(op);
      const settled = p.then(() => undefined, (e: unknown) => e);
      await clock.advance(60 * MINUTE);
      const e = await settled;
      assert.ok(LifeboatError.isInstance(e));
      assert.equal(e.code, 'retry.stuck');
      assert.equal(e.category, 'nonRecoverable');
      assert.ok(LifeboatError.isInstance(e.cause) && e.cause.code === 'net.unreachable');
      assert.ok(e.hint);
    });

    it('an observer that throws does not change the outcome', async () => {
      const clock = new ManualClock();
      const { op } = flaky(clock, 1);
      const p = new Retrier({ clock, jitterRatio: 0, onAttemptFailed: () => { throw new Error('observer broke'); } }).run(op);
      await clock.advance(2 * MINUTE);
      assert.equal(await p, 'done');
    });
  });

  describe('ProgressWatch', () => {
    it('counts cycles without progress and resets on progress', () => {
      const w = new ProgressWatch({ afterCycles: 3, what: 'resync of disk-0' });
      assert.equal(w.endCycle(0, false), undefined);
      assert.equal(w.endCycle(MINUTE, false), undefined);
      const s = w.endCycle(2 * MINUTE, false);
      assert.deepEqual(s, { cycles: 3, since: 0, reason: 'resync of disk-0 made no progress in 3 consecutive cycles (2 min)' });
      assert.equal(w.endCycle(3 * MINUTE, true), undefined);
      assert.equal(w.endCycle(4 * MINUTE, false), undefined);
      assert.equal(w.endCycle(5 * MINUTE, false), undefined);
      assert.equal(w.endCycle(6 * MINUTE, false)?.since, 3 * MINUTE);
      w.reset();
      assert.equal(w.stuck(7 * MINUTE), undefined);
    });
  });
});
