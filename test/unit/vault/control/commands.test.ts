import { strict as assert } from 'node:assert';
import { MINUTE } from '../../../../provider/units';
import { applyCommandUpdate, cancelCommandsOfJob, enqueueCommand, takeCommands } from '../../../../provider/vault/control/commands';
import { controlRig, type ControlRig } from './rig';

describe('vault/control/commands', () => {
  let r: ControlRig;
  beforeEach(async () => {
    r = await controlRig();
  });
  afterEach(async () => {
    await r.close();
  });

  it('delivers in order, once per lease, and again when the lease ends without a report', async () => {
    const a = enqueueCommand(r.services, { vault: 'v', host: 'HV01', type: 'a', payload: {} });
    const b = enqueueCommand(r.services, { vault: 'v', host: 'hv01', type: 'b', payload: {} });
    enqueueCommand(r.services, { vault: 'v', host: 'hv02', type: 'other host', payload: {} });
    assert.deepEqual(takeCommands(r.services, 'v', 'hv01').map((c) => [c.id, c.deliveries]), [[a.id, 1], [b.id, 1]]);
    assert.deepEqual(takeCommands(r.services, 'v', 'hv01'), []);
    applyCommandUpdate(r.services, 'v', 'hv01', a.id, { state: 'Running', progress: 5 });
    await r.clock.advance(MINUTE);
    // b's lease ended; a's was extended by its report, which also ended now.
    assert.deepEqual(takeCommands(r.services, 'v', 'hv01').map((c) => [c.type, c.deliveries]), [['a', 2], ['b', 2]]);
  });

  it('accepts a repeated final report, refuses a different one, and tells the agent about withdrawn commands', () => {
    const c = enqueueCommand(r.services, { vault: 'v', host: 'hv01', type: 'a', payload: {}, jobId: 'job-1' });
    assert.equal(applyCommandUpdate(r.services, 'v', 'hv02', c.id, { state: 'Succeeded' }).kind, 'notFound', 'another host cannot report on it');
    assert.equal(applyCommandUpdate(r.services, 'v', 'hv01', c.id, { state: 'Succeeded', result: { x: 1 } }).kind, 'applied');
    assert.equal(applyCommandUpdate(r.services, 'v', 'hv01', c.id, { state: 'Succeeded', result: { x: 1 } }).kind, 'repeated');
    assert.equal(applyCommandUpdate(r.services, 'v', 'hv01', c.id, { state: 'Failed', error: { code: 'a.b', message: 'm' } }).kind, 'conflict');
    assert.deepEqual(r.store.getCommand(c.id)?.result, { x: 1 });
    const d = enqueueCommand(r.services, { vault: 'v', host: 'hv01', type: 'b', payload: {}, jobId: 'job-1' });
    assert.equal(cancelCommandsOfJob(r.services, 'job-1'), 1, 'only the unfinished one');
    assert.equal(applyCommandUpdate(r.services, 'v', 'hv01', d.id, { state: 'Running' }).kind, 'cancelled');
    assert.deepEqual(takeCommands(r.services, 'v', 'hv01'), []);
  });
});
