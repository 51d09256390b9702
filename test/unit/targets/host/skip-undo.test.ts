/**
 * docs/replica-format.md §7.2a: a cycle that asks to skip undo data writes
 * none while the disk holds no point and has committed a cycle; its crash or
 * abort leaves the state (applied cycle, points) as before, and the same
 * cycle can be applied again. The first cycle of a disk and every cycle once
 * a point exists keep undo data whatever they ask.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { HostReplicaTarget } from '../../../../provider/targets/host';
import { type HostReplicaDisk } from '../../../../provider/targets/host/replica-disk';
import { KiB, MiB } from '../../../../provider/units';
import { LifeboatError } from '../../../../provider/errors';
import { type FileOps, nodeFileOps } from '../../../../provider/targets/host/file-ops';

const SIZE = 256 * KiB;

/** Deterministic, non-zero bytes: SHA-256 chained from the seed. */
function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(String(seed)).digest();
  for (let at = 0; at < length; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

describe('targets/host: skipping undo data before the first point', function () {
  this.timeout(30_000);
  let root: string;
  let target: HostReplicaTarget;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-skip-undo-'));
    target = await HostReplicaTarget.open({ root, undoBatchBytes: 16 * KiB });
  });
  afterEach(async () => {
    await target.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  async function open(): Promise<HostReplicaDisk> {
    return (await target.openDisk({ diskId: 'd', sizeBytes: SIZE })) as HostReplicaDisk;
  }

  async function undoFiles(disk: HostReplicaDisk): Promise<string[]> {
    return fs.readdir(path.join(path.dirname(disk.replicaPath), 'undo'));
  }

  /** Close the target with a cycle open (what a crash leaves for the next open) and open it again. */
  async function restart(): Promise<HostReplicaDisk> {
    await target.close();
    target = await HostReplicaTarget.open({ root, undoBatchBytes: 16 * KiB });
    return open();
  }

  it('writes no undo file after the first committed cycle; a crash mid-cycle keeps the state and the cycle applies again', async () => {
    let disk = await open();
    const w1 = await disk.beginCycle({ generation: 'g', seq: 1, time: 1, skipUndoBeforeFirstPoint: true });
    await w1.write(0, bytes(1, 64 * KiB));
    assert.equal((await undoFiles(disk)).length, 1, 'the first cycle of a disk keeps undo data: a crash must leave zeros');
    await w1.commit();
    const w2 = await disk.beginCycle({ generation: 'g', seq: 2, time: 2, skipUndoBeforeFirstPoint: true });
    await w2.write(32 * KiB, bytes(2, 64 * KiB)); // beyond the batch size: applied at once
    assert.deepEqual(await undoFiles(disk), [], 'no undo data while no point exists');
    disk = await restart();
    const s = await disk.state();
    assert.equal(s.appliedSeq, 1, 'the crashed cycle is not applied');
    assert.deepEqual(s.points, []);
    const again = await disk.beginCycle({ generation: 'g', seq: 2, time: 2, skipUndoBeforeFirstPoint: true });
    await again.write(32 * KiB, bytes(2, 64 * KiB));
    await again.write(200 * KiB, bytes(3, 4 * KiB));
    const p = await again.commit();
    assert.equal(p, undefined);
    const expected = Buffer.alloc(SIZE);
    bytes(1, 64 * KiB).copy(expected, 0);
    bytes(2, 64 * KiB).copy(expected, 32 * KiB);
    bytes(3, 4 * KiB).copy(expected, 200 * KiB);
    assert.ok((await fs.readFile(disk.replicaPath)).equals(expected), 'the replica is the head after the cycle applied again');
    assert.deepEqual(await undoFiles(disk), []);
  });

  it('keeps undo data in the first cycle: a crash in it leaves a replica of zeros', async () => {
    let disk = await open();
    const w1 = await disk.beginCycle({ generation: 'g', seq: 1, time: 1, skipUndoBeforeFirstPoint: true });
    await w1.write(0, bytes(4, 64 * KiB));
    disk = await restart();
    assert.equal((await disk.state()).appliedSeq, 0);
    assert.ok((await fs.readFile(disk.replicaPath)).equals(Buffer.alloc(SIZE)), 'rolled back to zeros');
  });

  it('keeps undo data once a point exists, whatever the cycle asks', async () => {
    let disk = await open();
    const w1 = await disk.beginCycle({ generation: 'g', seq: 1, time: 1, point: 'crashConsistent' });
    await w1.write(0, bytes(5, 64 * KiB));
    await w1.commit();
    const w2 = await disk.beginCycle({ generation: 'g', seq: 2, time: 2, skipUndoBeforeFirstPoint: true });
    await w2.write(0, bytes(6, 64 * KiB));
    assert.equal((await undoFiles(disk)).length, 1);
    disk = await restart();
    const expected = Buffer.alloc(SIZE);
    bytes(5, 64 * KiB).copy(expected, 0);
    assert.ok((await fs.readFile(disk.replicaPath)).equals(expected), 'rolled back to the point');
    assert.equal((await disk.listPoints()).length, 1);
  });

  it('fails the commit when a sync started during the cycle failed, even if the commit\'s own sync succeeds', async () => {
    await target.close();
    let failNextSync = false;
    let failedSyncs = 0;
    const ops: FileOps = {
      ...nodeFileOps,
      async open(file, mode) {
        const h = await nodeFileOps.open(file, mode);
        if (!file.endsWith('replica.img')) return h;
        return {
          read: (b, o, l, p) => h.read(b, o, l, p),
          write: (b, o, l, p) => h.write(b, o, l, p),
          truncate: (l) => h.truncate(l),
          size: () => h.size(),
          close: () => h.close(),
          async sync() {
            if (failNextSync) {
              failNextSync = false;
              failedSyncs++;
              throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
            }
            return h.sync();
          },
        };
      },
    };
    const big = 32 * MiB;
    target = await HostReplicaTarget.open({ root, undoBatchBytes: 16 * KiB, fileOps: ops });
    const disk = await target.openDisk({ diskId: 'big', sizeBytes: big });
    const w1 = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
    await w1.write(0, bytes(7, 4 * KiB));
    await w1.commit();
    const w2 = await disk.beginCycle({ generation: 'g', seq: 2, time: 2, skipUndoBeforeFirstPoint: true });
    failNextSync = true;
    const piece = bytes(8, MiB);
    // 16 MiB: the last write starts a sync in the background, which fails; the commit's own sync would succeed.
    for (let at = 0; at < 16 * MiB; at += MiB) await w2.write(at, piece);
    await assert.rejects(w2.commit(), (e: unknown) => LifeboatError.isInstance(e) && /EIO/.test(String(e.message) + String((e as { cause?: unknown }).cause)));
    assert.equal(failedSyncs, 1, 'the early sync was the one that failed');
    await w2.abort();
    assert.equal((await disk.state()).appliedSeq, 1, 'the cycle was not committed');
  });

  it('refuses a flag that is not a boolean', async () => {
    const disk = await open();
    await assert.rejects(disk.beginCycle({ generation: 'g', seq: 1, time: 1, skipUndoBeforeFirstPoint: 'yes' as unknown as boolean }), /skipUndoBeforeFirstPoint/);
  });
});
