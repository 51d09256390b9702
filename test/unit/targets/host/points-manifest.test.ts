import assert from 'node:assert/strict';
import { encodeManifest, initialManifest, parseManifest, type PointsManifest } from '../../../../provider/targets/host/points-manifest';
import { rejectsWith } from '../conformance';

const M: PointsManifest = {
  ...initialManifest('vm1/disk0', 1 << 20),
  generation: 'g2',
  appliedSeq: 9,
  headCycle: 5,
  nextCycle: 6,
  points: [
    { id: 'p-0000000000000002', cycle: 2, seq: 4, generation: 'g1', time: 100, kind: 'crashConsistent' },
    { id: 'p-0000000000000005', cycle: 5, seq: 9, generation: 'g2', time: 200.5, kind: 'appConsistent' },
  ],
  undo: [{ cycle: 3, extents: 2, bytes: 999 }, { cycle: 5, extents: 1, bytes: 100 }],
  rollback: { toCycle: 5, cycles: [7, 8] },
};

function doc(over: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ ...(JSON.parse(encodeManifest(M).toString()) as Record<string, unknown>), ...over }));
}

describe('targets/host/points-manifest (docs/replica-format.md §4)', () => {
  it('round-trips', () => {
    assert.deepEqual(parseManifest(encodeManifest(M), 'm.json'), M);
    const fresh = initialManifest('d', 512);
    assert.deepEqual(parseManifest(encodeManifest(fresh), 'm.json'), fresh);
  });

  it('refuses other versions and malformed content', async () => {
    const parse = (b: Buffer): Promise<unknown> => Promise.resolve().then(() => parseManifest(b, 'm.json'));
    await rejectsWith(parse(doc({ version: 2 })), 'nonRecoverable', 'replica.formatVersion');
    await rejectsWith(parse(Buffer.from('{"format":')), 'nonRecoverable', 'replica.corrupt');
    await rejectsWith(parse(doc({ format: 'other' })), 'nonRecoverable', 'replica.corrupt');
    await rejectsWith(parse(doc({ appliedSeq: -1 })), 'nonRecoverable', 'replica.corrupt');
    await rejectsWith(parse(doc({ nextCycle: 5 })), 'nonRecoverable', 'replica.corrupt');
    await rejectsWith(parse(doc({ undo: [{ cycle: 5, extents: 1, bytes: 1 }, { cycle: 3, extents: 1, bytes: 1 }] })), 'nonRecoverable', 'replica.corrupt');
    await rejectsWith(parse(doc({ points: [{ ...M.points[0], kind: 'weird' }] })), 'nonRecoverable', 'replica.corrupt');
    await rejectsWith(parse(doc({ headCycle: 1 })), 'nonRecoverable', 'replica.corrupt');
  });
});
