/**
 * One driver per lab root (docs/lab.md §1): two processes running the same
 * VMs would run two guests on one disk. `lab.lock` holds the pid of the
 * process that drives the lab; a lock whose process is gone (a killed
 * agent, also one that has exited and that its parent has not reaped yet) is
 * taken over.
 */

import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { NonRecoverableError } from '../../errors';

/** A held lab lock. */
export class LabLock {
  private released = false;

  private constructor(readonly file: string) {}

  /**
   * Take the lock, taking over one left by a process that no longer runs.
   * Throws `NonRecoverableError` `hypervisor.labInUse` while another live
   * process (or another driver in this process) holds it.
   */
  static async acquire(file: string): Promise<LabLock> {
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await fs.open(file, 'wx');
        try {
          await fh.writeFile(`${process.pid}\n`);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        return new LabLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = await readPid(file);
      if ((holder !== undefined && isAlive(holder)) || attempt > 0) {
        throw new NonRecoverableError('hypervisor.labInUse', `the lab ${file} is driven by process ${holder ?? '?'}`, {
          details: { pid: holder },
          hint: 'Stop the other host agent on this lab root first (or wait until it exits).',
        });
      }
      await fs.unlink(file).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
  }

  /** Release the lock. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await fs.unlink(this.file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The process runs: it exists and is neither a zombie nor dead (Linux: from /proc; elsewhere existence alone). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A killed agent whose parent (a shell, a test runner) has not reaped it yet still answers kill(0).
  const state = procState(pid);
  return state !== 'Z' && state !== 'X' && state !== 'x';
}

/** The state letter of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses), if readable. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
  } catch {
    return undefined;
  }
}
