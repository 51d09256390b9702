import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import { HOUR, MINUTE } from '../../../provider/units';
import { DailyWindow, formatTimeOfDay, parseTimeOfDay, startAt } from '../../../provider/replication/window';

const at = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();

function assertInvalid(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => LifeboatError.isInstance(e) && e.code === code && e.category === 'invalidInput' && e.hint !== undefined);
}

describe('replication/window', () => {
  it('parses and formats times of day', () => {
    assert.equal(parseTimeOfDay('00:00'), 0);
    assert.equal(parseTimeOfDay('22:30'), 22 * 60 + 30);
    assert.equal(parseTimeOfDay('23:59'), 1439);
    for (const bad of ['24:00', '7:00', '07:60', '0700', '07:00:00', '', ' 07:00']) assert.equal(parseTimeOfDay(bad), undefined, bad);
    assert.equal(formatTimeOfDay(22 * 60 + 5), '22:05');
  });

  it('refuses bad input with codes, hints and the location given', () => {
    assertInvalid(() => new DailyWindow({ start: '25:00', end: '06:00' }), 'window.invalidTime');
    assertInvalid(() => new DailyWindow({ start: '22:00', end: '22:00' }), 'window.empty');
    assertInvalid(() => new DailyWindow({ start: '22:00', end: '06:00', timeZone: 'Mars/Olympus' }), 'window.invalidTimeZone');
    assertInvalid(() => startAt(0, { kind: 'dailyAt', time: '9pm' }), 'window.invalidTime');
    try {
      new DailyWindow({ start: 'x', end: '06:00' }, { path: '/policies/0/offHours' });
      assert.fail('should throw');
    } catch (e) {
      assert.ok(LifeboatError.isInstance(e));
      assert.deepEqual(e.where, { path: '/policies/0/offHours' });
    }
  });

  describe('a UTC window wrapping midnight, 22:00–06:00', () => {
    const w = new DailyWindow({ start: '22:00', end: '06:00' });
    const cases: [string, boolean, string, string][] = [
      // time, contains, nextStart, nextEnd
      ['2026-01-05T12:00:00.000Z', false, '2026-01-05T22:00:00.000Z', '2026-01-06T06:00:00.000Z'],
      ['2026-01-05T21:59:59.999Z', false, '2026-01-05T22:00:00.000Z', '2026-01-06T06:00:00.000Z'],
      ['2026-01-05T22:00:00.000Z', true, '2026-01-06T22:00:00.000Z', '2026-01-06T06:00:00.000Z'],
      ['2026-01-05T23:59:00.000Z', true, '2026-01-06T22:00:00.000Z', '2026-01-06T06:00:00.000Z'],
      ['2026-01-06T00:00:00.000Z', true, '2026-01-06T22:00:00.000Z', '2026-01-06T06:00:00.000Z'],
      ['2026-01-06T05:59:59.999Z', true, '2026-01-06T22:00:00.000Z', '2026-01-06T06:00:00.000Z'],
      ['2026-01-06T06:00:00.000Z', false, '2026-01-06T22:00:00.000Z', '2026-01-07T06:00:00.000Z'],
    ];
    for (const [t, inside, start, end] of cases) {
      it(`at ${t}: contains=${inside}, nextStart ${start}, nextEnd ${end}`, () => {
        assert.equal(w.contains(at(t)), inside);
        assert.equal(iso(w.nextStart(at(t))), start);
        assert.equal(iso(w.nextEnd(at(t))), end);
        assert.equal(iso(w.nextChange(at(t))), inside ? end : start);
        assert.equal(w.nextOpenTime(at(t)), inside ? at(t) : at(start));
      });
    }
    it('describes itself and round-trips through JSON', () => {
      assert.equal(w.toString(), '22:00–06:00 UTC');
      assert.equal(w.wrapsMidnight, true);
      const again = new DailyWindow(w.toJSON());
      assert.deepEqual(again.toJSON(), w.toJSON());
    });
  });

  it('a same-day window in a fixed offset zone', () => {
    const w = new DailyWindow({ start: '09:00', end: '17:30', timeZone: '+05:30' });
    assert.equal(w.wrapsMidnight, false);
    assert.equal(w.contains(at('2026-01-05T03:29:59.999Z')), false); // 08:59:59 local
    assert.equal(w.contains(at('2026-01-05T03:30:00.000Z')), true); // 09:00 local
    assert.equal(w.contains(at('2026-01-05T11:59:59.999Z')), true); // 17:29:59 local
    assert.equal(w.contains(at('2026-01-05T12:00:00.000Z')), false); // 17:30 local
    assert.equal(iso(w.nextStart(at('2026-01-05T12:00:00.000Z'))), '2026-01-06T03:30:00.000Z');
  });

  describe('daylight-saving changes (Europe/Berlin, 2026)', () => {
    // Clocks spring forward 2026-03-29 01:00 UTC (02:00 → 03:00 local) and
    // fall back 2026-10-25 01:00 UTC (03:00 → 02:00 local).
    it('keeps 22:00–06:00 local across spring forward (the night is an hour shorter)', () => {
      const w = new DailyWindow({ start: '22:00', end: '06:00', timeZone: 'Europe/Berlin' });
      const open = w.nextStart(at('2026-03-28T12:00:00Z'));
      const close = w.nextEnd(open);
      assert.equal(iso(open), '2026-03-28T21:00:00.000Z'); // 22:00 CET
      assert.equal(iso(close), '2026-03-29T04:00:00.000Z'); // 06:00 CEST
      assert.equal(close - open, 7 * HOUR);
    });

    it('keeps 22:00–06:00 local across fall back (the night is an hour longer)', () => {
      const w = new DailyWindow({ start: '22:00', end: '06:00', timeZone: 'Europe/Berlin' });
      const open = w.nextStart(at('2026-10-24T12:00:00Z'));
      assert.equal(iso(open), '2026-10-24T20:00:00.000Z'); // 22:00 CEST
      assert.equal(w.nextEnd(open) - open, 9 * HOUR);
    });

    it('opens when the clocks jump if the opening time is skipped', () => {
      const w = new DailyWindow({ start: '02:30', end: '06:00', timeZone: 'Europe/Berlin' });
      const open = w.nextStart(at('2026-03-28T12:00:00Z'));
      assert.equal(iso(open), '2026-03-29T01:00:00.000Z');
      assert.equal(w.contains(open), true);
      assert.equal(w.contains(open - 1), false);
    });

    it('opens twice when the repeated hour passes through the window twice', () => {
      const w = new DailyWindow({ start: '02:15', end: '02:45', timeZone: 'Europe/Berlin' });
      const edges: string[] = [];
      let t = at('2026-10-24T12:00:00Z');
      for (let i = 0; i < 4; i++) {
        t = w.nextChange(t);
        edges.push(`${iso(t)} ${w.contains(t) ? 'open' : 'close'}`);
      }
      assert.deepEqual(edges, [
        '2026-10-25T00:15:00.000Z open', '2026-10-25T00:45:00.000Z close',
        '2026-10-25T01:15:00.000Z open', '2026-10-25T01:45:00.000Z close',
      ]);
    });
  });

  it('property: nextStart/nextEnd are the first real edges after t, in any zone', () => {
    const zones = ['UTC', '+02:00', '-09:30', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu'];
    const minuteOfDay = fc.integer({ min: 0, max: 1439 });
    // Two years around 2026, so DST changes are hit regularly.
    const instant = fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2027, 0, 1) });
    fc.assert(
      fc.property(minuteOfDay, minuteOfDay, fc.constantFrom(...zones), instant, fc.boolean(), (s, e, zone, t, near) => {
        fc.pre(s !== e);
        const w = new DailyWindow({ start: formatTimeOfDay(s), end: formatTimeOfDay(e), timeZone: zone });
        // Half the runs start within a minute of an edge.
        const t0 = near ? w.nextChange(t) - (t % MINUTE) : t;
        for (const [u, opening] of [[w.nextStart(t0), true], [w.nextEnd(t0), false]] as const) {
          assert.ok(u > t0, `edge ${iso(u)} not after ${iso(t0)}`);
          assert.equal(w.contains(u), opening);
          assert.equal(w.contains(u - 1), !opening);
          // No such edge in between: scan every minute boundary (local edges are on minute boundaries).
          for (let v = Math.floor(t0 / MINUTE) * MINUTE + MINUTE; v < u; v += MINUTE) {
            if (v <= t0) continue;
            assert.ok(!(w.contains(v) === opening && w.contains(v - 1) !== opening), `missed edge at ${iso(v)}`);
          }
        }
        // Membership is constant up to the next change.
        const c = w.nextChange(t0);
        assert.equal(w.contains(c - 1), w.contains(t0));
        assert.notEqual(w.contains(c), w.contains(t0));
      }),
      { seed: 20260105, numRuns: 150 },
    );
  });

  describe('startAt (initial replication start)', () => {
    const now = at('2026-01-05T12:00:00Z');
    it('immediately is now; a past instant is now; a future instant is itself', () => {
      assert.equal(startAt(now, { kind: 'immediately' }), now);
      assert.equal(startAt(now, { kind: 'at', time: now - HOUR }), now);
      assert.equal(startAt(now, { kind: 'at', time: now + HOUR }), now + HOUR);
    });
    it('dailyAt is the next occurrence of the local time, today or tomorrow', () => {
      assert.equal(iso(startAt(now, { kind: 'dailyAt', time: '23:00' })), '2026-01-05T23:00:00.000Z');
      assert.equal(iso(startAt(now, { kind: 'dailyAt', time: '11:00' })), '2026-01-06T11:00:00.000Z');
      assert.equal(startAt(now, { kind: 'dailyAt', time: '12:00' }), now);
      assert.equal(iso(startAt(now, { kind: 'dailyAt', time: '23:00', timeZone: 'America/New_York' })), '2026-01-06T04:00:00.000Z');
    });
    it('dailyAt in a skipped hour starts when the clocks jump', () => {
      const t = startAt(at('2026-03-28T12:00:00Z'), { kind: 'dailyAt', time: '02:30', timeZone: 'Europe/Berlin' });
      assert.equal(iso(t), '2026-03-29T01:00:00.000Z');
    });
  });
});
