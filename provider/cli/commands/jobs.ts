/**
 * `lifeboat jobs [ID] [--watch]`: the vault's jobs (docs/jobs.md). Without
 * an id, the latest jobs; with one (or `jobs show ID`), its steps, errors,
 * retry and stuck report and, for a recovery plan job, its groups, actions
 * and VMs and what it waits on. `--watch` follows jobs until they end: on a
 * terminal it redraws a table with progress bars every second; otherwise it
 * prints one line per change (one JSON object per line with `--output
 * json`). The exit code of a watch is 0 when every followed job succeeded,
 * else 1; following one plan job that stopped at a failure (it waits for
 * resume) ends the watch with 1 and the way out, while a manual action is
 * waited for.
 *
 * `jobs ack ID [--comment TEXT]`, `jobs resume ID`, `jobs cancel ID`
 * (docs/recovery-plans.md §4, §6) answer a waiting job, then follow it like
 * `--watch` unless `--detach`.
 */

import { type JobInfo, type VaultClient, isNotFound } from '../../client';
import { type JobState } from '../../states';
import { type CliContext, type Command, intOption, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { CONNECTION_OPTIONS, connect, connectionFlags } from '../connection';
import { EXIT, NotFoundError, UsageError } from '../exit-codes';
import { ago, json, type OutputFormat, progressBar, shortId, table } from '../output';

const USAGE = 'lifeboat jobs [ID | show ID | ack ID [--comment TEXT] | resume ID | cancel ID] [--watch] [--detach] [--limit N] [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

const ACTIVE: readonly JobState[] = ['NotStarted', 'InProgress', 'WaitingForAction', 'Cancelling'];

export const jobs: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, {
    ...CONNECTION_OPTIONS, ...OUTPUT_OPTION, watch: { type: 'boolean', short: 'w' }, limit: { type: 'string' }, comment: { type: 'string' }, detach: { type: 'boolean' },
  }, USAGE, 2);
  const format = outputFormat(values);
  const limit = intOption(values, 'limit', 1, 1000) ?? 20;
  const verb = positionals.length === 2 ? positionals[0] : undefined;
  if (verb !== undefined && !['show', 'ack', 'resume', 'cancel'].includes(verb)) throw new UsageError(`unknown jobs command ${verb}`, `usage: ${USAGE}`);
  if (values.comment !== undefined && verb !== 'ack') throw new UsageError('--comment goes with jobs ack', `usage: ${USAGE}`);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  const id = positionals.length === 2 ? positionals[1] : positionals[0];
  if (verb === 'ack' || verb === 'resume' || verb === 'cancel') {
    const full = await resolveId(c.client, c.vault, id!);
    let job: JobInfo;
    try {
      job = verb === 'ack' ? await c.client.ackJob(c.vault, full, typeof values.comment === 'string' ? values.comment : undefined)
        : verb === 'resume' ? await c.client.resumeJob(c.vault, full) : await c.client.cancelJob(c.vault, full);
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError('job.notFound', `vault ${c.vault} has no job ${id!}`, 'list jobs with `lifeboat jobs`');
      throw e;
    }
    if (values.detach === true || format === 'json') {
      ctx.out.line(format === 'json' ? json(job) : `job ${job.id}: ${job.state}`);
      return EXIT.ok;
    }
    ctx.out.line(`${verb === 'ack' ? 'acknowledged' : verb === 'resume' ? 'resumed' : 'cancellation requested'}: job ${job.id} (${job.type} of ${job.target.name})`);
    return watchJobs(ctx, c.client, c.vault, { id: job.id, format });
  }
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
    const stopped = o.id === undefined ? undefined : current.find((j) => j.state === 'WaitingForAction' && j.waiting?.kind === 'resume');
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
    if (stopped !== undefined) {
      if (ctx.out.isTTY && o.format === 'table') ctx.out.line('');
      if (o.format !== 'json') ctx.out.line(`job ${stopped.id} is waiting: ${stopped.waiting!.message}`);
      return EXIT.failed;
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
  if (j.plan !== undefined) lines.push('', ...planLines(j));
  if (j.waiting !== undefined) lines.push('', `WAITING (${j.waiting.kind}): ${j.waiting.message}`);
  for (const e of j.errors) lines.push('', `error${e.step === undefined ? '' : ` in ${e.step}`}: ${e.message} [${e.code}]${e.hint === undefined ? '' : `\n  hint: ${e.hint}`}`);
  return lines.join('\n');
}

/** A plan job's groups: each group's state, its actions and VMs (docs/recovery-plans.md §3). */
export function planLines(j: JobInfo): string[] {
  const p = j.plan!;
  const head = `plan ${p.plan}: ${p.operation}${p.type === undefined ? '' : ` ${p.type}`}${p.direction === undefined ? '' : ` ${p.direction}`}${p.point === undefined ? '' : `, point ${p.point}`}`;
  const rows: string[][] = [];
  p.groups.forEach((g, i) => {
    rows.push([`${i + 1}. ${g.name}`, g.state, '', '']);
    for (const a of g.actions.filter((x) => x.phase === 'before')) rows.push(actionRow(a));
    for (const v of g.vms) {
      rows.push([`   vm ${v.item}`, v.state, v.point === undefined ? (v.reason ?? '') : `point ${v.point.time ?? v.point.id}${v.runningAt === undefined ? '' : `, running ${v.runningAt}`}`, (v.error?.message ?? v.job ?? '').slice(0, 80)]);
    }
    for (const a of g.actions.filter((x) => x.phase === 'after')) rows.push(actionRow(a));
  });
  return [head, table(['GROUP / ACTION / VM', 'STATE', 'DETAIL', 'MESSAGE'], rows)];
}

function actionRow(a: NonNullable<JobInfo['plan']>['groups'][number]['actions'][number]): string[] {
  const name = a.kind === 'script' ? `   ${a.phase} script ${a.script ?? ''}` : `   ${a.phase} manual '${(a.instruction ?? '').slice(0, 40)}'`;
  const detail = a.kind === 'script'
    ? [a.host === undefined ? '' : `on ${a.host}`, a.exitCode === undefined ? '' : `exit ${a.exitCode}`, a.timedOut === true ? 'timed out' : '', a.attempts > 1 ? `attempt ${a.attempts}` : ''].filter((x) => x !== '').join(', ')
    : a.acknowledgedAt === undefined ? '' : `acknowledged ${a.acknowledgedAt}${a.comment === undefined ? '' : `: ${a.comment}`}`;
  const lastLine = (a.output ?? '').trimEnd().split('\n').pop() ?? '';
  return [name, a.state, detail, (a.error?.message ?? lastLine).slice(0, 80)];
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
