import { strict as assert } from 'node:assert';
import { KeyedMutex } from '../../../provider/agent/keyed-mutex';

describe('agent/KeyedMutex', () => {
  it('runs calls of one key one at a time in order, other keys alongside, and a failure does not block the next', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    let releaseA!: () => void;
    const a1 = m.run('a', async () => {
      log.push('a1 start');
      await new Promise<void>((r) => { releaseA = r; });
      log.push('a1 end');
      throw new Error('a1 failed');
    });
    const a2 = m.run('a', async () => { log.push('a2'); return 2; });
    const b1 = m.run('b', async () => { log.push('b1'); return 1; });
    assert.equal(await b1, 1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['a1 start', 'b1']);
    releaseA();
    await assert.rejects(a1, /a1 failed/);
    assert.equal(await a2, 2);
    assert.deepEqual(log, ['a1 start', 'b1', 'a1 end', 'a2']);
  });
});
