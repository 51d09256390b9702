/**
 * `lifeboat jobs [ID] [--watch]`: the vault's jobs (docs/jobs.md). Without
 * an id, the latest jobs; with one, its steps, errors, retry and stuck
 * report. `--watch` follows jobs until they end: on a terminal it redraws a
 * table with progress bars every second; otherwise it prints one line per
 * change (one JSON object per line with `--output json`). The exit code of a
 * watch is 0 when every followed job succeeded, else 1.
 */

import { type JobInfo, type VaultClient, isNotFound } from '../../client';
import { type JobState } from '../../states';
import { type CliContext, type Command, intOption, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { CONNECTION_OPTIONS, connect, connectionFlags } from '../connection';
import { EXIT, NotFoundError } from '../exit-codes';
import { ago, json, type OutputFormat, progressBar, shortId, table } from '../output';

const USAGE = 'lifeboat jobs [ID] [--watch] [--limit N] [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

const ACTIVE: readonly JobState[] = ['NotStarted', 'InProgress', 'WaitingForAction', 'Cancelling'];

export const jobs: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION, watch: { type: 'boolean', short: 'w' }, limit: { type: 'string' } }, USAGE, 1);
  const format = outputFormat(values);
  const limit = intOption(values, 'limit', 1, 1000) ?? 20;
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  const id = positionals[0];
  if (values.watch === true) return watchJobs(ctx, c.client, c.vault, { ...(id === undefined ? {} : { id: await resolveId(c.client, c.vault, id) }), format });
  if (id !== undefined) {
    const job = await getJob(c.client, c.vault, await resolveId(c.client, c.vault, id));
    ctx.out.line(format === 'json' ? json(job) : jobDetail(job, Date.now(), ctx.out.isTTY));
    return EXIT.ok;
  }
  const list = await c.client.listJobs(c.vault, { limit });
  if (format === 'json') ctx.out.line(json(list));
  else ctx.out.line(list.length === 0 ? 'no jobs' : jobsTable(list, Date.now(), ctx.out.isTTY));
  return EXIT.ok;
};

export interface WatchOptions {
  /** Follow this job; else every job active now and any started meanwhile. @default every active job */
  readonly id?: string;
  readonly format: OutputFormat;
  /** Time between polls. @default 1000 ms */
  readonly pollMs?: number;
}

/** Follow jobs to their end (see the file comment). Ctrl-C stops watching (exit 130); the jobs go on. */
export async function watchJobs(ctx: CliContext, client: VaultClient, vault: string, o: WatchOptions): Promise<number> {
  const followed = new Map<string, JobInfo>();
  const printed = new Map<string, string>();
  for (;;) {
    if (ctx.signal.aborted) return EXIT.interrupted;
    let current: JobInfo[];
    try {
      if (o.id !== undefined) {
        current = [await getJob(client, vault, o.id)];
      } else {
        const active = await client.listJobs(vault, { states: ACTIVE, limit: 1000 });
        const ended = await Promise.all([...followed.keys()].filter((k) => !active.some((j) => j.id === k)).map((k) => getJob(client, vault, k)));
        current = [...active, ...ended];
      }
    } catch (e) {
      // The vault may be restarting: keep watching (the jobs resume with it).
      if (e instanceof NotFoundError) throw e;
      if (ctx.out.isTTY) ctx.out.redraw(`waiting for the vault: ${e instanceof Error ? e.message : String(e)}`);
      await pause(o.pollMs ?? 1000, ctx.signal);
      continue;
    }
    for (const j of current) followed.set(j.id, j);
    const all = [...followed.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    if (ctx.out.isTTY && o.format === 'table') {
      const now = Date.now();
      ctx.out.redraw(o.id !== undefined ? jobDetail(all[0]!, now, true) : all.length === 0 ? 'no active jobs' : jobsTable(all, now, true));
    } else {
      for (const j of all) {
        const key = `${j.state}|${j.progress}|${j.message ?? ''}`;
        if (printed.get(j.id) === key) continue;
        printed.set(j.id, key);
        ctx.out.line(o.format === 'json' ? JSON.stringify(j) : `${new Date().toISOString()} ${j.id} ${j.type} ${j.target.name}: ${j.state} ${j.progress}%${j.message === undefined ? '' : ` ${j.message}`}`);
      }
    }
    const done = all.every((j) => !ACTIVE.includes(j.state));
    if (done && (all.length > 0 || o.id === undefined)) {
      if (all.length === 0 && ctx.out.isTTY === false && o.format === 'table') ctx.out.line('no active jobs');
      return all.every((j) => j.state === 'Succeeded') ? EXIT.ok : EXIT.failed;
    }
    await pause(o.pollMs ?? 1000, ctx.signal);
  }
}

function jobsTable(list: readonly JobInfo[], now: number, bars: boolean): string {
  return table(['JOB', 'TYPE', 'TARGET', 'STATE', 'PROGRESS', 'STARTED', 'MESSAGE'], list.map((j) => [
    shortId(j.id), j.type, j.target.name, j.stuck === undefined ? j.state : `${j.state} (stuck)`,
    bars ? progressBar(j.progress) : `${j.progress}%`, ago(j.startedAt ?? j.createdAt, now), (j.message ?? '').slice(0, 60),
  ]));
}

function jobDetail(j: JobInfo, now: number, bars: boolean): string {
  const lines = [
    `job ${j.id}: ${j.type} of ${j.target.kind} ${j.target.name}`,
    `state ${j.state}, ${bars ? progressBar(j.progress, 30) : `${j.progress}%`}, started ${ago(j.startedAt ?? j.createdAt, now)}${j.endedAt === undefined ? '' : `, ended ${ago(j.endedAt, now)}`}`,
    '',
    table(['STEP', 'STATE', 'PROGRESS', 'ATTEMPTS', 'MESSAGE'], j.steps.map((s) => [
      s.title, s.state, bars ? progressBar(s.progress, 10) : `${s.progress}%`, String(s.attempts), (s.message ?? '').slice(0, 70),
    ])),
  ];
  if (j.retry !== undefined) lines.push('', `retrying step ${j.retry.step}: ${j.retry.failures} failure(s), next attempt ${ago(j.retry.nextAttemptAt, now)}`);
  if (j.stuck !== undefined) lines.push('', `STUCK since ${j.stuck.since}: ${j.stuck.reason}`, `  hint: ${j.stuck.hint}`);
  for (const e of j.errors) lines.push('', `error${e.step === undefined ? '' : ` in ${e.step}`}: ${e.message} [${e.code}]${e.hint === undefined ? '' : `\n  hint: ${e.hint}`}`);
  return lines.join('\n');
}

/** A job id as given, or completed from a unique prefix (`job-1a2b3c4d` as printed in tables). */
async function resolveId(client: VaultClient, vault: string, id: string): Promise<string> {
  if (/^job-[0-9a-f-]{36}$/.test(id)) return id;
  const matches = (await client.listJobs(vault, { limit: 1000 })).filter((j) => j.id.startsWith(id));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new NotFoundError('job.notFound', `vault ${vault} has no job ${id}`, 'list jobs with `lifeboat jobs`');
  throw new NotFoundError('job.ambiguous', `${id} names ${matches.length} jobs`, 'give more characters of the id');
}

async function getJob(client: VaultClient, vault: string, id: string): Promise<JobInfo> {
  try {
    return await client.getJob(vault, id);
  } catch (e) {
    if (isNotFound(e)) throw new NotFoundError('job.notFound', `vault ${vault} has no job ${id}`, 'list jobs with `lifeboat jobs`');
    throw e;
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', done);
      resolve();
    }, ms);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
  });
}
