import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { expectedWorkloadBytes, verifyWorkloadDisk, type DiskReader } from '../../../../provider/hypervisor/lab/workload-verifier';
import { takeWorkloadOps, workloadData, type WorkloadOptions } from '../../../../provider/hypervisor/lab/workload';

const KiB = 1024;

function memoryDisk(bytes: Buffer): DiskReader {
  return { sizeBytes: bytes.length, read: async (offset, length) => Buffer.from(bytes.subarray(offset, offset + length)) };
}

/** The model: apply the writes one by one to a buffer (independent of the verifier's extent map). */
function applyOps(base: Buffer, o: WorkloadOptions, ops: number): Buffer {
  const out = Buffer.from(base);
  for (const op of takeWorkloadOps(o, ops)) if (op.kind === 'write') workloadData(op.dataSeed, op.length).copy(out, op.offset);
  return out;
}

const optionsArb = fc.record({
  seed: fc.integer(),
  diskSize: fc.integer({ min: 1, max: 512 }).map((n) => n * 512),
  pattern: fc.constantFrom('random' as const, 'sequential' as const, 'hotSpot' as const, 'bursts' as const),
  alignment: fc.constantFrom(1, 512, 4096),
  tinyWriteFraction: fc.double({ min: 0, max: 0.5, noNaN: true }),
  maxWriteBytes: fc.integer({ min: 4096, max: 40_000 }),
}).map((o) => ({ ...o, minWriteBytes: 1, alignment: Math.min(o.alignment, o.diskSize) }));

describe('hypervisor/lab/workload-verifier', () => {
  it('accepts exactly the content the first n operations give, over zeros or a base (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        optionsArb,
        fc.integer({ min: 0, max: 200 }),
        fc.boolean(),
        fc.constantFrom(512, 4096, 64 * KiB),
        fc.nat(),
        async (o, ops, withBase, chunkBytes, flipAt) => {
          const base = withBase ? randomBytes(o.diskSize) : Buffer.alloc(o.diskSize);
          const disk = applyOps(base, o, ops);
          assert.ok((await expectedWorkloadBytes(o, ops, withBase ? memoryDisk(base) : undefined)).equals(disk));
          const ok = await verifyWorkloadDisk({ disk: memoryDisk(disk), workload: o, ops, base: withBase ? memoryDisk(base) : undefined, chunkBytes });
          assert.ok(ok.ok, JSON.stringify(ok.mismatches));
          // One flipped byte is found, exactly there.
          const at = flipAt % o.diskSize;
          const bad = Buffer.from(disk);
          bad[at] = bad[at]! ^ 0x5a;
          const r = await verifyWorkloadDisk({ disk: memoryDisk(bad), workload: o, ops, base: withBase ? memoryDisk(base) : undefined, chunkBytes });
          assert.ok(!r.ok);
          assert.deepEqual(r.mismatches, [{ offset: at, length: 1 }]);
        },
      ),
      { seed: 777, numRuns: 120 },
    );
  });

  it('tells apart an op count that is off by one write', async () => {
    const o: WorkloadOptions = { seed: 5, diskSize: 256 * KiB, flushEvery: 0 };
    const disk = memoryDisk(applyOps(Buffer.alloc(o.diskSize), o, 40));
    assert.ok((await verifyWorkloadDisk({ disk, workload: o, ops: 40 })).ok);
    assert.ok(!(await verifyWorkloadDisk({ disk, workload: o, ops: 39 })).ok);
    assert.ok(!(await verifyWorkloadDisk({ disk, workload: o, ops: 41 })).ok);
    const r = await verifyWorkloadDisk({ disk, workload: o, ops: 40 });
    assert.equal(r.writes, 40);
    assert.ok(r.writtenBytes > 0 && r.writtenBytes <= o.diskSize);
  });

  it('caps the mismatches it reports and refuses a disk of another size', async () => {
    const o: WorkloadOptions = { seed: 9, diskSize: 64 * KiB, alignment: 512, minWriteBytes: 512, maxWriteBytes: 512, flushEvery: 0 };
    const garbage = memoryDisk(randomBytes(o.diskSize));
    const r = await verifyWorkloadDisk({ disk: garbage, workload: o, ops: 50, maxMismatches: 3, chunkBytes: 1024 });
    assert.ok(!r.ok);
    assert.equal(r.mismatches.length, 3);
    await assert.rejects(verifyWorkloadDisk({ disk: memoryDisk(Buffer.alloc(512)), workload: o, ops: 1 }), RangeError);
  });
});
