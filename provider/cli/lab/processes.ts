/**
 * The lab's child processes: started detached (they outlive `lab up`),
 * output to a log file, and stopped with SIGTERM, then SIGKILL after a
 * timeout. A pid is taken for the lab's process only if the process's
 * command line still names its data folder (pids are reused).
 */

import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** How to run the `lifeboat` entry point of this installation with node. */
export function cliEntry(): { readonly execArgv: readonly string[]; readonly script: string } {
  const js = path.join(__dirname, '..', 'main.js');
  if (existsSync(js)) return { execArgv: [], script: js };
  // Running from the TypeScript sources (tests under ts-node).
  return { execArgv: ['-r', 'ts-node/register/transpile-only'], script: path.join(__dirname, '..', 'main.ts') };
}

/** Start `lifeboat ARGS` detached, appending its output to `logFile`. Returns its pid. */
export function spawnDetached(args: readonly string[], logFile: string, cwd: string): number {
  const { execArgv, script } = cliEntry();
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [...execArgv, script, ...args], {
      cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env },
    });
    if (child.pid === undefined) throw new Error(`could not start ${args.join(' ')}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** The process runs and is the one started for `dataDir` (Linux: checked in /proc; elsewhere the pid alone). */
export function isAlive(pid: number, dataDir: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes(dataDir)) return !isZombie(pid);
    return false;
  } catch {
    return process.platform !== 'linux';
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return / Z /.test(stat.slice(stat.lastIndexOf(')') + 1, stat.lastIndexOf(')') + 4));
  } catch {
    return false;
  }
}

/**
 * Stop a process: SIGTERM, then SIGKILL if it still runs after `timeoutMs`.
 * Resolves with how it ended; `'gone'` if it was not running. Idempotent.
 */
export async function stopProcess(pid: number, dataDir: string, timeoutMs: number): Promise<'gone' | 'terminated' | 'killed'> {
  if (!isAlive(pid, dataDir)) return 'gone';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid, dataDir)) return 'terminated';
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'terminated';
  }
  for (let i = 0; i < 50 && isAlive(pid, dataDir); i++) await new Promise((r) => setTimeout(r, 100));
  return 'killed';
}
