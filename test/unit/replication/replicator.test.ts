/**
 * The replication core against its oracle: a tracked disk replicated by the
 * driver into a real host replica store, under seeded random workloads,
 * concurrent guest writes, and injected faults (lost segment, flipped byte,
 * replica apply failure, replica restart, primary crash with a torn log
 * tail). At every retained recovery point the point-in-time view equals the
 * source at that point's cut, byte for byte.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../../provider/clock';
import { LifeboatError, RecoverableError } from '../../../provider/errors';
import { MINUTE, KiB } from '../../../provider/units';
import { DiskReplicator, needsResync, nonZeroRuns, type ReplicatorOptions } from '../../../provider/replication/replicator';
import { TrackedDisk } from '../../../provider/replication/tracker';
import { type CycleMeta, type CycleWriter, type RecoveryPointInfo, type ReplicaDisk, type ReplicaTarget } from '../../../provider/replication/target';
import { DelegatingReplicaDisk } from './delegating-replica';
import { HostReplicaTarget } from '../../../provider/targets/host';
import { BlockHasher } from '../../../provider/replication/block-hasher';

const SIZE = 512 * KiB;
const DISK = 'disk0';

/**
 * Opens (and, after `restartReplica`, reopens) the replica target of an oracle
 * world over `root`. Another target's test may replace `open` around a call of
 * `oracleProperty` to run this oracle against that target.
 */
export const oracleTargets: { open(root: string, hasher: BlockHasher): Promise<ReplicaTarget> } = {
  open: (root, hasher) => HostReplicaTarget.open({ root, undoBatchBytes: 16 * KiB, hasher }),
};

/** Deterministic bytes for a write, from its seed. */
function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b[i] = x & 0xff;
  }
  return b;
}

type Op =
  | { readonly t: 'write'; readonly off: number; readonly len: number; readonly seed: number }
  | { readonly t: 'zero'; readonly off: number; readonly len: number }
  | { readonly t: 'flush' }
  | { readonly t: 'cycle' }
  | { readonly t: 'advance'; readonly minutes: number }
  | { readonly t: 'loseSegment' }
  | { readonly t: 'flipByte'; readonly at: number }
  | { readonly t: 'failApply'; readonly afterWrites: number }
  | { readonly t: 'restartReplica' }
  | { readonly t: 'crashPrimary'; readonly tornBytes: number }
  | { readonly t: 'resync' };

const writeOp = fc.record({
  t: fc.constant('write' as const),
  off: fc.integer({ min: 0, max: SIZE - 1 }),
  len: fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 40 * KiB })),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: writeOp },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('zero' as const), off: fc.integer({ min: 0, max: SIZE - 1 }), len: fc.integer({ min: 1, max: 64 * KiB }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'flush' as const }) },
  { weight: 4, arbitrary: fc.constant({ t: 'cycle' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('advance' as const), minutes: fc.integer({ min: 1, max: 90 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'loseSegment' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('flipByte' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('failApply' as const), afterWrites: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'restartReplica' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crashPrimary' as const), tornBytes: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'resync' as const }) },
);

/**
 * A replica disk whose cycle writers run a guest write before some of their
 * writes (concurrent guest I/O during passes and shipping) and can fail after
 * N writes (an apply that breaks half way: the replica must roll back).
 */
class InterleavingReplica extends DelegatingReplicaDisk {
  failAfter: number | undefined;
  constructor(inner: ReplicaDisk, private readonly guest: () => Promise<void>, offerRuns = true) {
    super(inner, offerRuns);
  }
  override async beginCycle(meta: CycleMeta): Promise<CycleWriter> {
    const w = await this.inner.beginCycle(meta);
    let writes = 0;
    const failAt = this.failAfter;
    this.failAfter = undefined;
    return {
      write: async (offset, data) => {
        if (failAt !== undefined && writes >= failAt) throw new RecoverableError('test.injectedApplyFailure', 'injected failure while applying a cycle');
        writes++;
        if (writes % 3 === 1) await this.guest();
        await w.write(offset, data);
      },
      commit: () => (failAt !== undefined && writes >= failAt
        ? Promise.reject(new RecoverableError('test.injectedApplyFailure', 'injected failure at commit'))
        : w.commit()),
      abort: () => w.abort(),
    };
  }
}

interface World {
  readonly root: string;
  srcDir: string;
  readonly replicaRoot: string;
  readonly clock: ManualClock;
  tracker: TrackedDisk;
  abandoned: TrackedDisk[];
  target: ReplicaTarget;
  readonly replica: InterleavingReplica;
  rep: DiskReplicator;
  /** Resync block sizes of this run: [coarse, fine]; equal for a one-level compare. */
  readonly blocks: readonly [number, number];
  /** Hashing threads of both sides: inline, or on threads for every input (`inlineBytes` 0). */
  readonly hasher: BlockHasher;
  /** The source disk as the guest sees it. */
  readonly model: Buffer;
  /** The model at the last seal the driver made: the cut of the next point. */
  atSeal: Buffer;
  /** Expected bytes of every point ever recorded. */
  readonly expected: Map<string, Buffer>;
  guestSeed: number;
  /** No concurrent guest writes (the final convergence). */
  quiet: boolean;
}

function trackerOptions(w: { srcDir: string; clock: ManualClock }) {
  return { diskPath: path.join(w.srcDir, `${DISK}.raw`), diskId: DISK, clock: w.clock, activityLogExtentSize: 16 * KiB, activityLogSlots: 8 };
}

/** The tracker, with `seal` observed so the test knows each point's cut. */
function observed(w: World): TrackedDisk {
  const t = w.tracker;
  return new Proxy(t, {
    get(target, key) {
      if (key === 'seal') {
        return async () => {
          w.atSeal = Buffer.from(w.model);
          return target.seal();
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function openReplicator(w: World, extra: Partial<ReplicatorOptions> = {}): Promise<DiskReplicator> {
  return DiskReplicator.open({
    source: observed(w),
    replica: w.replica,
    progressFile: path.join(w.srcDir, `${DISK}.replication.json`),
    clock: w.clock,
    chunkBytes: 16 * KiB,
    batchBytes: 64 * KiB,
    blockSize: w.blocks[0],
    fineBlockSize: w.blocks[1],
    hasher: w.hasher,
    retentionMs: 120 * MINUTE,
    appConsistentEveryMs: 60 * MINUTE,
    quiesce: async () => async () => undefined,
    ...extra,
  });
}

async function guestWrite(w: World, off: number, data: Buffer): Promise<void> {
  const len = Math.min(data.length, SIZE - off);
  const piece = data.subarray(0, len);
  await w.tracker.write(off, piece);
  piece.copy(w.model, off);
}

/** Record a committed point's expected bytes. */
function expect(w: World, point: RecoveryPointInfo | undefined): void {
  if (point !== undefined) w.expected.set(point.id, Buffer.from(w.atSeal));
}

/** Run `fn`; on a resync-required error resync; on an injected failure restart the driver and retry. */
async function drive(w: World, fn: () => Promise<RecoveryPointInfo | undefined>): Promise<void> {
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      expect(w, await fn());
      return;
    } catch (e) {
      if (needsResync(e)) {
        fn = () => w.rep.resync('test: delta replication cannot continue');
      } else if (LifeboatError.isInstance(e) && e.code === 'test.injectedApplyFailure') {
        w.rep = await openReplicator(w);
      } else {
        throw e;
      }
    }
  }
  assert.fail('replication did not converge after 6 attempts');
}

async function sealedSegmentFiles(w: World): Promise<string[]> {
  return w.tracker.sealedSegments().map((s) => s.path);
}

async function apply(w: World, op: Op): Promise<void> {
  switch (op.t) {
    case 'write':
      return guestWrite(w, op.off, pattern(op.seed, op.len));
    case 'zero':
      return guestWrite(w, op.off, Buffer.alloc(op.len));
    case 'flush':
      return w.tracker.flush();
    case 'cycle':
      return drive(w, async () => (await w.rep.runCycle()).point);
    case 'advance':
      return w.clock.advance(op.minutes * MINUTE);
    case 'resync':
      return drive(w, () => w.rep.resync('test: operator request'));
    case 'loseSegment':
    case 'flipByte': {
      await w.tracker.seal();
      w.atSeal = Buffer.from(w.model); // the driver's next seal is later; harmless
      const files = await sealedSegmentFiles(w);
      if (files.length === 0) return;
      const victim = files[files.length - 1]!;
      if (op.t === 'loseSegment') {
        await fsp.rm(victim, { force: true });
      } else {
        if (!fs.existsSync(victim)) return;
        const buf = await fsp.readFile(victim);
        const at = op.at % buf.length;
        buf[at] = buf[at]! ^ 0x5a;
        await fsp.writeFile(victim, buf);
      }
      return;
    }
    case 'failApply':
      w.replica.failAfter = op.afterWrites;
      return drive(w, async () => (await w.rep.runCycle()).point);
    case 'restartReplica': {
      await w.target.close();
      w.target = await oracleTargets.open(w.replicaRoot, w.hasher);
      w.replica.swap(await w.target.openDisk({ diskId: DISK, sizeBytes: SIZE }));
      w.rep = await openReplicator(w);
      return;
    }
    case 'crashPrimary': {
      // The files as a power loss would leave them once the page cache reached
      // the disk, minus a torn tail of the current segment: records lost while
      // their data is on the disk (what the activity log is for).
      const crashed = path.join(w.root, `src-${w.abandoned.length + 1}`);
      fs.cpSync(w.srcDir, crashed, { recursive: true });
      const current = fs.readdirSync(crashed).filter((f) => f.endsWith('.hrl')).sort().pop();
      if (current !== undefined && op.tornBytes > 0) {
        const file = path.join(crashed, current);
        const size = fs.statSync(file).size;
        fs.truncateSync(file, Math.max(128, size - op.tornBytes));
      }
      w.abandoned.push(w.tracker);
      w.srcDir = crashed;
      w.tracker = await TrackedDisk.open(trackerOptions(w));
      w.rep = await openReplicator(w);
      return;
    }
  }
}

async function checkPoints(w: World, label: string): Promise<void> {
  const points = await w.replica.listPoints();
  assert.ok(points.length > 0, `${label}: no point retained`);
  for (const p of points) {
    const want = w.expected.get(p.id);
    assert.ok(want !== undefined, `${label}: point ${p.id} (seq ${p.seq}) was never reported by the driver`);
    const view = await w.replica.openView(p.id);
    try {
      const got = await view.read(0, SIZE);
      if (!got.equals(want)) {
        let i = 0;
        while (got[i] === want[i]) i++;
        assert.fail(`${label}: point ${p.id} (seq ${p.seq}, ${p.kind}) differs from the source at its cut, first at byte ${i}`);
      }
    } finally {
      await view.close();
    }
  }
}

/** Resync block sizes the oracle runs with: one level, and two levels of several shapes. */
const blocksArb = fc.constantFrom<readonly [number, number]>([4 * KiB, 4 * KiB], [16 * KiB, 4 * KiB], [32 * KiB, 8 * KiB], [64 * KiB, 4 * KiB]);

const threadedHasher = new BlockHasher({ inlineBytes: 0 });
const inlineHasher = new BlockHasher({ threads: 0 });

async function makeWorld(root: string, base: readonly Op[], blocks: readonly [number, number] = [4 * KiB, 4 * KiB], threads = false, offerRuns = true): Promise<World> {
  const hasher = threads ? threadedHasher : inlineHasher;
  const srcDir = path.join(root, 'src');
  const replicaRoot = path.join(root, 'replica');
  await fsp.mkdir(srcDir);
  await fsp.mkdir(replicaRoot);
  const clock = new ManualClock();
  // The disk holds data before tracking starts: the initial copy must carry it.
  const model = Buffer.alloc(SIZE);
  for (const op of base) if (op.t === 'write') pattern(op.seed, Math.min(op.len, SIZE - op.off)).copy(model, op.off);
  await fsp.writeFile(path.join(srcDir, `${DISK}.raw`), model);
  const tracker = await TrackedDisk.create({ ...trackerOptions({ srcDir, clock }), sizeBytes: SIZE });
  const target = await oracleTargets.open(replicaRoot, hasher);
  const w = {
    root, srcDir, replicaRoot, clock, tracker, abandoned: [] as TrackedDisk[], target, blocks, hasher,
    model, atSeal: Buffer.from(model), expected: new Map<string, Buffer>(), guestSeed: 7, quiet: false,
  } as Omit<World, 'replica' | 'rep'> as World;
  (w as { replica: InterleavingReplica }).replica = new InterleavingReplica(await target.openDisk({ diskId: DISK, sizeBytes: SIZE }), async () => {
    if (w.quiet) return;
    w.guestSeed++;
    await guestWrite(w, (w.guestSeed * 7919) % SIZE, pattern(w.guestSeed, 1 + ((w.guestSeed * 131) % 3000)));
  }, offerRuns);
  w.rep = await openReplicator(w);
  return w;
}

/** Make the `n`th cycle the replica begins fail after its first write; returns the undo. */
function failBatch(w: World, n: number): () => void {
  let batches = 0;
  const inner = w.replica.beginCycle.bind(w.replica);
  w.replica.beginCycle = async (meta) => {
    batches++;
    if (batches === n) w.replica.failAfter = 1;
    return inner(meta);
  };
  return () => {
    w.replica.beginCycle = inner;
  };
}

async function closeWorld(w: World): Promise<void> {
  for (const t of w.abandoned) await t.close().catch(() => undefined);
  await w.tracker.close().catch(() => undefined);
  await w.target.close().catch(() => undefined);
}

describe('replication/replicator: every retained point equals the source at its cut', function () {
  this.timeout(300_000);
  after(() => threadedHasher.close());
  const seed = Number(process.env.LIFEBOAT_SEED ?? 20261123);
  // Debugging aid: check every point after every operation, not only after cycles.
  const checkEveryOp = process.env.LIFEBOAT_CHECK_EVERY_OP === '1';

  it('under random workloads, concurrent guest writes and injected faults', () => oracleProperty(seed, Number(process.env.LIFEBOAT_RUNS ?? 25), checkEveryOp));

  it('resumes an initial copy from its cursor after a crash, without starting over', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lifeboat-replicator-'));
    const writes: Op[] = [];
    for (let i = 0; i < 64; i++) writes.push({ t: 'write', off: i * 8 * KiB, len: 8 * KiB, seed: i + 1 });
    const w = await makeWorld(root, writes);
    try {
      // Fail the 5th batch of the copy; the first four stay committed.
      w.replica.failAfter = undefined;
      failBatch(w, 5);
      await assert.rejects(w.rep.runInitialReplication(), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'test.injectedApplyFailure');
      const before = w.rep.status;
      assert.equal(before.phase, 'initialCopy');
      assert.equal(before.doneBytes, 4 * 64 * KiB, 'four batches of 64 KiB are done');
      // A new driver (the agent restarted) resumes at the cursor.
      w.rep = await openReplicator(w);
      const first = await w.rep.runInitialReplication();
      expect(w, first);
      // Started over, the pass would have scanned 256 KiB + the whole disk.
      assert.equal(w.rep.status.stats.scannedBytes, SIZE, 'the resumed pass scanned each byte once');
      await checkPoints(w, 'after the resumed copy');
    } finally {
      await closeWorld(w);
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});

describe('replication/replicator: no undo data before the first point (docs/replication.md §5.1)', function () {
  this.timeout(60_000);

  it('copies a small first cycle (firstCopyBatchBytes), larger ones after it (copyBatchBytes), and resumes at the cursor after a failure', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lifeboat-replicator-'));
    const writes: Op[] = [];
    for (let i = 0; i < 64; i++) writes.push({ t: 'write', off: i * 8 * KiB, len: 8 * KiB, seed: i + 1 });
    const w = await makeWorld(root, writes);
    try {
      const options = { copyBatchBytes: 3 * 64 * KiB + 1000, firstCopyBatchBytes: 8 * KiB + 1000 };
      w.rep = await openReplicator(w, options);
      // The 3rd batch fails after its first write; the first two stay committed.
      const restore = failBatch(w, 3);
      await assert.rejects(w.rep.runInitialReplication(), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'test.injectedApplyFailure');
      restore();
      assert.equal(w.rep.status.doneBytes, 8 * KiB + 192 * KiB, 'a first batch of firstCopyBatchBytes, then one of copyBatchBytes, in whole blocks');
      w.rep = await openReplicator(w, options);
      const first = await w.rep.runInitialReplication();
      expect(w, first);
      assert.equal(w.rep.status.stats.scannedBytes, SIZE, 'the resumed pass scanned each byte once');
      await checkPoints(w, 'after the resumed copy');
    } finally {
      await closeWorld(w);
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  /** A world whose 5th copy batch fails after its first write reached the replica (no undo: the bytes stay). */
  async function crashedCopy(root: string): Promise<World> {
    const writes: Op[] = [];
    for (let i = 0; i < 64; i++) writes.push({ t: 'write', off: i * 8 * KiB, len: 8 * KiB, seed: i + 1 });
    const w = await makeWorld(root, writes);
    const restore = failBatch(w, 5);
    w.quiet = true;
    await assert.rejects(w.rep.runInitialReplication(), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'test.injectedApplyFailure');
    restore();
    assert.equal(w.rep.status.doneBytes, 4 * 64 * KiB);
    // The aborted batch's first write stays on the replica (it kept no undo data to roll back with).
    const replicaFile = (w.replica as unknown as { inner: { replicaPath: string } }).inner.replicaPath;
    const stale = (await fsp.readFile(replicaFile)).subarray(256 * KiB, 256 * KiB + 16 * KiB);
    assert.ok(stale.equals(w.model.subarray(256 * KiB, 256 * KiB + 16 * KiB)) && stale.some((b) => b !== 0), 'the failed batch left its first write behind');
    // The guest then zeroes that region: a redo of the batch skips zero chunks, so only catch-up can make it right.
    await guestWrite(w, 256 * KiB, Buffer.alloc(64 * KiB));
    return w;
  }

  it('redoes a batch that failed half-applied, and the first point is the source even where the redo skipped zeros', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lifeboat-replicator-'));
    let w: World | undefined;
    try {
      w = await crashedCopy(root);
      w.rep = await openReplicator(w);
      const first = await w.rep.runInitialReplication();
      expect(w, first);
      await checkPoints(w, 'after the redone copy');
      assert.ok(w.expected.get(first.id)!.equals(w.model));
    } finally {
      if (w !== undefined) await closeWorld(w);
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('compares instead of copying when the progress file is lost after such a failure', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lifeboat-replicator-'));
    let w: World | undefined;
    try {
      w = await crashedCopy(root);
      await fsp.rm(path.join(w.srcDir, `${DISK}.replication.json`));
      w.rep = await openReplicator(w);
      const first = await w.rep.runInitialReplication();
      expect(w, first);
      assert.ok(w.rep.status.stats.comparedBlocks > 0, 'the replica held cycles: it was compared, not assumed empty');
      await checkPoints(w, 'after the compare');
      assert.ok(w.expected.get(first.id)!.equals(w.model));
    } finally {
      if (w !== undefined) await closeWorld(w);
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});

describe('replication/replicator: nonZeroRuns', () => {
  it('finds exactly the non-zero grains, coalesced into runs', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })), { maxLength: 64 }), fc.integer({ min: 1, max: 8 }), (grains, grain) => {
        // A buffer of `grains.length` grains; a grain is all zero or holds one non-zero byte.
        const buf = Buffer.alloc(grains.length * grain);
        grains.forEach((v, i) => { buf[i * grain + (v % grain)] = v; });
        const runs = nonZeroRuns(buf, grain);
        const covered = new Array<boolean>(grains.length).fill(false);
        for (const [from, to] of runs) {
          assert.ok(from % grain === 0 && to % grain === 0 && to > from);
          for (let g = from / grain; g < to / grain; g++) covered[g] = true;
        }
        assert.deepEqual(covered, grains.map((v) => v !== 0));
        for (let i = 1; i < runs.length; i++) assert.ok(runs[i]![0] > runs[i - 1]![1], 'runs are coalesced');
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

/**
 * The oracle's property: random workloads with concurrent guest writes and
 * injected faults, every retained point checked against the source at its
 * cut, then convergence. The replica target comes from `oracleTargets`.
 */
export async function oracleProperty(seed: number, numRuns: number, checkEveryOp = false): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(writeOp, { maxLength: 8 }), fc.array(opArb, { minLength: 5, maxLength: 45 }), blocksArb, fc.boolean(), fc.boolean(), async (base, ops, blocks, threads, offerRuns) => {
      const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lifeboat-replicator-'));
      let w: World | undefined;
      try {
        w = await makeWorld(root, base, blocks, threads, offerRuns);
        await drive(w, () => w!.rep.runInitialReplication());
        await checkPoints(w, 'after initial replication');
        for (const [i, op] of ops.entries()) {
          await apply(w, op);
          if (checkEveryOp || op.t === 'cycle' || op.t === 'resync' || op.t === 'failApply') await checkPoints(w, `after op ${i} (${op.t})`);
        }
        // Quiet the guest and converge: the latest point is the source.
        w.quiet = true;
        await w.tracker.flush();
        await drive(w, async () => (await w!.rep.runCycle()).point);
        const latest = await w.rep.latestPoint();
        assert.ok(w.expected.get(latest.id)!.equals(w.model), 'the latest point after a final cycle is the source');
        await checkPoints(w, 'at the end');
      } finally {
        if (w !== undefined) await closeWorld(w);
        await fsp.rm(root, { recursive: true, force: true });
      }
    }),
    { seed, numRuns, endOnFailure: true },
  );
}
