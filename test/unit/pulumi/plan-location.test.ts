/**
 * The decision of `RecoveryPlan.activeLocation` (docs/pulumi.md §11): from
 * the items' states and locations, the one plan job to run next; the
 * refusals name the items; and a TestFailover's `expiresAfter`.
 */

import { strict as assert } from 'node:assert';
import { nextLocationStep, type PlanItemView } from '../../../provider/pulumi/plan-location';
import { expirySeconds } from '../../../provider/pulumi/test-failover-provider';

const item = (name: string, state: PlanItemView['state'], location: PlanItemView['location'], activeJob?: string): PlanItemView =>
  ({ name, state, location, ...(activeJob === undefined ? {} : { activeJob }) });

describe('pulumi/plan-location: the next step towards the declared site', () => {
  it('protected at the primary, declared recovery: a planned failover toRecovery; then commit; then reprotect; then done', () => {
    assert.deepEqual(nextLocationStep('erp', 'recovery', [item('web', 'Protected', 'primary'), item('db', 'Protected', 'primary')]), { kind: 'failover', direction: 'toRecovery' });
    assert.deepEqual(nextLocationStep('erp', 'recovery', [item('web', 'FailedOver', 'recovery'), item('db', 'FailedOver', 'recovery')]), { kind: 'commit' });
    assert.deepEqual(nextLocationStep('erp', 'recovery', [item('web', 'FailoverCommitted', 'recovery'), item('db', 'FailoverCommitted', 'recovery')]), { kind: 'reprotect' });
    assert.deepEqual(nextLocationStep('erp', 'recovery', [item('web', 'Protected', 'recovery'), item('db', 'Protected', 'recovery')]), { kind: 'done' });
  });

  it('back to the primary is the same three the other way (failback)', () => {
    assert.deepEqual(nextLocationStep('erp', 'primary', [item('web', 'Protected', 'recovery')]), { kind: 'failover', direction: 'toPrimary' });
    assert.deepEqual(nextLocationStep('erp', 'primary', [item('web', 'FailedOver', 'primary')]), { kind: 'commit' });
    assert.deepEqual(nextLocationStep('erp', 'primary', [item('web', 'FailoverCommitted', 'primary')]), { kind: 'reprotect' });
    assert.deepEqual(nextLocationStep('erp', 'primary', [item('web', 'Protected', 'primary')]), { kind: 'done' });
  });

  it('a half-moved plan (one item already there) fails over only with the direction, the rest skipped by the vault', () => {
    assert.deepEqual(nextLocationStep('erp', 'recovery', [item('web', 'Protected', 'recovery'), item('db', 'Protected', 'primary')]), { kind: 'failover', direction: 'toRecovery' });
  });

  it('an item with a running job is waited for first', () => {
    assert.deepEqual(nextLocationStep('erp', 'recovery', [item('web', 'Reprotecting', 'recovery', 'j-9'), item('db', 'FailedOver', 'recovery')]), { kind: 'waitItemJob', item: 'web', job: 'j-9' });
  });

  it('an uncommitted failover to the other site is refused, never reversed or committed from code', () => {
    const s = nextLocationStep('erp', 'primary', [item('web', 'FailedOver', 'recovery'), item('db', 'Protected', 'primary')]);
    assert.equal(s.kind, 'refuse');
    assert.ok(s.kind === 'refuse');
    assert.equal(s.code, 'pulumi.uncommittedFailover');
    assert.match(s.message, /web/);
    assert.doesNotMatch(s.message, /db/);
    assert.match(s.hint, /lifeboat commit --plan erp|activeLocation: recovery/);
  });

  it('items that cannot fail over are named with their state', () => {
    const s = nextLocationStep('erp', 'recovery', [item('web', 'InitialReplicationInProgress', 'primary'), item('db', 'Protected', 'primary')]);
    assert.ok(s.kind === 'refuse');
    assert.equal(s.code, 'pulumi.itemsNotReady');
    assert.match(s.message, /web is InitialReplicationInProgress/);
  });
});

describe('pulumi/test-failover: expiresAfter', () => {
  for (const [v, want] of [['90s', 90], ['30m', 1800], ['4h', 14_400], ['2d', 172_800], [3600, 3600], ['31d', undefined], ['0s', undefined], ['4 hours', undefined], [1.5, undefined], ['', undefined]] as const) {
    it(`${JSON.stringify(v)} → ${String(want)}`, () => assert.equal(expirySeconds(v), want));
  }
});
