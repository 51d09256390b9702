/**
 * The agent's `plan.runScript` command (docs/recovery-plans.md §5,
 * docs/agent.md §5): run an executable of the agent's scripts directory for
 * a recovery plan, with a timeout, keeping the tail of its output.
 *
 * Security: a vault must not run arbitrary programs on its hosts. The
 * command names a file; the agent runs it only if it resolves (after
 * symbolic links) to a regular, executable file inside its scripts
 * directory, which only the host's operator fills. It is run directly (no
 * shell) with a minimal environment.
 *
 * Not idempotent: a redelivered command (an agent restart mid-script) runs
 * the script again; plan scripts should be idempotent. What a failure
 * leaves: whatever the script did; the process group is killed at the
 * timeout or when the vault withdraws the command.
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidInputError } from '../errors';
import { type CommandHandler } from './command-runner';

/** The command's type. */
export const RUN_SCRIPT = 'plan.runScript';

/** Output kept per run: the last 64 KiB of stdout and stderr together. */
export const OUTPUT_TAIL_BYTES = 64 * 1024;

/** Time between SIGTERM and SIGKILL of a timed-out script's process group. */
const KILL_GRACE_MS = 5000;

export interface ScriptOptions {
  /** The folder scripts are taken from (`--scripts-dir`, default `<data-dir>/scripts`). */
  readonly scriptsDir: string;
  /** Bytes of output kept. @default OUTPUT_TAIL_BYTES */
  readonly outputTailBytes?: number;
  /** Between SIGTERM and SIGKILL at the timeout. @default 5000 ms */
  readonly killGraceMs?: number;
}

/** What a run answers. */
export interface ScriptResult {
  readonly exitCode: number | null;
  readonly signal?: string;
  readonly timedOut: boolean;
  readonly output: string;
  readonly truncated: boolean;
  readonly durationMs: number;
}

function notAllowed(script: string, why: string, scriptsDir: string): InvalidInputError {
  return new InvalidInputError('agent.scriptNotAllowed', `script '${script}' cannot run: ${why}`, {
    hint: `a plan's script names an executable file in this agent's scripts directory (${scriptsDir}); put it there (chmod +x) and name it without a path outside it`,
  });
}

/**
 * The absolute path of `script` inside `scriptsDir`, or throws
 * `InvalidInputError` `agent.scriptNotAllowed`: absolute names, `..`, NUL,
 * anything resolving (symbolic links followed) outside the directory, a
 * missing file, a directory, a file that is not executable.
 */
export async function resolveScript(scriptsDir: string, script: string): Promise<string> {
  if (script === '' || script.includes('\0')) throw notAllowed(script, 'the name is empty or contains NUL', scriptsDir);
  if (path.isAbsolute(script) || script.startsWith('~')) throw notAllowed(script, 'absolute paths are refused', scriptsDir);
  if (script.split(/[\\/]/).includes('..')) throw notAllowed(script, '".." is refused', scriptsDir);
  let root: string;
  try {
    root = await fs.realpath(scriptsDir);
  } catch {
    throw notAllowed(script, `the scripts directory ${scriptsDir} does not exist`, scriptsDir);
  }
  let real: string;
  try {
    real = await fs.realpath(path.join(root, script));
  } catch {
    throw notAllowed(script, 'no such file in the scripts directory', scriptsDir);
  }
  const rel = path.relative(root, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw notAllowed(script, 'it resolves outside the scripts directory', scriptsDir);
  const st = await fs.stat(real);
  if (!st.isFile()) throw notAllowed(script, 'it is not a regular file', scriptsDir);
  try {
    await fs.access(real, fs.constants.X_OK);
  } catch {
    throw notAllowed(script, 'it is not executable (chmod +x)', scriptsDir);
  }
  return real;
}

/**
 * Run `file` with `env` in its own process group, kill the group at
 * `timeoutMs` (SIGTERM, then SIGKILL) or when `signal` aborts; resolves
 * with the exit and the output's tail. Rejects only if it cannot start.
 */
export function runScript(file: string, cwd: string, env: Readonly<Record<string, string>>, timeoutMs: number, signal: AbortSignal, o: { tailBytes: number; killGraceMs: number; now: () => number }): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const t0 = o.now();
    const child = spawn(file, [], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    const take = (b: Buffer): void => {
      chunks.push(b);
      kept += b.length;
      while (kept - chunks[0]!.length >= o.tailBytes) {
        kept -= chunks.shift()!.length;
        truncated = true;
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      const pid = child.pid;
      if (pid === undefined) return;
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // already gone
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, o.killGraceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const onAbort = (): void => killGroup();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) killGroup();
    child.on('error', (e) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      signal.removeEventListener('abort', onAbort);
      let all = Buffer.concat(chunks);
      chunks = [];
      if (all.length > o.tailBytes) {
        all = all.subarray(all.length - o.tailBytes);
        truncated = true;
      }
      resolve({ exitCode: code, ...(sig === null ? {} : { signal: sig }), timedOut, output: all.toString('utf8'), truncated, durationMs: o.now() - t0 });
    });
  });
}

/** The `plan.runScript` handler. */
export function scriptHandlers(o: ScriptOptions, now: () => number = Date.now): Readonly<Record<string, CommandHandler>> {
  return {
    [RUN_SCRIPT]: async (c, ctx) => {
      const script = typeof c.payload.script === 'string' ? c.payload.script : '';
      const file = await resolveScript(o.scriptsDir, script);
      const timeoutSeconds = typeof c.payload.timeoutSeconds === 'number' && c.payload.timeoutSeconds > 0 ? c.payload.timeoutSeconds : 300;
      const given = (typeof c.payload.environment === 'object' && c.payload.environment !== null ? c.payload.environment : {}) as Record<string, unknown>;
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? '/', LANG: process.env.LANG ?? 'C.UTF-8',
      };
      for (const [k, v] of Object.entries(given)) if (/^LIFEBOAT_[A-Z_]+$/.test(k) && typeof v === 'string') env[k] = v;
      ctx.progress(0, `running ${script} (timeout ${timeoutSeconds} s)`);
      const r = await runScript(file, o.scriptsDir, env, timeoutSeconds * 1000, ctx.signal, {
        tailBytes: o.outputTailBytes ?? OUTPUT_TAIL_BYTES, killGraceMs: o.killGraceMs ?? KILL_GRACE_MS, now,
      });
      return { ...r, exitCode: r.exitCode ?? -1 };
    },
  };
}
