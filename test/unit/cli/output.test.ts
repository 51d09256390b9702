import { strict as assert } from 'node:assert';
import { VaultApiError } from '../../../provider/client';
import { InvalidInputError, NonRecoverableError } from '../../../provider/errors';
import { ago, errorText, progressBar, shortId, table } from '../../../provider/cli/output';

describe('cli/output', () => {
  it('pads table columns to the widest cell and right-aligns the columns asked for', () => {
    assert.equal(table(['A', 'NUMBER'], [['long name', '1'], ['x', '100']], { rightAlign: [1] }),
      'A          NUMBER\nlong name       1\nx             100');
  });

  it('draws progress bars clamped to 0–100', () => {
    assert.equal(progressBar(50, 10), '[#####-----]  50%');
    assert.equal(progressBar(140, 4), '[####] 100%');
    assert.equal(progressBar(Number.NaN, 4), '[----]   0%');
  });

  it('prints an error as what, where and what to do', () => {
    const api = new VaultApiError({
      status: 400, code: 'request.invalid', message: 'the request body is invalid', hint: 'fix each field listed', request: 'PUT /x',
      problems: [{ path: '/replicationFrequencySeconds', message: 'must be one of 30, 300, 900', allowed: [30, 300, 900] }, { path: '', message: 'bad', expected: 'an object' }],
    });
    assert.equal(errorText(api), [
      'error: the request body is invalid [request.invalid]',
      '  at /replicationFrequencySeconds: must be one of 30, 300, 900 (allowed: 30, 300, 900)',
      '  at (body): bad (expected: an object)',
      '  hint: fix each field listed',
    ].join('\n'));
    assert.equal(errorText(new InvalidInputError('lab.stateCorrupt', 'not a lab state', { where: { file: '/l/lab.json', line: 3, column: 7 } })),
      'error: not a lab state [lab.stateCorrupt]\n  at /l/lab.json:3:7');
    assert.equal(errorText(new NonRecoverableError('x.y', 'broken', { hint: 'do this' })), 'error: broken [x.y]\n  hint: do this');
    assert.equal(errorText(new Error('plain')), 'error: plain');
  });

  it('shortens ids and says how long ago', () => {
    assert.equal(shortId('job-24fc91c1-282e-4d69-80ad-7c306afd8f0b'), 'job-24fc91c1');
    assert.equal(shortId('p-0000000000000011'), 'p-0000000000000011');
    const now = Date.parse('2026-01-01T00:10:00Z');
    assert.equal(ago('2026-01-01T00:05:00Z', now), '5 min ago');
    assert.equal(ago('2026-01-01T00:10:30Z', now), 'in 30 s');
    assert.equal(ago(undefined, now), '-');
  });
});
