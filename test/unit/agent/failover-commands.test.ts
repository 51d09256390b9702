/**
 * Point resolution of the failover commands (docs/failover.md §1): latest,
 * latest app-consistent, a time (the newest point at or before it), given
 * ids; other disks take their newest point no later than the first disk's;
 * refusals name what is retained. And the payload's point spec.
 */

import { strict as assert } from 'node:assert';
import { LifeboatError } from '../../../provider/errors';
import { pointSpecOf, resolvePoints, viewLocation } from '../../../provider/agent/failover-commands';
import { type RecoveryPointInfo } from '../../../provider/replication/target';

const p = (id: string, time: number, kind: RecoveryPointInfo['kind'] = 'crashConsistent'): RecoveryPointInfo => ({ id, seq: time, generation: 'g', time, kind });

describe('agent/failover-commands: recovery point resolution', () => {
  const disk0 = { id: 'disk0', points: [p('a1', 100), p('a2', 200, 'appConsistent'), p('a3', 300), p('a4', 400)] };
  const disk1 = { id: 'disk1', points: [p('b1', 110), p('b2', 190), p('b3', 310), p('b4', 390)] };

  const cases: readonly [string, Parameters<typeof resolvePoints>[0], Record<string, string> | string][] = [
    ['latest', { latest: true }, { disk0: 'a4', disk1: 'b4' }],
    ['latest app-consistent', { latestAppConsistent: true }, { disk0: 'a2', disk1: 'b2' }],
    ['a time between points: the newest at or before it; the other disk no later than that', { time: 350 }, { disk0: 'a3', disk1: 'b2' }],
    ['a time equal to a point', { time: 200 }, { disk0: 'a2', disk1: 'b2' }],
    ['a time before every point', { time: 99 }, 'replica.pointNotFound'],
    ['given ids', { ids: { disk0: 'a1', disk1: 'b3' } }, { disk0: 'a1', disk1: 'b3' }],
    ['an id that is gone', { ids: { disk0: 'a9', disk1: 'b1' } }, 'replica.pointNotFound'],
  ];
  for (const [what, spec, want] of cases) {
    it(what, () => {
      try {
        const got = resolvePoints(spec, [disk0, disk1]);
        assert.deepEqual(Object.fromEntries([...got].map(([d, x]) => [d, x.id])), want);
      } catch (e) {
        assert.ok(LifeboatError.isInstance(e), String(e));
        assert.equal(e.code, want);
        assert.match(e.hint ?? '', /retained points span/);
      }
    });
  }

  it('a second disk without a point early enough is refused', () => {
    assert.throws(() => resolvePoints({ time: 105 }, [disk0, disk1]), (e: LifeboatError) => e.code === 'replica.pointNotFound' && /disk disk1/.test(e.message));
  });

  it('no app-consistent point: refused', () => {
    assert.throws(() => resolvePoints({ latestAppConsistent: true }, [disk1]), (e: LifeboatError) => e.code === 'replica.pointNotFound' && /app-consistent/.test(e.message));
  });

  it('payload point specs', () => {
    assert.deepEqual(pointSpecOf({ latest: true }), { latest: true });
    assert.deepEqual(pointSpecOf({ time: '2026-01-01T00:00:00Z' }), { time: Date.UTC(2026, 0, 1) });
    assert.deepEqual(pointSpecOf({ ids: { disk0: 'p-1' } }), { ids: { disk0: 'p-1' } });
    assert.throws(() => pointSpecOf({ time: 'yesterday' }), (e: LifeboatError) => e.code === 'agent.badPayload');
    assert.equal(viewLocation('u-1', 'disk0', 'p-000000000000002a'), 'view:u-1/disk0/p-000000000000002a');
  });
});
