/**
 * The hashing threads of a resync: the digests are SHA-256 of each block
 * whatever the thread, size or ownership of the input; handed-over buffers
 * come back intact; a worker that stops fails its jobs and the pool goes on.
 */
import { strict as assert } from 'node:assert';
import { createHash, randomFillSync } from 'node:crypto';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import { KiB } from '../../../provider/units';
import { BlockHasher } from '../../../provider/replication/block-hasher';

function expected(data: Buffer, blockSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += blockSize) out.push(createHash('sha256').update(data.subarray(at, at + blockSize)).digest());
  return out;
}

describe('replication/block-hasher', function () {
  this.timeout(60_000);
  const hasher = new BlockHasher({ threads: 2 });
  after(() => hasher.close());

  it('digests every block, short last block included, on threads or inline', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 600 * KiB }), fc.constantFrom(4 * KiB, 16 * KiB, 64 * KiB, 1000), fc.boolean(), async (length, blockSize, transfer) => {
        const data = randomFillSync(Buffer.alloc(length));
        const copy = Buffer.from(data);
        const r = await hasher.digest(data, blockSize, transfer);
        assert.deepEqual(r.digests.map((d) => d.toString('hex')), expected(copy, blockSize).map((d) => d.toString('hex')));
        assert.ok(r.data.equals(copy), 'the bytes come back unchanged');
      }),
      { seed: 31, numRuns: 60 },
    );
  });

  it('hands a whole buffer over and back, and copies a view instead of detaching what it shares', async () => {
    const whole = randomFillSync(Buffer.allocUnsafeSlow(1024 * KiB));
    const copy = Buffer.from(whole);
    const r = await hasher.digest(whole, 64 * KiB, true);
    assert.equal(whole.length, 0, 'the handed-over buffer is detached');
    assert.ok(r.data.equals(copy));
    const big = randomFillSync(Buffer.alloc(2048 * KiB));
    const view = big.subarray(512 * KiB, 1536 * KiB);
    const r2 = await hasher.digest(view, 64 * KiB, true);
    assert.equal(big.length, 2048 * KiB, 'a view of a larger buffer is copied, not detached');
    assert.deepEqual(r2.digests, expected(big.subarray(512 * KiB, 1536 * KiB), 64 * KiB));
  });

  it('fails the jobs of a stopped worker with a recoverable error, then works again', async () => {
    const own = new BlockHasher({ threads: 1 });
    try {
      const jobs = [0, 1, 2].map(() => own.digest(randomFillSync(Buffer.alloc(8192 * KiB)), 4 * KiB));
      await own.close();
      const settled = await Promise.allSettled(jobs);
      const failed = settled.filter((s) => s.status === 'rejected');
      assert.ok(failed.length > 0, 'a job in flight when the worker stopped fails');
      for (const f of failed) {
        const e = (f as PromiseRejectedResult).reason as unknown;
        assert.ok(LifeboatError.isInstance(e) && e.code === 'hash.workerFailed' && e.category === 'recoverable', String(e));
      }
      const data = randomFillSync(Buffer.alloc(256 * KiB));
      assert.deepEqual((await own.digest(data, 4 * KiB)).digests, expected(data, 4 * KiB));
    } finally {
      await own.close();
    }
  });

  it('refuses a block size that is not a positive integer', async () => {
    await assert.rejects(hasher.digest(Buffer.alloc(8), 0), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'hash.invalidBlockSize');
  });
});
