import * as assert from 'node:assert/strict';
import {
  isGuestRunning,
  isOff,
  isPowerState,
  isTransitional,
  POWER_STATES,
  type PowerState,
  powerTransition,
  powerTrigger,
} from '../../../provider/hypervisor/power-state';

// The specification, written out: every allowed pair. Everything else is refused.
const ALLOWED: ReadonlyArray<readonly [PowerState, PowerState]> = [
  ['Off', 'Starting'],
  ['Starting', 'Running'],
  ['Starting', 'Off'],
  ['Running', 'ShuttingDown'],
  ['Running', 'Off'],
  ['ShuttingDown', 'Off'],
];

const allowed = (from: PowerState, to: PowerState): boolean => ALLOWED.some(([f, t]) => f === from && t === to);

describe('hypervisor/power-state', () => {
  it('has the four documented states', () => {
    assert.deepEqual([...POWER_STATES], ['Off', 'Starting', 'Running', 'ShuttingDown']);
    for (const s of POWER_STATES) assert.ok(isPowerState(s));
    for (const s of ['off', 'Saved', '', 3, undefined]) assert.ok(!isPowerState(s));
  });

  for (const fenced of [false, true]) {
    for (const from of POWER_STATES) {
      for (const to of POWER_STATES) {
        const expected = from === to ? 'power.unchanged' : !allowed(from, to) ? 'power.notAllowed' : fenced && to === 'Starting' ? 'power.fenced' : 'ok';
        it(`${from} → ${to}${fenced ? ' (fenced)' : ''}: ${expected}`, () => {
          const r = powerTransition(from, to, 'test', { fenced });
          if (expected === 'ok') {
            assert.ok(r.ok, JSON.stringify(r));
            assert.equal(r.from, from);
            assert.equal(r.to, to);
            assert.equal(r.reason, 'test');
            assert.equal(r.trigger, powerTrigger(from, to));
            assert.ok(r.trigger.length > 0);
          } else {
            assert.ok(!r.ok);
            assert.equal(r.code, expected);
            assert.ok(r.message.length > 0);
            if (expected === 'power.notAllowed') {
              assert.equal(powerTrigger(from, to), undefined);
              // The message names the allowed targets.
              for (const [f, t] of ALLOWED) if (f === from) assert.match(r.message, new RegExp(t));
            }
          }
        });
      }
    }
  }

  it('refuses an empty reason and unknown states', () => {
    const r = powerTransition('Off', 'Starting', '  ', { fenced: false });
    assert.ok(!r.ok && r.code === 'power.noReason');
    const u = powerTransition('Off', 'Saved' as PowerState, 'x', { fenced: false });
    assert.ok(!u.ok && u.code === 'power.unknown');
    assert.match(u.message, /Saved/);
  });

  it('predicates agree with the table', () => {
    for (const s of POWER_STATES) {
      // Only a running guest writes; the table lets only Running reach the shutdown path.
      assert.equal(isGuestRunning(s), powerTrigger(s, 'ShuttingDown') !== undefined);
      // Transitional states are entered only by operations and always lead somewhere without a request.
      assert.equal(isTransitional(s), s !== 'Off' && s !== 'Running');
      // Only Off can start.
      assert.equal(isOff(s), powerTrigger(s, 'Starting') !== undefined);
    }
  });
});
