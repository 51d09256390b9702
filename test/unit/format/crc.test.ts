import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32, crc32Combine } from '../../../provider/format/crc';

describe('format/crc', () => {
  it('is the zlib CRC-32 of §4 (check value of "123456789")', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
  });

  it('continues from an initial value like one pass over the concatenation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        assert.equal(crc32(b, crc32(a)), crc32(Buffer.concat([a, b])));
      }),
      { seed: 101, numRuns: 200 },
    );
  });

  it('crc32Combine(crc(A), crc(B), |B|) equals crc(A || B)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 5000 }), (a, b) => {
        assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(Buffer.concat([a, b])));
      }),
      { seed: 102, numRuns: 300 },
    );
  });

  it('combines lengths beyond 2^32 consistently with splitting them', () => {
    // crc of zeros: combining an empty-CRC block is multiplying by x^(8n); two
    // steps of n must equal one step of 2n, including past 32-bit lengths.
    const n = 3 * 2 ** 31 + 5;
    const c = 0x1234_5678;
    assert.equal(crc32Combine(crc32Combine(c, 0, n), 0, n), crc32Combine(c, 0, 2 * n));
    assert.notEqual(crc32Combine(c, 0, n), c);
  });
});
