import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import { crc32 } from '../../../provider/format/crc';
import { MAX_RECORD_DATA } from '../../../provider/format/layout';
import {
  checkRecordHeader,
  decodeRecordHeader,
  encodeFlushMarker,
  encodeSeal,
  encodeWriteRecordHeader,
  isFlushMarkerAt,
} from '../../../provider/format/segment-record';

const DISK = 2 ** 40;

describe('format/segment-record', () => {
  it('round-trips write record headers (§3.3)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_fffe }),
        fc.integer({ min: 1, max: MAX_RECORD_DATA }),
        fc.integer({ min: 0, max: DISK - MAX_RECORD_DATA }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (index, length, offset, dataChecksum) => {
          const b = encodeWriteRecordHeader({ index, offset, length, dataChecksum });
          assert.equal(b.length, 32);
          assert.deepEqual(decodeRecordHeader(b, 0, { diskSize: DISK, expectedIndex: index, position: 999 }), {
            type: 'write',
            index,
            offset,
            length,
            dataChecksum,
          });
        },
      ),
      { seed: 401, numRuns: 300 },
    );
  });

  it('writes into a caller buffer at an offset', () => {
    const target = Buffer.alloc(100, 0xee);
    encodeWriteRecordHeader({ index: 3, offset: 4096, length: 10, dataChecksum: 1 }, target, 40);
    assert.equal(target[39], 0xee);
    assert.equal(target[72], 0xee);
    assert.equal(target[40], 1);
    assert.equal(target.readUInt32LE(68), crc32(target.subarray(40, 68)));
  });

  it('round-trips flush markers and seals (§3.4, §3.5)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_fffe }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (index, big, time, checksum) => {
          const m = encodeFlushMarker({ index, position: big });
          assert.deepEqual(decodeRecordHeader(m, 0, { diskSize: DISK, expectedIndex: index, position: big }), {
            type: 'flush',
            index,
            position: big,
          });
          assert.ok(isFlushMarkerAt(m, 0, big));
          assert.ok(!isFlushMarkerAt(m, 0, big + 1));
          const s = encodeSeal({ recordCount: index, dataBytes: big, sealedAt: time, segmentChecksum: checksum });
          assert.deepEqual(decodeRecordHeader(s, 0, { diskSize: DISK, expectedIndex: 0, position: 0 }), {
            type: 'seal',
            recordCount: index,
            dataBytes: big,
            sealedAt: time,
            segmentChecksum: checksum,
          });
        },
      ),
      { seed: 402, numRuns: 200 },
    );
  });

  it('classifies bad record headers', () => {
    const ctx = { diskSize: 1 << 20, expectedIndex: 4, position: 128 };
    const outcome = (b: Buffer, c = ctx): string => {
      const r = checkRecordHeader(b, 0, c);
      return r.ok ? r.value.type : r.refusal.outcome;
    };
    const good = encodeWriteRecordHeader({ index: 4, offset: 1000, length: 24, dataChecksum: 7 });
    assert.equal(outcome(good), 'write');
    assert.equal(outcome(good.subarray(0, 31)), 'tornTail');
    const flipped = Buffer.from(good);
    flipped[9] ^= 1;
    assert.equal(outcome(flipped), 'checksumMismatch');
    assert.equal(outcome(good, { ...ctx, expectedIndex: 5 }), 'invalidRecord');
    assert.equal(outcome(good, { ...ctx, diskSize: 1023 }), 'invalidRecord');
    const fix = (b: Buffer): Buffer => {
      b.writeUInt32LE(crc32(b.subarray(0, 28)), 28);
      return b;
    };
    const type9 = Buffer.from(good);
    type9[0] = 9;
    assert.equal(outcome(fix(type9)), 'invalidRecord');
    const reserved = Buffer.from(good);
    reserved[25] = 1;
    assert.equal(outcome(fix(reserved)), 'invalidRecord');
    const zeroLength = Buffer.from(good);
    zeroLength.writeUInt32LE(0, 4);
    assert.equal(outcome(fix(zeroLength)), 'invalidRecord');
    // A torn tail of zeros is a checksum mismatch, not a valid record.
    assert.equal(outcome(Buffer.alloc(32)), 'checksumMismatch');
    const marker = encodeFlushMarker({ index: 4, position: 130 });
    assert.equal(outcome(marker), 'invalidRecord'); // found at 128, names 130
  });

  it('decode throws ResyncRequired with the outcome code', () => {
    try {
      decodeRecordHeader(Buffer.alloc(32), 0, { diskSize: 512, expectedIndex: 0, position: 128 });
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(LifeboatError.isInstance(e));
      assert.equal(e.code, 'segment.checksumMismatch');
      assert.equal(e.category, 'resyncRequired');
    }
  });

  it('refuses to encode out-of-range fields', () => {
    const invalid = (f: () => unknown): void =>
      assert.throws(f, (e: unknown) => LifeboatError.isInstance(e) && e.code === 'record.invalid');
    invalid(() => encodeWriteRecordHeader({ index: 0, offset: 0, length: 0, dataChecksum: 0 }));
    invalid(() => encodeWriteRecordHeader({ index: 0, offset: 0, length: MAX_RECORD_DATA + 1, dataChecksum: 0 }));
    invalid(() => encodeWriteRecordHeader({ index: -1, offset: 0, length: 1, dataChecksum: 0 }));
    invalid(() => encodeWriteRecordHeader({ index: 0, offset: -1, length: 1, dataChecksum: 0 }));
    invalid(() => encodeWriteRecordHeader({ index: 0, offset: 0, length: 1, dataChecksum: 2 ** 32 }));
    invalid(() => encodeSeal({ recordCount: 0, dataBytes: -1, sealedAt: 0, segmentChecksum: 0 }));
    invalid(() => encodeFlushMarker({ index: 0, position: 0.5 }));
  });
});
