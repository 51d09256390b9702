/**
 * Host-specific behaviour of the replica store: a crash at every step of every
 * write order (docs/replica-format.md §7, §8), with and without losing unsynced
 * writes; injected I/O errors; what building a view costs (§9).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostReplicaTarget, type HostReplicaDisk } from '../../../../provider/targets/host';
import { type RecoveryPointInfo } from '../../../../provider/replication/target';
import { GiB, KiB } from '../../../../provider/units';
import { patternBytes, rejectsWith } from '../conformance';
import { CrashError, CrashFileOps } from './crash-file-ops';

const SIZE = 256 * KiB;
const BATCH = 16 * KiB;

type Writes = ReadonlyArray<readonly [number, Buffer]>;

function apply(base: Buffer, writes: Writes): Buffer {
  const b = Buffer.from(base);
  for (const [o, d] of writes) d.copy(b, o);
  return b;
}

function sha(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/** Whether `e`, or an error in its `cause` chain, is the simulated crash. */
function isCrash(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) if (x instanceof CrashError) return true;
  return false;
}

/**
 * Run until the simulated crash: `p` must reject because of it (possibly
 * classified by the store), or complete having swallowed it where the store
 * ignores failures on purpose (deleting files that the next open deletes).
 */
async function crashes(p: Promise<unknown>, ops: CrashFileOps, where: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isCrash(e), `${where}: failed with ${String(e)}`);
  }
  assert.ok(ops.crashed, `${where}: did not reach the crash`);
}

async function openTarget(root: string, ops: CrashFileOps): Promise<HostReplicaTarget> {
  return HostReplicaTarget.open({ root, fileOps: ops, undoBatchBytes: BATCH });
}

async function commitCycle(disk: HostReplicaDisk, seq: number, time: number, point: boolean, writes: Writes): Promise<RecoveryPointInfo | undefined> {
  const w = await disk.beginCycle({ generation: 'g1', seq, time, ...(point ? { point: 'crashConsistent' as const } : {}) });
  for (const [o, d] of writes) await w.write(o, d);
  return w.commit();
}

// The prepared history: P1 (seq 1), P2 (seq 2), then seq 3 without a point.
const W1: Writes = [[0, patternBytes(SIZE, 1)]];
const W2: Writes = [[1000, patternBytes(20_000, 2)], [200_000, patternBytes(5000, 3)]];
const W3: Writes = [[50_000, patternBytes(3000, 4)]];
// The cycle under test: overlapping writes, one larger than a batch, zeros, the last byte.
const W4: Writes = [
  [0, patternBytes(10 * KiB, 5)],
  [8 * KiB, patternBytes(10 * KiB, 6)],
  [100 * KiB, patternBytes(40 * KiB, 7)],
  [SIZE - 1000, Buffer.alloc(1000)],
  [SIZE - 1, Buffer.from([0xee])],
  [9 * KiB, patternBytes(3, 8)],
];
const B1 = apply(Buffer.alloc(SIZE), W1);
const B2 = apply(B1, W2);
const B3 = apply(B2, W3);
const B4 = apply(B3, W4);

/** One acceptable outcome of a crash. */
interface World {
  readonly name: string;
  readonly appliedSeq: number;
  readonly points: ReadonlyArray<{ readonly seq: number; readonly bytes: Buffer }>;
  readonly head: Buffer;
}

const PREV: World = { name: 'previous', appliedSeq: 3, points: [{ seq: 1, bytes: B1 }, { seq: 2, bytes: B2 }], head: B3 };

async function verifyWorld(disk: HostReplicaDisk, worlds: readonly World[], where: string): Promise<World> {
  const s = await disk.state();
  const world = worlds.find((w) => w.appliedSeq === s.appliedSeq && w.points.map((p) => p.seq).join() === s.points.map((p) => p.seq).join());
  assert.ok(world !== undefined, `${where}: state seq ${s.appliedSeq}, points [${s.points.map((p) => p.seq).join()}] matches no acceptable outcome (${worlds.map((w) => w.name).join(', ')})`);
  for (const [i, p] of s.points.entries()) {
    const v = await disk.openView(p.id);
    const got = await v.read(0, SIZE);
    await v.close();
    assert.ok(got.equals(world.points[i]!.bytes), `${where}: point seq ${p.seq} differs (outcome ${world.name})`);
  }
  assert.deepEqual((await disk.hashBlocks(SIZE, 0, 1)).digests, [sha(world.head)], `${where}: head differs (outcome ${world.name})`);
  return world;
}

/** After recovery, replication goes on: one more cycle with a point, checked. */
async function nextCycleWorks(disk: HostReplicaDisk, world: World, where: string): Promise<void> {
  const s = await disk.state();
  const writes: Writes = [[123, patternBytes(4567, 99)]];
  const w = await disk.beginCycle({ generation: s.generation ?? 'g1', seq: s.appliedSeq + 1, time: 10_000, point: 'appConsistent' });
  for (const [o, d] of writes) await w.write(o, d);
  const p = (await w.commit())!;
  const v = await disk.openView(p.id);
  assert.ok((await v.read(0, SIZE)).equals(apply(world.head, writes)), `${where}: next cycle`);
  await v.close();
  const first = (await disk.listPoints())[0]!;
  const fv = await disk.openView(first.id);
  assert.ok((await fv.read(0, SIZE)).equals(world.points[0]!.bytes), `${where}: oldest point after the next cycle`);
  await fv.close();
}

interface Scenario {
  readonly name: string;
  /** Extra preparation after the common history (with its own ops). */
  readonly prepare?: (root: string) => Promise<void>;
  readonly run: (root: string, ops: CrashFileOps) => Promise<void>;
  readonly worlds: readonly World[];
  /** Outcomes that must each be reached by some crash step. */
  readonly mustReach: readonly string[];
}

async function crashMidApply(root: string): Promise<void> {
  // Find the first replica write of the cycle, then crash just after it.
  const probe = new CrashFileOps();
  const tmp = `${root}-probe`;
  await fs.cp(root, tmp, { recursive: true });
  await runCommit(tmp, probe);
  await fs.rm(tmp, { recursive: true, force: true });
  const firstReplicaWrite = probe.log.findIndex((s, i) => i > 3 && s.startsWith('write') && s.includes('replica.img'));
  assert.ok(firstReplicaWrite > 0);
  const ops = new CrashFileOps({ crashAt: firstReplicaWrite + 2 });
  await crashes(runCommit(root, ops), ops, 'prepare');
}

async function runCommit(root: string, ops: CrashFileOps): Promise<void> {
  const t = await openTarget(root, ops);
  try {
    const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
    await commitCycle(disk, 4, 400, true, W4);
  } finally {
    await t.close().catch(() => undefined);
  }
}

const scenarios: Scenario[] = [
  {
    name: 'commit of a cycle',
    run: runCommit,
    worlds: [PREV, { name: 'committed', appliedSeq: 4, points: [...PREV.points, { seq: 4, bytes: B4 }], head: B4 }],
    mustReach: ['previous', 'committed'],
  },
  {
    name: 'abort of a cycle',
    run: async (root, ops) => {
      const t = await openTarget(root, ops);
      try {
        const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
        const w = await disk.beginCycle({ generation: 'g1', seq: 4, time: 400, point: 'crashConsistent' });
        for (const [o, d] of W4) await w.write(o, d);
        await w.abort();
      } finally {
        await t.close().catch(() => undefined);
      }
    },
    worlds: [PREV],
    mustReach: ['previous'],
  },
  {
    name: 'prune',
    run: async (root, ops) => {
      const t = await openTarget(root, ops);
      try {
        const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
        assert.equal((await disk.prunePoints(150)).length, 1);
      } finally {
        await t.close().catch(() => undefined);
      }
    },
    worlds: [PREV, { name: 'pruned', appliedSeq: 3, points: [{ seq: 2, bytes: B2 }], head: B3 }],
    mustReach: ['previous', 'pruned'],
  },
  {
    name: 'rollback to an older point (materialise)',
    run: async (root, ops) => {
      const t = await openTarget(root, ops);
      try {
        const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
        const p1 = (await disk.listPoints())[0]!;
        assert.equal((await disk.materialise(p1.id)).zeroCopy, false);
      } finally {
        await t.close().catch(() => undefined);
      }
    },
    worlds: [PREV, { name: 'rolled back', appliedSeq: 1, points: [{ seq: 1, bytes: B1 }], head: B1 }],
    mustReach: ['previous', 'rolled back'],
  },
  {
    name: 'recovery of a half-applied cycle',
    prepare: crashMidApply,
    run: async (root, ops) => {
      const t = await openTarget(root, ops);
      try {
        await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      } finally {
        await t.close().catch(() => undefined);
      }
    },
    worlds: [PREV],
    mustReach: ['previous'],
  },
];

async function prepareBase(root: string): Promise<void> {
  const t = await openTarget(root, new CrashFileOps());
  const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
  await commitCycle(disk, 1, 100, true, W1);
  await commitCycle(disk, 2, 200, true, W2);
  await commitCycle(disk, 3, 300, false, W3);
  await t.close();
}

describe('targets/host/replica-disk', function () {
  this.timeout(120_000);
  let tmp: string;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-replica-disk-'));
  });

  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('a crash at every step of each write order leaves a committed state (§7, §8)', () => {
    for (const sc of scenarios) {
      it(sc.name, async () => {
        const base = path.join(tmp, 'base');
        await prepareBase(base);
        if (sc.prepare !== undefined) await sc.prepare(base);
        // Count the steps of an undisturbed run.
        const counter = new CrashFileOps();
        const dry = path.join(tmp, 'dry');
        await fs.cp(base, dry, { recursive: true });
        await sc.run(dry, counter);
        const steps = counter.steps;
        assert.ok(steps >= 3, `${sc.name}: only ${steps} steps`);
        const reached = new Set<string>();
        for (const loseUnsynced of [false, true]) {
          for (let n = 1; n <= steps; n++) {
            const where = `${sc.name}, crash at step ${n}/${steps} (${counter.log[n - 1]})${loseUnsynced ? ', unsynced writes lost' : ''}`;
            const root = path.join(tmp, `run-${loseUnsynced ? 'l' : 'k'}-${n}`);
            await fs.cp(base, root, { recursive: true });
            const ops = new CrashFileOps({ crashAt: n });
            await crashes(sc.run(root, ops), ops, where);
            if (loseUnsynced) await ops.revertUnsynced();
            const t = await openTarget(root, new CrashFileOps());
            try {
              const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
              const world = await verifyWorld(disk, sc.worlds, where);
              reached.add(world.name);
              // Recovery left nothing behind: no stray undo file, no temporary manifest.
              const undo = await fs.readdir(path.join(root, 'disks', 'd', 'undo'));
              const listed = await disk.storeStats();
              assert.equal(undo.length, listed.undoFiles, `${where}: undo files ${undo.join(', ')}`);
              assert.equal(await fs.stat(path.join(root, 'disks', 'd', 'manifest.json.tmp')).catch(() => undefined), undefined);
              await nextCycleWorks(disk, world, where);
            } finally {
              await t.close();
            }
            await fs.rm(root, { recursive: true, force: true });
          }
        }
        assert.deepEqual([...reached].sort(), [...sc.mustReach].sort(), `${sc.name}: outcomes reached`);
      });
    }

    it('disk creation and deletion', async () => {
      const base = path.join(tmp, 'base');
      await prepareBase(base);
      const create = async (root: string, ops: CrashFileOps): Promise<void> => {
        const t = await openTarget(root, ops);
        try {
          const e = await t.openDisk({ diskId: 'e', sizeBytes: 64 * KiB });
          await commitCycle(e, 1, 1, true, [[0, patternBytes(100, 50)]]);
          await t.deleteDisk('d');
        } finally {
          await t.close().catch(() => undefined);
        }
      };
      const counter = new CrashFileOps();
      await fs.cp(base, path.join(tmp, 'dry'), { recursive: true });
      await create(path.join(tmp, 'dry'), counter);
      const outcomes = new Set<string>();
      for (let n = 1; n <= counter.steps; n++) {
        const where = `crash at step ${n}/${counter.steps} (${counter.log[n - 1]})`;
        const root = path.join(tmp, `run-${n}`);
        await fs.cp(base, root, { recursive: true });
        const ops = new CrashFileOps({ crashAt: n });
        await crashes(create(root, ops), ops, where);
        await ops.revertUnsynced();
        const t = await openTarget(root, new CrashFileOps());
        try {
          const disks = await t.listDisks();
          // No leftover staging or deleting folder after the store is opened.
          assert.deepEqual((await fs.readdir(path.join(root, 'disks'))).filter((x) => x.startsWith('.')), [], where);
          if (disks.includes('e')) {
            const e = await t.openDisk({ diskId: 'e', sizeBytes: 64 * KiB });
            const s = await e.state();
            assert.ok(s.appliedSeq === 0 || s.appliedSeq === 1, where);
            const expected = s.appliedSeq === 1 ? apply(Buffer.alloc(64 * KiB), [[0, patternBytes(100, 50)]]) : Buffer.alloc(64 * KiB);
            assert.deepEqual((await e.hashBlocks(64 * KiB, 0, 1)).digests, [sha(expected)], where);
          }
          if (disks.includes('d')) {
            const d = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
            await verifyWorld(d, [PREV], where);
          }
          outcomes.add(`${disks.includes('e') ? 'e' : '-'}${disks.includes('d') ? 'd' : '-'}`);
        } finally {
          await t.close();
        }
        await fs.rm(root, { recursive: true, force: true });
      }
      assert.deepEqual([...outcomes].sort(), ['-d', 'e-', 'ed']);
    });
  });

  describe('I/O errors (§10)', () => {
    it('a write that hits ENOSPC fails the cycle as recoverable; abort restores it and the cycle can be retried', async () => {
      const base = path.join(tmp, 'base');
      await prepareBase(base);
      const counter = new CrashFileOps();
      await fs.cp(base, path.join(tmp, 'dry'), { recursive: true });
      await runCommit(path.join(tmp, 'dry'), counter);
      const undoAppend = counter.log.findIndex((s, i) => i > 2 && s.startsWith('write') && s.includes('.undo') && !s.includes('@0+'));
      assert.ok(undoAppend > 0);
      const ops = new CrashFileOps({ failAt: { step: undoAppend + 1, errno: 'ENOSPC' } });
      const t = await openTarget(base, ops);
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const w = await disk.beginCycle({ generation: 'g1', seq: 4, time: 400, point: 'crashConsistent' });
      let failed = false;
      for (const [o, d] of W4) {
        try {
          await w.write(o, d);
        } catch (e) {
          failed = true;
          const err = await rejectsWith(Promise.reject(e), 'recoverable', 'replica.lowDisk');
          assert.equal(err.details.errno, 'ENOSPC');
          break;
        }
      }
      if (!failed) await rejectsWith(w.commit(), 'recoverable', 'replica.lowDisk');
      await rejectsWith(w.write(0, Buffer.from('x')), 'nonRecoverable', 'replica.cycleFailed');
      await rejectsWith(w.commit(), 'nonRecoverable', 'replica.cycleFailed');
      await rejectsWith(disk.beginCycle({ generation: 'g1', seq: 4, time: 400 }), 'nonRecoverable', 'replica.cycleOpen');
      await w.abort();
      await verifyWorld(disk, [PREV], 'after abort');
      await commitCycle(disk, 4, 400, true, W4);
      await verifyWorld(disk, [{ name: 'committed', appliedSeq: 4, points: [...PREV.points, { seq: 4, bytes: B4 }], head: B4 }], 'retried');
      await t.close();
    });

    it('refuses to open a disk whose manifest has another format version', async () => {
      const root = path.join(tmp, 'v');
      await prepareBase(root);
      const file = path.join(root, 'disks', 'd', 'manifest.json');
      const doc = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
      await fs.writeFile(file, JSON.stringify({ ...doc, version: 2 }));
      const t = await openTarget(root, new CrashFileOps());
      await rejectsWith(t.openDisk({ diskId: 'd', sizeBytes: SIZE }), 'nonRecoverable', 'replica.formatVersion');
      await fs.writeFile(file, JSON.stringify(doc));
      await rejectsWith(t.openDisk({ diskId: 'd', sizeBytes: SIZE * 2 }), 'nonRecoverable', 'replica.sizeMismatch');
      await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      await t.close();
    });

    it('a missing undo file fails only the views that need it', async () => {
      const root = path.join(tmp, 'm');
      await prepareBase(root);
      const t = await openTarget(root, new CrashFileOps());
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const [p1, p2] = await disk.listPoints();
      const undo = (await fs.readdir(path.join(root, 'disks', 'd', 'undo'))).sort();
      // Undo of cycle 2 is needed by P1 only; cycle 3's by both.
      assert.equal(undo.length, 2);
      await fs.rm(path.join(root, 'disks', 'd', 'undo', undo[0]!));
      await rejectsWith(disk.openView(p1!.id), 'nonRecoverable', 'replica.undoMissing');
      const v = await disk.openView(p2!.id);
      assert.ok((await v.read(0, SIZE)).equals(B2));
      await v.close();
      await t.close();
    });
  });

  describe('views (§9)', () => {
    it('cost the extents changed since the point, not the disk size (16 GiB sparse disk)', async () => {
      const t = await HostReplicaTarget.open({ root: tmp });
      const size = 16 * GiB;
      const disk = await t.openDisk({ diskId: 'big', sizeBytes: size });
      const points: RecoveryPointInfo[] = [];
      const extentsPerCycle: number[] = [];
      const model = new Map<number, Buffer>();
      const cycles = 12;
      for (let c = 1; c <= cycles; c++) {
        const w = await disk.beginCycle({ generation: 'g', seq: c, time: c, point: 'crashConsistent' });
        const n = 1 + (c % 4);
        for (let i = 0; i < n; i++) {
          // Disjoint extents per cycle, spread over the whole disk; some overlap other cycles'.
          const offset = ((c * 7 + i * 13) % 64) * (size / 64) + i * 4096;
          const data = patternBytes(4096, c * 100 + i);
          await w.write(offset, data);
          model.set(offset, data);
        }
        extentsPerCycle.push(n);
        points.push((await w.commit())!);
      }
      for (let k = 0; k < cycles; k++) {
        const v = await disk.openHostView(points[k]!.id);
        // Undo of cycle 1 is dropped: no point preceded it.
        const expected = extentsPerCycle.slice(k + 1).reduce((s, x) => s + x, 0);
        assert.equal(v.stats.extentsConsulted, expected, `point ${k + 1}`);
        assert.equal(v.stats.undoFiles, cycles - k - 1);
        await v.close();
      }
      // The view of the first point reads the first cycle's bytes where later cycles wrote.
      const v1 = await disk.openHostView(points[0]!.id);
      for (const offset of model.keys()) {
        const expected = ((): Buffer => {
          for (let i = 0; i < extentsPerCycle[0]!; i++) if (offset === ((7 + i * 13) % 64) * (size / 64) + i * 4096) return patternBytes(4096, 100 + i);
          return Buffer.alloc(4096);
        })();
        assert.ok((await v1.read(offset, 4096)).equals(expected), `offset ${offset}`);
      }
      assert.ok((await v1.read(size - 4096, 4096)).equals(Buffer.alloc(4096)));
      await v1.close();
      const stats = disk.storeStats();
      assert.equal(stats.undoExtents, extentsPerCycle.slice(1).reduce((s, x) => s + x, 0));
      await t.close();
    });

    it('keep reading a point pruned while they are open, and are invalidated by a rollback', async () => {
      const root = path.join(tmp, 'p');
      await prepareBase(root);
      const t = await openTarget(root, new CrashFileOps());
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const [p1, p2] = await disk.listPoints();
      const v1 = await disk.openHostView(p1!.id);
      const p4 = (await commitCycle(disk, 4, 400, true, W4))!;
      assert.equal(v1.stats.extentsIncorporated > 0, true);
      assert.deepEqual(await disk.prunePoints(Number.POSITIVE_INFINITY), [p1, p2]);
      assert.ok((await v1.read(0, SIZE)).equals(B1), 'pruned point still readable through its open view');
      assert.deepEqual(await fs.readdir(path.join(root, 'disks', 'd', 'undo')), []);
      const v4 = await disk.openHostView(p4.id);
      assert.equal(v4.stats.extentsConsulted, 0);
      await commitCycle(disk, 5, 500, false, [[0, patternBytes(SIZE, 77)]]);
      assert.ok((await v4.read(0, SIZE)).equals(B4));
      assert.equal((await disk.materialise(p4.id)).zeroCopy, false);
      await rejectsWith(v1.read(0, 1), 'nonRecoverable', 'replica.viewClosed');
      await rejectsWith(v4.read(0, 1), 'nonRecoverable', 'replica.viewClosed');
      assert.deepEqual((await disk.hashBlocks(SIZE, 0, 1)).digests, [sha(B4)]);
      const m = await disk.materialise(p4.id);
      assert.deepEqual(m, { location: path.join(root, 'disks', 'd', 'replica.img'), zeroCopy: true });
      assert.ok((await fs.readFile(m.location)).equals(B4), 'the materialised file is the point');
      await t.close();
    });
  });
});
