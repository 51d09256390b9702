import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { type ScanOutcome } from '../../../provider/format/outcome';
import { type ScannedRecord, scanSegment, SegmentScanner } from '../../../provider/format/segment-scanner';
import {
  buildSegment,
  buildVectors,
  FIXTURE_DIR,
  SEALED_OPS,
  UNSEALED_OPS,
  vectorData,
  vectorHeader,
  type VectorOp,
} from './vectors';

const HEADER = 128;
const rec = (dataLength: number): number => 32 + dataLength;
const read = (rel: string): Buffer => fs.readFileSync(path.join(FIXTURE_DIR, rel));

/** Scan by pushing `bytes` in the given chunk sizes. */
function scanChunked(bytes: Buffer, sizes: readonly number[]): { records: ScannedRecord[]; result: ReturnType<SegmentScanner['finish']> } {
  const scanner = new SegmentScanner();
  const records: ScannedRecord[] = [];
  let i = 0;
  let k = 0;
  while (i < bytes.length) {
    const n = Math.max(1, sizes[k++ % sizes.length] ?? 1);
    records.push(...scanner.push(bytes.subarray(i, i + n)));
    i += n;
  }
  return { records, result: scanner.finish() };
}

const opsArb: fc.Arbitrary<VectorOp[]> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('write' as const),
      offset: fc.integer({ min: 0, max: (1 << 20) - 2000 }),
      data: fc.integer({ min: 1, max: 2000 }).chain((n) => fc.integer({ min: 0, max: 255 }).map((s) => vectorData(n, s))),
    }),
    fc.constant({ kind: 'flush' as const }),
  ),
  { maxLength: 12 },
);

describe('format/segment-scanner', () => {
  describe('test vectors (test/fixtures/format/README.md)', () => {
    it('the codecs still produce the committed bytes', () => {
      for (const [rel, bytes] of buildVectors()) {
        assert.ok(read(rel).equals(bytes), `${rel} differs from what the codecs produce`);
      }
    });

    const expected: ReadonlyArray<[string, ScanOutcome, number, number]> = [
      // file, outcome, valid prefix, valid records
      ['sealed.hrl', 'sealed', HEADER + rec(4096) + rec(100) + rec(512) + 32 + rec(1) + 32, 5],
      ['unsealed.hrl', 'end', HEADER + rec(8192) + 32 + rec(7), 3],
      ['checksum-mismatch.hrl', 'checksumMismatch', HEADER + rec(4096), 1],
      ['record-header-mismatch.hrl', 'checksumMismatch', HEADER + rec(4096), 1],
      ['torn.hrl', 'tornTail', HEADER + rec(8192) + 32, 2],
      ['torn-header.hrl', 'tornTail', 0, 0],
      ['trailing-data.hrl', 'trailingData', HEADER + rec(4096) + rec(100) + rec(512) + 32 + rec(1) + 32, 5],
      ['unknown-version.hrl', 'unknownVersion', 0, 0],
      ['bad-magic.hrl', 'badMagic', 0, 0],
    ];
    for (const [file, outcome, validLength, records] of expected) {
      it(`${file}: ${outcome}, valid prefix ${validLength}`, () => {
        const r = scanSegment(read(file));
        assert.equal(r.outcome, outcome);
        assert.equal(r.validLength, validLength);
        assert.equal(r.recordCount, records);
        assert.equal(r.records.length, records);
        assert.equal(r.refusal === undefined, outcome === 'sealed' || outcome === 'end');
      });
    }

    it('reports records where their bytes are', () => {
      const bytes = read('sealed.hrl');
      const r = scanSegment(bytes);
      const writes = SEALED_OPS.filter((o) => o.kind === 'write');
      assert.deepEqual(
        r.records.map((x) => x.type),
        ['write', 'write', 'write', 'flush', 'write'],
      );
      r.records
        .filter((x) => x.type === 'write')
        .forEach((x, i) => {
          const op = writes[i]!;
          assert.equal(x.offset, op.offset);
          assert.ok(bytes.subarray(x.dataPosition, x.dataPosition + x.length).equals(op.data));
        });
      assert.equal(r.seal?.recordCount, 5);
      assert.equal(r.seal?.dataBytes, 4096 + 100 + 512 + 1);
      assert.equal(r.checksum, r.seal?.segmentChecksum);
      assert.equal(r.header?.seq, 1);
    });

    it('locates the refusal at the bad record', () => {
      const r = scanSegment(read('checksum-mismatch.hrl'));
      assert.equal(r.refusal?.at, HEADER + rec(4096));
      assert.equal(scanSegment(read('torn.hrl')).refusal?.at, HEADER + rec(8192) + 32);
    });
  });

  it('gives the same verdict whatever the chunking', () => {
    const files = [...buildVectors().entries()].filter(([rel]) => !rel.includes('/'));
    fc.assert(
      fc.property(
        fc.constantFrom(...files),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
        ([, bytes], sizes) => {
          const whole = scanSegment(bytes);
          const { records, result } = scanChunked(bytes, sizes);
          assert.deepEqual(records, whole.records);
          const { records: _r, ...wholeResult } = whole;
          assert.deepEqual(result, wholeResult);
        },
      ),
      { seed: 501, numRuns: 200 },
    );
  });

  it('reads back whatever the codecs wrote; the checksum of an unsealed segment is that of its bytes', () => {
    fc.assert(
      fc.property(opsArb, fc.boolean(), (ops, sealed) => {
        const seg = buildSegment(vectorHeader(5, 99), ops, sealed ? 1234 : undefined);
        const r = scanSegment(seg.bytes);
        assert.equal(r.outcome, sealed ? 'sealed' : 'end');
        assert.equal(r.validLength, seg.bytes.length);
        assert.equal(r.recordCount, ops.length);
        assert.equal(r.checksum, seg.checksum);
        r.records.forEach((x, i) => {
          const op = ops[i]!;
          assert.equal(x.type, op.kind);
          if (op.kind === 'write') assert.ok(seg.bytes.subarray(x.dataPosition, x.dataPosition + x.length).equals(op.data));
        });
      }),
      { seed: 502, numRuns: 150 },
    );
  });

  it('a prefix of a segment yields a prefix of its records (torn tails)', () => {
    const seg = buildSegment(vectorHeader(1, 0), [...SEALED_OPS, ...UNSEALED_OPS], 77);
    const full = scanSegment(seg.bytes);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: seg.bytes.length - 1 }), (cut) => {
        const r = scanSegment(seg.bytes.subarray(0, cut));
        assert.ok(r.validLength <= cut);
        assert.deepEqual(r.records, full.records.slice(0, r.records.length));
        const boundary = full.records.some((x) => x.dataPosition + x.length === cut) || cut === HEADER;
        assert.equal(r.outcome, boundary ? 'end' : 'tornTail');
        if (r.outcome === 'tornTail') {
          // Nothing complete was left out: the next record does not fit.
          const next = full.records[r.records.length];
          assert.ok(next === undefined || next.dataPosition + next.length > cut);
        }
      }),
      { seed: 503, numRuns: 300 },
    );
  });

  it('no single flipped bit leaves a sealed segment sealed', () => {
    const bytes = read('sealed.hrl');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 7 }), (i, bit) => {
        const damaged = Buffer.from(bytes);
        damaged[i] ^= 1 << bit;
        const r = scanSegment(damaged);
        assert.notEqual(r.outcome, 'sealed');
        assert.notEqual(r.outcome, 'end');
        assert.ok(r.validLength <= i + 1 || r.outcome === 'trailingData' || i < HEADER);
      }),
      { seed: 504, numRuns: 400 },
    );
  });

  it('ignores bytes after a refusal', () => {
    const scanner = new SegmentScanner();
    scanner.push(read('bad-magic.hrl'));
    assert.ok(scanner.stopped);
    assert.deepEqual(scanner.push(read('sealed.hrl')), []);
    assert.equal(scanner.finish().outcome, 'badMagic');
  });
});
