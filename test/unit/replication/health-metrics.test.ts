import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { InvalidInputError } from '../../../provider/errors';
import { GiB, MiB, MINUTE, SECOND } from '../../../provider/units';
import {
  defaultRpoThresholdMs, diskHealth, logBudget, projectRpo, type RateEstimate, timeToBudgetExhaustedMs, updateRate,
} from '../../../provider/replication/health-metrics';

const T0 = Date.UTC(2026, 0, 5, 12);

describe('replication/health-metrics', () => {
  describe('updateRate (exponentially weighted over time)', () => {
    it('takes the first sample as is', () => {
      assert.deepEqual(updateRate(undefined, { bytes: 30 * MiB, startMs: T0, endMs: T0 + 30 * SECOND }),
        { bytesPerSecond: MiB, updatedAt: T0 + 30 * SECOND, samples: 1 });
    });

    it('moves half way toward a sample that lasts one half-life', () => {
      const prev: RateEstimate = { bytesPerSecond: 100, updatedAt: T0, samples: 5 };
      const next = updateRate(prev, { bytes: 300 * 600, startMs: T0, endMs: T0 + 10 * MINUTE }, { halfLifeMs: 10 * MINUTE })!;
      assert.equal(next.bytesPerSecond, 200);
      assert.equal(next.samples, 6);
    });

    it('weights by time, not by count: two 30 s cycles equal one 60 s cycle at the same rate', () => {
      fc.assert(fc.property(
        fc.double({ min: 0, max: 1e9, noNaN: true }), fc.double({ min: 0, max: 1e9, noNaN: true }), fc.integer({ min: 1, max: 3600 }),
        (prevRate, rate, seconds) => {
          const prev: RateEstimate = { bytesPerSecond: prevRate, updatedAt: T0, samples: 1 };
          const half = seconds * SECOND;
          const twice = updateRate(updateRate(prev, { bytes: rate * seconds, startMs: T0, endMs: T0 + half }), {
            bytes: rate * seconds, startMs: T0 + half, endMs: T0 + 2 * half,
          })!;
          const once = updateRate(prev, { bytes: rate * 2 * seconds, startMs: T0, endMs: T0 + 2 * half })!;
          assert.ok(Math.abs(twice.bytesPerSecond - once.bytesPerSecond) <= 1e-6 * Math.max(1, prevRate, rate));
        },
      ), { seed: 7, numRuns: 200 });
    });

    it('converges to a steady rate and ignores empty intervals', () => {
      let e: RateEstimate | undefined = { bytesPerSecond: 0, updatedAt: T0, samples: 1 };
      // 40 cycles of 3 min = 8 half-lives: within 1 % of the steady rate.
      for (let i = 0; i < 40; i++) e = updateRate(e, { bytes: 5 * MiB * 180, startMs: T0 + i * 3 * MINUTE, endMs: T0 + (i + 1) * 3 * MINUTE });
      assert.ok(Math.abs(e!.bytesPerSecond - 5 * MiB) / (5 * MiB) < 0.01, `${e!.bytesPerSecond}`);
      assert.equal(updateRate(e, { bytes: 1, startMs: T0, endMs: T0 }), e);
      assert.throws(() => updateRate(e, { bytes: -1, startMs: T0, endMs: T0 + 1 }), InvalidInputError);
    });
  });

  describe('log budget', () => {
    it('is pending bytes against 50 % of the disk size', () => {
      assert.deepEqual(logBudget(4 * GiB, 10 * GiB), { pendingBytes: 4 * GiB, thresholdBytes: 5 * GiB, usedFraction: 0.8 });
      assert.equal(logBudget(5 * GiB, 10 * GiB).usedFraction, 1);
      assert.equal(logBudget(1 * GiB, 10 * GiB, 0.2).usedFraction, 0.5);
      assert.throws(() => logBudget(1, 0), InvalidInputError);
      assert.throws(() => logBudget(-1, 10), InvalidInputError);
    });

    it('time to exhaustion follows the growth of the backlog', () => {
      const b = logBudget(4 * GiB, 10 * GiB); // 1 GiB left
      assert.equal(timeToBudgetExhaustedMs(b, 2 * MiB, 1 * MiB), 1024 * SECOND);
      assert.equal(timeToBudgetExhaustedMs(b, 1 * MiB, 1 * MiB), undefined);
      assert.equal(timeToBudgetExhaustedMs(logBudget(6 * GiB, 10 * GiB), 0, 10), 0);
    });
  });

  describe('projectRpo', () => {
    const base = { now: T0, lastPointTime: T0 - 2 * MINUTE, copyFrequencyMs: 5 * MINUTE, nextCutAt: T0 + 3 * MINUTE };
    it('an idle disk: the next point lands at the cut', () => {
      const r = projectRpo({ ...base, backlogBytes: 0, shippingBytesPerSecond: undefined });
      assert.deepEqual(r, { currentRpoMs: 2 * MINUTE, nextCutAt: T0 + 3 * MINUTE, nextPointAt: T0 + 3 * MINUTE, projectedRpoMs: 5 * MINUTE, stalled: false });
    });
    it('a backlog that ships before the cut does not delay the point', () => {
      const r = projectRpo({ ...base, backlogBytes: 60 * MiB, shippingBytesPerSecond: 1 * MiB, churnBytesPerSecond: 0.5 * MiB });
      // 60 + 0.5 × 180 = 150 MiB at 1 MiB/s = 150 s < 180 s to the cut.
      assert.equal(r.projectedRpoMs, 5 * MINUTE);
    });
    it('a backlog that ships after the cut delays the point and grows the RPO', () => {
      const r = projectRpo({ ...base, backlogBytes: 600 * MiB, shippingBytesPerSecond: 1 * MiB, churnBytesPerSecond: 1 * MiB });
      // 600 + 180 = 780 MiB at 1 MiB/s = 13 min after now; last point was 2 min ago.
      assert.equal(r.nextPointAt, T0 + 13 * MINUTE);
      assert.equal(r.projectedRpoMs, 15 * MINUTE);
    });
    it('the cut defaults to one copy frequency from now; unknown vs stalled shipping', () => {
      const unknown = projectRpo({ now: T0, lastPointTime: T0, copyFrequencyMs: 30 * SECOND, backlogBytes: 1, shippingBytesPerSecond: undefined });
      assert.equal(unknown.nextCutAt, T0 + 30 * SECOND);
      assert.equal(unknown.projectedRpoMs, undefined);
      assert.equal(unknown.stalled, false);
      const stalled = projectRpo({ now: T0, lastPointTime: T0, copyFrequencyMs: 30 * SECOND, backlogBytes: 1, shippingBytesPerSecond: 0 });
      assert.equal(stalled.stalled, true);
      assert.equal(stalled.nextPointAt, undefined);
      const first = projectRpo({ now: T0, lastPointTime: undefined, copyFrequencyMs: 30 * SECOND, backlogBytes: 0, shippingBytesPerSecond: 1 });
      assert.equal(first.currentRpoMs, undefined);
      assert.equal(first.projectedRpoMs, undefined);
    });
  });

  describe('diskHealth verdict', () => {
    const healthy = {
      now: T0, diskSizeBytes: 100 * GiB, pendingLogBytes: 10 * MiB, lastPointTime: T0 - 1 * MINUTE,
      copyFrequencyMs: 5 * MINUTE, nextCutAt: T0 + 4 * MINUTE,
      churn: { bytesPerSecond: 1 * MiB, updatedAt: T0, samples: 10 }, shipping: { bytesPerSecond: 10 * MiB, updatedAt: T0, samples: 10 },
    };

    it('Normal when the RPO is under the threshold and the budget is low', () => {
      const r = diskHealth(healthy);
      assert.equal(r.health, 'Normal');
      assert.deepEqual(r.reasons, []);
      assert.equal(r.reason, 'RPO 1 min, log budget 0 % used');
      assert.equal(r.rpoThresholdMs, 15 * MINUTE);
    });

    it('Warning when the budget is over 80 % (trouble before resync)', () => {
      const r = diskHealth({ ...healthy, pendingLogBytes: 42 * GiB });
      assert.equal(r.health, 'Warning');
      assert.match(r.reason, /pending logs use 84 % of the budget before resync \(42\.0 GiB of 50\.0 GiB\)/);
    });

    it('Warning when the budget will run out within the horizon', () => {
      const r = diskHealth({ ...healthy, pendingLogBytes: 30 * GiB, churn: { bytesPerSecond: 20 * MiB, updatedAt: T0, samples: 3 } });
      // 20 GiB left, growing at 10 MiB/s: 2048 s.
      assert.equal(r.timeToResyncMs, 2048 * SECOND);
      assert.equal(r.health, 'Warning');
      assert.ok(r.reasons.some((x) => /a resync will be required in 34 min/.test(x)), r.reasons.join('; '));
    });

    it('Warning when the current RPO is over the threshold', () => {
      const r = diskHealth({ ...healthy, lastPointTime: T0 - 20 * MINUTE });
      assert.equal(r.health, 'Warning');
      assert.match(r.reason, /^RPO 20 min is over the threshold of 15 min/);
    });

    it('Warning when the projected RPO will be over the threshold', () => {
      const r = diskHealth({ ...healthy, pendingLogBytes: 8 * GiB, shipping: { bytesPerSecond: 5 * MiB, updatedAt: T0, samples: 3 } });
      assert.equal(r.health, 'Warning');
      assert.match(r.reason, /RPO is expected to reach \d+ min by the next point/);
    });

    it('Warning when shipping is measured stalled', () => {
      const r = diskHealth({ ...healthy, shipping: { bytesPerSecond: 0, updatedAt: T0, samples: 3 } });
      assert.equal(r.health, 'Warning');
      assert.match(r.reason, /shipping is stalled/);
    });

    it('before the first point only the budget counts', () => {
      const r = diskHealth({ ...healthy, lastPointTime: undefined, shipping: undefined });
      assert.equal(r.health, 'Normal');
      assert.equal(r.reason, 'no recovery point yet');
    });

    it('the default RPO threshold is 3 × copy frequency, at least 15 min', () => {
      assert.equal(defaultRpoThresholdMs(30 * SECOND), 15 * MINUTE);
      assert.equal(defaultRpoThresholdMs(5 * MINUTE), 15 * MINUTE);
      assert.equal(defaultRpoThresholdMs(15 * MINUTE), 45 * MINUTE);
    });
  });
});
