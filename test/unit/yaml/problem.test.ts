import { strict as assert } from 'node:assert';
import { compareProblems, formatProblem, formatProblems, type ProtectionProblem } from '../../../provider/yaml/problem';

const p = (extra: Partial<ProtectionProblem>): ProtectionProblem => ({ code: 'schema.enum', file: 'protection.yaml', line: 12, column: 5, path: '/x', message: 'is wrong', ...extra });

describe('yaml/problem', () => {
  it('formats file:line:column: path: message, then what was written and what would be valid', () => {
    assert.equal(formatProblem(p({ path: '/policies/0/replicationFrequencySeconds', message: 'must be one of 30, 300, 900', allowed: [30, 300, 900], actual: '60' })),
      'protection.yaml:12:5: /policies/0/replicationFrequencySeconds: must be one of 30, 300, 900 (got 60)');
    assert.equal(formatProblem(p({ message: 'must be <= 24', expected: 'integer 0..24', actual: '25' })), 'protection.yaml:12:5: /x: must be <= 24 (got 25; expected integer 0..24)');
    assert.equal(formatProblem(p({ message: "unknown property 'a'", allowed: ['b', 'c'] })), "protection.yaml:12:5: /x: unknown property 'a' (allowed: b, c)");
    assert.equal(formatProblem(p({ code: 'protection.unknownReference', message: "no site named 'a'", allowed: ['hq'] })), "protection.yaml:12:5: /x: no site named 'a' (known: hq)");
    assert.equal(formatProblem(p({ code: 'protection.unknownReference', message: "no site named 'a'", allowed: [] })), "protection.yaml:12:5: /x: no site named 'a' (none declared)");
    assert.equal(formatProblem(p({ path: '', message: 'must be an object', actual: 'a sequence' })), 'protection.yaml:12:5: must be an object (got a sequence)');
    assert.equal(formatProblem(p({ line: undefined, column: undefined, path: '', message: 'cannot read the file' })), 'protection.yaml: cannot read the file');
    assert.equal(formatProblem(p({}), { codes: true }), 'protection.yaml:12:5: /x: is wrong [schema.enum]');
  });

  it('shows the source line of a syntax error with a caret that keeps its tabs', () => {
    assert.equal(formatProblem(p({ line: 7, column: 4, path: '', message: 'bad', sourceLine: '\t\t  x' })), 'protection.yaml:7:4: bad\n  7 | \t\t  x\n    | \t\t ^');
  });

  it('orders problems as they appear in the file', () => {
    const list = [p({ line: 3, column: 1 }), p({ line: 1, column: 9 }), p({ line: 1, column: 2, path: '/b' }), p({ line: 1, column: 2, path: '/a' }), p({ line: undefined, column: undefined })];
    assert.deepEqual([...list].sort(compareProblems).map((x) => `${x.line ?? '-'}:${x.column ?? '-'}${x.path}`), ['-:-/x', '1:2/a', '1:2/b', '1:9/x', '3:1/x']);
    assert.equal(formatProblems([]), '');
  });
});
