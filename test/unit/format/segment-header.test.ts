import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import { crc32 } from '../../../provider/format/crc';
import {
  checkSegmentHeader,
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from '../../../provider/format/segment-header';

const headerArb: fc.Arbitrary<SegmentHeader> = fc
  .record({
    diskId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    generation: fc.stringMatching(/^[0-9a-f]{16}$/),
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    diskSize: fc.integer({ min: 1, max: Math.floor(Number.MAX_SAFE_INTEGER / 512) }).map((n) => n * 512),
    createdAt: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    previousChecksum: fc.integer({ min: 0, max: 0xffff_ffff }),
  })
  .map((h) => (h.seq === 1 ? { ...h, previousChecksum: 0 } : { ...h }));

const base: SegmentHeader = {
  diskId: 'disk-1',
  generation: 'a1b2c3d4e5f60718',
  seq: 7,
  diskSize: 1 << 30,
  createdAt: Date.UTC(2026, 0, 1),
  previousChecksum: 0xdeadbeef,
};

function withCrc(b: Buffer): Buffer {
  b.writeUInt32LE(crc32(b.subarray(0, 124)), 124);
  return b;
}

describe('format/segment-header', () => {
  it('round-trips every valid header in 128 bytes', () => {
    fc.assert(
      fc.property(headerArb, (h) => {
        const bytes = encodeSegmentHeader(h);
        assert.equal(bytes.length, 128);
        assert.deepEqual(decodeSegmentHeader(bytes), h);
      }),
      { seed: 301, numRuns: 300 },
    );
  });

  it('lays out the fields of §3.2 little-endian', () => {
    const b = encodeSegmentHeader(base);
    assert.equal(b.subarray(0, 8).toString('latin1'), 'LBHRL\r\n\x1a');
    assert.equal(b.readUInt16LE(8), 1);
    assert.equal(b.readUInt16LE(10), 128);
    assert.equal(b.readUInt32LE(12), 0);
    assert.equal(b.subarray(16, 24).toString('hex'), base.generation);
    assert.equal(b.readBigUInt64LE(24), 7n);
    assert.equal(b.readBigUInt64LE(32), BigInt(1 << 30));
    assert.equal(b.readBigUInt64LE(40), BigInt(base.createdAt));
    assert.equal(b.readUInt32LE(48), 0xdeadbeef);
    assert.equal(b[52], 6);
    assert.equal(b.subarray(53, 59).toString('latin1'), 'disk-1');
    assert.equal(b.readUInt32LE(124), crc32(b.subarray(0, 124)));
    assert.equal(encodeSegmentHeader({ ...base, seq: 1, previousChecksum: 0 }).readUInt32LE(12), 1);
  });

  it('classifies damaged headers in the order of §3.6', () => {
    const good = encodeSegmentHeader(base);
    const outcome = (b: Uint8Array): string => {
      const c = checkSegmentHeader(b);
      return c.ok ? 'ok' : c.refusal.outcome;
    };
    assert.equal(outcome(good), 'ok');
    assert.equal(outcome(good.subarray(0, 5)), 'tornTail');
    assert.equal(outcome(Buffer.from('LBX')), 'badMagic');
    assert.equal(outcome(good.subarray(0, 100)), 'tornTail');
    const v2 = Buffer.from(good);
    v2.writeUInt16LE(2, 8);
    assert.equal(outcome(v2), 'unknownVersion');
    assert.equal(outcome(v2.subarray(0, 10)), 'unknownVersion');
    const flipped = Buffer.from(good);
    flipped[60] ^= 1;
    assert.equal(outcome(flipped), 'checksumMismatch');
    const flags = Buffer.from(good);
    flags.writeUInt32LE(2, 12);
    assert.equal(outcome(withCrc(flags)), 'invalidHeader');
    const firstFlag = Buffer.from(good);
    firstFlag.writeUInt32LE(1, 12); // seq 7 marked first of generation
    assert.equal(outcome(withCrc(firstFlag)), 'invalidHeader');
    const size = Buffer.from(good);
    size.writeUInt32LE(1000, 32);
    assert.equal(outcome(withCrc(size)), 'invalidHeader');
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0xffff_ffff, 28);
    assert.equal(outcome(withCrc(huge)), 'invalidHeader');
    const id = Buffer.from(good);
    id[53] = 0x2e; // '.'
    assert.equal(outcome(withCrc(id)), 'invalidHeader');
    const padding = Buffer.from(good);
    padding[100] = 1;
    assert.equal(outcome(withCrc(padding)), 'invalidHeader');
  });

  it('decode throws ResyncRequired for damage and InvalidInput for another version', () => {
    const good = encodeSegmentHeader(base);
    const v2 = Buffer.from(good);
    v2.writeUInt16LE(9, 8);
    const bad = Buffer.from(good);
    bad[70] ^= 4;
    const caught = (b: Uint8Array): LifeboatError => {
      try {
        decodeSegmentHeader(b);
      } catch (e) {
        if (LifeboatError.isInstance(e)) return e;
      }
      throw new Error('expected a LifeboatError');
    };
    assert.equal(caught(v2).code, 'segment.unknownVersion');
    assert.equal(caught(v2).category, 'invalidInput');
    assert.equal(caught(bad).code, 'segment.checksumMismatch');
    assert.equal(caught(bad).category, 'resyncRequired');
  });

  it('refuses to encode invalid fields', () => {
    for (const h of [
      { ...base, seq: 0 },
      { ...base, diskSize: 1000 },
      { ...base, seq: 1, previousChecksum: 5 },
      { ...base, createdAt: -1 },
      { ...base, previousChecksum: 2 ** 32 },
      { ...base, diskId: '' },
    ]) {
      assert.throws(() => encodeSegmentHeader(h), (e: unknown) => LifeboatError.isInstance(e) && e.category === 'invalidInput');
    }
  });
});
