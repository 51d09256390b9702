import assert from 'node:assert/strict';
import {
  BugError,
  InvalidInputError,
  type LifeboatError,
  NonRecoverableError,
  RecoverableError,
  ResyncRequiredError,
} from '../../../../provider/errors';
import { ReplicaStateError } from '../../../../provider/errors';
import { fromWireError, toWireError } from '../../../../provider/targets/remote/wire-errors';

/** Through JSON, as on the wire. */
function roundTrip(e: unknown): LifeboatError {
  return fromWireError(JSON.parse(JSON.stringify(toWireError(e))), 'peer:1');
}

describe('errors on the wire (docs/replication-protocol.md §9)', () => {
  const cases: Array<[string, LifeboatError, new (...a: never[]) => LifeboatError]> = [
    ['ReplicaStateError', new ReplicaStateError('cycle.alreadyApplied', 'seq 5 applied', { hint: 'resume', details: { seq: 5 } }), ReplicaStateError],
    ['RecoverableError', new RecoverableError('replica.lowDisk', 'full', { details: { free: 0 } }), RecoverableError],
    ['ResyncRequiredError', new ResyncRequiredError('log.lost', 'gone'), ResyncRequiredError],
    ['NonRecoverableError', new NonRecoverableError('x.y', 'no'), NonRecoverableError],
    ['InvalidInputError', new InvalidInputError('replica.invalidSize', 'bad', { where: { path: '/sizeBytes' } }), InvalidInputError],
    ['BugError', new BugError('b.c', 'oops'), BugError],
  ];
  for (const [name, original, cls] of cases) {
    it(`rebuilds a ${name} with its code, category, message, hint, details and location`, () => {
      const back = roundTrip(original);
      assert.ok(back instanceof cls);
      assert.equal(back.name, original.name);
      assert.deepEqual(back.toJSON(), original.toJSON());
      assert.match(String((back.cause as Error).message), /peer:1/);
    });
  }

  it('an unknown subclass keeps its name, code and category, as the base class of its category', () => {
    class SegmentLost extends ResyncRequiredError {}
    const back = roundTrip(new SegmentLost('segment.lost', 'segment 7 lost'));
    assert.ok(back instanceof ResyncRequiredError);
    assert.equal(back.name, 'SegmentLost');
    assert.equal(back.code, 'segment.lost');
  });

  it('a known name with another category follows the category', () => {
    const back = fromWireError({ name: 'ReplicaStateError', code: 'a.b', category: 'recoverable', message: 'm' }, 'p');
    assert.ok(back instanceof RecoverableError);
    assert.equal(back.category, 'recoverable');
  });

  it('anything else is sent as remote.serverError, a bug', () => {
    const back = roundTrip(new TypeError('x is undefined'));
    assert.ok(back instanceof BugError);
    assert.equal(back.code, 'remote.serverError');
    assert.match(back.message, /x is undefined/);
  });

  it('drops details that cannot be serialised rather than failing', () => {
    const w = toWireError(new RecoverableError('a.b', 'm', { details: { big: 1n } }));
    assert.equal(w.details, undefined);
    assert.equal(w.code, 'a.b');
  });

  it('a malformed description is a protocol error', () => {
    for (const bad of [null, 'x', { code: 1, category: 'bug', message: 'm' }, { code: 'a', category: 'weird', message: 'm' }, { code: 'a', category: 'bug' }]) {
      assert.equal(fromWireError(bad, 'p').code, 'remote.protocolError');
    }
  });
});
