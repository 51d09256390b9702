import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatSegmentName,
  generationFromBytes,
  generationToBytes,
  parseSegmentName,
  SEGMENT_NAME_PATTERN,
} from '../../../provider/format/segment-name';
import { LifeboatError } from '../../../provider/errors';

const diskIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const generationArb = fc.stringMatching(/^[0-9a-f]{16}$/);
const seqArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

describe('format/segment-name', () => {
  it('formats the §2.1 example', () => {
    assert.equal(
      formatSegmentName({ diskId: 'disk-0', generation: '3f9c0a1b2c3d4e5f', seq: 42 }),
      'disk-0.3f9c0a1b2c3d4e5f.000000000000002a.hrl',
    );
  });

  it('round-trips and matches the pattern', () => {
    fc.assert(
      fc.property(diskIdArb, generationArb, seqArb, (diskId, generation, seq) => {
        const name = formatSegmentName({ diskId, generation, seq });
        assert.match(name, SEGMENT_NAME_PATTERN);
        assert.deepEqual(parseSegmentName(name), { diskId, generation, seq });
      }),
      { seed: 201, numRuns: 300 },
    );
  });

  it('orders names like sequence numbers', () => {
    fc.assert(
      fc.property(seqArb, seqArb, (a, b) => {
        const na = formatSegmentName({ diskId: 'd', generation: '0000000000000001', seq: a });
        const nb = formatSegmentName({ diskId: 'd', generation: '0000000000000001', seq: b });
        assert.equal(Math.sign(na < nb ? -1 : na > nb ? 1 : 0), Math.sign(a - b));
      }),
      { seed: 202, numRuns: 300 },
    );
  });

  it('ignores names that are not segments', () => {
    for (const name of [
      'disk.al',
      'd.0123456789abcdef.0000000000000000.hrl', // seq 0
      'd.0123456789ABCDEF.0000000000000001.hrl', // uppercase hex
      'd.0123456789abcdef.1.hrl',
      'd.0123456789abcdef.0000000000000001.hrl.tmp',
      'a.b.0123456789abcdef.0000000000000001.hrl',
      'd.0123456789abcdef.ffffffffffffffff.hrl', // beyond 2^53 - 1
    ]) {
      assert.equal(parseSegmentName(name), undefined, name);
    }
  });

  it('refuses invalid parts with codes', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return LifeboatError.isInstance(e) ? e.code : 'other';
      }
      return undefined;
    };
    assert.equal(code(() => formatSegmentName({ diskId: 'a.b', generation: '0123456789abcdef', seq: 1 })), 'segment.invalidDiskId');
    assert.equal(code(() => formatSegmentName({ diskId: 'a', generation: 'xyz', seq: 1 })), 'segment.invalidGeneration');
    assert.equal(code(() => formatSegmentName({ diskId: 'a', generation: '0123456789abcdef', seq: 0 })), 'segment.invalidName');
    assert.equal(code(() => formatSegmentName({ diskId: 'a', generation: '0123456789abcdef', seq: 1.5 })), 'segment.invalidName');
  });

  it('converts generation ids to bytes in spelling order', () => {
    assert.deepEqual([...generationToBytes('0102030405060708')], [1, 2, 3, 4, 5, 6, 7, 8]);
    fc.assert(
      fc.property(generationArb, (g) => assert.equal(generationFromBytes(generationToBytes(g)), g)),
      { seed: 203, numRuns: 100 },
    );
  });
});
