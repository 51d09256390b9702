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
 */

import { type FailoverRequest, type JobInfo, isNotFound } from '../../client';
import { type CliContext, type Command, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { CONNECTION_OPTIONS, connect, connectionFlags } from '../connection';
import { LifeboatError } from '../../errors';
import { EXIT, NotFoundError, UsageError } from '../exit-codes';
import { json, type OutputFormat } from '../output';
import { watchJobs } from './jobs';

const COMMON = '[--detach] [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';
const FAILOVER_USAGE = `lifeboat failover ITEM --type test|planned|unplanned [--point latest|latestAppConsistent|TIME] ${COMMON}`;
const COMMIT_USAGE = `lifeboat commit ITEM ${COMMON}`;
const CLEANUP_USAGE = `lifeboat test-cleanup ITEM ${COMMON}`;
const REPROTECT_USAGE = `lifeboat reprotect ITEM ${COMMON}`;
const FAILBACK_USAGE = 'lifeboat failback ITEM [--output json] [--vault URL --token-file FILE] [--vault-name NAME]';

const FOLLOW_OPTIONS = { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION, detach: { type: 'boolean' } } as const;

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
  const item = positionals[0];
  if (item === undefined) throw new UsageError('which item?', `usage: ${usage}`);
  const format: OutputFormat = outputFormat(values);
  const c = await connect(connectionFlags(values), ctx.env, ctx.cwd);
  let job: JobInfo;
  try {
    job = await start(c, item, values);
  } catch (e) {
    if (isNotFound(e)) throw new NotFoundError('protectedItem.notFound', `vault ${c.vault} has no protected item ${item}`, 'list them with `lifeboat status`');
    throw e;
  }
  if (values.detach === true) {
    ctx.out.line(format === 'json' ? json(job) : `${what} of ${item} started: job ${job.id} (follow it with \`lifeboat jobs --watch ${job.id}\`)`);
    return EXIT.ok;
  }
  if (format !== 'json') ctx.out.line(`${what} of ${item}: job ${job.id}`);
  return watchJobs(ctx, c.client, c.vault, { id: job.id, format });
}

/** `failover ITEM --type test|planned|unplanned [--point …]`. */
export const failover: Command = (args, ctx) => runJob(args, ctx, FAILOVER_USAGE, { type: { type: 'string' }, point: { type: 'string' } }, (c, item, values) => {
  const type = values.type;
  if (type !== 'test' && type !== 'planned' && type !== 'unplanned') {
    throw new UsageError(type === undefined ? '--type is required' : `--type ${String(type)} is not test, planned or unplanned`, `usage: ${FAILOVER_USAGE}`);
  }
  const point = pointOption(values.point);
  if (type === 'planned' && point !== undefined && point !== 'latest') {
    throw new UsageError('a planned failover always uses the latest point (the one its last log ends in)', 'leave out --point, or run an unplanned failover to choose a point');
  }
  const request: FailoverRequest = { type, ...(point === undefined ? {} : { point }) };
  return c.client.failover(c.vault, item, request);
}, 'failover');

/** `commit ITEM`: the failover's point becomes the only one. */
export const commit: Command = (args, ctx) => runJob(args, ctx, COMMIT_USAGE, {}, (c, item) => c.client.commitFailover(c.vault, item), 'commit');

/** `test-cleanup ITEM`: remove the test-failover VM. */
export const testCleanup: Command = (args, ctx) => runJob(args, ctx, CLEANUP_USAGE, {}, (c, item) => c.client.cleanUpTestFailover(c.vault, item), 'test cleanup');

/** `reprotect ITEM`: reverse replication after a committed failover. */
export const reprotect: Command = (args, ctx) => runJob(args, ctx, REPROTECT_USAGE, {}, (c, item) => c.client.reprotect(c.vault, item), 'reprotect');

/**
 * `failback ITEM`: for an item protected in the reverse direction (its
 * workload at the recovery site), a planned failover back, its commit and a
 * reprotect, restoring the original direction. Exit 1 at the first job that
 * does not succeed (the item is then where that job left it). An item of an
 * azure policy whose failover is committed fails back in one job
 * (`failback.fromAzure`, started through reprotect).
 */
export const failback: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, { ...CONNECTION_OPTIONS, ...OUTPUT_OPTION }, FAILBACK_USAGE, 1);
  const item = positionals[0];
  if (item === undefined) throw new UsageError('which item?', `usage: ${FAILBACK_USAGE}`);
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
    const job = await c.client.reprotect(c.vault, item);
    if (format !== 'json') ctx.out.line(`failback from Azure of ${item}: job ${job.id}`);
    return watchJobs(ctx, c.client, c.vault, { id: job.id, format });
  }
  if (status.activeLocation !== 'recovery' || status.replicationState !== 'Protected') {
    throw new LifeboatError('failback.notApplicable', 'nonRecoverable', `item ${item} is ${status.replicationState} with its workload at the ${status.activeLocation ?? 'primary'} site; failback needs it Protected in the reverse direction`, {
      hint: status.replicationState === 'FailoverCommitted' ? `reprotect it first: lifeboat reprotect ${item}` : 'fail over and reprotect first',
    });
  }
  const steps: readonly [string, () => Promise<JobInfo>][] = [
    ['planned failover back', () => c.client.failover(c.vault, item, { type: 'planned' })],
    ['commit', () => c.client.commitFailover(c.vault, item)],
    ['reprotect', () => c.client.reprotect(c.vault, item)],
  ];
  for (const [what, start] of steps) {
    const job = await start();
    if (format !== 'json') ctx.out.line(`${what} of ${item}: job ${job.id}`);
    const code = await watchJobs(ctx, c.client, c.vault, { id: job.id, format });
    if (code !== EXIT.ok) return code;
  }
  return EXIT.ok;
};
