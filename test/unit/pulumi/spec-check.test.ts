import { strict as assert } from 'node:assert';
import * as rpc from '@pulumi/pulumi/runtime/rpc';
import { checkBody, propertyOfPointer, UNKNOWN_VALUE } from '../../../provider/pulumi/spec-check';

describe('pulumi/spec-check', () => {
  it('the unknown sentinel is the runtime\'s', () => {
    assert.equal(UNKNOWN_VALUE, rpc.unknownValue);
  });

  it('JSON pointers become Pulumi property paths', () => {
    assert.equal(propertyOfPointer('/associations/0/target'), 'associations[0].target');
    assert.equal(propertyOfPointer('/a~1b/c~0d'), 'a/b.c~d');
    assert.equal(propertyOfPointer(''), '');
  });

  it('members unknown in a preview are validated later, not reported', () => {
    const failures = checkBody('replication-policy', { target: UNKNOWN_VALUE, replicationFrequencySeconds: 60 });
    assert.deepEqual(failures.map((f) => f.property), ['replicationFrequencySeconds']);
    assert.match(failures[0]!.reason, /valid: 30, 300, 900/);
    const missing = checkBody('replication-policy', { replicationFrequencySeconds: 30 });
    assert.deepEqual(missing, [{ property: 'target', reason: 'is required' }]);
  });
});
