import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../provider/clock';
import { BugError, InvalidInputError } from '../../../provider/errors';
import { KiB, MiB, SECOND } from '../../../provider/units';
import { BandwidthLimiter } from '../../../provider/replication/bandwidth';
import { DailyWindow } from '../../../provider/replication/window';

const PIECE = 64 * KiB;

/** Take `PIECE` bytes in a loop until stopped, counting what was granted. */
function pump(limiter: BandwidthLimiter, piece = PIECE): { granted: () => number; stop: () => Promise<void> } {
  let granted = 0;
  const ac = new AbortController();
  const loop = (async () => {
    for (;;) {
      await limiter.take(piece, ac.signal);
      granted += piece;
    }
  })().catch(() => undefined);
  return {
    granted: () => granted,
    stop: async () => {
      ac.abort();
      await loop;
    },
  };
}

describe('replication/bandwidth', () => {
  it('unlimited when the limit is 0 or absent: takes resolve without time passing', async () => {
    for (const bytesPerSecond of [undefined, 0]) {
      const clock = new ManualClock();
      const limiter = new BandwidthLimiter({ clock, bytesPerSecond });
      await limiter.take(10 * 1024 * MiB);
      assert.equal(clock.pendingTimers, 0);
      assert.equal(limiter.bytesGranted, 10 * 1024 * MiB);
      assert.equal(limiter.rateAt(clock.now()), undefined);
    }
  });

  it('over a simulated minute, passes the limit within one burst', async () => {
    const clock = new ManualClock();
    const rate = 1 * MiB;
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: rate });
    const p = pump(limiter);
    await clock.advance(60 * SECOND);
    const granted = p.granted();
    await p.stop();
    const expected = rate * 60;
    // The bucket starts full (one burst = 1 s of rate); then exactly the rate.
    assert.ok(granted <= expected + rate, `granted ${granted} > ${expected + rate}`);
    assert.ok(granted >= expected - PIECE, `granted ${granted} < ${expected - PIECE}`);
  });

  it('splits a take larger than a burst: it completes only after the rate allows all of it', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 100 * KiB });
    let doneAt: number | undefined;
    const p = limiter.take(1000 * KiB).then(() => { doneAt = clock.now(); });
    await clock.advance(20 * SECOND);
    await p;
    // 100 KiB immediately (full bucket) + 900 KiB at 100 KiB/s.
    assert.equal(doneAt! - t0, 9 * SECOND);
  });

  it('a smaller burst makes the traffic smoother', async () => {
    const clock = new ManualClock();
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 1 * MiB, burstSeconds: 0.1 });
    const p = pump(limiter, 16 * KiB);
    await clock.advance(10 * SECOND);
    const granted = p.granted();
    await p.stop();
    assert.ok(granted <= 10 * MiB + 0.1 * MiB && granted >= 10 * MiB - 16 * KiB, `granted ${granted}`);
  });

  it('switches to the off-hours limit at the window edges', async () => {
    // Start at 21:59 UTC; off-hours 22:00–06:00 UTC at 4 MiB/s, 1 MiB/s by day.
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 21, 59));
    const window = new DailyWindow({ start: '22:00', end: '06:00' });
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 1 * MiB, offHours: { window, bytesPerSecond: 4 * MiB } });
    assert.equal(limiter.rateAt(clock.now()), 1 * MiB);
    assert.equal(limiter.rateAt(Date.UTC(2026, 0, 5, 22, 0)), 4 * MiB);
    const p = pump(limiter);
    await clock.advance(60 * SECOND); // to 22:00
    const day = p.granted();
    await clock.advance(60 * SECOND); // to 22:01
    const night = p.granted() - day;
    await p.stop();
    assert.ok(day <= 61 * MiB && day >= 60 * MiB - PIECE, `day minute ${day}`);
    // The first night second may add one burst of the new rate.
    assert.ok(night <= 240 * MiB + 4 * MiB && night >= 240 * MiB - 2 * PIECE, `night minute ${night}`);
  });

  it('at the morning edge, clips the bucket to the day burst and slows down at once', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 6, 5, 59, 30));
    const window = new DailyWindow({ start: '22:00', end: '06:00' });
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 1 * MiB, offHours: { window, bytesPerSecond: 0 } });
    await limiter.take(1024 * MiB); // unlimited inside the window: no waiting
    assert.equal(clock.pendingTimers, 0);
    await clock.advance(30 * SECOND); // to 06:00: an unlimited bucket would be infinite here
    const q = pump(limiter);
    await clock.advance(30 * SECOND); // 06:00–06:00:30 at 1 MiB/s
    const morning = q.granted();
    await q.stop();
    assert.ok(morning <= 31 * MiB && morning >= 30 * MiB - PIECE, `morning ${morning}`);
  });

  it('serves concurrent takers first come, first served: two pumps share the rate', async () => {
    const clock = new ManualClock();
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 2 * MiB });
    const a = pump(limiter);
    const b = pump(limiter);
    await clock.advance(30 * SECOND);
    const ga = a.granted();
    const gb = b.granted();
    await a.stop();
    await b.stop();
    assert.ok(ga + gb <= 62 * MiB && ga + gb >= 60 * MiB - 2 * PIECE, `total ${ga + gb}`);
    assert.ok(Math.abs(ga - gb) <= PIECE, `unfair: ${ga} vs ${gb}`);
  });

  it('an aborted take rejects with the reason and does not block the takes behind it', async () => {
    const clock = new ManualClock();
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 1 * MiB });
    await limiter.take(1 * MiB); // empty the bucket
    const ac = new AbortController();
    const big = limiter.take(100 * MiB, ac.signal).then(() => 'done', (e: unknown) => e);
    let smallDone = false;
    const small = limiter.take(PIECE).then(() => { smallDone = true; });
    await clock.advance(SECOND);
    assert.equal(smallDone, false);
    ac.abort('cancelled');
    assert.equal(await big, 'cancelled');
    await clock.advance(SECOND);
    await small;
    assert.equal(smallDone, true);
    await assert.rejects(limiter.take(1, ac.signal), (e: unknown) => e === 'cancelled');
  });

  it('reconfigure applies new limits from now', async () => {
    const clock = new ManualClock();
    const limiter = new BandwidthLimiter({ clock, bytesPerSecond: 1 * MiB });
    const p = pump(limiter);
    await clock.advance(10 * SECOND);
    const before = p.granted();
    limiter.reconfigure({ bytesPerSecond: 3 * MiB });
    await clock.advance(10 * SECOND);
    const after = p.granted() - before;
    await p.stop();
    assert.ok(after <= 30 * MiB + 3 * MiB && after >= 30 * MiB - 2 * PIECE, `after ${after}`);
    assert.match(limiter.toString(), /3\.00 MiB\/s/);
  });

  it('refuses invalid limits and takes', async () => {
    assert.throws(() => new BandwidthLimiter({ bytesPerSecond: -1 }), InvalidInputError);
    assert.throws(() => new BandwidthLimiter({ bytesPerSecond: Number.NaN }), InvalidInputError);
    assert.throws(() => new BandwidthLimiter({ burstSeconds: 0 }), InvalidInputError);
    const limiter = new BandwidthLimiter({ bytesPerSecond: 10 });
    assert.throws(() => limiter.reconfigure({ bytesPerSecond: -5 }), InvalidInputError);
    assert.equal(limiter.rateAt(0), 10);
    await assert.rejects(limiter.take(-1), BugError);
  });
});
