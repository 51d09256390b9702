import { strict as assert } from 'node:assert';
import { HOUR } from '../../../../provider/units';
import { initialItemStatus } from '../../../../provider/vault/control/item-status';
import { ResyncScheduler } from '../../../../provider/vault/control/resync-scheduler';
import { controlRig, type ControlRig } from './rig';

describe('vault/control/resync-scheduler', () => {
  let r: ControlRig;
  beforeEach(async () => {
    r = await controlRig();
  });
  afterEach(async () => {
    await r.close();
  });

  function seed(automatic: boolean, timeZone = 'UTC'): void {
    r.store.putObject('v', 'vault', 'v', {}, [], 0);
    r.store.putObject('v', 'site', 'hq', { kind: 'hyperv-site', timeZone }, [], 0);
    r.store.putObject('v', 'replicationPolicy', 'gold', { target: 'secondary-site', resync: { automatic, window: { start: '22:00', end: '06:00' } } }, [], 0);
    r.store.putObject('v', 'protectedItem', 'web01', { site: 'hq', vm: 'web01', policy: 'gold' }, [{ kind: 'replicationPolicy', name: 'gold' }], 0,
      { ...initialItemStatus(), replicationState: 'ResynchronizationRequired', sourceHost: 'hv01' });
    r.store.putObject('v', 'protectedItem', 'db01', { site: 'hq', vm: 'db01', policy: 'gold' }, [], 0, { ...initialItemStatus(), replicationState: 'Protected' });
  }

  it('starts resync.run for items that need it only inside the policy window, once', async () => {
    seed(true);
    const noon = Date.UTC(2026, 0, 1, 12, 0);
    await r.clock.advance(noon - r.clock.now());
    const scheduler = new ResyncScheduler({ services: r.services, jobs: r.jobs });
    assert.deepEqual(scheduler.check(), [], 'not at noon');
    await r.clock.advance(10 * HOUR);
    const started = scheduler.check();
    assert.equal(started.length, 1, 'at 22:00');
    assert.deepEqual(r.jobs.created.map((j) => [j.type, j.target.name, j.input.automatic]), [['resync.run', 'web01', true]]);
    assert.deepEqual(scheduler.check(), [], 'not twice while the job runs');
  });

  it('uses the site\'s time zone, and leaves it to the operator when automatic resync is off', async () => {
    seed(true, '+05:00');
    // 22:30 at +05:00 is 17:30 UTC.
    await r.clock.advance(Date.UTC(2026, 0, 1, 17, 30) - r.clock.now());
    const scheduler = new ResyncScheduler({ services: r.services, jobs: r.jobs });
    assert.equal(scheduler.check().length, 1);
    await r.close();
    r = await controlRig();
    seed(false);
    await r.clock.advance(Date.UTC(2026, 0, 1, 23, 0) - r.clock.now());
    assert.deepEqual(new ResyncScheduler({ services: r.services, jobs: r.jobs }).check(), []);
  });
});
