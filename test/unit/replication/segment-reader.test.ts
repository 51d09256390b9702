import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import { formatSegmentName, scanSegment } from '../../../provider/format';
import { scanSegmentFile, SegmentReader, type SegmentRecordRef } from '../../../provider/replication/segment-reader';
import { buildSegment, FIXTURE_DIR, SEALED_OPS, vectorData, vectorHeader, type VectorOp } from '../format/vectors';

const fixture = (name: string): string => path.join(FIXTURE_DIR, name);

async function collect(reader: SegmentReader): Promise<SegmentRecordRef[]> {
  const out: SegmentRecordRef[] = [];
  for await (const r of reader.records()) out.push(r);
  return out;
}

/** The code of the error `f` rejects with, after collecting what it yielded. */
async function failure(f: () => Promise<unknown>): Promise<LifeboatError> {
  try {
    await f();
  } catch (e) {
    if (LifeboatError.isInstance(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('replication/segment-reader', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-reader-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('streams the write records of a sealed segment and reads their data', async () => {
    const reader = await SegmentReader.open(fixture('sealed.hrl'), { expect: { diskId: 'vector-disk', seq: 1 } });
    try {
      const records = await collect(reader);
      const writes = SEALED_OPS.filter((o) => o.kind === 'write');
      assert.deepEqual(
        records.map((r) => [r.index, r.offset, r.length]),
        [
          [0, 0, 4096],
          [1, 10_000, 100],
          [2, 3840, 512],
          [4, (1 << 20) - 1, 1],
        ],
      );
      for (const [i, r] of records.entries()) {
        assert.ok((await reader.readData(r)).equals(writes[i]!.data));
      }
      assert.ok((await reader.read(records[1]!.dataPosition + 10, 5)).equals(writes[1]!.data.subarray(10, 15)));
      assert.equal(reader.summary?.seal.recordCount, 5);
      assert.equal(reader.summary?.writeCount, 4);
      assert.equal(reader.summary?.fileBytes, fs.statSync(fixture('sealed.hrl')).size);
      assert.equal((await reader.verify()).seal.dataBytes, 4096 + 100 + 512 + 1);
      await assert.rejects(reader.read(0, 10), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'segment.tornTail');
    } finally {
      await reader.close();
      await reader.close();
    }
  });

  it('classifies every corrupt vector as resync required (or another version as invalid input)', async () => {
    const cases: ReadonlyArray<[string, string, number]> = [
      // file, code, records yielded before the failure
      ['checksum-mismatch.hrl', 'segment.checksumMismatch', 1],
      ['record-header-mismatch.hrl', 'segment.checksumMismatch', 1],
      ['torn.hrl', 'segment.tornTail', 1],
      ['unsealed.hrl', 'segment.notSealed', 2],
      ['trailing-data.hrl', 'segment.trailingData', 4],
    ];
    for (const [file, code, yielded] of cases) {
      const reader = await SegmentReader.open(fixture(file));
      const seen: SegmentRecordRef[] = [];
      const e = await failure(async () => {
        for await (const r of reader.records()) seen.push(r);
      });
      await reader.close();
      assert.equal(e.code, code, file);
      assert.equal(e.category, 'resyncRequired', file);
      assert.equal(seen.length, yielded, file);
      assert.equal(reader.summary, undefined);
    }
    for (const [file, code, category] of [
      ['bad-magic.hrl', 'segment.badMagic', 'resyncRequired'],
      ['torn-header.hrl', 'segment.tornTail', 'resyncRequired'],
      ['unknown-version.hrl', 'segment.unknownVersion', 'invalidInput'],
      ['no-such-file.hrl', 'segment.missing', 'resyncRequired'],
    ] as const) {
      const e = await failure(() => SegmentReader.open(fixture(file)));
      assert.equal(e.code, code, file);
      assert.equal(e.category, category, file);
    }
  });

  it('refuses a segment whose header disagrees with its name or the expectation', async () => {
    const renamed = path.join(tmp, formatSegmentName({ diskId: 'vector-disk', generation: '0123456789abcdef', seq: 5 }));
    fs.copyFileSync(fixture('sealed.hrl'), renamed);
    assert.equal((await failure(() => SegmentReader.open(renamed))).code, 'segment.identityMismatch');
    for (const expect of [{ diskId: 'x' }, { generation: 'ffffffffffffffff' }, { seq: 2 }, { diskSize: 512 }]) {
      assert.equal((await failure(() => SegmentReader.open(fixture('sealed.hrl'), { expect }))).code, 'segment.identityMismatch');
    }
  });

  it('readData detects bytes that changed after verification', async () => {
    const file = path.join(tmp, 'seg.hrl');
    fs.copyFileSync(fixture('sealed.hrl'), file);
    const reader = await SegmentReader.open(file);
    try {
      const records = await collect(reader);
      const fh = await fsp.open(file, 'r+');
      await fh.write(Buffer.from([0xff]), 0, 1, records[0]!.dataPosition + 7);
      await fh.close();
      assert.equal((await failure(() => reader.readData(records[0]!))).code, 'segment.checksumMismatch');
    } finally {
      await reader.close();
    }
  });

  it('gives the same records whatever its read size, for any segment (property)', async () => {
    const opArb: fc.Arbitrary<VectorOp> = fc.oneof(
      fc.record({ offset: fc.nat((1 << 20) - 5000), length: fc.integer({ min: 1, max: 5000 }), salt: fc.nat(255) }).map((w) => ({
        kind: 'write' as const,
        offset: w.offset,
        data: vectorData(w.length, w.salt),
      })),
      fc.constant({ kind: 'flush' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 15 }), fc.integer({ min: 1, max: 9000 }), async (ops, chunkBytes) => {
        const file = path.join(tmp, 'p.hrl');
        const seg = buildSegment(vectorHeader(3, 1), ops, 99);
        fs.writeFileSync(file, seg.bytes);
        const expected = scanSegment(seg.bytes).records.filter((r) => r.type === 'write');
        const reader = await SegmentReader.open(file, { chunkBytes });
        try {
          const got = await collect(reader);
          assert.deepEqual(
            got.map((r) => [r.index, r.offset, r.length, r.dataPosition, r.dataChecksum]),
            expected.map((r) => [r.index, r.offset, r.length, r.dataPosition, r.dataChecksum]),
          );
          assert.equal(reader.summary?.seal.segmentChecksum, seg.checksum);
        } finally {
          await reader.close();
        }
      }),
      { seed: 901, numRuns: 60 },
    );
  });

  it('scanSegmentFile reports what the pure scanner reports, without throwing', async () => {
    for (const name of ['sealed.hrl', 'unsealed.hrl', 'torn.hrl', 'checksum-mismatch.hrl', 'bad-magic.hrl', 'unknown-version.hrl']) {
      const fh = await fsp.open(fixture(name), 'r');
      try {
        const seen: number[] = [];
        const result = await scanSegmentFile(fh, { chunkBytes: 100, onRecord: (r) => seen.push(r.index) });
        const { records, ...expected } = scanSegment(fs.readFileSync(fixture(name)));
        assert.deepEqual(result, expected, name);
        assert.deepEqual(
          seen,
          records.map((r) => r.index),
        );
      } finally {
        await fh.close();
      }
    }
  });
});
