import assert from 'node:assert/strict';
import { categoryOf, InvalidInputError } from '../../../../provider/errors';
import { classifyIoError } from '../../../../provider/targets/host/io-errors';

const errno = (code: string): Error => Object.assign(new Error(code), { code });

describe('targets/host/io-errors (docs/replica-format.md §10)', () => {
  it('classifies system errors as the format says', () => {
    const table: Array<[string, string, string]> = [
      ['ENOSPC', 'recoverable', 'replica.lowDisk'],
      ['EDQUOT', 'recoverable', 'replica.lowDisk'],
      ['EMFILE', 'recoverable', 'replica.resourceExhausted'],
      ['ENOMEM', 'recoverable', 'replica.resourceExhausted'],
      ['EIO', 'recoverable', 'replica.ioError'],
      ['EBUSY', 'recoverable', 'replica.ioError'],
      ['EWHATEVER', 'recoverable', 'replica.ioError'],
      ['EACCES', 'nonRecoverable', 'replica.accessDenied'],
      ['EROFS', 'nonRecoverable', 'replica.accessDenied'],
    ];
    for (const [code, category, ours] of table) {
      const e = classifyIoError(errno(code), 'write x');
      assert.equal(categoryOf(e), category, code);
      assert.equal(e.code, ours, code);
      assert.equal(e.details.errno, code);
      assert.ok(e.hint !== undefined && e.hint.length > 0);
      assert.equal((e.cause as Error).message, code);
    }
  });

  it('passes our own errors through unchanged', () => {
    const mine = new InvalidInputError('replica.writeOutOfRange', 'no');
    assert.equal(classifyIoError(mine, 'x'), mine);
  });
});
