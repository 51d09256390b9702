/**
 * Guest writes through the tracker against the same writes to an untracked
 * file: 64 KiB at random 4 KiB-aligned offsets (seeded) into a 1 GiB disk,
 * a flush every BENCH_FLUSH_EVERY writes in both, one write in flight at a
 * time. Target (issue 3): tracked at least 0.5 × untracked throughput.
 *
 * The untracked side is measured twice, with synchronous positional writes
 * (`fs.writeSync`, what the tracker itself uses for pieces up to 1 MiB) and
 * with promise writes (`FileHandle.write`); the ratio is taken against the
 * faster. Flushes are `fdatasync` on both sides. Both disks must end with the
 * same bytes, and the tracker's log must hold every write.
 *
 * Knobs: BENCH_DISK_MIB, BENCH_WRITES_MIB (bytes written per run),
 * BENCH_FLUSH_EVERY, BENCH_RUNS, BENCH_REST_S.
 */
import { writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { TrackedDisk } from '../provider/replication/tracker';
import { KiB, MiB, formatBytes } from '../provider/units';
import { type Contender, Prng, compete, fileDigest, knob, randomChunk, report, rest, scratch, settle, timeIt, everyRun } from './harness';

const DISK_ID = 'guest0';
const WRITE = 64 * KiB;
const ALIGN = 4 * KiB;

interface Workload {
  readonly offsets: Float64Array;
  /** Data of write i is `pool[i % pool.length]`. */
  readonly pool: readonly Buffer[];
  readonly flushEvery: number;
}

function workload(sizeBytes: number, count: number, flushEvery: number): Workload {
  const prng = new Prng(7);
  const slots = (sizeBytes - WRITE) / ALIGN + 1;
  const offsets = new Float64Array(count);
  for (let i = 0; i < count; i++) offsets[i] = prng.int(slots) * ALIGN;
  const pool: Buffer[] = [];
  for (let c = 0; c < 4; c++) {
    const chunk = randomChunk(7, c);
    for (let at = 0; at < chunk.length; at += WRITE) pool.push(chunk.subarray(at, at + WRITE));
  }
  return { offsets, pool, flushEvery };
}

async function main(): Promise<void> {
  const size = knob('BENCH_DISK_MIB', 1024) * MiB;
  const count = Math.floor((knob('BENCH_WRITES_MIB', 2048) * MiB) / WRITE);
  const flushEvery = knob('BENCH_FLUSH_EVERY', 64);
  const runs = knob('BENCH_RUNS', 3);
  const restSeconds = knob('BENCH_REST_S', 4);
  const w = workload(size, count, flushEvery);
  const { dir, dispose } = await scratch('tracked');
  try {
    const plainFile = path.join(dir, 'plain.raw');
    const trackedDir = path.join(dir, 'tracked');
    const trackedFile = path.join(trackedDir, `${DISK_ID}.raw`);
    const digests = new Map<string, string>();
    let logBytes = 0;

    const plain = (name: string, writeOne: (fh: fs.FileHandle, data: Buffer, offset: number) => Promise<unknown>): Contender => {
      let fh: fs.FileHandle | undefined;
      return {
        name,
        before: async () => {
          fh = await fs.open(plainFile, 'w+');
          await fh.truncate(size);
        },
        timed: async () => {
          const h = fh!;
          const t = await timeIt(async () => {
            for (let i = 0; i < count; i++) {
              await writeOne(h, w.pool[i % w.pool.length]!, w.offsets[i]!);
              if ((i + 1) % flushEvery === 0 || i === count - 1) await h.datasync();
            }
          });
          return t.seconds;
        },
        verify: async () => {
          await fh!.close();
          digests.set(name, await fileDigest(plainFile));
        },
      };
    };

    let tracker: TrackedDisk | undefined;
    const contenders: Contender[] = [
      plain('untracked, fs.writeSync + fdatasync', async (fh, data, offset) => {
        if (writeSync(fh.fd, data, 0, data.length, offset) !== data.length) throw new Error('short write');
      }),
      plain('untracked, FileHandle.write + fdatasync', (fh, data, offset) => fh.write(data, 0, data.length, offset)),
      {
        name: 'tracked (TrackedDisk.write + flush)',
        before: async () => {
          await fs.mkdir(trackedDir, { recursive: true });
          tracker = await TrackedDisk.create({ diskPath: trackedFile, diskId: DISK_ID, sizeBytes: size });
        },
        timed: async () => {
          const t = tracker!;
          return (
            await timeIt(async () => {
              for (let i = 0; i < count; i++) {
                await t.write(w.offsets[i]!, w.pool[i % w.pool.length]!);
                if ((i + 1) % flushEvery === 0 || i === count - 1) await t.flush();
              }
            })
          ).seconds;
        },
        verify: async () => {
          await tracker!.close();
          digests.set('tracked', await fileDigest(trackedFile));
          // The log holds every write (the close sealed the one segment).
          const reopened = await TrackedDisk.open({ diskPath: trackedFile, diskId: DISK_ID });
          try {
            const logged = reopened.sealedSegments().reduce((n, s) => n + s.dataBytes, 0);
            logBytes = reopened.sealedSegments().reduce((n, s) => n + s.fileBytes, 0);
            if (logged !== count * WRITE) throw new Error(`the log holds ${logged} bytes of writes, not ${count * WRITE}`);
          } finally {
            await reopened.close();
          }
        },
      },
    ];

    const times = await compete(
      runs,
      async () => {
        await fs.rm(plainFile, { force: true });
        await fs.rm(trackedDir, { recursive: true, force: true });
        await settle();
        await rest(restSeconds);
      },
      contenders,
    );
    const distinct = new Set(digests.values());
    if (distinct.size !== 1) throw new Error(`the disks differ after the same writes: ${JSON.stringify([...digests])}`);

    const bytes = count * WRITE;
    const secondsOf = (prefix: string): number => times.find((t) => t.name.startsWith(prefix))!.seconds;
    const tracked = secondsOf('tracked');
    const bestPlain = Math.min(secondsOf('untracked, fs.writeSync'), secondsOf('untracked, FileHandle'));
    await report({
      benchmark: 'tracked-writes',
      measurements: times.map((t) => ({ name: t.name, seconds: t.seconds, bytes })),
      ratios: {
        'tracked / untracked (faster of the two) throughput': bestPlain / tracked,
        'tracked / untracked fs.writeSync throughput': secondsOf('untracked, fs.writeSync') / tracked,
        'tracked / untracked FileHandle.write throughput': secondsOf('untracked, FileHandle') / tracked,
      },
      targets: [{ what: 'tracked ≥ 0.5 × untracked throughput', met: bestPlain / tracked >= 0.5 }],
      notes: [
        `${count} writes of 64 KiB (${formatBytes(bytes)}) at random 4 KiB-aligned offsets (seed 7) into a fresh sparse ${formatBytes(size)} disk, a flush every ${flushEvery} writes (${formatBytes(flushEvery * WRITE)}), queue depth 1`,
        `the tracked run also wrote ${formatBytes(logBytes)} of log (records of 32 B header + data)`,
        `median of ${runs} interleaved rounds, each run after \`sync\` and ${restSeconds} s of rest; every run: ${everyRun(times)}`,
        'all disks ended with identical bytes (SHA-256); the tracker\'s log held every write',
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
