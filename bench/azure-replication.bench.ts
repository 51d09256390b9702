/**
 * Initial replication of a 2 GiB disk (half random, a quarter zeros, a quarter
 * compressible text: the mix of initial-replication) to Azurite on loopback
 * through the Azure target, against the SDK's own `uploadFile` of the same
 * file as a block blob, in the same run, contenders interleaved, median of
 * BENCH_RUNS rounds. Lifeboat runs at several Put Page concurrencies
 * (writeConcurrency) to measure the bound's effect. Every copy is checked by
 * SHA-256: the block blob as downloaded, the replica as read through the view
 * of its first recovery point.
 *
 * Knobs (environment): BENCH_DISK_MIB (2048), BENCH_RUNS (3), BENCH_REST_S (2),
 * BENCH_CONCURRENCY (comma list, "1,4,8,16"), BENCH_BATCH_MIB (driver
 * batchBytes, 64), BENCH_TARGET_BATCH_MIB (target batchBytes, 16).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { DiskReplicator } from '../provider/replication/replicator';
import { TrackedDisk } from '../provider/replication/tracker';
import { AzureBlobReplicaTarget, type AzureReplicaStats } from '../provider/targets/azure-blob';
import { MiB, formatBytes } from '../provider/units';
import { Azurite } from '../test/support/azurite';
import { type Contender, compete, everyRun, fileDigest, knob, makeDisk, report, rest, scratch, timeIt, warm } from './harness';

const DISK_ID = 'bench0';

interface Replicated {
  readonly sent: number;
  readonly stats: AzureReplicaStats;
  readonly pointId: string;
}

async function replicate(src: string, connectionString: string, container: string, writeConcurrency: number, driverBatch: number, targetBatch: number): Promise<Replicated> {
  const tracker = await TrackedDisk.create({ diskPath: src, diskId: DISK_ID });
  const target = await AzureBlobReplicaTarget.open({ connectionString, container, writeConcurrency, batchBytes: targetBatch });
  try {
    const replica = await target.openDisk({ diskId: DISK_ID, sizeBytes: tracker.sizeBytes });
    const rep = await DiskReplicator.open({ source: tracker, replica, progressFile: progressFileOf(src), chunkBytes: MiB, batchBytes: driverBatch });
    const point = await rep.runInitialReplication();
    if (point === undefined) throw new Error('initial replication recorded no point');
    return { sent: rep.status.stats.sentBytes, stats: replica.stats(), pointId: point.id };
  } finally {
    await target.close();
    await tracker.close();
  }
}

/** SHA-256 of the replica's bytes at a point, read through its view. */
async function replicaDigest(connectionString: string, container: string, pointId: string): Promise<string> {
  const target = await AzureBlobReplicaTarget.open({ connectionString, container, createContainer: false });
  try {
    const disks = await target.listDisks();
    if (disks.length !== 1) throw new Error(`expected one disk, found ${disks.length}`);
    const size = (await fs.stat(srcPath)).size;
    const disk = await target.openDisk({ diskId: DISK_ID, sizeBytes: size });
    const view = await disk.openView(pointId);
    const h = createHash('sha256');
    for (let at = 0; at < size; at += 16 * MiB) h.update(await view.read(at, Math.min(16 * MiB, size - at)));
    await view.close();
    return h.digest('hex');
  } finally {
    await target.close();
  }
}

let srcPath = '';

function progressFileOf(src: string): string {
  return path.join(path.dirname(src), `${DISK_ID}.replication.json`);
}

async function main(): Promise<void> {
  const size = knob('BENCH_DISK_MIB', 2048) * MiB;
  const runs = knob('BENCH_RUNS', 3);
  const restSeconds = knob('BENCH_REST_S', 2);
  const driverBatch = knob('BENCH_BATCH_MIB', 64) * MiB;
  const targetBatch = knob('BENCH_TARGET_BATCH_MIB', 16) * MiB;
  const concurrencies = (process.env.BENCH_CONCURRENCY ?? '1,4,8,16').split(',').map(Number);
  const { dir, dispose } = await scratch('azure');
  const azurite = await Azurite.start();
  try {
    const src = path.join(dir, 'src', `${DISK_ID}.raw`);
    srcPath = src;
    await fs.mkdir(path.dirname(src));
    const counts = await makeDisk(src, size, { random: 0.5, zero: 0.25, text: 0.25 });
    const digest = await fileDigest(src);
    const cs = azurite.connectionString;
    const service = BlobServiceClient.fromConnectionString(cs);
    let round = 0;
    let container = '';
    const last = new Map<number, Replicated>();

    const contenders: Contender[] = [
      {
        name: 'SDK uploadFile, block blob (4 MiB blocks, concurrency 8)',
        timed: async () => {
          const c = service.getContainerClient(container);
          await c.create();
          return (await timeIt(() => c.getBlockBlobClient('baseline.raw').uploadFile(src, { blockSize: 4 * MiB, concurrency: 8 }))).seconds;
        },
        verify: async () => {
          const body = (await service.getContainerClient(container).getBlockBlobClient('baseline.raw').download()).readableStreamBody!;
          const h = createHash('sha256');
          for await (const chunk of body) h.update(chunk as Buffer);
          if (h.digest('hex') !== digest) throw new Error('the block blob differs from the source');
        },
      },
      ...concurrencies.map((k): Contender => ({
        name: `Lifeboat initial replication, writeConcurrency ${k}`,
        timed: async () => {
          const t = await timeIt(() => replicate(src, cs, container, k, driverBatch, targetBatch));
          last.set(k, t.result);
          return t.seconds;
        },
        verify: async () => {
          const got = await replicaDigest(cs, container, last.get(k)!.pointId);
          if (got !== digest) throw new Error(`the replica (writeConcurrency ${k}) differs from the source`);
        },
      })),
    ];
    const times = await compete(runs, async () => {
      // A new container per run; the previous one deleted (Azurite frees its extents lazily).
      if (container !== '') await service.getContainerClient(container).deleteIfExists();
      container = `bench-${++round}`;
      await TrackedDisk.remove({ diskPath: src, diskId: DISK_ID });
      await fs.rm(progressFileOf(src), { force: true });
      await warm(src);
      await rest(restSeconds);
    }, contenders);

    const secondsOf = (prefix: string): number => times.find((t) => t.name.startsWith(prefix))!.seconds;
    const sdk = secondsOf('SDK uploadFile');
    const ratios: Record<string, number> = {};
    for (const k of concurrencies) ratios[`Lifeboat (writeConcurrency ${k}) / SDK uploadFile throughput`] = sdk / secondsOf(`Lifeboat initial replication, writeConcurrency ${k}`);
    const s = last.get(concurrencies.includes(8) ? 8 : concurrencies[0]!)!;
    await report({
      benchmark: 'azure-replication',
      measurements: times.map((t) => ({ name: t.name, seconds: t.seconds, bytes: size, ...(t.name.startsWith('Lifeboat') ? { bytesSent: s.sent } : {}) })),
      ratios,
      targets: [],
      notes: [
        `disk ${formatBytes(size)}: ${counts.random} MiB random, ${counts.zero} MiB zeros, ${counts.text} MiB text, 1 MiB chunks shuffled (seed 1); throughput = disk size / time, for both contenders`,
        `Azurite 3.37.0 on 127.0.0.1 (HTTP, its own process, persisting to a temp folder); driver chunkBytes 1 MiB, batchBytes ${formatBytes(driverBatch)}; target batchBytes ${formatBytes(targetBatch)}`,
        `target requests (writeConcurrency ${concurrencies.includes(8) ? 8 : concurrencies[0]}): ${s.stats.pageWrites} Put Page (${formatBytes(s.stats.pageBytes)}), ${s.stats.clearRequests} Clear Pages, ${formatBytes(s.stats.rmwBytes)} read for read-modify-write, ${s.stats.indexRebuilds} index rebuilds`,
        `median of ${runs} interleaved rounds after a warming read and ${restSeconds} s of rest; every run: ${everyRun(times)}`,
        'every copy checked by SHA-256: the block blob downloaded, the replica read through its first point\'s view',
      ],
    });
  } finally {
    await azurite.dispose();
    await dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
