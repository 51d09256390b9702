import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { canonicalJson, changedKeys, diffByRules } from '../../../provider/pulumi/spec-diff';
import { UNKNOWN_VALUE } from '../../../provider/pulumi/spec-check';

const rules = { keys: ['vault', 'name', 'vm', 'associations', 'frequency'], identity: ['vault', 'name', 'vm'], identifiers: ['vault', 'name', 'vm', 'associations.source'] };

describe('pulumi/spec-diff', () => {
  it('canonical JSON ignores key order and undefined members', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (o) => {
      const reversed = Object.fromEntries(Object.entries(o).reverse());
      assert.equal(canonicalJson(reversed), canonicalJson(o));
      assert.equal(canonicalJson({ ...o, zzz_undefined: undefined }), canonicalJson(o));
    }), { seed: 5150, numRuns: 200 });
  });

  it('identifiers compare case-insensitively; other values exactly', () => {
    const olds = { vault: 'lab', name: 'web', vm: 'web01', associations: [{ source: 'hq', target: 'dr' }], frequency: 30, __provider: 'a' };
    assert.deepEqual(changedKeys(olds, { ...olds, vault: 'LAB', vm: 'Web01', associations: [{ source: 'HQ', target: 'dr' }], __provider: 'b' }, rules), []);
    assert.deepEqual(changedKeys(olds, { ...olds, associations: [{ source: 'hq', target: 'DR' }] }, rules), ['associations'], 'association target is not listed as an identifier here');
    assert.deepEqual(changedKeys(olds, { ...olds, frequency: 300 }, rules), ['frequency']);
  });

  it('replaces only on identity, deletes first, and treats unknowns as changes', () => {
    const olds = { vault: 'lab', name: 'web', vm: 'web01', frequency: 30 };
    assert.deepEqual(diffByRules(olds, { ...olds, frequency: 300 }, rules), { changes: true, replaces: [], deleteBeforeReplace: true });
    assert.deepEqual(diffByRules(olds, { ...olds, vm: 'db01' }, rules, ['replacementReason']), { changes: true, replaces: ['vm', 'replacementReason'], deleteBeforeReplace: true });
    assert.deepEqual(diffByRules(olds, { ...olds, vm: UNKNOWN_VALUE }, rules).replaces, ['vm']);
    assert.equal(diffByRules(olds, { ...olds }, rules).changes, false);
  });
});
