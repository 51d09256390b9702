import { strict as assert } from 'node:assert';
import { zstdCompressSync } from 'node:zlib';
import fc from 'fast-check';
import { InvalidInputError, LifeboatError } from '../../../provider/errors';
import { KiB } from '../../../provider/units';
import {
  AdaptiveCompressor, CODEC_RAW, CODEC_ZSTD, compress, compressAsync, compressionPays, decodeChunk, decodeChunkAsync,
  encodeChunk, encodeChunkAsync, FRAME_HEADER_BYTES, frameInfo,
} from '../../../provider/replication/compression';
import { seededRandom } from '../../../provider/replication/retry';

/** Incompressible bytes from a seeded generator (reproducible). */
function noise(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Text-like bytes: words from a small vocabulary in a seeded order. */
function text(n: number, seed: number): Buffer {
  const words = ['replica', 'segment', 'the', 'disk', 'of', 'a', 'point', 'cycle', 'host', 'vault', 'write', 'log', '\n'];
  const r = seededRandom(seed);
  let s = '';
  while (s.length < n) s += `${words[Math.floor(r() * words.length)]} `;
  return Buffer.from(s.slice(0, n));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return LifeboatError.isInstance(e) ? e.code : `foreign: ${String(e)}`;
  }
  return undefined;
}

describe('replication/compression', () => {
  it('the rule: compressed must be under 95 % of raw by default', () => {
    assert.equal(compressionPays(1000, 949), true);
    assert.equal(compressionPays(1000, 950), false);
    assert.equal(compressionPays(1000, 1200), false);
    assert.equal(compressionPays(1000, 870, 7 / 8), true);
    assert.equal(compressionPays(1000, 880, 7 / 8), false);
  });

  it('compresses text, sends random data and small chunks raw (the same buffer, no copy)', () => {
    const t = text(64 * KiB, 1);
    const c = compress(t);
    assert.equal(c.compressed, true);
    assert.ok(c.payload.length < t.length / 2, `text ratio ${c.payload.length / t.length}`);
    const n = noise(64 * KiB, 2);
    assert.deepEqual(compress(n), { compressed: false, payload: n });
    const small = Buffer.alloc(4 * KiB - 1);
    assert.equal(compress(small).payload, small);
    assert.equal(compress(Buffer.alloc(4 * KiB)).compressed, true);
  });

  it('frames: header is codec then little-endian raw length', () => {
    const t = text(10_000, 3);
    const f = encodeChunk(t);
    assert.equal(f[0], CODEC_ZSTD);
    assert.equal(f.readUInt32LE(1), 10_000);
    assert.deepEqual(frameInfo(f), { codec: 'zstd', rawBytes: 10_000, payloadBytes: f.length - FRAME_HEADER_BYTES });
    const n = noise(10_000, 4);
    const g = encodeChunk(n);
    assert.equal(g[0], CODEC_RAW);
    assert.equal(g.length, FRAME_HEADER_BYTES + 10_000);
    assert.ok(decodeChunk(g).equals(n));
    assert.ok(decodeChunk(encodeChunk(Buffer.alloc(0))).equals(Buffer.alloc(0)));
  });

  it('property: decode(encode(x)) = x for random, repetitive and mixed data, sync and async alike', async () => {
    const data = fc.oneof(
      fc.uint8Array({ maxLength: 40_000 }).map((a) => Buffer.from(a)),
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 2000 }))
        .map(([unit, times]) => Buffer.concat(Array.from({ length: times }, () => Buffer.from(unit)))),
      fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 20_000 }), fc.nat())
        .map(([a, b, seed]) => Buffer.concat([text(a, seed), noise(b, seed + 1)])),
    );
    await fc.assert(fc.asyncProperty(data, fc.constantFrom(1, 3), fc.constantFrom(0.95, 7 / 8), async (raw, level, maxRatio) => {
      const f = encodeChunk(raw, { level, maxRatio });
      const info = frameInfo(f);
      assert.equal(info.rawBytes, raw.length);
      if (info.codec === 'zstd') assert.ok(compressionPays(raw.length, info.payloadBytes, maxRatio));
      else assert.equal(info.payloadBytes, raw.length);
      assert.ok(decodeChunk(f).equals(raw));
      const g = await encodeChunkAsync(raw, { level, maxRatio });
      assert.ok((await decodeChunkAsync(g)).equals(raw));
      assert.equal(frameInfo(g).codec, info.codec);
      assert.equal((await compressAsync(raw, { level, maxRatio })).compressed, info.codec === 'zstd');
    }), { seed: 4242, numRuns: 120 });
  });

  describe('damaged frames', () => {
    const t = text(20_000, 5);
    const good = encodeChunk(t);
    const cases: [string, () => Buffer, string][] = [
      ['shorter than the header', () => good.subarray(0, 3), 'compression.frameCorrupt'],
      ['an unknown codec', () => Buffer.concat([Buffer.from([7]), good.subarray(1)]), 'compression.unknownCodec'],
      ['a raw length over the limit', () => { const b = Buffer.from(good); b.writeUInt32LE(65 * 1024 * 1024, 1); return b; }, 'compression.frameCorrupt'],
      ['a wrong raw length', () => { const b = Buffer.from(good); b.writeUInt32LE(19_999, 1); return b; }, 'compression.frameCorrupt'],
      ['a truncated zstd payload', () => good.subarray(0, good.length - 10), 'compression.frameCorrupt'],
      ['a flipped bit in the zstd payload (content checksum)', () => { const b = Buffer.from(good); b[Math.floor(b.length / 2)]! ^= 0x10; return b; }, 'compression.frameCorrupt'],
      ['a raw frame with a wrong length', () => Buffer.concat([Buffer.from([0, 10, 0, 0, 0]), Buffer.alloc(9)]), 'compression.frameCorrupt'],
      ['zstd of more bytes than the header says', () => Buffer.concat([Buffer.from([1, 100, 0, 0, 0]), zstdCompressSync(Buffer.alloc(5000))]), 'compression.frameCorrupt'],
    ];
    for (const [name, make, code] of cases) {
      it(`refuses ${name} with ${code}, sync and async`, async () => {
        const f = make();
        assert.equal(codeOf(() => decodeChunk(f)), code);
        await assert.rejects(decodeChunkAsync(f), (e: unknown) => LifeboatError.isInstance(e) && e.code === code);
      });
    }
    it('a corrupt frame is recoverable (re-sent on retry); an unknown codec is not', () => {
      assert.throws(() => decodeChunk(good.subarray(0, 2)), (e: unknown) => LifeboatError.isInstance(e) && e.category === 'recoverable' && e.hint !== undefined);
      assert.throws(() => decodeChunk(Buffer.from([9, 0, 0, 0, 0])), (e: unknown) => LifeboatError.isInstance(e) && e.category === 'nonRecoverable');
    });
    it('property: arbitrary bytes either decode to exactly the stated length or fail with a classified error', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, asZstd) => {
        const b = Buffer.from(bytes);
        if (asZstd && b.length >= FRAME_HEADER_BYTES) b[0] = CODEC_ZSTD;
        try {
          const out = decodeChunk(b);
          assert.equal(out.length, b.readUInt32LE(1));
        } catch (e) {
          assert.ok(LifeboatError.isInstance(e), `unclassified error ${String(e)}`);
        }
      }), { seed: 99, numRuns: 500 });
    });
  });

  it('refuses invalid options', () => {
    assert.throws(() => compress(Buffer.alloc(1), { maxRatio: 1.5 }), InvalidInputError);
    assert.throws(() => compress(Buffer.alloc(1), { level: 99 }), InvalidInputError);
    assert.throws(() => new AdaptiveCompressor({ maxRatio: 0 }), InvalidInputError);
  });

  describe('AdaptiveCompressor', () => {
    it('backs off after 8 misses: 56 chunks raw untried, then tries again', async () => {
      const c = new AdaptiveCompressor();
      const n = noise(8 * KiB, 6);
      for (let i = 0; i < 8 + 56; i++) assert.equal((await c.compress(n)).compressed, false);
      assert.deepEqual(c.stats, { chunks: 64, rawBytes: 64 * 8 * KiB, payloadBytes: 64 * 8 * KiB, compressedChunks: 0, untriedChunks: 56 });
      // Data became compressible: the next try (chunk 65) finds it.
      assert.equal((await c.compress(text(8 * KiB, 7))).compressed, true);
      assert.equal(c.stats.untriedChunks, 56);
    });

    it('a hit resets the miss count', async () => {
      const c = new AdaptiveCompressor({ missesBeforeBackoff: 3, backoffChunks: 2 });
      const n = noise(8 * KiB, 8);
      const t = text(8 * KiB, 9);
      const seq = [n, n, t, n, n, t, n, n, n, t, t, t];
      const got: string[] = [];
      for (const b of seq) got.push((await c.compress(b)).compressed ? 'z' : '-');
      // After the third miss in a row (index 8) two chunks go untried (9, 10), then 11 is tried.
      assert.deepEqual(got.join(''), '--z--z-----z');
      assert.equal(c.stats.untriedChunks, 2);
    });

    it('frames what it compresses', async () => {
      const c = new AdaptiveCompressor();
      const t = text(50_000, 10);
      assert.ok(decodeChunk(await c.encodeChunk(t)).equals(t));
      assert.ok(c.stats.payloadBytes < c.stats.rawBytes);
    });
  });
});
