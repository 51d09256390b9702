import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import { formatSegmentName } from '../../../provider/format';
import { coalesceSegments, ExtentMap } from '../../../provider/replication/extent-map';
import { buildSegment, vectorHeader, type VectorOp, VECTOR_DISK_ID, VECTOR_GENERATION, VECTOR_DISK_SIZE } from '../format/vectors';

interface Write {
  readonly offset: number;
  readonly length: number;
}

/** The naive model: for every byte, which write (index) and which byte of it is the latest. */
function model(size: number, writes: readonly Write[]): Array<[number, number] | undefined> {
  const bytes = new Array<[number, number] | undefined>(size).fill(undefined);
  writes.forEach((w, k) => {
    for (let i = 0; i < w.length; i++) bytes[w.offset + i] = [k, i];
  });
  return bytes;
}

/** The map's view in the same shape; checks the extents are sorted and disjoint. */
function view(size: number, map: ExtentMap<number>, writes: readonly Write[]): Array<[number, number] | undefined> {
  const bytes = new Array<[number, number] | undefined>(size).fill(undefined);
  let end = -1;
  let count = 0;
  let covered = 0;
  for (const e of map.extents()) {
    assert.ok(e.length > 0, 'no empty extent');
    assert.ok(e.offset >= end, 'sorted and disjoint');
    end = e.offset + e.length;
    count++;
    covered += e.length;
    // `position` is relative to the write's own data (the test uses position = 0 at the write's start).
    const w = writes[e.source]!;
    assert.ok(e.position >= 0 && e.position + e.length <= w.length, 'within its write');
    for (let i = 0; i < e.length; i++) bytes[e.offset + i] = [e.source, e.position + i];
  }
  assert.equal(map.size, count);
  assert.equal(map.coveredBytes, covered);
  return bytes;
}

/** Byte-by-byte comparison with a short message (a deep diff of big arrays is slow to print). */
function assertSame(got: ReadonlyArray<[number, number] | undefined>, want: ReadonlyArray<[number, number] | undefined>): void {
  for (let i = 0; i < want.length; i++) {
    if (got[i]?.[0] !== want[i]?.[0] || got[i]?.[1] !== want[i]?.[1]) {
      assert.fail(`byte ${i}: map says ${JSON.stringify(got[i])}, model ${JSON.stringify(want[i])}`);
    }
  }
}

const writeArb = (size: number): fc.Arbitrary<Write> =>
  fc.integer({ min: 0, max: size - 1 }).chain((offset) => fc.integer({ min: 0, max: Math.min(64, size - offset) }).map((length) => ({ offset, length })));

describe('replication/extent-map', () => {
  it('keeps only the latest bytes of overlapping writes (property, against a byte model)', () => {
    const size = 300;
    fc.assert(
      fc.property(fc.array(writeArb(size), { maxLength: 60 }), (writes) => {
        const map = new ExtentMap<number>();
        writes.forEach((w, k) => map.add(w.offset, w.length, k, 0));
        assertSame(view(size, map, writes), model(size, writes));
      }),
      { seed: 801, numRuns: 500 },
    );
  });

  it('stays correct across chunk splits with many extents', () => {
    const size = 20_000;
    fc.assert(
      fc.property(fc.array(writeArb(size), { minLength: 1000, maxLength: 3000 }), (writes) => {
        const map = new ExtentMap<number>();
        writes.forEach((w, k) => map.add(w.offset, w.length, k, 0));
        assertSame(view(size, map, writes), model(size, writes));
      }),
      { seed: 802, numRuns: 10 },
    );
  });

  it('handles the overlap cases exactly', () => {
    const map = new ExtentMap<string>();
    map.add(10, 10, 'a', 100); // [10,20)
    map.add(12, 3, 'b', 0); // inside a: a splits
    map.add(18, 5, 'c', 0); // over a's tail
    map.add(5, 6, 'd', 0); // over a's head
    map.add(0, 0, 'e', 0); // nothing
    assert.deepEqual(
      [...map.extents()],
      [
        { offset: 5, length: 6, source: 'd', position: 0 },
        { offset: 11, length: 1, source: 'a', position: 101 },
        { offset: 12, length: 3, source: 'b', position: 0 },
        { offset: 15, length: 3, source: 'a', position: 105 },
        { offset: 18, length: 5, source: 'c', position: 0 },
      ],
    );
    map.add(0, 100, 'z', 7);
    assert.deepEqual([...map.extents()], [{ offset: 0, length: 100, source: 'z', position: 7 }]);
    assert.throws(() => map.add(-1, 1, 'x', 0), RangeError);
  });

  it('a sequential stream of small writes costs memory per extent, not per byte', () => {
    const map = new ExtentMap<number>();
    for (let i = 0; i < 100_000; i++) map.add((i * 4096) % (1 << 26), 4096, i, 0);
    assert.equal(map.size, (1 << 26) / 4096);
    assert.equal(map.coveredBytes, 1 << 26);
  });

  describe('coalesceSegments', () => {
    let tmp: string;
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-coalesce-'));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const write = (offset: number, length: number): VectorOp => ({ kind: 'write', offset, data: randomBytes(length) });

    /** Segments 1..n of the vector disk from ops, chained, written to tmp. */
    function chain(opsPerSegment: readonly VectorOp[][]): Array<{ path: string; seq: number }> {
      let previous = 0;
      return opsPerSegment.map((ops, i) => {
        const seq = i + 1;
        const seg = buildSegment(vectorHeader(seq, previous), ops, 1000 + seq);
        previous = seg.checksum;
        const file = path.join(tmp, formatSegmentName({ diskId: VECTOR_DISK_ID, generation: VECTOR_GENERATION, seq }));
        fs.writeFileSync(file, seg.bytes);
        return { path: file, seq };
      });
    }

    const opts = { diskId: VECTOR_DISK_ID, generation: VECTOR_GENERATION, diskSize: VECTOR_DISK_SIZE };

    it('ships exactly the bytes that applying the segments in order would leave', async () => {
      const ops = [
        [write(0, 5000), write(100, 10), { kind: 'flush' as const }, write(4000, 2000)],
        [write(4500, 100), write(70_000, 3)],
        [write(0, 50)],
      ];
      const segs = chain(ops);
      const expected = Buffer.alloc(VECTOR_DISK_SIZE);
      const written = Buffer.alloc(VECTOR_DISK_SIZE);
      for (const o of ops.flat()) {
        if (o.kind === 'write') {
          o.data.copy(expected, o.offset);
          written.fill(1, o.offset, o.offset + o.data.length);
        }
      }
      const c = await coalesceSegments(segs, opts);
      try {
        const shipped = Buffer.alloc(VECTOR_DISK_SIZE);
        const touched = Buffer.alloc(VECTOR_DISK_SIZE);
        for (const e of c.extents) {
          (await c.read(e)).copy(shipped, e.offset);
          touched.fill(1, e.offset, e.offset + e.length);
        }
        assert.ok(touched.equals(written));
        assert.ok(shipped.equals(expected));
        assert.equal(c.bytes, 6000 + 3);
        assert.equal(c.dataBytes, 5000 + 10 + 2000 + 100 + 3 + 50);
      } finally {
        await c.close();
      }
    });

    it('refuses a gap, a corrupt segment, a missing file and an unsealed segment: resync required', async () => {
      const segs = chain([[write(0, 10)], [write(0, 10)], [write(0, 10)]]);
      const codeOf = async (list: Array<{ path: string; seq: number }>): Promise<string> => {
        try {
          const c = await coalesceSegments(list, opts);
          await c.close();
          return 'none';
        } catch (e) {
          assert.ok(LifeboatError.isInstance(e) && e.category === 'resyncRequired');
          return e.code;
        }
      };
      assert.equal(await codeOf(segs), 'none');
      assert.equal(await codeOf([segs[0]!, segs[2]!]), 'chain.gap');
      assert.equal(await codeOf([{ path: segs[0]!.path, seq: 2 }]), 'segment.identityMismatch');
      const damaged = fs.readFileSync(segs[1]!.path);
      damaged[128 + 32 + 3] ^= 0x10;
      fs.writeFileSync(segs[1]!.path, damaged);
      assert.equal(await codeOf(segs), 'segment.checksumMismatch');
      fs.rmSync(segs[1]!.path);
      assert.equal(await codeOf(segs), 'segment.missing');
      const unsealed = buildSegment(vectorHeader(2, 0), [write(0, 10)]);
      fs.writeFileSync(segs[1]!.path, unsealed.bytes);
      assert.equal(await codeOf(segs.slice(1, 2)), 'segment.notSealed');
    });
  });
});
