import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../../../provider/clock';
import { LifeboatError } from '../../../../provider/errors';
import {
  runWorkload,
  takeWorkloadOps,
  workloadData,
  type WorkloadOp,
  type WorkloadOptions,
  workloadOps,
} from '../../../../provider/hypervisor/lab/workload';
import { TrackedDisk } from '../../../../provider/replication/tracker';

const MiB = 1 << 20;
type Write = Extract<WorkloadOp, { kind: 'write' }>;
const writesOf = (ops: readonly WorkloadOp[]): Write[] => ops.filter((o): o is Write => o.kind === 'write');

const optionsArb: fc.Arbitrary<WorkloadOptions> = fc
  .record({
    seed: fc.integer(),
    diskSize: fc.integer({ min: 1, max: 4096 }).map((n) => n * 512),
    pattern: fc.constantFrom('random' as const, 'sequential' as const, 'hotSpot' as const, 'bursts' as const),
    minWriteBytes: fc.integer({ min: 1, max: 70_000 }),
    extra: fc.integer({ min: 0, max: 70_000 }),
    alignment: fc.constantFrom(1, 512, 4096),
    tinyWriteFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    flushEvery: fc.integer({ min: 0, max: 20 }),
  })
  .map(({ extra, ...o }) => ({ ...o, maxWriteBytes: o.minWriteBytes + extra, alignment: Math.min(o.alignment, o.diskSize) }));

describe('hypervisor/lab/workload', () => {
  it('is deterministic: the same options give the same operations and bytes', () => {
    fc.assert(
      fc.property(optionsArb, (o) => {
        const a = takeWorkloadOps(o, 300);
        const b = takeWorkloadOps({ ...o }, 300);
        assert.deepEqual(a, b);
        for (const w of writesOf(a).slice(0, 5)) assert.ok(workloadData(w.dataSeed, w.length).equals(workloadData(w.dataSeed, w.length)));
      }),
      { seed: 1001, numRuns: 100 },
    );
  });

  it('different seeds give different operations and data', () => {
    const a = takeWorkloadOps({ seed: 1, diskSize: 64 * MiB }, 50);
    const b = takeWorkloadOps({ seed: 2, diskSize: 64 * MiB }, 50);
    assert.notDeepEqual(a, b);
    assert.ok(!workloadData(1, 4096).equals(workloadData(2, 4096)));
    assert.equal(workloadData(7, 200_000).length, 200_000);
    assert.ok(workloadData(7, 200_000).subarray(0, 100).equals(workloadData(7, 100)));
  });

  it('writes stay inside the disk, aligned and sized as asked (tiny writes aside)', () => {
    fc.assert(
      fc.property(optionsArb, (o) => {
        for (const w of writesOf(takeWorkloadOps(o, 300))) {
          assert.ok(w.length >= 1 && w.offset >= 0 && w.offset + w.length <= o.diskSize, JSON.stringify(w));
          if (o.tinyWriteFraction === 0) {
            assert.equal(w.offset % o.alignment!, 0);
            assert.ok(w.length <= Math.max(o.alignment!, o.maxWriteBytes!) || w.length === o.diskSize);
          }
        }
      }),
      { seed: 1002, numRuns: 200 },
    );
  });

  it('patterns: sequential runs on, hot spots are hot, bursts idle, flushes come at the asked rate', () => {
    const seq = writesOf(takeWorkloadOps({ seed: 3, diskSize: MiB, pattern: 'sequential', flushEvery: 0 }, 200));
    for (let i = 1; i < seq.length; i++) {
      const prev = seq[i - 1]!;
      assert.ok(seq[i]!.offset === prev.offset + prev.length || seq[i]!.offset === 0);
    }
    assert.ok(seq.some((w, i) => i > 0 && w.offset === 0), 'wraps around');

    const hot = writesOf(takeWorkloadOps({ seed: 4, diskSize: 1024 * MiB, pattern: 'hotSpot', hotFraction: 0.05, hotProbability: 0.9 }, 2000));
    const lo = Math.min(...hot.map((w) => w.offset));
    const hist = new Map<number, number>();
    for (const w of hot) hist.set(Math.floor(w.offset / (64 * MiB)), (hist.get(Math.floor(w.offset / (64 * MiB))) ?? 0) + 1);
    const top = Math.max(...hist.values());
    assert.ok(top / hot.length > 0.8, `hottest 64 MiB holds ${top} of ${hot.length} writes`);
    assert.ok(lo >= 0);

    const bursts = takeWorkloadOps({ seed: 5, diskSize: MiB, pattern: 'bursts', burstWrites: 10, burstIdleMs: 250, flushEvery: 0 }, 55);
    const idleAt = bursts.flatMap((o, i) => (o.kind === 'idle' ? [i] : []));
    assert.deepEqual(idleAt, [10, 21, 32, 43, 54]);
    assert.ok(bursts.every((o) => o.kind !== 'idle' || o.ms === 250));

    const ops = takeWorkloadOps({ seed: 6, diskSize: MiB, flushEvery: 4 }, 5000);
    const flushes = ops.filter((o) => o.kind === 'flush').length;
    const writes = ops.length - flushes;
    assert.ok(Math.abs(flushes / writes - 0.25) < 0.03, `${flushes} flushes for ${writes} writes`);
    assert.equal(takeWorkloadOps({ seed: 6, diskSize: MiB, flushEvery: 0 }, 500).filter((o) => o.kind === 'flush').length, 0);

    const tiny = writesOf(takeWorkloadOps({ seed: 8, diskSize: MiB, tinyWriteFraction: 1 }, 300));
    assert.ok(tiny.every((w) => w.length < 512));
    assert.ok(tiny.some((w) => w.offset % 512 !== 0));
  });

  it('refuses invalid options with the option named', () => {
    for (const [o, where] of [
      [{ seed: 1.5, diskSize: MiB }, '/seed'],
      [{ seed: 1, diskSize: 0 }, '/diskSize'],
      [{ seed: 1, diskSize: MiB, alignment: 0 }, '/alignment'],
      [{ seed: 1, diskSize: MiB, minWriteBytes: 10, maxWriteBytes: 5 }, '/maxWriteBytes'],
      [{ seed: 1, diskSize: MiB, hotFraction: 2 }, '/hotFraction'],
      [{ seed: 1, diskSize: MiB, pattern: 'zigzag' as 'random' }, '/pattern'],
    ] as const) {
      assert.throws(
        () => takeWorkloadOps(o, 1),
        (e: unknown) => LifeboatError.isInstance(e) && e.code === 'workload.invalidOptions' && e.where?.path === where,
      );
    }
  });

  describe('runWorkload', () => {
    let tmp: string;
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-workload-'));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it('applies the operations to a tracked disk: the disk holds what the operations say', async () => {
      const size = 2 * MiB;
      const opts: WorkloadOptions = { seed: 42, diskSize: size, pattern: 'hotSpot', alignment: 1, minWriteBytes: 1, maxWriteBytes: 20_000, tinyWriteFraction: 0.2 };
      const ops = takeWorkloadOps(opts, 400);
      const td = await TrackedDisk.create({ diskPath: path.join(tmp, 'd.img'), diskId: 'd', sizeBytes: size });
      try {
        const stats = await runWorkload(td, ops);
        const expected = Buffer.alloc(size);
        for (const w of writesOf(ops)) workloadData(w.dataSeed, w.length).copy(expected, w.offset);
        assert.ok((await td.read(0, size)).equals(expected));
        assert.equal(stats.ops, 400);
        assert.equal(stats.writes, writesOf(ops).length);
        assert.equal(stats.flushes, ops.length - stats.writes);
        assert.equal(stats.bytes, writesOf(ops).reduce((s, w) => s + w.length, 0));
      } finally {
        await td.close();
      }
    });

    it('paces writes on the clock and honours idle periods, maxOps and abort', async () => {
      const clock = new ManualClock();
      const written: number[] = [];
      const target = {
        write: async (offset: number): Promise<void> => {
          written.push(offset);
        },
        flush: async (): Promise<void> => undefined,
      };
      const ops: WorkloadOp[] = [
        { kind: 'write', offset: 0, length: 500, dataSeed: 1 },
        { kind: 'write', offset: 1, length: 500, dataSeed: 1 },
        { kind: 'idle', ms: 10_000 },
        { kind: 'write', offset: 2, length: 500, dataSeed: 1 },
        { kind: 'write', offset: 3, length: 500, dataSeed: 1 },
        { kind: 'flush' },
      ];
      const run = runWorkload(target, ops, { clock, bytesPerSecond: 1000 });
      await clock.advance(0);
      assert.deepEqual(written, [0]); // the second write waits 0.5 s
      await clock.advance(499);
      assert.deepEqual(written, [0]);
      await clock.advance(1);
      assert.deepEqual(written, [0, 1]);
      await clock.advance(10_499); // idle 10 s (from 0.5 s), then the third is due at 11 s
      assert.deepEqual(written, [0, 1]);
      await clock.advance(1);
      assert.deepEqual(written, [0, 1, 2]);
      await clock.advance(500);
      assert.deepEqual(await run, { ops: 6, writes: 4, flushes: 1, bytes: 2000 });

      written.length = 0;
      assert.equal((await runWorkload(target, ops, { maxOps: 2 })).ops, 2);
      const controller = new AbortController();
      const endless = workloadOps({ seed: 1, diskSize: MiB, pattern: 'bursts', burstWrites: 3, burstIdleMs: 60_000 });
      const aborted = runWorkload(target, endless, { clock, signal: controller.signal });
      await clock.advance(0);
      controller.abort(new Error('stop'));
      const stats = await aborted;
      assert.equal(stats.writes, 3);
      await assert.rejects(runWorkload(target, ops, { bytesPerSecond: 0 }), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'workload.invalidOptions');
    });
  });
});
