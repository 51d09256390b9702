import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CoverageSet, fillGaps, mergeEarliestWins, type MappedExtent, type UndoLayer } from '../../../../provider/targets/host/extent-map';
import { type UndoExtent } from '../../../../provider/targets/host/undo-log';

const SPACE = 200;

/** Disjoint extents of one layer from random [start, length) pairs. */
const layerArb = fc.array(fc.tuple(fc.integer({ min: 0, max: SPACE - 1 }), fc.integer({ min: 1, max: 40 }), fc.boolean()), { maxLength: 8 }).map((raw) => {
  const cov = new CoverageSet();
  let pos = 1000;
  for (const [start, len, zero] of raw) {
    for (const [s, e] of cov.gaps(start, Math.min(SPACE, start + len))) {
      cov.add({ offset: s, length: e - s, zero, payloadPos: zero ? 0 : pos });
      pos += e - s;
    }
  }
  return cov.extents;
});

/** For each byte: [source, payload position] or 'zero' or undefined, by brute force. */
function naive(layers: readonly UndoLayer[]): Array<string | undefined> {
  const out: Array<string | undefined> = new Array(SPACE).fill(undefined);
  for (const l of layers) {
    for (const e of l.extents) {
      for (let x = e.offset; x < e.offset + e.length; x++) {
        if (out[x] === undefined) out[x] = e.zero ? `${l.source}:zero` : `${l.source}:${e.payloadPos + (x - e.offset)}`;
      }
    }
  }
  return out;
}

function flatten(map: readonly MappedExtent[]): Array<string | undefined> {
  const out: Array<string | undefined> = new Array(SPACE).fill(undefined);
  let prevEnd = -1;
  for (const m of map) {
    assert.ok(m.start >= prevEnd && m.start < m.end, 'sorted, disjoint, non-empty');
    prevEnd = m.end;
    for (let x = m.start; x < m.end; x++) out[x] = m.zero ? `${m.source}:zero` : `${m.source}:${m.payloadPos + (x - m.start)}`;
  }
  return out;
}

describe('targets/host/extent-map', () => {
  it('CoverageSet reports gaps and refuses overlaps', () => {
    const c = new CoverageSet();
    const e = (offset: number, length: number): UndoExtent => ({ offset, length, zero: false, payloadPos: 0 });
    c.add(e(10, 10));
    c.add(e(30, 5));
    assert.deepEqual(c.gaps(0, 40), [[0, 10], [20, 30], [35, 40]]);
    assert.deepEqual(c.gaps(12, 18), []);
    assert.deepEqual(c.gaps(15, 32), [[20, 30]]);
    assert.throws(() => c.add(e(19, 2)), RangeError);
    c.add(e(20, 10));
    assert.deepEqual([...c.overlapping(19, 31)].map((x) => x.offset), [10, 20, 30]);
    c.remove(e(20, 10));
    assert.deepEqual(c.gaps(0, 40), [[0, 10], [20, 30], [35, 40]]);
  });

  it('mergeEarliestWins equals a byte-by-byte merge (property)', () => {
    fc.assert(
      fc.property(fc.array(layerArb, { maxLength: 6 }), (raw) => {
        const layers = raw.map((extents, i) => ({ source: i * 3 + 1, extents }));
        assert.deepEqual(flatten(mergeEarliestWins(layers)), naive(layers));
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('fillGaps adds a newer layer only where the map has nothing (property)', () => {
    fc.assert(
      fc.property(fc.array(layerArb, { maxLength: 5 }), layerArb, (raw, newer) => {
        const layers = raw.map((extents, i) => ({ source: i, extents }));
        const added = { source: 99, extents: newer };
        assert.deepEqual(flatten(fillGaps(mergeEarliestWins(layers), added)), naive([...layers, added]));
      }),
      { seed: 4343, numRuns: 300 },
    );
  });

  it('merges contiguous pieces of one extent split by a losing layer', () => {
    const map = mergeEarliestWins([
      { source: 0, extents: [{ offset: 0, length: 100, zero: false, payloadPos: 500 }] },
      { source: 1, extents: [{ offset: 40, length: 10, zero: false, payloadPos: 9 }] },
    ]);
    assert.deepEqual(map, [{ start: 0, end: 100, source: 0, zero: false, payloadPos: 500 }]);
  });
});
