/**
 * `CowOverlay.writtenExtents`: reprotect's record of what a failover VM
 * wrote (docs/failover.md §7). Property: for any writes, the extents are
 * the written blocks (each write widened to whole blocks, clipped to the
 * disk), merged, in order, and they survive a reopen (the bitmap is on
 * disk).
 */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { CowOverlay, type OverlayBase } from '../../../../provider/hypervisor/lab/cow-overlay';

function zeros(sizeBytes: number): OverlayBase {
  return { sizeBytes, read: async (_o: number, length: number) => Buffer.alloc(length), close: async () => undefined };
}

/** The expected extents: the blocks the writes touch, merged. */
function blocksOf(writes: readonly { offset: number; length: number }[], block: number, size: number): { offset: number; length: number }[] {
  const touched = new Set<number>();
  for (const w of writes) for (let b = Math.floor(w.offset / block); b <= Math.floor((w.offset + w.length - 1) / block); b++) touched.add(b);
  const out: { offset: number; length: number }[] = [];
  for (const b of [...touched].sort((x, y) => x - y)) {
    const offset = b * block;
    const length = Math.min(block, size - offset);
    const last = out.at(-1);
    if (last !== undefined && last.offset + last.length === offset) last.length += length;
    else out.push({ offset, length });
  }
  return out;
}

describe('hypervisor/lab/cow-overlay: written extents', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-cow-extents-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('are exactly the blocks written, merged, clipped to the disk, and survive a reopen', async () => {
    const block = 4096;
    const size = 40 * block + 1536; // a short last block
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ offset: fc.integer({ min: 0, max: size - 1 }), length: fc.integer({ min: 1, max: 3 * block }) }), { maxLength: 12 }),
      async (raw) => {
        const writes = raw.map((w) => ({ offset: w.offset, length: Math.min(w.length, size - w.offset) }));
        const file = path.join(dir, `d-${Math.random().toString(16).slice(2)}.cow`);
        await CowOverlay.create({ file, sizeBytes: size, blockSize: block });
        let o = await CowOverlay.open(file, zeros(size));
        for (const w of writes) await o.write(w.offset, Buffer.alloc(w.length, 7));
        await o.flush();
        const want = blocksOf(writes, block, size);
        assert.deepEqual(o.writtenExtents(), want);
        await o.close();
        o = await CowOverlay.open(file, zeros(size));
        assert.deepEqual(o.writtenExtents(), want, 'read back from the bitmap');
        await o.close();
        fs.rmSync(file);
      },
    ), { numRuns: 40 });
  });
});
