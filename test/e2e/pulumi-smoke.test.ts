/**
 * The real Pulumi engine drives a Lifeboat dynamic resource end to end: up
 * creates, a changed input updates in place, refresh finds no drift, destroy
 * deletes. Assertions are on the engine's own summaries and on the outputs.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { createTempStack, type TempStack } from './pulumi-harness';

describe('Pulumi engine smoke test (real CLI, file backend)', function () {
  // Engine start-up and program compilation take seconds on 2 cores.
  this.timeout(240_000);
  let t: TempStack;

  before(async () => {
    t = await createTempStack({ workDir: path.join(__dirname, 'stacks', 'smoke') });
  });
  after(async () => {
    if (t !== undefined) await t.dispose();
  });

  const engineLog = (): string => t.log.join('');

  it('up creates the resource', async () => {
    await t.stack.setConfig('message', { value: 'hello' });
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', engineLog());
    // The stack itself and the Echo.
    assert.equal(res.summary.resourceChanges?.create, 2, engineLog());
    assert.equal(res.outputs.message.value, 'hello');
    assert.equal(res.outputs.revision.value, 1);
    assert.match(String(res.outputs.echoId.value), /^echo-[0-9a-f-]{36}$/);
  });

  it('up with a changed input updates in place', async () => {
    const before = (await t.stack.outputs()).echoId.value;
    await t.stack.setConfig('message', { value: 'hello again' });
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', engineLog());
    assert.equal(res.summary.resourceChanges?.update, 1, engineLog());
    assert.equal(res.summary.resourceChanges?.replace ?? 0, 0, engineLog());
    assert.equal(res.summary.resourceChanges?.create ?? 0, 0, engineLog());
    assert.equal(res.outputs.message.value, 'hello again');
    assert.equal(res.outputs.revision.value, 2);
    assert.equal(res.outputs.echoId.value, before, 'an in-place update keeps the id');
  });

  it('preview of an identity change shows a replacement', async () => {
    await t.stack.setConfig('tag', { value: 'other' });
    const res = await t.stack.preview({ onOutput: t.onOutput });
    assert.equal(res.changeSummary.replace, 1, engineLog());
    await t.stack.removeConfig('tag');
  });

  it('refresh reports no change', async () => {
    const res = await t.stack.refresh({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', engineLog());
    const changes = res.summary.resourceChanges ?? {};
    assert.deepEqual(
      Object.keys(changes).filter((k) => k !== 'same'),
      [],
      `refresh changed something: ${JSON.stringify(changes)}`,
    );
    assert.equal(changes.same, 2);
  });

  it('destroy deletes it', async () => {
    const res = await t.stack.destroy({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', engineLog());
    assert.equal(res.summary.resourceChanges?.delete, 2, engineLog());
    assert.deepEqual(await t.stack.outputs(), {});
  });
});
