import assert from 'node:assert/strict';
import { LifeboatError } from '../../../../provider/errors';
import { DEFAULT_MIN_COMPRESS_BYTES as MIN_COMPRESS_BYTES } from '../../../../provider/replication/compression';
import { decodePayload, PayloadCompressor } from '../../../../provider/targets/remote/payload-compression';
import { FLAG_COMPRESSED } from '../../../../provider/targets/remote/protocol';
import { pattern } from './harness';

async function protocolError(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (e: unknown) => LifeboatError.isInstance(e) && e.code === 'remote.protocolError');
}

describe('payload compression (docs/replication-protocol.md §8)', () => {
  const text = Buffer.from('replica '.repeat(20_000));

  it('compresses what pays and decodes it back exactly', async () => {
    const c = new PayloadCompressor('zstd');
    const e = await c.encode(text);
    assert.equal(e.flags, FLAG_COMPRESSED);
    assert.ok(e.payload.length < text.length * 0.95);
    assert.ok((await decodePayload(e.payload, e.flags, text.length)).equals(text));
  });

  it('sends raw what does not pay, and small chunks, and everything with codec none', async () => {
    const c = new PayloadCompressor('zstd');
    const noise = pattern(64 * 1024, 5);
    const e = await c.encode(noise);
    assert.equal(e.flags, 0);
    assert.equal(e.payload, noise, 'the caller buffer itself, uncopied');
    assert.equal((await c.encode(text.subarray(0, MIN_COMPRESS_BYTES - 1))).flags, 0);
    assert.equal((await new PayloadCompressor('none').encode(text)).flags, 0);
  });

  it('stops trying for a while after eight misses in a row, then tries again', async () => {
    const c = new PayloadCompressor('zstd');
    const noise = pattern(8 * 1024, 6);
    for (let i = 0; i < 8; i++) assert.equal((await c.encode(noise)).flags, 0);
    // Now 56 chunks go raw untried, even compressible ones.
    for (let i = 0; i < 56; i++) assert.equal((await c.encode(text)).flags, 0, `chunk ${i} of the back-off`);
    assert.equal((await c.encode(text)).flags, FLAG_COMPRESSED);
  });

  it('refuses a payload that does not decode to the announced length', async () => {
    const e = await new PayloadCompressor('zstd').encode(text);
    await protocolError(decodePayload(e.payload, FLAG_COMPRESSED, text.length - 1));
    await protocolError(decodePayload(e.payload, FLAG_COMPRESSED, text.length + 1));
    await protocolError(decodePayload(Buffer.from('not zstd at all'), FLAG_COMPRESSED, 100));
    await protocolError(decodePayload(Buffer.alloc(10), 0, 11));
  });
});
