/**
 * The failover commands (docs/operations.md §6, docs/failover.md):
 * `failover ITEM --type test|planned|unplanned [--point …]`, `commit ITEM`,
 * `test-cleanup ITEM`, `reprotect ITEM`, `failback ITEM` (a planned
 * failover back to the original site, its commit and a reprotect: three
 * jobs in a row, stopping at the first that fails). Each starts its job and follows it to its end as
 * `jobs --watch` does (bars on a terminal, a line per change otherwise, one
 * JSON object per line with `--output json`); `--detach` prints the job and
 * returns at once. Exit codes: 0 the job succeeded (or was started, with
 * `--detach`), 1 it failed or was cancelled, 2 a bad option or a request
 * the vault found invalid, 3 vault unreachable, 4 no such item, 5 token
 * refused; a refusal by the item's state (409) is 1 with the vault's hint.
 *
 * With `--plan PLAN` instead of ITEM each runs the recovery plan's job
 * (docs/recovery-plans.md): `failover --plan P --type … [--direction
 * toRecovery|toPrimary] [--expires-after DURATION]`, `commit --plan P`,
 * `test-cleanup --plan P`, `reprotect --plan P`, `failback --plan P`
 * (planned failover toPrimary, commit, reprotect). The progress shows the
 * plan group by group; a plan stopped at a failure ends the command with
 * exit 1 and says how to resume or cancel it (the job waits); a manual
 * action is waited for (acknowledge it from another shell).
 */

import { type FailoverRequest, type JobInfo, type PlanFailoverRequest, isNotFound } from '../../client';
import { type CliContext, type Command, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { CONNECTION_OPTIONS, connect, connectionFlags } from '../connection';
import { LifeboatError } from '../../errors';
import { EXIT, NotFoundError, UsageError } from '../exit-codes';
import { json, type OutputFormat } from '../output';
import { watchJobs } from './jobs';

const COMMON = '[--detach] [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';
const FAILOVER_USAGE = `lifeboat failover ITEM|--plan PLAN --type test|planned|unplanned [--point latest|latestAppConsistent|TIME] [--direction toRecovery|toPrimary] [--expires-after DURATION] [--check-data] ${COMMON}`;
const COMMIT_USAGE = `lifeboat commit ITEM|--plan PLAN ${COMMON}`;
const CLEANUP_USAGE = `lifeboat test-cleanup ITEM|--plan PLAN ${COMMON}`;
const REPROTECT_USAGE = `lifeboat reprotect ITEM|--plan PLAN ${COMMON}`;
const CANCEL_USAGE = 'lifeboat cancel-failover ITEM [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';
const FAILBACK_USAGE = 'lifeboat failback ITEM|--plan PLAN [--host HOST] [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

const FOLLOW_OPTIONS = { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION, detach: { type: 'boolean' }, plan: { type: 'string' } } as const;

/** A `--expires-after` value: `90s`, `30m`, `2h`, `1d` or seconds. Throws `UsageError`. */
export function durationOption(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const m = typeof v === 'string' ? /^(\d+)(s|m|h|d)?$/.exec(v.trim()) : null;
  const n = m === null ? Number.NaN : Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 } as const)[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  if (!Number.isSafeInteger(n) || n < 1 || n > 30 * 86400) throw new UsageError(`--expires-after ${String(v)} is not a duration`, 'give e.g. 90s, 30m, 2h or 1d (at most 30 days)');
  return n;
}

/** A `--point` value: a keyword, or a time any `Date.parse` reads (returned as ISO). Throws `UsageError`. */
export function pointOption(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (v === 'latest' || v === 'latestAppConsistent') return v;
  if (typeof v === 'string' && v !== '' && !Number.isNaN(Date.parse(v))) return new Date(Date.parse(v)).toISOString();
  throw new UsageError(`--point ${String(v)} is not latest, latestAppConsistent or a time`, 'give a time such as 2026-01-01T12:00:00Z (the newest point at or before it is used)');
}

/** Start a job with `start` and follow it (or print it with --detach). */
async function runJob(
  args: readonly string[], ctx: CliContext, usage: string, extra: Record<string, { type: 'string' | 'boolean' }>,
  start: (c: Awaited<ReturnType<typeof connect>>, item: string, values: Readonly<Record<string, unknown>>) => Promise<JobInfo>, what: string,
): Promise<number> {
  const { values, positionals } = parse(args, { ...FOLLOW_OPTIONS, ...extra }, usage, 1);
  const plan = typeof values.plan === 'string' ? values.plan : undefined;
  if (plan !== undefined && positionals.length > 0) throw new UsageError('give an ITEM or --plan PLAN, not both', `usage: ${usage}`);
  const item = plan ?? positionals[0];
  if (item === undefined) throw new UsageError('which item (or --plan)?', `usage: ${usage}`);
  const format: OutputFormat = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  let job: JobInfo;
  try {
    job = await start(c, item, values);
  } catch (e) {
    if (isNotFound(e) && plan !== undefined) throw new NotFoundError('recoveryPlan.notFound', `vault ${c.vault} has no recovery plan ${plan} (or an item of it is gone)`, 'list them with `lifeboat get recoveryPlans`');
    if (isNotFound(e)) throw new NotFoundError('protectedItem.notFound', `vault ${c.vault} has no protected item ${item}`, 'list them with `lifeboat status`');
    throw e;
  }
  const label = plan === undefined ? `${what} of ${item}` : `${what} of plan ${plan}`;
  if (values.detach === true) {
    ctx.out.line(format === 'json' ? json(job) : `${label} started: job ${job.id} (follow it with \`lifeboat jobs --watch ${job.id}\`)`);
    return EXIT.ok;
  }
  if (format !== 'json') ctx.out.line(`${label}: job ${job.id}`);
  return watchJobs(ctx, c.client, c.vault, { id: job.id, format });
}

/** `failover ITEM|--plan PLAN --type test|planned|unplanned [--point …] [--direction …] [--expires-after …]`. */
export const failover: Command = (args, ctx) => runJob(args, ctx, FAILOVER_USAGE, {
  type: { type: 'string' }, point: { type: 'string' }, direction: { type: 'string' }, 'expires-after': { type: 'string' }, 'check-data': { type: 'boolean' },
}, (c, item, values) => {
  const type = values.type;
  if (type !== 'test' && type !== 'planned' && type !== 'unplanned') {
    throw new UsageError(type === undefined ? '--type is required' : `--type ${String(type)} is not test, planned or unplanned`, `usage: ${FAILOVER_USAGE}`);
  }
  const point = pointOption(values.point);
  if (type === 'planned' && point !== undefined && point !== 'latest') {
    throw new UsageError('a planned failover always uses the latest point (the one its last log ends in)', 'leave out --point, or run an unplanned failover to choose a point');
  }
  const direction = values.direction;
  const expires = durationOption(values['expires-after']);
  // The test VMs' disks compared with their points (docs/failover.md §4a).
  const checkData = values['check-data'] === true;
  if (checkData && type !== 'test') throw new UsageError('--check-data applies to a test failover only', `usage: ${FAILOVER_USAGE}`);
  if (typeof values.plan !== 'string') {
    if (direction !== undefined || expires !== undefined) throw new UsageError('--direction and --expires-after apply to --plan only', `usage: ${FAILOVER_USAGE}`);
    const request: FailoverRequest = { type, ...(point === undefined ? {} : { point }), ...(checkData ? { checkData } : {}) };
    return c.client.failover(c.vault, item, request);
  }
  if (direction !== undefined && direction !== 'toRecovery' && direction !== 'toPrimary') throw new UsageError(`--direction ${String(direction)} is not toRecovery or toPrimary`, `usage: ${FAILOVER_USAGE}`);
  if (expires !== undefined && type !== 'test') throw new UsageError('--expires-after applies to a test failover only', `usage: ${FAILOVER_USAGE}`);
  const request: PlanFailoverRequest = {
    type, ...(point === undefined ? {} : { point }), ...(direction === undefined ? {} : { direction }), ...(expires === undefined ? {} : { expiresAfterSeconds: expires }),
    ...(checkData ? { checkData } : {}),
  };
  return c.client.failoverPlan(c.vault, item, request);
}, 'failover');

/** `commit ITEM|--plan PLAN`: the failover's point becomes the only one. */
export const commit: Command = (args, ctx) => runJob(args, ctx, COMMIT_USAGE, {}, (c, item, values) => (typeof values.plan === 'string' ? c.client.commitPlan(c.vault, item) : c.client.commitFailover(c.vault, item)), 'commit');

/** `test-cleanup ITEM|--plan PLAN`: remove the test-failover VMs. */
export const testCleanup: Command = (args, ctx) => runJob(args, ctx, CLEANUP_USAGE, {}, (c, item, values) => (typeof values.plan === 'string' ? c.client.cleanUpPlanTestFailover(c.vault, item) : c.client.cleanUpTestFailover(c.vault, item)), 'test cleanup');

/** `reprotect ITEM|--plan PLAN`: reverse replication after a committed failover. */
export const reprotect: Command = (args, ctx) => runJob(args, ctx, REPROTECT_USAGE, {}, (c, item, values) => (typeof values.plan === 'string' ? c.client.reprotectPlan(c.vault, item) : c.client.reprotect(c.vault, item)), 'reprotect');

/**
 * `failback ITEM`: for an item protected in the reverse direction (its
 * workload at the recovery site), a planned failover back, its commit and a
 * reprotect, restoring the original direction. Exit 1 at the first job that
 * does not succeed (the item is then where that job left it). An item of an
 * azure policy whose failover is committed fails back in one job
 * (`failback.fromAzure`, started through reprotect), with `--host HOST` to
 * another host of its site.
 */
export const failback: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION, plan: { type: 'string' }, host: { type: 'string' } }, FAILBACK_USAGE, 1);
  const host = typeof values.host === 'string' ? values.host : undefined;
  if (host !== undefined && typeof values.plan === 'string') throw new UsageError('--host applies to one item failing back from Azure, not to a plan', `usage: ${FAILBACK_USAGE}`);
  if (typeof values.plan === 'string') return failbackPlan(ctx, values, values.plan);
  const item = positionals[0];
  if (item === undefined) throw new UsageError('which item (or --plan)?', `usage: ${FAILBACK_USAGE}`);
  const format: OutputFormat = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  let status;
  try {
    status = (await c.client.getProtectedItem(c.vault, item)).status;
  } catch (e) {
    if (isNotFound(e)) throw new NotFoundError('protectedItem.notFound', `vault ${c.vault} has no protected item ${item}`, 'list them with `lifeboat status`');
    throw e;
  }
  // Items of azure policies fail back in one job, started by reprotect (docs/azure-failover.md §5).
  const policy = await c.client.getObject(c.vault, 'replicationPolicies', (await c.client.getProtectedItem(c.vault, item)).spec.policy).catch(() => undefined);
  if (policy?.spec.target === 'azure' && status.activeLocation === 'recovery' && status.replicationState === 'FailoverCommitted') {
    const job = await c.client.reprotect(c.vault, item, host === undefined ? {} : { host });
    if (format !== 'json') ctx.out.line(`failback from Azure of ${item}${host === undefined ? '' : ` to ${host}`}: job ${job.id}`);
    return watchJobs(ctx, c.client, c.vault, { id: job.id, format });
  }
  if (host !== undefined) {
    throw new UsageError(`--host applies to an item failing back from Azure; ${item} is ${status.replicationState}${policy?.spec.target === 'azure' ? '' : ' and replicates to a secondary site'}`, 'leave out --host: a failback from a secondary site returns to the host that holds the replica');
  }
  if (status.activeLocation !== 'recovery' || status.replicationState !== 'Protected') {
    throw new LifeboatError('failback.notApplicable', 'nonRecoverable', `item ${item} is ${status.replicationState} with its workload at the ${status.activeLocation ?? 'primary'} site; failback needs it Protected in the reverse direction`, {
      hint: status.replicationState === 'FailoverCommitted' ? `reprotect it first: lifeboat reprotect ${item}` : 'fail over and reprotect first',
    });
  }
  return runInRow(ctx, c, format, item, [
    ['planned failover back', () => c.client.failover(c.vault, item, { type: 'planned' })],
    ['commit', () => c.client.commitFailover(c.vault, item)],
    ['reprotect', () => c.client.reprotect(c.vault, item)],
  ]);
};

/**
 * `cancel-failover ITEM`: discard an uncommitted failover (`failover.cancel`:
 * the failover VM removed, the source VM unfenced, replication resumed from
 * it), then `resync.run`, which proves the replica equal to the source
 * again by sending only differing blocks. Exit 1 at the first job that does
 * not succeed.
 */
export const cancelFailover: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION }, CANCEL_USAGE, 1);
  const item = positionals[0];
  if (item === undefined) throw new UsageError('which item?', `usage: ${CANCEL_USAGE}`);
  const format: OutputFormat = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  return runInRow(ctx, c, format, item, [
    ['cancel the failover', () => c.client.cancelFailover(c.vault, item)],
    ['resync', () => c.client.resyncProtectedItem(c.vault, item)],
  ], new NotFoundError('protectedItem.notFound', `vault ${c.vault} has no protected item ${item}`, 'list them with `lifeboat status`'));
};

/**
 * `failback --plan PLAN`: a planned failover of the plan toPrimary, its
 * commit and its reprotect (three plan jobs), stopping at the first that
 * does not succeed.
 */
async function failbackPlan(ctx: CliContext, values: Readonly<Record<string, unknown>>, plan: string): Promise<number> {
  const format: OutputFormat = outputFormat(values as Parameters<typeof outputFormat>[0]);
  const c = await connect(connectionFlags(values as Parameters<typeof connectionFlags>[0]), ctx.env, ctx.cwd);
  return runInRow(ctx, c, format, `plan ${plan}`, [
    ['planned failover back', () => c.client.failoverPlan(c.vault, plan, { type: 'planned', direction: 'toPrimary' })],
    ['commit', () => c.client.commitPlan(c.vault, plan)],
    ['reprotect', () => c.client.reprotectPlan(c.vault, plan)],
  ], new NotFoundError('recoveryPlan.notFound', `vault ${c.vault} has no recovery plan ${plan}`, 'list them with `lifeboat get recoveryPlans`'));
}

/**
 * Start and follow jobs one after the other (`what of subject: job ID`),
 * stopping at the first that does not succeed; a 404 when starting one
 * becomes `notFound`.
 */
async function runInRow(
  ctx: CliContext, c: Awaited<ReturnType<typeof connect>>, format: OutputFormat, subject: string,
  steps: readonly (readonly [string, () => Promise<JobInfo>])[], notFound?: NotFoundError,
): Promise<number> {
  for (const [what, start] of steps) {
    let job: JobInfo;
    try {
      job = await start();
    } catch (e) {
      if (notFound !== undefined && isNotFound(e)) throw notFound;
      throw e;
    }
    if (format !== 'json') ctx.out.line(`${what} of ${subject}: job ${job.id}`);
    const code = await watchJobs(ctx, c.client, c.vault, { id: job.id, format });
    if (code !== EXIT.ok) return code;
  }
  return EXIT.ok;
}
