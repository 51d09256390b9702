/**
 * The lab lock against real processes: a live holder refuses the lock, and
 * a holder that exited but is left unreaped by its parent (a zombie, as a
 * killed agent is until its parent waits for it) does not.
 */

import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from '../../../../provider/errors';
import { LabLock } from '../../../../provider/hypervisor/lab/lab-lock';

function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
  } catch {
    return undefined;
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A shell that starts a background child, prints its pid, then becomes
 * `sleep`, which never waits for children: the child exits and stays a
 * zombie until the sleeper dies. The child exits only once its parent is
 * `sleep`: a shell still running may reap a child that exited early (dash
 * does, under load), which left no zombie to find.
 */
async function parentOfZombie(): Promise<{ parent: ChildProcess; zombie: number }> {
  const script = 'p=$$; (until [ "$(cat /proc/$p/comm)" = sleep ]; do sleep 0.01; done) & echo $!; exec sleep 120';
  const parent = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const zombie = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number.parseInt(out, 10));
    });
    parent.on('error', reject);
    parent.on('exit', () => reject(new Error('the sleeper exited early')));
  });
  return { parent, zombie };
}

describe('hypervisor/lab/lab-lock (real processes)', function () {
  this.timeout(60_000);
  let dir: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-lablock-'));
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('a lock held by a live process is refused with hypervisor.labInUse, naming the pid', async function () {
    const holder = spawn('sleep', ['120'], { stdio: 'ignore' });
    children.push(holder);
    const file = path.join(dir, 'lab.lock');
    await writeFile(file, `${holder.pid}\n`);
    await assert.rejects(LabLock.acquire(file), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'hypervisor.labInUse' && e.message.includes(String(holder.pid)));
    assert.equal((await readFile(file, 'utf8')).trim(), String(holder.pid), 'the holder keeps its lock');
  });

  it('a lock whose process exited but is not reaped (a zombie) is taken over', async function () {
    if (process.platform !== 'linux') this.skip();
    const { parent, zombie } = await parentOfZombie();
    children.push(parent);
    await until(`pid ${zombie} to be a zombie`, () => stateOf(zombie) === 'Z');
    // The pid still answers kill(0): what made the lock think it alive.
    assert.doesNotThrow(() => process.kill(zombie, 0));
    const file = path.join(dir, 'lab.lock');
    await writeFile(file, `${zombie}\n`);
    const lock = await LabLock.acquire(file);
    try {
      assert.equal((await readFile(file, 'utf8')).trim(), String(process.pid));
      assert.equal(stateOf(zombie), 'Z', 'the zombie was still there when the lock was taken over');
    } finally {
      await lock.release();
    }
  });
});
