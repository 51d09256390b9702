import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { LifeboatError } from '../../../../provider/errors';
import { CowOverlay, openFileBase, type OverlayBase } from '../../../../provider/hypervisor/lab/cow-overlay';

const KiB = 1024;
const GiB = 1024 ** 3;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A base that counts what is read through it. */
function counting(base: OverlayBase): OverlayBase & { reads: number; bytes: number } {
  const c = {
    reads: 0,
    bytes: 0,
    sizeBytes: base.sizeBytes,
    read: async (offset: number, length: number) => {
      c.reads++;
      c.bytes += length;
      return base.read(offset, length);
    },
    close: () => base.close(),
  };
  return c;
}

type Op = { kind: 'write'; offset: number; data: Buffer } | { kind: 'read'; offset: number; length: number } | { kind: 'reopen' } | { kind: 'flush' };

describe('hypervisor/lab/cow-overlay', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-cow-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('reads equal the base overlaid with the overlay writes, the base is never modified (property, byte model)', async () => {
    const size = 96 * KiB + 512; // not a multiple of the block: a short last block
    const blockSize = 8 * KiB;
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ offset: fc.integer({ min: 0, max: size - 1 }), length: fc.integer({ min: 1, max: 3 * blockSize }), seed: fc.integer() })
        .map(({ offset, length, seed }) => {
          const n = Math.min(length, size - offset);
          const data = Buffer.alloc(n);
          for (let i = 0; i < n; i++) data[i] = (seed + i * 31) & 0xff;
          return { kind: 'write' as const, offset, data };
        }) },
      { weight: 3, arbitrary: fc.record({ offset: fc.integer({ min: 0, max: size - 1 }), length: fc.integer({ min: 0, max: 4 * blockSize }) })
        .map(({ offset, length }) => ({ kind: 'read' as const, offset, length: Math.min(length, size - offset) })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = path.join(tmp, `run${run++}`);
        fs.mkdirSync(dir);
        const baseFile = path.join(dir, 'base.raw');
        const baseBytes = randomBytes(size);
        fs.writeFileSync(baseFile, baseBytes);
        const baseHash = sha(baseBytes);
        const cow = path.join(dir, 'd.cow');
        await CowOverlay.create({ file: cow, sizeBytes: size, blockSize });
        const model = Buffer.from(baseBytes);
        let ov = await CowOverlay.open(cow, await openFileBase(baseFile));
        try {
          for (const op of ops) {
            if (op.kind === 'write') {
              await ov.write(op.offset, op.data);
              op.data.copy(model, op.offset);
            } else if (op.kind === 'read') {
              assert.ok((await ov.read(op.offset, op.length)).equals(model.subarray(op.offset, op.offset + op.length)));
            } else if (op.kind === 'flush') {
              await ov.flush();
            } else {
              await ov.close();
              ov = await CowOverlay.open(cow, await openFileBase(baseFile));
            }
          }
          assert.ok((await ov.read(0, size)).equals(model));
        } finally {
          await ov.close();
        }
        assert.equal(sha(fs.readFileSync(baseFile)), baseHash, 'the base was modified');
      }),
      { seed: 4242, numRuns: 60 },
    );
  });

  it('concurrent unawaited writes to the same unwritten block all land (no lost copy-on-write)', async () => {
    const size = 64 * KiB;
    const baseFile = path.join(tmp, 'base.raw');
    const baseBytes = randomBytes(size);
    fs.writeFileSync(baseFile, baseBytes);
    const cow = path.join(tmp, 'd.cow');
    await CowOverlay.create({ file: cow, sizeBytes: size, blockSize: 16 * KiB });
    const ov = await CowOverlay.open(cow, await openFileBase(baseFile));
    const model = Buffer.from(baseBytes);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 32; i++) {
      const data = Buffer.alloc(100, i + 1);
      const offset = 1000 + i * 100;
      writes.push(ov.write(offset, data));
      data.copy(model, offset);
    }
    await Promise.all(writes);
    assert.ok((await ov.read(0, size)).equals(model));
    assert.equal(ov.writtenBlocks(), 1);
    await ov.close();
  });

  it('creating and opening an overlay of a 16 GiB sparse base reads nothing of the base and allocates almost nothing', async () => {
    const baseFile = path.join(tmp, 'big.raw');
    fs.closeSync(fs.openSync(baseFile, 'w'));
    fs.truncateSync(baseFile, 16 * GiB);
    const base = counting(await openFileBase(baseFile));
    const cow = path.join(tmp, 'big.cow');
    await CowOverlay.create({ file: cow, sizeBytes: base.sizeBytes });
    const ov = await CowOverlay.open(cow, base);
    try {
      assert.equal(base.reads, 0, 'create/open read the base');
      assert.equal(ov.sizeBytes, 16 * GiB);
      // Header plus the (sparse, all-zero) bitmap: far below a MiB on disk.
      assert.ok(fs.statSync(cow).blocks * 512 < 1024 * KiB, `overlay allocates ${fs.statSync(cow).blocks * 512} bytes`);
      // A write near the end copies one block from the base, nothing else.
      await ov.write(16 * GiB - 100, Buffer.alloc(10, 7));
      assert.equal(base.reads, 1);
      assert.equal(base.bytes, 64 * KiB);
      const back = await ov.read(16 * GiB - 110, 30);
      assert.deepEqual([...back], [...Buffer.alloc(10), ...Buffer.alloc(10, 7), ...Buffer.alloc(10)]);
    } finally {
      await ov.close();
    }
  });

  it('refuses bad geometry, a base of another size, out-of-range I/O and use after close', async () => {
    const cow = path.join(tmp, 'd.cow');
    const expectCode = async (p: Promise<unknown>, code: string): Promise<void> => {
      await assert.rejects(p, (e: unknown) => LifeboatError.isInstance(e) && e.code === code);
    };
    await expectCode(CowOverlay.create({ file: cow, sizeBytes: 1000 }), 'overlay.invalidSize');
    await expectCode(CowOverlay.create({ file: cow, sizeBytes: 8192, blockSize: 3000 }), 'overlay.invalidBlockSize');
    await CowOverlay.create({ file: cow, sizeBytes: 64 * KiB });
    await assert.rejects(CowOverlay.create({ file: cow, sizeBytes: 64 * KiB }), /EEXIST/);
    const small = path.join(tmp, 'small.raw');
    fs.writeFileSync(small, Buffer.alloc(32 * KiB));
    await expectCode(CowOverlay.open(cow, await openFileBase(small)), 'overlay.baseMismatch');
    const right = path.join(tmp, 'right.raw');
    fs.writeFileSync(right, Buffer.alloc(64 * KiB));
    const ov = await CowOverlay.open(cow, await openFileBase(right));
    await expectCode(ov.write(64 * KiB - 1, Buffer.alloc(2)), 'overlay.outOfRange');
    await expectCode(ov.read(-1, 1), 'overlay.outOfRange');
    await ov.close();
    await expectCode(ov.read(0, 1), 'overlay.closed');
    // A damaged header is refused, not read as an empty overlay.
    const fd = fs.openSync(cow, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 20);
    fs.closeSync(fd);
    await expectCode(CowOverlay.open(cow, await openFileBase(right)), 'overlay.corrupt');
  });
});
