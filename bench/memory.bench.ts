/**
 * Peak memory while replicating a 16 GiB sparse disk (mostly holes, some
 * hundreds of MiB of data scattered in 1 MiB chunks) by initial replication
 * into a host replica store. The replication runs in a child process that
 * reports its own peak RSS (`process.resourceUsage().maxRSS` and VmHWM of
 * /proc/self/status) as JSON. Target (issue 3): under 256 MB.
 *
 * Baselines in the same run: a child that loads the same modules and does
 * nothing (the runtime's own footprint), and `cp --sparse=always` of the same
 * file under `/usr/bin/time` (its maximum RSS).
 *
 * Knobs: BENCH_DISK_MIB, BENCH_DATA_FRACTION (of the disk, half random and
 * half text), BENCH_CHUNK_KIB, BENCH_BATCH_MIB, BENCH_UNDO_MIB.
 */
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DiskReplicator } from '../provider/replication/replicator';
import { TrackedDisk } from '../provider/replication/tracker';
import { HostReplicaTarget } from '../provider/targets/host';
import { KiB, MiB, formatBytes } from '../provider/units';
import { type Measurement, allocatedBytes, assertDigest, fileDigest, knob, makeDisk, report, run, scratch, timeIt } from './harness';

const DISK_ID = 'big0';
const MB = 1_000_000;

interface ChildReport {
  readonly maxRssBytes: number;
  readonly vmHwmBytes: number;
  readonly seconds: number;
  readonly sentBytes: number;
  readonly skippedBytes: number;
  readonly replicaPath: string;
}

function vmHwm(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) * KiB;
}

/** In the child: replicate (or, for the baseline, do nothing) and print the report. */
async function child(mode: string, dir: string): Promise<void> {
  let result = { seconds: 0, sentBytes: 0, skippedBytes: 0, replicaPath: '' };
  if (mode === 'replicate') {
    const disk = path.join(dir, 'src', `${DISK_ID}.raw`);
    const t = await timeIt(async () => {
      const tracker = await TrackedDisk.create({ diskPath: disk, diskId: DISK_ID });
      const target = await HostReplicaTarget.open({ root: path.join(dir, 'store'), undoBatchBytes: knob('BENCH_UNDO_MIB', 8) * MiB });
      try {
        const replica = await target.openDisk({ diskId: DISK_ID, sizeBytes: tracker.sizeBytes });
        const rep = await DiskReplicator.open({
          source: tracker,
          replica,
          progressFile: path.join(dir, 'src', `${DISK_ID}.replication.json`),
          chunkBytes: knob('BENCH_CHUNK_KIB', 1024) * KiB,
          batchBytes: knob('BENCH_BATCH_MIB', 64) * MiB,
        });
        await rep.runInitialReplication();
        return { sentBytes: rep.status.stats.sentBytes, skippedBytes: rep.status.stats.skippedBytes, replicaPath: replica.replicaPath };
      } finally {
        await target.close();
        await tracker.close();
      }
    });
    result = { seconds: t.seconds, ...t.result };
  }
  const out: ChildReport = { maxRssBytes: process.resourceUsage().maxRSS * KiB, vmHwmBytes: vmHwm(), ...result };
  console.log(JSON.stringify(out));
}

async function inChild(mode: string, dir: string): Promise<ChildReport> {
  const r = await run(process.execPath, [__filename, 'child', mode, dir]);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as ChildReport;
}

async function main(): Promise<void> {
  const size = knob('BENCH_DISK_MIB', 16 * 1024) * MiB;
  const dataFraction = knob('BENCH_DATA_FRACTION', 0.02);
  const { dir, dispose } = await scratch('memory');
  try {
    const disk = path.join(dir, 'src', `${DISK_ID}.raw`);
    await fs.mkdir(path.dirname(disk));
    const counts = await makeDisk(disk, size, { random: dataFraction / 2, zero: 1 - dataFraction, text: dataFraction / 2 });
    const digest = await fileDigest(disk);
    const allocated = await allocatedBytes(disk);

    const idle = await inChild('idle', dir);
    const cpDst = path.join(dir, 'cp.raw');
    const cp = await run('/usr/bin/time', ['-f', 'maxrss=%M', 'cp', '--sparse=always', disk, cpDst]);
    const cpRss = Number(/maxrss=(\d+)/.exec(cp.stderr)?.[1]) * KiB;
    await assertDigest('cp', cpDst, digest);
    await fs.rm(cpDst);

    const lb = await inChild('replicate', dir);
    await assertDigest('Lifeboat initial replication', lb.replicaPath, digest);

    const peak = Math.max(lb.maxRssBytes, lb.vmHwmBytes);
    const measurements: Measurement[] = [
      { name: 'Node, same modules loaded, idle (baseline)', seconds: 0, peakRssBytes: Math.max(idle.maxRssBytes, idle.vmHwmBytes) },
      { name: 'cp --sparse=always (baseline)', seconds: cp.seconds, bytes: size, peakRssBytes: cpRss },
      { name: 'Lifeboat initial replication', seconds: lb.seconds, bytes: size, bytesSent: lb.sentBytes, peakRssBytes: peak },
    ];
    await report({
      benchmark: 'memory',
      measurements,
      ratios: {
        'Lifeboat peak RSS, MB (10^6 B)': peak / MB,
        'Lifeboat peak RSS above the idle runtime, MB': (peak - Math.max(idle.maxRssBytes, idle.vmHwmBytes)) / MB,
      },
      targets: [{ what: 'peak RSS under 256 MB', met: peak < 256 * MB }],
      notes: [
        `disk ${formatBytes(size)} sparse: ${counts.random} MiB random and ${counts.text} MiB text in 1 MiB chunks scattered (seed 1), the rest holes; ${formatBytes(allocated)} allocated`,
        `driver chunkBytes ${formatBytes(knob('BENCH_CHUNK_KIB', 1024) * KiB)}, batchBytes ${formatBytes(knob('BENCH_BATCH_MIB', 64) * MiB)}; store undoBatchBytes ${formatBytes(knob('BENCH_UNDO_MIB', 8) * MiB)}`,
        `Lifeboat: maxRSS ${formatBytes(lb.maxRssBytes)}, VmHWM ${formatBytes(lb.vmHwmBytes)}; sent ${formatBytes(lb.sentBytes)}, skipped ${formatBytes(lb.skippedBytes)} of zeros`,
        'peak RSS is measured by the child itself at the end (maxRSS of getrusage and VmHWM, the larger); page cache is not RSS',
        'the replica checked by SHA-256 against the source',
      ],
    });
  } finally {
    await dispose();
  }
}

if (process.argv[2] === 'child') {
  child(process.argv[3]!, process.argv[4]!).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
