/**
 * The lab as the cross-process tests use it: `lifeboat` run as a real
 * process (`node dist/provider/cli/main.js`, so run `tsc -p .` first), a lab
 * in a temporary folder, the typed client on its vault, and readers of what
 * the processes leave on disk (progress files, the source disk, the
 * recovery host's replica store).
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { VaultClient, type JobInfo } from '../../../provider/client';
import { HostReplicaTarget } from '../../../provider/targets/host';
import { type ReplicationProgress } from '../../../provider/replication/progress-file';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(ROOT, 'dist', 'provider', 'cli', 'main.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `lifeboat ARGS` as a process. */
export function lifeboat(args: readonly string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`tsc -p .\` before the integration tests`);
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      cwd: o.cwd ?? ROOT,
      env: o.env ?? { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: o.timeoutMs ?? 90_000,
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Poll `check` every `everyMs` until it returns a value (not `undefined`), or fail after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface StateFile {
  readonly vaultUrl: string;
  readonly vaultName: string;
  readonly adminTokenFile: string;
  readonly processes: readonly { readonly name: string; readonly pid: number; readonly dataDir: string; readonly logFile: string }[];
}

/** A lab in a temporary folder. */
export class TestLab {
  private constructor(readonly root: string, readonly dir: string, public state: StateFile, readonly client: VaultClient, readonly upOutput: CliResult) {}

  /**
   * `lifeboat lab up` in a fresh folder. `prepare` runs first in the
   * temporary root (to write a protection file there) and returns more
   * arguments for `up`.
   */
  static async up(args: readonly string[] = [], o: { prepare?: (root: string) => Promise<readonly string[]>; timeoutMs?: number } = {}): Promise<TestLab> {
    const root = await mkdtemp(path.join(tmpdir(), 'lb-lab-'));
    const dir = path.join(root, 'lab');
    let more: readonly string[] = [];
    try {
      more = o.prepare === undefined ? [] : await o.prepare(root);
    } catch (e) {
      await rm(root, { recursive: true, force: true });
      throw e;
    }
    const r = await lifeboat(['lab', 'up', '--dir', dir, ...args, ...more], o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
    if (r.code !== 0) {
      const logs = await TestLab.logsOf(dir);
      await lifeboat(['lab', 'down', '--dir', dir, '--timeout', '2']);
      await rm(root, { recursive: true, force: true });
      throw new Error(`lab up failed (${r.code}): ${r.stderr}\n${r.stdout}\n${logs}`);
    }
    const state = JSON.parse(await readFile(path.join(dir, 'lab.json'), 'utf8')) as StateFile;
    const client = new VaultClient({ url: state.vaultUrl, token: (await readFile(state.adminTokenFile, 'utf8')).trim() });
    return new TestLab(root, dir, state, client, r);
  }

  /** `lifeboat lab up` again: starts what is not running. */
  async upAgain(args: readonly string[] = []): Promise<CliResult> {
    const r = await lifeboat(['lab', 'up', '--dir', this.dir, ...args]);
    if (r.code !== 0) throw new Error(`lab up (again) failed (${r.code}): ${r.stderr}\n${await TestLab.logsOf(this.dir)}`);
    this.state = JSON.parse(await readFile(path.join(this.dir, 'lab.json'), 'utf8')) as StateFile;
    return r;
  }

  /** `lifeboat lab down` and, with `purge`, remove the folder. Safe to call twice. */
  async down(purge = true): Promise<CliResult> {
    const r = await lifeboat(['lab', 'down', '--dir', this.dir, '--timeout', '10']);
    if (purge) await rm(this.root, { recursive: true, force: true });
    return r;
  }

  /** Run `lifeboat ARGS` against this lab (its folder named by --lab-dir where the command takes it). */
  cli(args: readonly string[]): Promise<CliResult> {
    return lifeboat(args, { cwd: this.root, env: { PATH: process.env.PATH, HOME: process.env.HOME, LIFEBOAT_VAULT_URL: this.state.vaultUrl, LIFEBOAT_TOKEN_FILE: this.state.adminTokenFile } });
  }

  pid(name: string): number {
    return this.process(name).pid;
  }

  dataDir(name: string): string {
    return this.process(name).dataDir;
  }

  /** `kill -9` one of the lab's processes and wait until it is gone. */
  async kill9(name: string): Promise<void> {
    const pid = this.pid(name);
    process.kill(pid, 'SIGKILL');
    // Gone, not merely a zombie: the lab driver's lock takes any pid that still exists for alive.
    await waitFor(`${name} (pid ${pid}) to die and be reaped`, async () => (existsSync(`/proc/${pid}`) ? undefined : true), 10_000, 20);
  }

  /** Stop one of the lab's processes with SIGTERM (as `lab down` does) and wait until it is gone; `upAgain` restarts it. */
  async stop(name: string, timeoutMs = 20_000): Promise<void> {
    const pid = this.pid(name);
    process.kill(pid, 'SIGTERM');
    await waitFor(`${name} (pid ${pid}) to stop`, async () => (existsSync(`/proc/${pid}`) ? undefined : true), timeoutMs, 50);
  }

  /** A source disk's replication progress file (docs/replication.md §4). */
  async progress(host: string, itemUid: string, disk = 'disk0'): Promise<ReplicationProgress | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dataDir(host), 'items', itemUid, `${disk}.replication.json`), 'utf8')) as ReplicationProgress;
    } catch {
      return undefined;
    }
  }

  /** The bytes of a lab VM's disk file on its primary host. */
  sourceDisk(host: string, vm: string, disk = 'disk0'): Promise<Buffer> {
    return readFile(path.join(this.dataDir(host), 'lab', 'vms', vm, `${disk}.raw`));
  }

  /**
   * The replica of an item's disk at its latest point, read through the
   * recovery host's store (a view of the point). The recovery agent must be
   * stopped (the store is one process's).
   */
  async replicaAtLatestPoint(recoveryHost: string, itemUid: string, sizeBytes: number, disk = 'disk0'): Promise<{ bytes: Buffer; pointTime: number }> {
    const target = await HostReplicaTarget.open({ root: path.join(this.dataDir(recoveryHost), 'replicas') });
    try {
      const d = await target.openDisk({ diskId: `${itemUid}/${disk}`, sizeBytes });
      const points = await d.listPoints();
      const latest = points[points.length - 1];
      if (latest === undefined) throw new Error('the replica has no recovery point');
      const view = await d.openView(latest.id);
      try {
        return { bytes: await view.read(0, sizeBytes), pointTime: latest.time };
      } finally {
        await view.close();
        await d.close();
      }
    } finally {
      await target.close();
    }
  }

  /** The disk ids (`<item uid>/<disk>`) in a recovery host's replica store. The recovery agent must be stopped. */
  async replicaDiskIds(recoveryHost: string): Promise<readonly string[]> {
    const target = await HostReplicaTarget.open({ root: path.join(this.dataDir(recoveryHost), 'replicas') });
    try {
      return await target.listDisks();
    } finally {
      await target.close();
    }
  }

  /** Wait for a job to end; fails with the job's errors if it does not succeed. */
  async jobSucceeds(id: string, timeoutMs = 60_000): Promise<JobInfo> {
    const job = await this.client.waitForJob(this.state.vaultName, id, { pollMs: 200, timeoutMs });
    if (job.state !== 'Succeeded') throw new Error(`job ${id} ended ${job.state}: ${JSON.stringify(job.errors)}\n${await TestLab.logsOf(this.dir)}`);
    return job;
  }

  private process(name: string): StateFile['processes'][number] {
    const p = this.state.processes.find((x) => x.name === name);
    if (p === undefined) throw new Error(`the lab has no process ${name}`);
    return p;
  }

  /** The tail of every log, for failure messages. */
  static async logsOf(dir: string): Promise<string> {
    const recorded = await readFile(path.join(dir, 'lab.json'), 'utf8').then((t) => (JSON.parse(t) as StateFile).processes.map((p) => p.name), () => undefined);
    const names = recorded ?? ['vault', 'primary-1', 'primary-2', 'recovery-1'];
    const parts = await Promise.all(names.map(async (n) => {
      const text = await readFile(path.join(dir, 'logs', `${n}.log`), 'utf8').catch(() => '');
      return `--- ${n}.log\n${text.split('\n').slice(-25).join('\n')}`;
    }));
    return parts.join('\n');
  }
}
