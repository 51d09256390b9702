/**
 * Initial replication of a 2 GiB lab disk between two real agent processes
 * over loopback TLS (issue 4), against `cp --sparse=always` of the same file
 * in the same run, and as references `cp` followed by `fdatasync`, the same
 * initial replication by the core alone (in process, local store), and the
 * transport alone (the non-zero chunks over mutual TLS to another process).
 *
 * Each Lifeboat run starts a fresh lab (`lifeboat lab up --protection`, a
 * vault, one primary agent and one recovery agent as detached processes),
 * shuts its one VM down, makes the VM's disk the `makeDisk` file of
 * bench/initial-replication.bench.ts (half random, a quarter holes, a quarter
 * text; a hard link to the benchmark's source, or a copy with
 * BENCH_LAB_DISK=copy), creates the policy, settles write-back, warms the
 * disk and rests.
 * The timed span runs from the `PUT` of the protected item (the enable call)
 * to the end of the job's `initialReplication` step as the vault records it
 * (`steps[].endedAt`): the step ends when the source agent's final report of
 * `replication.start` arrives, which the agent sends once every disk has its
 * first recovery point committed in the recovery host's store
 * (docs/agent.md §5). The lab is then stopped and the replica at its latest
 * point, read through the recovery host's store, must have the source's
 * SHA-256. Contenders interleaved, median of BENCH_RUNS rounds.
 * Target (issue 4): at least 0.4 × cp's throughput.
 *
 * Knobs (environment): BENCH_DISK_MIB, BENCH_RUNS, BENCH_REST_S, BENCH_LAB_DISK,
 * BENCH_ONLY=lifeboat (skip the baselines), BENCH_PROFILE_DIR (run the lab's
 * processes with `--cpu-prof` into that folder), BENCH_KEEP_LAB=1 (leave the
 * last lab folder for inspection; its path is printed).
 */
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { batchOptionsFor } from '../provider/agent/source-item';
import { VaultClient, type JobInfo } from '../provider/client';
import { cliEntry } from '../provider/cli/lab/processes';
import { DiskReplicator } from '../provider/replication/replicator';
import { TrackedDisk } from '../provider/replication/tracker';
import { HostReplicaTarget } from '../provider/targets/host';
import { MiB, formatBytes } from '../provider/units';
import { systemClock } from '../provider/clock';
import { createCertificateAuthority, issueCertificate } from '../provider/vault/ca';
import {
  type Contender,
  assertDigest,
  compete,
  everyRun,
  fileDigest,
  knob,
  makeDisk,
  report,
  rest,
  run,
  scratch,
  settle,
  warm,
} from './harness';

const VAULT = 'bench';
const SOURCE_HOST = 'hv01';
const RECOVERY_HOST = 'hvdr01';
const VM = 'bench0';
const DISK_ID = 'disk0';

const PROTECTION_FILE = `apiVersion: lifeboat/v1
vault: { name: ${VAULT} }
sites:
  - { name: primary, kind: hyperv-site, hosts: [${SOURCE_HOST}] }
  - { name: recovery, kind: hyperv-site, hosts: [${RECOVERY_HOST}] }
policies:
  - name: bench
    target: secondary-site
    replicationFrequencySeconds: 30
    associations: [{ source: primary, target: recovery }]
protectedVms:
  - { name: ${VM}, site: primary, vm: ${VM}, policy: bench }
`;

/** The policy the benchmark PUTs itself (a protection lab leaves policies to the stack). */
const POLICY = {
  target: 'secondary-site',
  replicationFrequencySeconds: 30,
  recoveryPointRetentionHours: 1,
  associations: [{ source: 'primary', target: 'recovery' }],
};

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux):
 * all threads, and by thread name (Node.js names its threads: `MainThread`,
 * `V8Worker` for the garbage collector's helpers, `libuv-worker` for the
 * file system's thread pool).
 */
interface Cpu {
  readonly all: number;
  readonly byThread: ReadonlyMap<string, number>;
}

async function cpuSeconds(pid: number): Promise<Cpu> {
  // Fields 14 and 15 of proc(5) (utime, stime), in clock ticks of 1/100 s on Linux.
  const parse = (stat: string): { name: string; seconds: number } => {
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), seconds: (Number(fields[11]) + Number(fields[12])) / 100 };
  };
  const all = parse(await fs.readFile(`/proc/${pid}/stat`, 'utf8')).seconds;
  const byThread = new Map<string, number>();
  for (const tid of await fs.readdir(`/proc/${pid}/task`)) {
    // A thread may end between the listing and the read.
    const stat = await fs.readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    const t = parse(stat);
    byThread.set(t.name, (byThread.get(t.name) ?? 0) + t.seconds);
  }
  return { all, byThread };
}

/** What a process used between two readings, by thread name (threads that ended in between are in `all` only). */
function cpuSpent(before: Cpu, after: Cpu): Cpu {
  const byThread = new Map<string, number>();
  for (const [name, s] of after.byThread) byThread.set(name, s - (before.byThread.get(name) ?? 0));
  return { all: after.all - before.all, byThread };
}

function describeCpu(c: Cpu): string {
  const parts = [...c.byThread].filter(([, s]) => s >= 0.01).sort((a, b) => b[1] - a[1]).map(([n, s]) => `${n} ${s.toFixed(2)}`);
  return `${c.all.toFixed(2)} (${parts.join(', ')})`;
}

/** `lifeboat ARGS` as a process; rejects on a non-zero exit with its output. */
async function lifeboat(args: readonly string[]): Promise<string> {
  const { execArgv, script } = cliEntry();
  return (await run(process.execPath, [...execArgv, script, ...args])).stdout;
}

interface LabState {
  readonly vaultUrl: string;
  readonly adminTokenFile: string;
  readonly processes: readonly { readonly name: string; readonly dataDir: string; readonly pid: number }[];
}

/** One lab, up and ready for the timed enable call. */
interface ReadyLab {
  readonly dir: string;
  readonly client: VaultClient;
  readonly sourceDataDir: string;
  readonly recoveryDataDir: string;
  /** The lab's processes by name, for their CPU time. */
  readonly pids: ReadonlyMap<string, number>;
}

/** Per-run details of the Lifeboat contender, for the notes. */
interface LabRun {
  readonly seconds: number;
  readonly polledSeconds: number;
  readonly steps: readonly { readonly name: string; readonly seconds: number }[];
  readonly uid: string;
  /** CPU seconds each lab process used during the timed span. */
  readonly cpu: ReadonlyMap<string, Cpu>;
}

async function labUp(root: string, sizeMiB: number, source: string, profileDir: string | undefined): Promise<ReadyLab> {
  const dir = labDirOf(root);
  const file = path.join(root, 'protection.yaml');
  await fs.writeFile(file, PROTECTION_FILE);
  if (profileDir !== undefined) process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${profileDir}`;
  try {
    await lifeboat(['lab', 'up', '--dir', dir, '--protection', file, '--disk-mib', String(sizeMiB), '--rate-kib', '1', '--timeout', '120']);
  } finally {
    if (profileDir !== undefined) delete process.env.NODE_OPTIONS;
  }
  const state = JSON.parse(await fs.readFile(path.join(dir, 'lab.json'), 'utf8')) as LabState;
  const dataDir = (name: string): string => state.processes.find((p) => p.name === name)!.dataDir;
  const client = new VaultClient({ url: state.vaultUrl, token: (await fs.readFile(state.adminTokenFile, 'utf8')).trim() });
  const lab: ReadyLab = {
    dir, client, sourceDataDir: dataDir(SOURCE_HOST), recoveryDataDir: dataDir(RECOVERY_HOST), pids: new Map(state.processes.map((p) => [p.name, p.pid])),
  };
  // The guest stops (so nothing but the prepared content is on the disk), then its disk gets that content.
  await lifeboat(['agent', 'vm', 'shutdown', VM, '--host', SOURCE_HOST, '--lab-dir', dir]);
  if (process.env.BENCH_LAB_DISK === 'copy') {
    await run('cp', ['--sparse=always', source, vmDisk(lab)]);
  } else {
    // The source itself, linked: the run then starts from the same memory state as the other contenders'
    // (docs/benchmarks.md §11). A copy made here would take 1.5 GiB of fresh page cache just before the
    // timed span. The VM is off and replication only reads its disk; every later check against the
    // source's digest would catch a write.
    await fs.rm(vmDisk(lab));
    await fs.link(source, vmDisk(lab));
  }
  await client.putObject(VAULT, 'replicationPolicies', 'bench', POLICY);
  return lab;
}

function labDirOf(root: string): string {
  return path.join(root, 'lab');
}

function vmDisk(lab: ReadyLab): string {
  return path.join(lab.sourceDataDir, 'lab', 'vms', VM, `${DISK_ID}.raw`);
}

/** The timed span: the enable call to the end of the job's initialReplication step. */
async function enableAndWait(lab: ReadyLab): Promise<LabRun> {
  const cpuBefore = new Map(await Promise.all([...lab.pids].map(async ([n, pid]) => [n, await cpuSeconds(pid)] as const)));
  const start = Date.now();
  const t0 = process.hrtime.bigint();
  const created = await lab.client.putProtectedItem(VAULT, VM, { site: 'primary', vm: VM, policy: 'bench' });
  const jobId = created.status.activeJob!.id;
  let job: JobInfo;
  for (;;) {
    job = await lab.client.getJob(VAULT, jobId);
    const step = job.steps.find((s) => s.name === 'initialReplication');
    if (step?.state === 'Succeeded') break;
    if (job.state === 'Failed' || job.state === 'Cancelled') throw new Error(`protection.enable ended ${job.state}: ${JSON.stringify(job.errors)}`);
    // The time measured is the vault's own record (endedAt): polling slowly only spares the shared cores.
    await new Promise((r) => setTimeout(r, 100));
  }
  const polledSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = new Map(await Promise.all([...lab.pids].map(async ([n, pid]) => [n, cpuSpent(cpuBefore.get(n)!, await cpuSeconds(pid))] as const)));
  const initial = job.steps.find((s) => s.name === 'initialReplication')!;
  const seconds = (Date.parse(initial.endedAt!) - start) / 1000;
  const steps = job.steps
    .filter((s) => s.startedAt !== undefined && s.endedAt !== undefined)
    .map((s) => ({ name: s.name, seconds: (Date.parse(s.endedAt!) - Date.parse(s.startedAt!)) / 1000 }));
  return { seconds, polledSeconds, steps, uid: created.uid, cpu };
}

/**
 * A reference, not a target: the same initial replication by the core alone,
 * in this process, into a local store (no agents, no TLS, no vault), with the
 * agent's batch size. What the agents add is the difference.
 */
async function coreAlone(src: string, storeRoot: string): Promise<string> {
  const tracker = await TrackedDisk.create({ diskPath: src, diskId: DISK_ID });
  const target = await HostReplicaTarget.open({ root: storeRoot });
  try {
    const replica = await target.openDisk({ diskId: DISK_ID, sizeBytes: tracker.sizeBytes });
    const rep = await DiskReplicator.open({
      source: tracker, replica, progressFile: path.join(path.dirname(src), 'progress.json'),
      ...batchOptionsFor(tracker.sizeBytes),
    });
    await rep.runInitialReplication();
    return replica.replicaPath;
  } finally {
    await target.close();
    await tracker.close();
  }
}

async function forgetCore(src: string, storeRoot: string): Promise<void> {
  await TrackedDisk.remove({ diskPath: src, diskId: DISK_ID });
  await fs.rm(path.join(path.dirname(src), 'progress.json'), { force: true });
  await fs.rm(storeRoot, { recursive: true, force: true });
}

/** The receiving end of the TLS pipe reference: counts bytes, answers one byte once it has them all, then exits. */
const PIPE_SERVER = `
const tls = require('node:tls');
const e = process.env;
let got = 0;
const server = tls.createServer({ key: e.PIPE_KEY, cert: e.PIPE_CERT, ca: e.PIPE_CA, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
  s.on('data', (d) => { got += d.length; if (got >= Number(e.PIPE_BYTES)) s.end('k', () => server.close()); });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

const ZEROS = Buffer.alloc(MiB);

interface Pem {
  readonly key: string;
  readonly cert: string;
}

function pipeCredentials(): { ca: string; server: Pem; client: Pem } {
  const ca = createCertificateAuthority({ commonName: 'bench CA', clock: systemClock, validityDays: 1 });
  const leaf = (cn: string): Pem => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const c = issueCertificate(ca, { publicKey, commonName: cn, organizationalUnit: 'bench/site', dnsNames: [cn], ipAddresses: ['127.0.0.1'], clock: systemClock, validityDays: 1 });
    return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: c.certificatePem };
  };
  return { ca: ca.certificatePem, server: leaf('receiver'), client: leaf('sender') };
}

/**
 * A reference, not a target: the transport alone. The disk's non-zero 1 MiB
 * chunks read and sent over mutual TLS 1.3 on loopback to another Node
 * process that discards them (no framing, no store, no fsync), as the
 * primary agent sends to the recovery agent. Returns the seconds from the
 * connection to the receiver's acknowledgement of the last byte.
 */
async function tlsPipe(src: string, bytes: number, cred: ReturnType<typeof pipeCredentials>): Promise<number> {
  const child = spawn(process.execPath, ['-e', PIPE_SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH, PIPE_KEY: cred.server.key, PIPE_CERT: cred.server.cert, PIPE_CA: cred.ca, PIPE_BYTES: String(bytes) },
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number.parseInt(d.toString(), 10)));
      child.once('exit', (code) => reject(new Error(`the TLS pipe receiver exited (${String(code)})`)));
    });
    const start = process.hrtime.bigint();
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'receiver', ca: cred.ca, key: cred.client.key, cert: cred.client.cert, minVersion: 'TLSv1.3' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const acked = new Promise<void>((resolve, reject) => socket.once('data', () => resolve()).once('error', reject));
    const fh = await fs.open(src, 'r');
    try {
      let sent = 0;
      for (let at = 0; sent < bytes; at += MiB) {
        const buf = Buffer.allocUnsafe(MiB);
        const { bytesRead } = await fh.read(buf, 0, MiB, at);
        if (bytesRead === 0) throw new Error(`${src} ended before ${bytes} non-zero bytes`);
        const chunk = buf.subarray(0, bytesRead);
        if (chunk.equals(ZEROS.subarray(0, chunk.length))) continue;
        sent += chunk.length;
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      }
    } finally {
      await fh.close();
    }
    await acked;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    socket.destroy();
    return seconds;
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/** Bytes of the file in 1 MiB chunks that are not all zeros (what the copy sends). */
async function nonZeroBytes(src: string): Promise<number> {
  const fh = await fs.open(src, 'r');
  try {
    const buf = Buffer.allocUnsafe(MiB);
    let n = 0;
    for (let at = 0; ; at += MiB) {
      const { bytesRead } = await fh.read(buf, 0, MiB, at);
      if (bytesRead === 0) return n;
      if (!buf.subarray(0, bytesRead).equals(ZEROS.subarray(0, bytesRead))) n += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** SHA-256 of the replica at its latest point, read through the recovery host's store (the lab must be down). */
async function replicaDigest(lab: ReadyLab, uid: string, sizeBytes: number): Promise<string> {
  const target = await HostReplicaTarget.open({ root: path.join(lab.recoveryDataDir, 'replicas') });
  try {
    const disk = await target.openDisk({ diskId: `${uid}/${DISK_ID}`, sizeBytes });
    try {
      const points = await disk.listPoints();
      const latest = points[points.length - 1];
      if (latest === undefined) throw new Error('the replica has no recovery point');
      const view = await disk.openView(latest.id);
      try {
        const h = createHash('sha256');
        for (let at = 0; at < sizeBytes; at += 8 * MiB) h.update(await view.read(at, Math.min(8 * MiB, sizeBytes - at)));
        return h.digest('hex');
      } finally {
        await view.close();
      }
    } finally {
      await disk.close();
    }
  } finally {
    await target.close();
  }
}

async function main(): Promise<void> {
  const sizeMiB = knob('BENCH_DISK_MIB', 2048);
  const size = sizeMiB * MiB;
  const runs = knob('BENCH_RUNS', 3);
  const restSeconds = knob('BENCH_REST_S', 4);
  const baselines = process.env.BENCH_ONLY !== 'lifeboat';
  const profileDir = process.env.BENCH_PROFILE_DIR === undefined || process.env.BENCH_PROFILE_DIR === '' ? undefined : path.resolve(process.env.BENCH_PROFILE_DIR);
  const { dir, dispose } = await scratch('agents');
  let keep: string | undefined;
  let lab: ReadyLab | undefined;
  // Set before each lab starts, so that a failure half-way still stops what it started.
  let labDir: string | undefined;
  try {
    const src = path.join(dir, 'source.raw');
    const counts = await makeDisk(src, size, { random: 0.5, zero: 0.25, text: 0.25 });
    const digest = await fileDigest(src);
    const dst = path.join(dir, 'copy.raw');
    const runsOfLab: LabRun[] = [];
    let round = 0;
    let labRoot = '';

    const contenders: Contender[] = [];
    const command = (name: string, cmd: string, args: readonly string[]): Contender => ({
      name,
      before: async () => {
        await settle();
        await warm(src);
        await rest(restSeconds);
      },
      timed: async () => (await run(cmd, args)).seconds,
      verify: () => assertDigest(name, dst, digest),
    });
    if (baselines) {
      contenders.push(
        command('cp --sparse=always', 'cp', ['--sparse=always', src, dst]),
        // Not a target: cp with its copy made durable, as the replica store makes its replica.
        command('cp --sparse=always, then fdatasync (reference)', 'sh', ['-c', 'cp --sparse=always "$1" "$2" && sync -d "$2"', 'sh', src, dst]),
      );
    }
    // The core's source is a copy in a folder of its own: tracking adds files next to the disk.
    const coreSrc = path.join(dir, 'core', `${DISK_ID}.raw`);
    const coreStore = path.join(dir, 'core-store');
    let coreReplica = '';
    const coreCpu: number[] = [];
    if (baselines) {
      await fs.mkdir(path.dirname(coreSrc));
      await run('cp', ['--sparse=always', src, coreSrc]);
      contenders.push({
        name: 'core alone, in process, local store (reference)',
        before: async () => {
          await forgetCore(coreSrc, coreStore);
          await settle();
          await warm(coreSrc);
          await rest(restSeconds);
        },
        timed: async () => {
          const start = process.hrtime.bigint();
          const cpu = process.cpuUsage();
          coreReplica = await coreAlone(coreSrc, coreStore);
          const used = process.cpuUsage(cpu);
          coreCpu.push((used.user + used.system) / 1e6);
          return Number(process.hrtime.bigint() - start) / 1e9;
        },
        verify: async () => {
          await assertDigest('core alone', coreReplica, digest);
          await forgetCore(coreSrc, coreStore);
        },
      });
    }
    if (baselines) {
      const cred = pipeCredentials();
      const payload = await nonZeroBytes(src);
      contenders.push({
        name: 'TLS pipe between two Node processes, non-zero chunks, nothing stored (reference)',
        before: async () => {
          await settle();
          await warm(src);
          await rest(restSeconds);
        },
        timed: () => tlsPipe(src, payload, cred),
      });
    }
    contenders.push({
      name: 'Lifeboat: enable → first recovery point, two agents over TLS',
      before: async () => {
        labRoot = path.join(dir, `lab-${round++}`);
        await fs.mkdir(labRoot);
        labDir = labDirOf(labRoot);
        lab = await labUp(labRoot, sizeMiB, src, profileDir);
        await settle();
        await warm(vmDisk(lab));
        await rest(restSeconds);
      },
      timed: async () => {
        const r = await enableAndWait(lab!);
        runsOfLab.push(r);
        return r.seconds;
      },
      verify: async () => {
        await lifeboat(['lab', 'down', '--dir', lab!.dir, '--timeout', '30']);
        labDir = undefined;
        const got = await replicaDigest(lab!, runsOfLab[runsOfLab.length - 1]!.uid, size);
        if (got !== digest) throw new Error(`the replica at its latest point is wrong (sha256 ${got}, expected ${digest})`);
        if (process.env.BENCH_KEEP_LAB === '1') keep = labRoot;
        else await fs.rm(labRoot, { recursive: true, force: true });
      },
    });

    const times = await compete(runs, () => fs.rm(dst, { force: true }), contenders);

    const secondsOf = (name: string): number => times.find((t) => t.name.startsWith(name))!.seconds;
    const lb = secondsOf('Lifeboat');
    const ratios: Record<string, number> = {};
    const targets: Array<{ what: string; met: boolean }> = [];
    if (baselines) {
      const cp = secondsOf('cp --sparse=always');
      ratios['Lifeboat / cp throughput'] = cp / lb;
      ratios['Lifeboat / (cp, then fdatasync) throughput'] = secondsOf('cp --sparse=always, then') / lb;
      ratios['Lifeboat / core alone throughput (what the agents, TLS and the vault keep)'] = secondsOf('core alone') / lb;
      ratios['TLS pipe alone / cp throughput (the transport\'s own ceiling)'] = cp / secondsOf('TLS pipe');
      targets.push({ what: 'Lifeboat ≥ 0.4 × cp throughput', met: cp / lb >= 0.4 });
    }
    const stepNotes = runsOfLab.map((r, i) => `run ${i + 1}: ${r.steps.map((s) => `${s.name} ${s.seconds.toFixed(2)}`).join(', ')} s (polled end ${r.polledSeconds.toFixed(2)} s)`);
    const cpuNotes = runsOfLab.map((r, i) => `run ${i + 1}: ${[...r.cpu].map(([n, c]) => `${n} ${describeCpu(c)}`).join(', ')}`);
    await report({
      benchmark: 'agent-replication',
      measurements: times.map((t) => ({ name: t.name, seconds: t.seconds, bytes: size })),
      ratios,
      targets,
      notes: [
        `disk ${formatBytes(size)}: ${counts.random} MiB random, ${counts.zero} MiB zeros (holes), ${counts.text} MiB text, in 1 MiB chunks, shuffled (seed 1); throughput = disk size / time`,
        `Lifeboat: a vault, a primary agent and a recovery agent started by \`lifeboat lab up --protection\` (a fresh lab per run), the VM shut down and its disk made ${process.env.BENCH_LAB_DISK === 'copy' ? 'a copy of the source' : 'a hard link to the source'} before the run; timed from the PUT of the protected item to the job step initialReplication's endedAt (the vault has the final report of replication.start: every disk has its first point)`,
        `job steps (seconds): ${stepNotes.join('; ')}`,
        `CPU seconds (user + system; all threads, then by thread name) during the timed span: ${cpuNotes.join('; ')}${coreCpu.length === 0 ? '' : `; core alone (this process): ${coreCpu.map((c) => c.toFixed(2)).join(', ')}`}`,
        `median of ${runs} interleaved rounds, each run after \`sync\`, a warming read of the source and ${restSeconds} s of rest; every run: ${everyRun(times)}`,
        'every copy of every run checked by SHA-256 against the source (Lifeboat: the replica at its latest point, read through the recovery host\'s store)',
        ...(profileDir === undefined ? [] : [`CPU profiles of the lab's processes in ${profileDir}`]),
      ],
    });
  } finally {
    // A run that failed half-way leaves its lab's processes running: stop them.
    if (labDir !== undefined) await lifeboat(['lab', 'down', '--dir', labDir, '--timeout', '30']).catch(() => undefined);
    if (keep !== undefined) console.log(`lab kept in ${keep}`);
    else await dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
