/**
 * Failover (issue 6), three measurements:
 *
 * 1. Test-failover VM creation for a 1 GiB and a 16 GiB disk: a copy-on-write
 *    overlay over the point-in-time view of a replica, created and started
 *    by the lab driver through the same view resolution `failover.start`
 *    uses, median of interleaved rounds. Target: 16 GiB / 1 GiB ≤ 1.2.
 * 2. Planned failover data path with 30 s of pending writes: a running lab
 *    VM, tracked and replicated in-process to a replica store, whose log
 *    holds what its guest writes in 30 s at the lab's default rate (1 MiB/s)
 *    unshipped; timed from the start of the failover to the failover VM
 *    running: fence (guest flush), ship the log, create the VM over the
 *    latest point's view, start. No vault or job polling; and the same
 *    across processes (`lifeboat failover --type planned`, copy frequency
 *    30 s, requested 28 s after a point), from the command to its exit
 *    with the VM running.
 * 3. Reprotect after 1 % of the disk changed, across real processes (`lifeboat
 *    lab up`; `scripts/bench.sh` builds dist/ first): the guest writes after a cut until 1 % of
 *    the disk's 64 KiB blocks differ, an unplanned failover to the cut and
 *    its commit, then `lifeboat reprotect`; bytes compared and sent against
 *    the disk size.
 *
 * Knobs: BENCH_ROUNDS (1: default 41), BENCH_REPROTECT_MIB (3: default 256),
 * BENCH_FAILOVER_PARTS (default create,planned,e2e,reprotect).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { REPROTECT_BLOCK, mergeRegions, regionBytes } from '../provider/agent/reprotect-commands';
import { LabHypervisor, workloadOpsFrom } from '../provider/hypervisor/lab';
import { type Region } from '../provider/replication/progress-file';
import { DiskReplicator } from '../provider/replication/replicator';
import { type ReplicaDisk } from '../provider/replication/target';
import { HostReplicaTarget } from '../provider/targets/host';
import { GiB, MiB, formatBytes } from '../provider/units';
import { execFile } from 'node:child_process';
import { VaultClient, type ProtectedItemStatus } from '../provider/client';
import { diskWorkloadOptions, readGuestJournal, readVmConfig, type WorkloadOptions } from '../provider/hypervisor/lab';
import { type Measurement, knob, median, report, scratch, timeIt } from './harness';

/** A replica store with one disk of `size` holding one point (a few written blocks). */
async function storeWithPoint(root: string, diskId: string, size: number): Promise<{ target: HostReplicaTarget; disk: ReplicaDisk; pointId: string }> {
  const target = await HostReplicaTarget.open({ root });
  const disk = await target.openDisk({ diskId, sizeBytes: size });
  const w = await disk.beginCycle({ generation: '0000000000000001', seq: 1, time: Date.now(), point: 'crashConsistent' });
  for (let i = 0; i < 16; i++) await w.write(Math.floor((size / 16) * i), Buffer.alloc(64 * 1024, i + 1));
  const p = await w.commit();
  return { target, disk, pointId: p!.id };
}

async function testFailoverCreation(dir: string, rounds: number): Promise<{ measurements: Measurement[]; ratio: number; medianRatio: number; minRatio: number; runs: string }> {
  const sizes = [GiB, 16 * GiB];
  const stores = await Promise.all(sizes.map((s, i) => storeWithPoint(path.join(dir, `store-${i}`), `item/disk${i}`, s)));
  const hv = await LabHypervisor.open({
    labRoot: path.join(dir, 'lab'),
    resolveLocation: async (location) => {
      const i = Number(/^view:item\/disk(\d)\//.exec(location)![1]);
      return stores[i]!.disk.openView(stores[i]!.pointId);
    },
  });
  const times: number[][] = sizes.map(() => []);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [i] of sizes.entries()) {
        const name = `t${i}-${r}`;
        const { seconds } = await timeIt(async () => {
          await hv.createFromDisks({ name, disks: [{ id: 'disk0', location: `view:item/disk${i}/${stores[i]!.pointId}`, overlay: true }], nics: [{ name: 'nic0', network: 'test' }], testFailover: true });
          await hv.start(name);
        });
        times[i]!.push(seconds);
        await hv.shutdown(name, { turnOff: true });
        await hv.delete(name);
      }
    }
  } finally {
    await hv.close();
    for (const s of stores) await s.target.close();
  }
  const med = times.map(median);
  // Rounds are interleaved: the two sizes of one round ran under the same load, so their ratio is the robust one.
  const paired = median(times[0]!.map((t, r) => times[1]![r]! / t));
  return {
    measurements: sizes.map((s, i) => ({ name: `test-failover VM created and started, ${formatBytes(s)} disk (median of ${rounds})`, seconds: med[i]! })),
    ratio: paired,
    medianRatio: med[1]! / med[0]!,
    minRatio: Math.min(...times[1]!) / Math.min(...times[0]!),
    runs: sizes.map((sz, i) => `${formatBytes(sz)}: ${times[i]!.map((t) => (t * 1000).toFixed(1)).join(' ')}`).join('; '),
  };
}

async function plannedFailover(dir: string): Promise<{ measurement: Measurement; pending: number; notes: string[] }> {
  const size = 256 * MiB;
  const primary = await LabHypervisor.open({ labRoot: path.join(dir, 'primary') });
  const target = await HostReplicaTarget.open({ root: path.join(dir, 'replicas') });
  const recovery = await LabHypervisor.open({
    labRoot: path.join(dir, 'recovery'),
    resolveLocation: async (location) => {
      const pointId = location.split('/').pop()!;
      return (await target.openDisk({ diskId: 'web/disk0', sizeBytes: size })).openView(pointId);
    },
  });
  try {
    await primary.create({ name: 'web', disks: [{ id: 'disk0', sizeBytes: size }], workload: { seed: 7, pattern: 'random', bytesPerSecond: 16 * MiB } });
    const tracker = await primary.enableTracking('web', 'disk0');
    const replica = await target.openDisk({ diskId: 'web/disk0', sizeBytes: size });
    const rep = await DiskReplicator.open({ source: tracker, replica, progressFile: path.join(dir, 'progress.json') });
    await rep.runInitialReplication();
    // 30 s of the lab's default guest rate (1 MiB/s), written faster so the benchmark does not wait 30 s.
    const pendingGoal = 30 * MiB;
    await primary.start('web');
    while (tracker.pendingLogBytes() < pendingGoal) await new Promise((r) => setTimeout(r, 50));
    const pending = tracker.pendingLogBytes();
    let pointId = '';
    const { seconds } = await timeIt(async () => {
      await primary.fence('web', 'planned failover (benchmark)');
      await rep.runCycle();
      const points = await replica.listPoints();
      pointId = points[points.length - 1]!.id;
      await recovery.createFromDisks({ name: 'web', disks: [{ id: 'disk0', location: `view:web/disk0/${pointId}`, overlay: true }], nics: [{ name: 'nic0', network: 'dr' }] });
      await recovery.start('web');
    });
    const left = tracker.pendingLogBytes();
    return {
      measurement: { name: `planned failover, ${formatBytes(pending)} of log pending: fence, ship, VM running`, seconds, bytes: pending },
      pending,
      notes: [`planned failover: ${formatBytes(size)} disk, random 4–64 KiB writes; log left after the failover: ${formatBytes(left)} (an empty segment's header)`],
    };
  } finally {
    await recovery.close();
    await primary.close();
    await target.close();
  }
}

/** `lifeboat lab up` in a folder, as an operator runs it (dist/ must be built: scripts/bench.sh does). */
class BenchLab {
  private constructor(readonly dir: string, readonly client: VaultClient, private readonly env: NodeJS.ProcessEnv, private readonly hosts: Record<string, string>) {}

  static cli(args: readonly string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME }): Promise<{ code: number; stdout: string; stderr: string }> {
    const main = path.join(process.env.LIFEBOAT_ROOT ?? process.cwd(), 'dist', 'provider', 'cli', 'main.js');
    return new Promise((resolve) => {
      execFile(process.execPath, [main, ...args], { env, timeout: 600_000, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1, stdout, stderr });
      });
    });
  }

  static async up(dir: string, args: readonly string[]): Promise<BenchLab> {
    const r = await BenchLab.cli(['lab', 'up', '--dir', dir, ...args]);
    if (r.code !== 0) throw new Error(`lab up: ${r.stderr}`);
    const state = JSON.parse(await fs.readFile(path.join(dir, 'lab.json'), 'utf8')) as { vaultUrl: string; adminTokenFile: string; processes: { name: string; dataDir: string }[] };
    const client = new VaultClient({ url: state.vaultUrl, token: (await fs.readFile(state.adminTokenFile, 'utf8')).trim() });
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, LIFEBOAT_VAULT_URL: state.vaultUrl, LIFEBOAT_TOKEN_FILE: state.adminTokenFile };
    return new BenchLab(dir, client, env, Object.fromEntries(state.processes.map((p) => [p.name, p.dataDir])));
  }

  run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return BenchLab.cli(args, this.env);
  }

  dataDir(host: string): string {
    return this.hosts[host]!;
  }

  async status(item: string): Promise<ProtectedItemStatus> {
    return (await this.client.getProtectedItem('lab', item)).status;
  }

  async down(): Promise<void> {
    await BenchLab.cli(['lab', 'down', '--dir', this.dir, '--timeout', '10']);
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stream(lab: BenchLab): Promise<{ workload: WorkloadOptions; nextOp: number }> {
  const dir = path.join(lab.dataDir('primary-1'), 'lab', 'vms', 'web01');
  const config = await readVmConfig(path.join(dir, 'vm.json'));
  const journal = await readGuestJournal(path.join(dir, 'disk0.guest'));
  return { workload: diskWorkloadOptions(config.workload!, 'disk0', config.disks[0]!.sizeBytes), nextOp: journal.nextOp };
}

async function reprotectAfterOnePercent(dir: string, diskMiB: number): Promise<{ measurements: Measurement[]; ratios: Record<string, number>; notes: string[] }> {
  const size = diskMiB * MiB;
  const lab = await BenchLab.up(path.join(dir, 'lab'), ['--disk-mib', String(diskMiB), '--rate-kib', '2048', '--frequency-ms', '500']);
  try {
    await lab.client.putObject('lab', 'networkMappings', 'lab-net', { source: { site: 'primary', network: 'lab-net' }, target: { site: 'recovery', network: 'dr-net' }, testNetwork: 'dr-test' });
    const created = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-policy' });
    const enabled = await lab.client.waitForJob('lab', created.status.activeJob!.id, { pollMs: 200, timeoutMs: 600_000 });
    if (enabled.state !== 'Succeeded') throw new Error(`protection: ${JSON.stringify(enabled.errors)}`);
    const vm = (what: string): Promise<unknown> => lab.run(['agent', 'vm', what, 'web01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    await vm('shutdown');
    const at = Date.now();
    await until('the replica in step', async () => {
      const s = await lab.status('web');
      return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > at ? true : undefined;
    }, 300_000);
    const p1 = (await lab.client.recoveryPoints('lab', 'web')).at(-1)!;
    const first = await stream(lab);
    await vm('start');
    const changed = async (): Promise<number> => {
      const now = await stream(lab);
      const writes: Region[] = [];
      for (const { index, op } of workloadOpsFrom(first.workload, first.nextOp)) {
        if (index > now.nextOp) break; // the journal's nextOp may be partly done
        if (op.kind === 'write') writes.push({ offset: op.offset, length: op.length });
      }
      return regionBytes(mergeRegions(writes, REPROTECT_BLOCK, size));
    };
    await until('1 % of the disk changed', async () => ((await changed()) >= size / 100 ? true : undefined), 600_000);
    await vm('shutdown');
    const written = await changed();
    for (const args of [['failover', 'web', '--type', 'unplanned', '--point', p1.time], ['commit', 'web']]) {
      const r = await lab.run(args);
      if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    }
    const { seconds, result } = await timeIt(() => lab.run(['reprotect', 'web']));
    if (result.code !== 0) throw new Error(`reprotect: ${result.stdout}\n${result.stderr}`);
    const s = await lab.status('web');
    const st = await lab.run(['agent', 'status', '--host', 'recovery-1', '--lab-dir', lab.dir, '--output', 'json']);
    const sent = (JSON.parse(st.stdout) as { items: { item: string; report: { statistics?: { bytesTransferred?: number } } }[] }).items.find((i) => i.item === 'web')?.report.statistics?.bytesTransferred ?? Number.NaN;
    const compared = s.reprotect?.regionBytes ?? Number.NaN;
    return {
      measurements: [{ name: `reprotect after ${(100 * written / size).toFixed(2)} % of a ${formatBytes(size)} disk changed (lifeboat reprotect, end to end)`, seconds, bytes: compared, bytesSent: sent }],
      ratios: { 'reprotect bytes sent / disk size': sent / size, 'reprotect bytes compared / disk size': compared / size, 'reprotect bytes compared / blocks the guest changed': compared / written },
      notes: [`reprotect: the guest changed ${formatBytes(written)} in 64 KiB blocks after the cut; delta record used: ${String(s.reprotect?.delta)}; compared ${formatBytes(compared)}, sent ${formatBytes(sent)}`],
    };
  } finally {
    await lab.down();
  }
}

/**
 * `lifeboat failover --type planned` end to end across processes, the copy
 * frequency at 30 s and the guest at 1 MiB/s: the failover is requested 28 s
 * after a point, with about 28 s of writes in the log.
 */
async function plannedEndToEnd(dir: string): Promise<{ measurement: Measurement; notes: string[] }> {
  const lab = await BenchLab.up(path.join(dir, 'lab'), ['--disk-mib', '256', '--rate-kib', '1024', '--frequency-ms', '30000']);
  try {
    await lab.client.putObject('lab', 'networkMappings', 'lab-net', { source: { site: 'primary', network: 'lab-net' }, target: { site: 'recovery', network: 'dr-net' } });
    const created = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-policy' });
    const enabled = await lab.client.waitForJob('lab', created.status.activeJob!.id, { pollMs: 200, timeoutMs: 600_000 });
    if (enabled.state !== 'Succeeded') throw new Error(`protection: ${JSON.stringify(enabled.errors)}`);
    const first = (await lab.status('web')).lastReplicatedTime;
    const point = await until('a delta point', async () => {
      const t = (await lab.status('web')).lastReplicatedTime;
      return t !== undefined && t !== first ? Date.parse(t) : undefined;
    }, 120_000);
    await new Promise((r) => setTimeout(r, Math.max(0, point + 28_000 - Date.now())));
    const pending = (await lab.status('web')).statistics?.pendingLogBytes ?? Number.NaN;
    const { seconds, result } = await timeIt(() => lab.run(['failover', 'web', '--type', 'planned', '--output', 'json']));
    if (result.code !== 0) throw new Error(`planned failover: ${result.stdout}\n${result.stderr}`);
    return {
      measurement: { name: `lifeboat failover --type planned, end to end (processes), ~28 s of writes pending`, seconds },
      notes: [`planned failover end to end: copy frequency 30 s, guest 1 MiB/s random writes on a 256 MiB disk; pending log last reported before the request: ${formatBytes(pending)}; includes the CLI start, the vault's job steps and two agent command round trips`],
    };
  } finally {
    await lab.down();
  }
}

async function main(): Promise<void> {
  const rounds = knob('BENCH_ROUNDS', 41);
  const parts = new Set((process.env.BENCH_FAILOVER_PARTS ?? 'create,planned,e2e,reprotect').split(','));
  const { dir, dispose } = await scratch('lifeboat-bench-failover-');
  const measurements: Measurement[] = [];
  const ratios: Record<string, number> = {};
  const targets: { what: string; met: boolean }[] = [];
  const notes: string[] = [];
  try {
    if (parts.has('create')) {
      const creation = await testFailoverCreation(path.join(dir, 'create'), rounds);
      await fs.rm(path.join(dir, 'create'), { recursive: true, force: true });
      measurements.push(...creation.measurements);
      ratios['test-failover creation 16 GiB / 1 GiB (median of the per-round ratios)'] = creation.ratio;
      ratios['test-failover creation 16 GiB / 1 GiB (ratio of the medians)'] = creation.medianRatio;
      ratios['test-failover creation 16 GiB / 1 GiB (ratio of the fastest runs)'] = creation.minRatio;
      targets.push({ what: 'test-failover creation time 16 GiB / 1 GiB ≤ 1.2 (median of the per-round ratios)', met: creation.ratio <= 1.2 });
      notes.push(`test-failover creation: ${rounds} interleaved rounds of create (overlay over a point-in-time view) and start, sparse disks; every run (ms): ${creation.runs}`);
    }
    if (parts.has('planned')) {
      const planned = await plannedFailover(path.join(dir, 'planned'));
      await fs.rm(path.join(dir, 'planned'), { recursive: true, force: true });
      measurements.push(planned.measurement);
      notes.push(...planned.notes);
    }
    if (parts.has('e2e')) {
      const endToEnd = await plannedEndToEnd(path.join(dir, 'e2e'));
      await fs.rm(path.join(dir, 'e2e'), { recursive: true, force: true });
      measurements.push(endToEnd.measurement);
      notes.push(...endToEnd.notes);
    }
    if (parts.has('reprotect')) {
      const reprotect = await reprotectAfterOnePercent(dir, knob('BENCH_REPROTECT_MIB', 256));
      measurements.push(...reprotect.measurements);
      Object.assign(ratios, reprotect.ratios);
      notes.push(...reprotect.notes);
    }
    await report({ benchmark: 'failover', measurements, ratios, targets, notes });
  } finally {
    await dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
