/**
 * Where the time of an initial copy goes between two processes
 * (docs/benchmarks.md §11): `DiskReplicator` → `RemoteReplicaTarget` →
 * `ReplicaServer` over a `HostReplicaTarget` in a child process, the agent's
 * cycle sizes, a per-cycle timeline on both sides and the server's CPU by
 * thread. Not a test: run it by hand, it prints what it measured.
 *
 *   TS_NODE_PROJECT=tsconfig.json node -r ts-node/register/transpile-only test/unit/targets/remote/measure-initial-copy.ts
 *
 * Environment: MIB (disk size, default 2048; the `makeDisk` mix of
 * bench/harness.ts), BATCH_MIB, COPY_MIB, FIRST_MIB (override the cycle
 * sizes of `batchOptionsFor`), LOG=1 (print the timeline), VERIFY=1 (check
 * the replica's SHA-256), CHILD_FLAGS (node flags of the server, e.g.
 * `--trace-gc` or `--cpu-prof --cpu-prof-dir=DIR`), DIR (work folder, kept
 * between runs for its source file; default a folder in the temp dir).
 */
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileDigest, makeDisk, rest, settle, warm } from '../../../../bench/harness';
import { batchOptionsFor } from '../../../../provider/agent/source-item';
import { DiskReplicator } from '../../../../provider/replication/replicator';
import { type CycleMeta, type CycleWriter, type ReplicaDisk, type ReplicaTarget } from '../../../../provider/replication/target';
import { TrackedDisk } from '../../../../provider/replication/tracker';
import { HostReplicaTarget } from '../../../../provider/targets/host';
import { RemoteReplicaTarget, ReplicaServer } from '../../../../provider/targets/remote';
import { MiB } from '../../../../provider/units';
import { testCerts, type TestCerts } from './test-certs';

/** Milliseconds on a clock both processes share. */
const now = (): number => performance.timeOrigin + performance.now();

interface Note {
  readonly at: number;
  readonly what: string;
}

/** Wrap a disk so that its cycles note when they begin, write and commit. */
function timed(disk: ReplicaDisk, note: (what: string) => void): ReplicaDisk {
  return new Proxy(disk, {
    get(target, key) {
      if (key === 'beginCycle') {
        return async (meta: CycleMeta): Promise<CycleWriter> => {
          note('beginCycle');
          const w = await target.beginCycle(meta);
          let bytes = 0;
          let busyMs = 0;
          return {
            write: async (offset, data) => {
              const t = now();
              await w.write(offset, data);
              busyMs += now() - t;
              bytes += data.length;
            },
            commit: async () => {
              note(`commit after ${(bytes / MiB).toFixed(0)} MiB (${busyMs.toFixed(0)} ms in write calls)`);
              const point = await w.commit();
              note('committed');
              return point;
            },
            abort: () => w.abort(),
          };
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** CPU seconds of this process's threads by name, from /proc (Linux). */
function threadCpu(): string {
  const byName = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
  }
  return [...byName].filter(([, s]) => s > 0).map(([n, s]) => `${n} ${s.toFixed(2)}`).join(', ');
}

/** The child: serve a store until told to stop, noting its cycles. */
async function serve(root: string): Promise<void> {
  const certs = await new Promise<TestCerts>((resolve) => process.once('message', (m) => resolve(m as TestCerts)));
  const store = await HostReplicaTarget.open({ root });
  const log: Note[] = [];
  const note = (what: string): void => void log.push({ at: now(), what: `server ${what}` });
  const target: ReplicaTarget = new Proxy(store, {
    get(t, key) {
      if (key === 'openDisk') return async (o: Parameters<ReplicaTarget['openDisk']>[0]) => timed(await t.openDisk(o), note);
      const v = Reflect.get(t, key, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  const server = new ReplicaServer({ target, key: certs.server.key, cert: certs.server.cert, ca: certs.ca });
  const { port } = await server.listen();
  const cpu0 = process.cpuUsage();
  process.send!(port);
  process.once('message', () => {
    const cpu = process.cpuUsage(cpu0);
    const report = { cpu: (cpu.user + cpu.system) / 1e6, threads: threadCpu(), log };
    void server.close().then(async () => {
      await store.close();
      process.send!(report, () => process.exit(0));
    });
  });
}

async function main(): Promise<void> {
  const mib = Number(process.env.MIB ?? 2048);
  const size = mib * MiB;
  const dir = process.env.DIR ?? path.join(tmpdir(), 'lifeboat-measure-initial-copy');
  await fs.mkdir(dir, { recursive: true });
  const source = path.join(dir, `source-${mib}.raw`);
  if (!(await fs.stat(source).catch(() => undefined))) await makeDisk(source, size, { random: 0.5, zero: 0.25, text: 0.25 });
  const run = path.join(dir, 'run');
  await fs.rm(run, { recursive: true, force: true });
  await fs.mkdir(run);
  const disk = path.join(run, 'disk0.raw');
  await fs.copyFile(source, disk);
  const certs = await testCerts();
  const child = fork(__filename, ['serve', path.join(run, 'store')], {
    execArgv: [...(process.env.CHILD_FLAGS ?? '').split(' ').filter((f) => f !== ''), ...process.execArgv],
  });
  child.send(certs);
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(Number(m))));
  await settle();
  await warm(disk);
  await rest(3);

  const tracker = await TrackedDisk.create({ diskPath: disk, diskId: 'disk0' });
  const remote = new RemoteReplicaTarget({ host: '127.0.0.1', port, ca: certs.ca, key: certs.client.key, cert: certs.client.cert, kind: 'host' });
  const log: Note[] = [];
  const replica = timed(await remote.openDisk({ diskId: 'disk0', sizeBytes: size }), (what) => void log.push({ at: now(), what: `client ${what}` }));
  const mibOr = (name: string): number | undefined => (process.env[name] === undefined ? undefined : Number(process.env[name]) * MiB);
  const sizes = batchOptionsFor(size);
  const cpu0 = process.cpuUsage();
  const start = now();
  const rep = await DiskReplicator.open({
    source: tracker,
    replica,
    progressFile: path.join(run, 'progress.json'),
    batchBytes: mibOr('BATCH_MIB') ?? sizes.batchBytes,
    copyBatchBytes: mibOr('COPY_MIB') ?? sizes.copyBatchBytes,
    firstCopyBatchBytes: mibOr('FIRST_MIB') ?? sizes.firstCopyBatchBytes,
  });
  await rep.runInitialReplication();
  const seconds = (now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await remote.close();
  await tracker.close();
  const server = await new Promise<{ cpu: number; threads: string; log: Note[] }>((resolve) => {
    child.once('message', (m) => resolve(m as { cpu: number; threads: string; log: Note[] }));
    child.send('stop');
  });
  if (process.env.LOG === '1') {
    for (const n of [...log, ...server.log].sort((a, b) => a.at - b.at)) console.log(`${(n.at - start).toFixed(1).padStart(8)} ms ${n.what}`);
  }
  console.log(`${mib} MiB in ${seconds.toFixed(2)} s (${(mib / seconds).toFixed(0)} MiB/s); client CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, server CPU ${server.cpu.toFixed(2)} s`);
  console.log(`server threads (whole process): ${server.threads}`);
  if (process.env.VERIFY === '1') {
    const check = await HostReplicaTarget.open({ root: path.join(run, 'store') });
    const copy = await check.openDisk({ diskId: 'disk0', sizeBytes: size });
    console.log(`replica equals the source: ${(await fileDigest(copy.replicaPath)) === (await fileDigest(source))}`);
    await check.close();
  }
  await fs.rm(run, { recursive: true, force: true });
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3]!).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
