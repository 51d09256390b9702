import { strict as assert } from 'node:assert';
import { intOption, outputFormat, parse, requiredOption } from '../../../provider/cli/command';
import { UsageError } from '../../../provider/cli/exit-codes';

describe('cli/command', () => {
  it('parses options and positionals, refusing unknown options and extra arguments with the usage', () => {
    const r = parse(['web', '--wait', '-o', 'json'], { wait: { type: 'boolean' }, output: { type: 'string', short: 'o' } }, 'lifeboat resync ITEM', 1);
    assert.deepEqual(r.positionals, ['web']);
    assert.equal(r.values.wait, true);
    assert.equal(outputFormat(r.values), 'json');
    assert.throws(() => parse(['--nope'], {}, 'lifeboat status'), (e: unknown) => e instanceof UsageError && /--nope/.test(e.message) && e.hint === 'usage: lifeboat status');
    assert.throws(() => parse(['a', 'b'], {}, 'lifeboat x ITEM', 1), (e: unknown) => e instanceof UsageError && /unexpected argument b/.test(e.message));
  });

  it('checks option values', () => {
    assert.equal(intOption({ limit: '20' }, 'limit', 1, 1000), 20);
    assert.equal(intOption({}, 'limit', 1, 1000), undefined);
    assert.throws(() => intOption({ limit: '0' }, 'limit', 1, 1000), UsageError);
    assert.throws(() => intOption({ limit: '1.5' }, 'limit', 1, 1000), UsageError);
    assert.throws(() => outputFormat({ output: 'yaml' }), /--output yaml is not a format/);
    assert.equal(outputFormat({}), 'table');
    assert.throws(() => requiredOption({}, 'data-dir', 'u'), /--data-dir is required/);
  });
});
