/**
 * Resynchronisation of a 2 GiB disk whose replica differs from the source in
 * 1 % of its 4 KiB blocks, against `rsync --no-whole-file` (with and without
 * `--inplace`) between the same pair of files. Bytes that cross (both
 * directions) and time. Target (issue 3): fewer bytes and less time than
 * rsync.
 *
 * The divergence is made honestly, through the product's own path: the disk
 * is replicated (initial replication to its first point), the tracker is
 * closed cleanly, 1 % of the 4 KiB blocks of the disk file are rewritten
 * while nothing tracks it (as a tool writing to an unprotected disk would),
 * and that state is kept as a snapshot. Each Lifeboat run starts from a copy
 * of the snapshot, opens tracker, store and driver as after a restart, and
 * runs `DiskReplicator.resync` (an operator's request): new generation,
 * block-compare pass (digests computed on each side; only the replica's
 * digests and the differing blocks cross), catch-up, first point. Each rsync
 * run starts from a copy of the snapshot's replica file.
 *
 * Lifeboat's bytes crossing = the pass's `sentBytes` + 32 bytes of digest per
 * compared block. rsync's = "Total bytes sent" + "Total bytes received" of
 * `--stats` (its literal data is reported too).
 *
 * Knobs: BENCH_DISK_MIB, BENCH_RUNS, BENCH_REST_S, BENCH_BLOCK_KIB (compare
 * shapes of the Lifeboat runs, comma-separated, each `coarse/fine` in KiB, or
 * one size for a one-level compare; default 64/4,64,4: the default two-level
 * compare, then one level of 64 KiB and of 4 KiB blocks).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DiskReplicator } from '../provider/replication/replicator';
import { TrackedDisk } from '../provider/replication/tracker';
import { HostReplicaTarget } from '../provider/targets/host';
import { KiB, MiB, formatBytes } from '../provider/units';
import {
  type Contender,
  type Measurement,
  Prng,
  assertDigest,
  compete,
  fileDigest,
  knob,
  makeDisk,
  randomChunk,
  report,
  rest,
  run,
  scratch,
  settle,
  timeIt,
  warm,
  everyRun,
} from './harness';

const DISK_ID = 'bench0';
const BLOCK = 4 * KiB;
const DIGEST_BYTES = 32;

/** Paths of one copy of the setting: source folder (disk, log, progress) and store. */
class World {
  constructor(readonly root: string) {}
  get srcDir(): string {
    return path.join(this.root, 'src');
  }
  get disk(): string {
    return path.join(this.srcDir, `${DISK_ID}.raw`);
  }
  get progressFile(): string {
    return path.join(this.srcDir, `${DISK_ID}.replication.json`);
  }
  get store(): string {
    return path.join(this.root, 'store');
  }
}

interface Opened {
  readonly tracker: TrackedDisk;
  readonly target: HostReplicaTarget;
  readonly rep: DiskReplicator;
  readonly replicaPath: string;
}

async function openAll(w: World, blockSize: number, create: boolean, fineBlockSize = blockSize): Promise<Opened> {
  const tracker = create ? await TrackedDisk.create({ diskPath: w.disk, diskId: DISK_ID }) : await TrackedDisk.open({ diskPath: w.disk, diskId: DISK_ID });
  const target = await HostReplicaTarget.open({ root: w.store });
  const replica = await target.openDisk({ diskId: DISK_ID, sizeBytes: tracker.sizeBytes });
  const rep = await DiskReplicator.open({ source: tracker, replica, progressFile: w.progressFile, blockSize, fineBlockSize });
  return { tracker, target, rep, replicaPath: replica.replicaPath };
}

async function closeAll(o: Opened): Promise<void> {
  await o.target.close();
  await o.tracker.close();
}

/** Rewrite `fraction` of the 4 KiB blocks of `file` (distinct, seeded) with fresh random bytes. */
async function diverge(file: string, sizeBytes: number, fraction: number): Promise<number> {
  const blocks = sizeBytes / BLOCK;
  const count = Math.round(blocks * fraction);
  const prng = new Prng(11);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(prng.int(blocks));
  const fh = await fs.open(file, 'r+');
  try {
    let data: Buffer = Buffer.alloc(0);
    let i = 0;
    for (const b of [...chosen].sort((x, y) => x - y)) {
      if (i % (MiB / BLOCK) === 0) data = randomChunk(11, i);
      const piece = data.subarray((i % (MiB / BLOCK)) * BLOCK, (i % (MiB / BLOCK) + 1) * BLOCK);
      await fh.write(piece, 0, BLOCK, b * BLOCK);
      i++;
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return count;
}

/** A number of rsync's `--stats` output ("Literal data: 1,234 bytes"). */
function stat(out: string, label: string): number {
  const m = new RegExp(`^${label}: ([\\d,]+)`, 'm').exec(out);
  if (m === null) throw new Error(`rsync --stats printed no "${label}":\n${out}`);
  return Number(m[1]!.replace(/,/g, ''));
}

async function main(): Promise<void> {
  const size = knob('BENCH_DISK_MIB', 2048) * MiB;
  const runs = knob('BENCH_RUNS', 3);
  const restSeconds = knob('BENCH_REST_S', 3);
  const shapes = (process.env.BENCH_BLOCK_KIB ?? '64/4,64,4').split(',').map((x) => {
    const [coarse, fine] = x.split('/').map((n) => Number(n) * KiB);
    return { coarse: coarse!, fine: fine ?? coarse! };
  });
  const { dir, dispose } = await scratch('resync');
  try {
    // The snapshot: replicated to its first point, then diverged untracked.
    const snap = new World(path.join(dir, 'snap'));
    await fs.mkdir(snap.srcDir, { recursive: true });
    const counts = await makeDisk(snap.disk, size, { random: 0.5, zero: 0.25, text: 0.25 });
    const first = await openAll(snap, 64 * KiB, true);
    const initial = await timeIt(() => first.rep.runInitialReplication());
    await closeAll(first);
    const before = await fileDigest(snap.disk);
    await assertDigest('initial replication', first.replicaPath, before);
    const changed = await diverge(snap.disk, size, 0.01);
    const after = await fileDigest(snap.disk);
    const snapReplica = first.replicaPath;

    const work = new World(path.join(dir, 'work'));
    const dst = path.join(dir, 'rsync-dst.raw');
    const crossed = new Map<string, { bytes: number; detail: string }>();

    const lifeboat = (shape: { coarse: number; fine: number }): Contender => {
      const { coarse: blockSize, fine } = shape;
      const isDefault = blockSize === 64 * KiB && fine === 4 * KiB;
      const name = fine === blockSize
        ? `Lifeboat resync, one level of ${blockSize / KiB} KiB blocks`
        : `Lifeboat resync, ${blockSize / KiB} KiB then ${fine / KiB} KiB blocks${isDefault ? ' (default)' : ''}`;
      let replicaPath = '';
      return {
        name,
        before: async () => {
          await run('cp', ['-a', '--sparse=always', snap.root, work.root]);
          await settle();
          await warm(work.disk);
          await warm(path.join(work.store, path.relative(snap.store, snapReplica)));
          await rest(restSeconds);
        },
        timed: async () => {
          const t = await timeIt(async () => {
            const o = await openAll(work, blockSize, false, fine);
            try {
              await o.rep.resync('benchmark: operator request');
              const s = o.rep.status.stats;
              const points = await (await o.target.openDisk({ diskId: DISK_ID, sizeBytes: size })).listPoints();
              if (points.length !== 2) throw new Error(`expected the initial point and the resync's, found ${points.length}`);
              crossed.set(name, {
                bytes: s.sentBytes + s.digestBytes,
                detail: `${s.differingBlocks} of ${s.comparedBlocks} blocks differed: ${formatBytes(s.sentBytes)} of blocks + ${formatBytes(s.digestBytes)} of digests (${formatBytes(DIGEST_BYTES * s.comparedBlocks)} of them for the ${blockSize / KiB} KiB blocks)`,
              });
              replicaPath = o.replicaPath;
            } finally {
              await closeAll(o);
            }
          });
          return t.seconds;
        },
        verify: () => assertDigest(name, replicaPath, after),
      };
    };
    const rsync = (name: string, extra: readonly string[]): Contender => ({
      name,
      before: async () => {
        await run('cp', ['--sparse=always', snapReplica, dst]);
        await settle();
        await warm(snap.disk);
        await warm(dst);
        await rest(restSeconds);
      },
      timed: async () => {
        // -I: never skip the file on size and time; the delta algorithm is what is measured.
        const r = await run('rsync', ['--no-whole-file', '-I', '--stats', ...extra, snap.disk, dst]);
        const sent = stat(r.stdout, 'Total bytes sent');
        const received = stat(r.stdout, 'Total bytes received');
        const literal = stat(r.stdout, 'Literal data');
        crossed.set(name, { bytes: sent + received, detail: `${formatBytes(literal)} literal data; ${formatBytes(sent)} sent + ${formatBytes(received)} received` });
        return r.seconds;
      },
      verify: () => assertDigest(name, dst, after),
    });

    const times = await compete(
      runs,
      async () => {
        await fs.rm(work.root, { recursive: true, force: true });
        await fs.rm(dst, { force: true });
      },
      [...shapes.map(lifeboat), rsync('rsync --no-whole-file', []), rsync('rsync --no-whole-file --inplace', ['--inplace'])],
    );
    await fs.rm(work.root, { recursive: true, force: true });

    const measurements: Measurement[] = times.map((t) => ({ name: t.name, seconds: t.seconds, bytes: size, bytesSent: crossed.get(t.name)!.bytes }));
    const byName = (n: string): Measurement => measurements.find((m) => m.name === n)!;
    const rsyncs = [byName('rsync --no-whole-file'), byName('rsync --no-whole-file --inplace')];
    const bestRsyncBytes = Math.min(...rsyncs.map((m) => m.bytesSent!));
    const bestRsyncSeconds = Math.min(...rsyncs.map((m) => m.seconds));
    const ratios: Record<string, number> = {};
    const targets: Array<{ what: string; met: boolean }> = [];
    for (const m of measurements.filter((x) => x.name.startsWith('Lifeboat'))) {
      const label = m.name.replace('Lifeboat resync, ', '');
      ratios[`Lifeboat (${label}) / best rsync bytes crossing`] = m.bytesSent! / bestRsyncBytes;
      ratios[`Lifeboat (${label}) / best rsync time`] = m.seconds / bestRsyncSeconds;
      targets.push({ what: `Lifeboat (${label}) fewer bytes and less time than rsync (either mode)`, met: m.bytesSent! < bestRsyncBytes && m.seconds < bestRsyncSeconds });
    }
    await report({
      benchmark: 'resync',
      measurements,
      ratios,
      targets,
      notes: [
        `disk ${formatBytes(size)} (${counts.random} MiB random, ${counts.zero} MiB zeros, ${counts.text} MiB text), initially replicated in ${initial.seconds.toFixed(1)} s; then ${changed} of its ${size / BLOCK} 4 KiB blocks (1 %) rewritten untracked, distinct and seeded (seed 11)`,
        'MiB/s column: disk size / time; "sent" column: bytes crossing between the two sides, both directions',
        ...times.map((t) => `${t.name}: ${crossed.get(t.name)!.detail}`),
        `median of ${runs} interleaved rounds, each run from a fresh copy of the snapshot, after \`sync\`, warming reads of both files and ${restSeconds} s of rest; every run: ${everyRun(times)}`,
        'every run\'s result checked by SHA-256 against the diverged source; each Lifeboat run kept the initial point (2 points after the resync)',
      ],
    });
  } finally {
    await dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
