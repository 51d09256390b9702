/**
 * The `ReplicaTarget` conformance suite (provider/replication/target.ts). Every
 * target implementation runs it from its own test file:
 *
 *   describeReplicaTargetConformance('HostReplicaTarget', factory);
 *
 * It uses the interface only. Its oracle is an in-memory model of the disk:
 * for every retained point, a view must equal, byte for byte, the model's bytes
 * at that point; block digests must equal SHA-256 of the model's blocks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { categoryOf, LifeboatError, type ErrorCategory } from '../../../provider/errors';
import {
  type CycleMeta,
  type CycleWriter,
  type PointKind,
  type RecoveryPointInfo,
  type ReplicaDisk,
  type ReplicaTarget,
} from '../../../provider/replication/target';

/** How the suite gets targets. */
export interface ReplicaTargetFactory {
  /** A new target over new, empty storage. */
  create(): Promise<ReplicaTarget>;
  /**
   * Close `t` and open a new target over the same storage (a restart of the
   * process holding it). Without it, the suite reopens disks only.
   */
  reopen?(t: ReplicaTarget): Promise<ReplicaTarget>;
  /** Remove all storage made by `create` since the last `destroy`. */
  destroy(): Promise<void>;
}

export interface ConformanceOptions {
  /** Runs of the model-based property. @default 30 */
  readonly numRuns?: number;
  /** Size of the disks the suite writes (a multiple of 4096, at least 256 KiB). @default 1 MiB */
  readonly diskSize?: number;
  /** Seed of the property (printed on failure). @default 20260101 */
  readonly seed?: number;
}

const KiB = 1024;

/** Deterministic bytes: xorshift32 from `seed`. */
export function patternBytes(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed | 0) || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Assert that `p` rejects with a Lifeboat error of this category (and code, if given). */
export async function rejectsWith(p: Promise<unknown>, category: ErrorCategory, code?: string): Promise<LifeboatError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a rejection (${category}${code === undefined ? '' : ` ${code}`}), got success`);
  assert.ok(LifeboatError.isInstance(caught), `expected a LifeboatError, got ${String(caught)}`);
  assert.equal(categoryOf(caught), category, `category of ${caught.code}: ${caught.message}`);
  if (code !== undefined) assert.equal(caught.code, code, caught.message);
  return caught;
}

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/** Expected digests of the model's blocks. */
function expectedDigests(bytes: Buffer, blockSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += blockSize) out.push(sha256(bytes.subarray(at, Math.min(at + blockSize, bytes.length))));
  return out;
}

async function readAll(disk: ReplicaDisk, pointId: string): Promise<Buffer> {
  const v = await disk.openView(pointId);
  try {
    return await v.read(0, v.sizeBytes);
  } finally {
    await v.close();
  }
}

/** In-memory oracle of one disk. */
class Model {
  bytes: Buffer;
  generation: string | undefined = undefined;
  appliedSeq = 0;
  points: Array<{ info: RecoveryPointInfo; bytes: Buffer }> = [];
  /** Whether the head is the latest point (no non-point cycle since). */
  headIsLatestPoint = false;

  constructor(size: number) {
    this.bytes = Buffer.alloc(size);
  }
}

interface WriteSpec {
  readonly where: number;
  readonly length: number;
  readonly align: 1 | 512 | 4096;
  readonly overlapPrevious: boolean;
  readonly fill: 'random' | 'zero' | 'byte';
  readonly seed: number;
}

type Action =
  | {
      readonly t: 'cycle';
      readonly writes: readonly WriteSpec[];
      readonly point: PointKind | 'none';
      readonly end: 'commit' | 'abort' | 'abandon';
      readonly newGeneration: boolean;
      readonly seqStep: number;
      readonly dt: number;
    }
  | { readonly t: 'prune'; readonly cut: number }
  | { readonly t: 'materialise'; readonly pick: number }
  | { readonly t: 'reopen' }
  | { readonly t: 'badSeq' }
  | { readonly t: 'check' };

const writeArb: fc.Arbitrary<WriteSpec> = fc.record({
  where: fc.double({ min: 0, max: 1, noNaN: true }),
  length: fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 96 * KiB })),
  align: fc.constantFrom<1 | 512 | 4096>(1, 512, 4096),
  overlapPrevious: fc.boolean(),
  fill: fc.constantFrom<'random' | 'zero' | 'byte'>('random', 'random', 'zero', 'byte'),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
});

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('cycle' as const),
      writes: fc.array(writeArb, { minLength: 0, maxLength: 6 }),
      point: fc.constantFrom<PointKind | 'none'>('crashConsistent', 'crashConsistent', 'appConsistent', 'none'),
      end: fc.constantFrom<'commit' | 'abort' | 'abandon'>('commit', 'commit', 'commit', 'commit', 'abort', 'abandon'),
      newGeneration: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
      seqStep: fc.integer({ min: 1, max: 3 }),
      dt: fc.integer({ min: 1, max: 60_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('prune' as const), cut: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('materialise' as const), pick: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'badSeq' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'check' as const }) },
);

/**
 * Register the conformance tests of a `ReplicaTarget` implementation as a
 * mocha `describe` block.
 */
export function describeReplicaTargetConformance(name: string, factory: ReplicaTargetFactory, options: ConformanceOptions = {}): void {
  const size = options.diskSize ?? 1024 * KiB;
  const numRuns = options.numRuns ?? 30;
  const seed = options.seed ?? 20260101;
  assert.ok(size % 4096 === 0 && size >= 256 * KiB, 'diskSize must be a multiple of 4096, at least 256 KiB');

  describe(`ReplicaTarget conformance: ${name}`, function () {
    this.timeout(120_000);
    let target: ReplicaTarget;

    beforeEach(async () => {
      target = await factory.create();
    });

    afterEach(async () => {
      await target.close();
      await factory.destroy();
    });

    /** Reopen the target (or only the disk) and return the disk again. */
    async function reopenDisk(disk: ReplicaDisk): Promise<ReplicaDisk> {
      if (factory.reopen !== undefined) target = await factory.reopen(target);
      else await disk.close();
      return target.openDisk({ diskId: disk.diskId, sizeBytes: disk.sizeBytes });
    }

    async function cycle(
      disk: ReplicaDisk, generation: string, seq: number, time: number, point: PointKind | undefined, writes: Array<[number, Buffer]>, extra: Partial<CycleMeta> = {},
    ): Promise<RecoveryPointInfo | undefined> {
      const w = await disk.beginCycle({ ...extra, generation, seq, time, ...(point === undefined ? {} : { point }) });
      for (const [offset, data] of writes) await w.write(offset, data);
      return w.commit();
    }

    it('has a kind', () => {
      assert.equal(typeof target.kind, 'string');
      assert.ok(target.kind.length > 0);
    });

    it('opens, lists and deletes disks idempotently', async () => {
      const a = await target.openDisk({ diskId: 'vm-1/disk 0', sizeBytes: size });
      assert.equal(a.diskId, 'vm-1/disk 0');
      assert.equal(a.sizeBytes, size);
      assert.deepEqual(await a.state(), { diskId: 'vm-1/disk 0', sizeBytes: size, generation: undefined, appliedSeq: 0, points: [] });
      const again = await target.openDisk({ diskId: 'vm-1/disk 0', sizeBytes: size });
      assert.equal((await again.state()).appliedSeq, 0);
      await target.openDisk({ diskId: 'vm-2', sizeBytes: size / 2 });
      assert.deepEqual([...(await target.listDisks())].sort(), ['vm-1/disk 0', 'vm-2']);

      await cycle(a, 'g1', 1, 1000, 'crashConsistent', [[0, patternBytes(4096, 1)]]);
      await target.deleteDisk('vm-1/disk 0');
      await target.deleteDisk('vm-1/disk 0');
      await target.deleteDisk('never-existed');
      assert.deepEqual([...(await target.listDisks())], ['vm-2']);

      const fresh = await target.openDisk({ diskId: 'vm-1/disk 0', sizeBytes: size });
      const s = await fresh.state();
      assert.equal(s.appliedSeq, 0);
      assert.deepEqual(s.points, []);
      const d = await fresh.hashBlocks(size, 0, 1);
      assert.deepEqual(d.digests, [sha256(Buffer.alloc(size))], 'a recreated disk reads zeros');
    });

    it('refuses a bad disk size', async () => {
      await rejectsWith(target.openDisk({ diskId: 'x', sizeBytes: 1000 }), 'invalidInput');
      await rejectsWith(target.openDisk({ diskId: 'x', sizeBytes: 0 }), 'invalidInput');
    });

    it('commits cycles with overlapping writes of any alignment, and records points', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const model = Buffer.alloc(size);
      const writes: Array<[number, Buffer]> = [
        [0, patternBytes(5000, 2)],
        [4095, patternBytes(3, 3)],
        [1, patternBytes(7, 4)],
        [size - 513, patternBytes(513, 5)],
        [2048, Buffer.alloc(8192)],
        [3000, patternBytes(70 * KiB, 6)],
      ];
      for (const [o, b] of writes) b.copy(model, o);
      const p = await cycle(disk, 'g1', 7, 1_000, 'appConsistent', writes);
      assert.ok(p !== undefined);
      assert.equal(typeof p.id, 'string');
      assert.ok(p.id.length > 0);
      assert.deepEqual({ seq: p.seq, generation: p.generation, time: p.time, kind: p.kind }, { seq: 7, generation: 'g1', time: 1_000, kind: 'appConsistent' });
      assert.deepEqual(await disk.listPoints(), [p]);
      assert.ok((await readAll(disk, p.id)).equals(model));

      const none = await cycle(disk, 'g1', 8, 2_000, undefined, [[10, patternBytes(10, 7)]]);
      assert.equal(none, undefined);
      patternBytes(10, 7).copy(model, 10);
      const s = await disk.state();
      assert.equal(s.appliedSeq, 8);
      assert.equal(s.generation, 'g1');
      assert.deepEqual(s.points, [p]);
      assert.deepEqual((await disk.hashBlocks(size, 0, 1)).digests, [sha256(model)]);
    });

    it('refuses writes outside the disk', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 1 });
      await rejectsWith(w.write(size - 1, Buffer.alloc(2)), 'invalidInput');
      await rejectsWith(w.write(-1, Buffer.alloc(1)), 'invalidInput');
      await rejectsWith(w.write(size, Buffer.alloc(1)), 'invalidInput');
      await w.write(size - 1, Buffer.from([9]));
      await w.commit();
      assert.equal((await disk.state()).appliedSeq, 1);
    });

    it('enforces sequence rules', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      await cycle(disk, 'g1', 5, 1, 'crashConsistent', [[0, Buffer.from('a')]]);
      await rejectsWith(disk.beginCycle({ generation: 'g1', seq: 5, time: 2 }), 'nonRecoverable', 'cycle.alreadyApplied');
      await rejectsWith(disk.beginCycle({ generation: 'g1', seq: 4, time: 2 }), 'nonRecoverable', 'cycle.alreadyApplied');
      const w = await disk.beginCycle({ generation: 'g1', seq: 9, time: 2 });
      await rejectsWith(disk.beginCycle({ generation: 'g1', seq: 10, time: 3 }), 'nonRecoverable');
      await w.commit();
      // A new generation may restart numbering, even at the applied seq.
      await cycle(disk, 'g2', 9, 4, 'crashConsistent', [[1, Buffer.from('b')]]);
      await cycle(disk, 'g3', 1, 5, 'crashConsistent', [[2, Buffer.from('c')]]);
      await rejectsWith(disk.beginCycle({ generation: 'g3', seq: 1, time: 6 }), 'nonRecoverable', 'cycle.alreadyApplied');
      const s = await disk.state();
      assert.equal(s.generation, 'g3');
      assert.equal(s.appliedSeq, 1);
      assert.deepEqual(s.points.map((p) => [p.generation, p.seq]), [['g1', 5], ['g2', 9], ['g3', 1]]);
    });

    it('abort leaves the replica and every point as before', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const p1 = (await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, patternBytes(size, 8)]]))!;
      const p2 = (await cycle(disk, 'g1', 2, 20, 'crashConsistent', [[100, patternBytes(9000, 9)]]))!;
      const before = { state: await disk.state(), hash: await disk.hashBlocks(4096, 0, size / 4096), p1: await readAll(disk, p1.id), p2: await readAll(disk, p2.id) };
      const w = await disk.beginCycle({ generation: 'g1', seq: 3, time: 30, point: 'crashConsistent' });
      await w.write(0, patternBytes(size, 10));
      await w.write(50, patternBytes(50_000, 11));
      await w.abort();
      await w.abort();
      assert.deepEqual(await disk.state(), before.state);
      assert.deepEqual(await disk.hashBlocks(4096, 0, size / 4096), before.hash);
      assert.ok((await readAll(disk, p1.id)).equals(before.p1));
      assert.ok((await readAll(disk, p2.id)).equals(before.p2));
      // The same seq can be applied after an abort.
      await cycle(disk, 'g1', 3, 30, 'crashConsistent', [[0, Buffer.from('x')]]);
      assert.equal((await disk.state()).appliedSeq, 3);
    });

    it('an abandoned cycle (close without commit) leaves everything as before', async () => {
      let disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const p1 = (await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, patternBytes(size, 12)]]))!;
      const state = await disk.state();
      const w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20, point: 'crashConsistent' });
      await w.write(4096, patternBytes(100_000, 13));
      disk = await reopenDisk(disk);
      assert.deepEqual(await disk.state(), state);
      assert.ok((await readAll(disk, p1.id)).equals(patternBytes(size, 12)));
      await cycle(disk, 'g1', 2, 20, 'crashConsistent', [[0, Buffer.from('y')]]);
    });

    it('keeps state and points across a reopen', async () => {
      let disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const p1 = (await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, patternBytes(size, 14)]]))!;
      const p2 = (await cycle(disk, 'g1', 2, 20, 'appConsistent', [[777, patternBytes(20_000, 15)]]))!;
      const state = await disk.state();
      const hash = await disk.hashBlocks(64 * KiB, 0, size / (64 * KiB));
      disk = await reopenDisk(disk);
      assert.deepEqual(await disk.state(), state);
      assert.deepEqual(await disk.listPoints(), [p1, p2]);
      assert.deepEqual(await disk.hashBlocks(64 * KiB, 0, size / (64 * KiB)), hash);
      assert.ok((await readAll(disk, p1.id)).equals(patternBytes(size, 14)));
    });

    it('a view stays the view of its point while cycles go on', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const p1 = (await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, patternBytes(size, 16)]]))!;
      const view = await disk.openView(p1.id);
      assert.deepEqual(view.point, p1);
      assert.equal(view.sizeBytes, size);
      await cycle(disk, 'g1', 2, 20, 'crashConsistent', [[0, patternBytes(30_000, 17)]]);
      await cycle(disk, 'g1', 3, 30, undefined, [[20_000, patternBytes(30_000, 18)], [size - 100, Buffer.alloc(100)]]);
      const w = await disk.beginCycle({ generation: 'g1', seq: 4, time: 40, point: 'crashConsistent' });
      await w.write(0, patternBytes(size, 19));
      assert.ok((await view.read(0, size)).equals(patternBytes(size, 16)), 'view during an open cycle');
      assert.ok((await view.read(12_345, 999)).equals(patternBytes(size, 16).subarray(12_345, 13_344)));
      await w.commit();
      assert.ok((await view.read(0, size)).equals(patternBytes(size, 16)), 'view after later commits');
      await rejectsWith(view.read(size - 1, 2), 'invalidInput');
      await view.close();
    });

    it('hashes blocks of the head, with a short last block', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const model = patternBytes(size, 20);
      await cycle(disk, 'g1', 1, 10, undefined, [[0, model]]);
      const blockSize = 3 * 4096 + 512;
      const all = expectedDigests(model, blockSize);
      const d = await disk.hashBlocks(blockSize, 1, all.length - 1);
      assert.equal(d.blockSize, blockSize);
      assert.equal(d.firstBlock, 1);
      assert.deepEqual(d.digests, all.slice(1));
      // An open cycle's writes are not part of the head.
      const w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20 });
      await w.write(0, patternBytes(size, 21));
      assert.deepEqual((await disk.hashBlocks(blockSize, 0, all.length)).digests, all);
      await w.abort();
      assert.deepEqual((await disk.hashBlocks(blockSize, 0, 0)).digests, []);
      await rejectsWith(disk.hashBlocks(blockSize, 0, all.length + 1), 'invalidInput');
      await rejectsWith(disk.hashBlocks(0, 0, 1), 'invalidInput');
    });

    it('hashes several runs of blocks in one call, if it offers hashBlockRuns, as hashBlocks would', async function () {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      if (disk.hashBlockRuns === undefined) this.skip();
      const model = patternBytes(size, 26);
      await cycle(disk, 'g1', 1, 10, undefined, [[0, model]]);
      const blockSize = 4096;
      const all = expectedDigests(model, blockSize);
      const runs = [{ firstBlock: 0, count: 3 }, { firstBlock: 7, count: 1 }, { firstBlock: 20, count: 16 }, { firstBlock: all.length - 2, count: 2 }, { firstBlock: 9, count: 0 }];
      const got = await disk.hashBlockRuns!(blockSize, runs);
      assert.equal(got.length, runs.length);
      for (const [i, r] of runs.entries()) {
        assert.equal(got[i]!.blockSize, blockSize);
        assert.equal(got[i]!.firstBlock, r.firstBlock);
        assert.deepEqual(got[i]!.digests, all.slice(r.firstBlock, r.firstBlock + r.count), `run ${i}`);
      }
      // A short last block (size not a multiple of the block size) is hashed as it is, not padded.
      const odd = 3 * 4096 + 512;
      const oddAll = expectedDigests(model, odd);
      const oddGot = await disk.hashBlockRuns!(odd, [{ firstBlock: 0, count: 1 }, { firstBlock: oddAll.length - 1, count: 1 }]);
      assert.deepEqual(oddGot.map((d) => d.digests), [oddAll.slice(0, 1), oddAll.slice(-1)]);
      // An open cycle's writes are not part of the head.
      const w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20 });
      await w.write(0, patternBytes(size, 27));
      assert.deepEqual((await disk.hashBlockRuns!(blockSize, [{ firstBlock: 0, count: 4 }]))[0]!.digests, all.slice(0, 4));
      await w.abort();
      await rejectsWith(disk.hashBlockRuns!(blockSize, [{ firstBlock: 0, count: 1 }, { firstBlock: all.length, count: 1 }]), 'invalidInput');
      await rejectsWith(disk.hashBlockRuns!(0, [{ firstBlock: 0, count: 1 }]), 'invalidInput');
    });

    it('honours skipUndoBeforeFirstPoint only while no point exists: with a point, abort still restores the head and the point', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const first = patternBytes(size, 28);
      // No point yet: the request may be honoured; what a committed cycle leaves must be exact either way.
      await cycle(disk, 'g1', 1, 10, undefined, [[0, first]]);
      const w2 = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20, skipUndoBeforeFirstPoint: true });
      await w2.write(1000, patternBytes(50_000, 29));
      const p2 = await w2.commit();
      assert.equal(p2, undefined);
      const head2 = Buffer.from(first);
      patternBytes(50_000, 29).copy(head2, 1000);
      assert.deepEqual((await disk.hashBlocks(size, 0, 1)).digests, [sha256(head2)]);
      const p3 = (await cycle(disk, 'g1', 3, 30, 'crashConsistent', [[0, Buffer.from('x')]]))!;
      const head3 = Buffer.from(head2);
      head3[0] = 'x'.charCodeAt(0);
      // A point exists now: the request must be ignored.
      const w4 = await disk.beginCycle({ generation: 'g1', seq: 4, time: 40, skipUndoBeforeFirstPoint: true });
      await w4.write(0, patternBytes(size, 30));
      await w4.abort();
      assert.deepEqual((await disk.hashBlocks(size, 0, 1)).digests, [sha256(head3)]);
      assert.equal((await disk.state()).appliedSeq, 3);
      await cycle(disk, 'g1', 4, 40, 'crashConsistent', [[0, patternBytes(size, 31)]], { skipUndoBeforeFirstPoint: true });
      assert.ok((await readAll(disk, p3.id)).equals(head3), 'the older point is intact after a later cycle that asked to skip undo');
    });

    it('refuses unknown points', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, Buffer.from('z')]]);
      await rejectsWith(disk.openView('no-such-point'), 'nonRecoverable');
      await rejectsWith(disk.materialise('no-such-point'), 'nonRecoverable');
    });

    it('materialises the latest point without copying, an older one by rolling back', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const p1 = (await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, patternBytes(size, 22)]]))!;
      const p2 = (await cycle(disk, 'g1', 2, 20, 'crashConsistent', [[5000, patternBytes(40_000, 23)]]))!;
      const p3 = (await cycle(disk, 'g1', 3, 30, 'appConsistent', [[0, patternBytes(size / 2, 24)]]))!;
      const at2 = await readAll(disk, p2.id);
      const latest = await disk.materialise(p3.id);
      assert.equal(latest.zeroCopy, true);
      assert.ok(latest.location.length > 0);
      const older = await disk.materialise(p2.id);
      assert.ok(older.location.length > 0);
      assert.deepEqual(await disk.listPoints(), [p1, p2]);
      const s = await disk.state();
      assert.equal(s.appliedSeq, 2);
      assert.equal(s.generation, 'g1');
      assert.deepEqual((await disk.hashBlocks(size, 0, 1)).digests, [sha256(at2)]);
      assert.ok((await readAll(disk, p1.id)).equals(patternBytes(size, 22)));
      await rejectsWith(disk.openView(p3.id), 'nonRecoverable');
      // Replication can go on from the point rolled back to.
      await cycle(disk, 'g1', 3, 40, 'crashConsistent', [[0, Buffer.from('q')]]);
      assert.ok((await readAll(disk, p2.id)).equals(at2));
    });

    it('prunes old points, always keeping the latest', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const ps: RecoveryPointInfo[] = [];
      for (let i = 1; i <= 4; i++) ps.push((await cycle(disk, 'g1', i, i * 100, 'crashConsistent', [[i * 1000, patternBytes(3000, 30 + i)]]))!);
      const at3 = await readAll(disk, ps[2]!.id);
      assert.deepEqual(await disk.prunePoints(250), [ps[0], ps[1]]);
      assert.deepEqual(await disk.prunePoints(250), []);
      assert.deepEqual(await disk.listPoints(), [ps[2], ps[3]]);
      assert.ok((await readAll(disk, ps[2]!.id)).equals(at3));
      assert.deepEqual(await disk.prunePoints(Number.POSITIVE_INFINITY), [ps[2]]);
      assert.deepEqual(await disk.listPoints(), [ps[3]]);
      await rejectsWith(disk.openView(ps[0]!.id), 'nonRecoverable');
    });

    it('keeps old points across a resynchronisation (new generation)', async () => {
      const disk = await target.openDisk({ diskId: 'd', sizeBytes: size });
      const p1 = (await cycle(disk, 'g1', 1, 10, 'crashConsistent', [[0, patternBytes(size, 40)]]))!;
      // Resync batches are ordinary cycles of a new generation, without points.
      await cycle(disk, 'g2', 1, 20, undefined, [[0, patternBytes(size / 2, 41)]]);
      const p2 = (await cycle(disk, 'g2', 2, 30, 'crashConsistent', [[size / 2, patternBytes(size / 2, 42)]]))!;
      assert.deepEqual(await disk.listPoints(), [p1, p2]);
      assert.ok((await readAll(disk, p1.id)).equals(patternBytes(size, 40)));
      assert.ok((await readAll(disk, p2.id)).equals(Buffer.concat([patternBytes(size / 2, 41), patternBytes(size / 2, 42)])));
    });

    it(`matches an in-memory model over random histories (fast-check, seed ${seed})`, async () => {
      await target.close();
      await factory.destroy();
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 14 }), async (actions) => {
          runs++;
          const holder = { t: await factory.create() };
          try {
            await runHistory(holder, actions);
          } finally {
            await holder.t.close();
            await factory.destroy();
          }
        }),
        { seed, numRuns, endOnFailure: false },
      );
      assert.equal(runs > 0, true);
      target = await factory.create();
    });

    async function runHistory(holder: { t: ReplicaTarget }, actions: readonly Action[]): Promise<void> {
      const diskId = 'model/disk';
      let disk = await holder.t.openDisk({ diskId, sizeBytes: size });
      const model = new Model(size);
      let clock = 1_000_000;
      let generations = 0;

      const reopen = async (): Promise<void> => {
        if (factory.reopen !== undefined) holder.t = await factory.reopen(holder.t);
        else await disk.close();
        disk = await holder.t.openDisk({ diskId, sizeBytes: size });
      };

      for (const a of actions) {
        switch (a.t) {
          case 'cycle': {
            const newGen = a.newGeneration || model.generation === undefined;
            const generation = newGen ? `g${++generations}` : model.generation!;
            const seq = newGen ? Math.max(1, model.appliedSeq + 2 - a.seqStep * 2) : model.appliedSeq + a.seqStep;
            clock += a.dt;
            const point = a.point === 'none' ? undefined : a.point;
            const w: CycleWriter = await disk.beginCycle({ generation, seq, time: clock, ...(point === undefined ? {} : { point }) });
            const next = Buffer.from(model.bytes);
            let prev: [number, number] | undefined;
            for (const spec of a.writes) {
              const [offset, data] = materialiseWrite(spec, prev, size);
              prev = [offset, data.length];
              await w.write(offset, data);
              data.copy(next, offset);
            }
            if (a.end === 'commit') {
              const p = await w.commit();
              model.bytes = next;
              model.generation = generation;
              model.appliedSeq = seq;
              if (point === undefined) {
                assert.equal(p, undefined);
                model.headIsLatestPoint = false;
              } else {
                assert.ok(p !== undefined);
                assert.deepEqual({ seq: p.seq, generation: p.generation, time: p.time, kind: p.kind }, { seq, generation, time: clock, kind: point });
                model.points.push({ info: p, bytes: next });
                model.headIsLatestPoint = true;
              }
            } else if (a.end === 'abort') {
              await w.abort();
            } else {
              await reopen();
            }
            break;
          }
          case 'prune': {
            if (model.points.length === 0) {
              assert.deepEqual(await disk.prunePoints(clock + 1), []);
              break;
            }
            const first = model.points[0]!.info.time;
            const olderThan = first + Math.floor(a.cut * (clock - first + 2));
            const expected = model.points.filter((p, i) => i < model.points.length - 1 && p.info.time < olderThan);
            const removed = await disk.prunePoints(olderThan);
            assert.deepEqual(removed, expected.map((p) => p.info));
            model.points = model.points.filter((p) => !expected.includes(p));
            break;
          }
          case 'materialise': {
            if (model.points.length === 0) break;
            const i = Math.min(model.points.length - 1, Math.floor(a.pick * model.points.length));
            const q = model.points[i]!;
            const m = await disk.materialise(q.info.id);
            assert.ok(m.location.length > 0);
            if (i === model.points.length - 1 && model.headIsLatestPoint) assert.equal(m.zeroCopy, true, 'latest point copies nothing');
            model.points = model.points.slice(0, i + 1);
            model.bytes = q.bytes;
            model.appliedSeq = q.info.seq;
            model.generation = q.info.generation;
            model.headIsLatestPoint = true;
            break;
          }
          case 'reopen':
            await reopen();
            break;
          case 'badSeq':
            if (model.generation !== undefined) {
              await rejectsWith(disk.beginCycle({ generation: model.generation, seq: model.appliedSeq, time: clock }), 'nonRecoverable', 'cycle.alreadyApplied');
            }
            break;
          case 'check':
            await checkAgainstModel(disk, model);
            break;
        }
      }
      await checkAgainstModel(disk, model);
    }

    async function checkAgainstModel(disk: ReplicaDisk, model: Model): Promise<void> {
      const s = await disk.state();
      assert.equal(s.appliedSeq, model.appliedSeq);
      assert.equal(s.generation, model.generation);
      assert.deepEqual(s.points, model.points.map((p) => p.info));
      for (const p of model.points) {
        const v = await disk.openView(p.info.id);
        try {
          const all = await v.read(0, size);
          if (!all.equals(p.bytes)) {
            const at = all.findIndex((b, i) => b !== p.bytes[i]);
            assert.fail(`view of ${p.info.id} (seq ${p.info.seq}) differs from the model first at byte ${at}`);
          }
          const off = (p.info.seq * 7919) % (size - 5000);
          assert.ok((await v.read(off, 4999)).equals(p.bytes.subarray(off, off + 4999)), 'partial read');
        } finally {
          await v.close();
        }
      }
      if (model.headIsLatestPoint && model.points.length > 0) {
        assert.ok(model.points[model.points.length - 1]!.bytes.equals(model.bytes));
      }
      const bs = 64 * KiB;
      assert.deepEqual((await disk.hashBlocks(bs, 0, Math.ceil(size / bs))).digests, expectedDigests(model.bytes, bs));
      const odd = 5 * 4096 + 512;
      assert.deepEqual((await disk.hashBlocks(odd, 0, Math.ceil(size / odd))).digests, expectedDigests(model.bytes, odd));
    }
  });
}

/** Offset and data of a generated write. */
function materialiseWrite(spec: WriteSpec, prev: [number, number] | undefined, size: number): [number, Buffer] {
  let length = Math.min(spec.length, size);
  if (spec.align > 1) length = Math.min(size, Math.max(spec.align, Math.ceil(length / spec.align) * spec.align));
  let offset: number;
  if (spec.overlapPrevious && prev !== undefined) offset = prev[0] + Math.floor(spec.where * prev[1]);
  else offset = Math.floor(spec.where * (size - length + 1));
  if (spec.align > 1) offset = Math.floor(offset / spec.align) * spec.align;
  offset = Math.max(0, Math.min(offset, size - length));
  const data = spec.fill === 'zero' ? Buffer.alloc(length) : spec.fill === 'byte' ? Buffer.alloc(length, spec.seed & 0xff) : patternBytes(length, spec.seed);
  return [offset, data];
}
