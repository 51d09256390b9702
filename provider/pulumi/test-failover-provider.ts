/**
 * The provider of `TestFailover` (docs/pulumi.md §12).
 *
 * - create: `plan.failover` of type test (with `checkData` and the expiry),
 *   wait for the plan job, then build the drill report from the job's record
 *   (RTO = when each test VM ran − when the job started; the point and its
 *   age when its VM ran) and each item's `status.testFailover` (host, test
 *   VM, the data check). A drill that fails after the test failover started
 *   (its job, or a disk that does not equal its point) keeps its id (partial
 *   state, `status: failed`) so that `destroy` or a replace cleans it up.
 * - read: the report stays; `status` becomes `expired` (or `cleanedUp`) once
 *   the plan no longer has this drill's test failover.
 * - update: only `operationTimeoutMinutes` changes in place; a drill whose
 *   create failed (`status: failed`) waits for its job again (after a
 *   `lifeboat jobs resume`) and reports.
 * - delete: `plan.testCleanup` if the drill's test failover is still there
 *   (a drill job still running is cancelled first), and wait for it.
 */

import type * as pulumi from '@pulumi/pulumi';
import { isNotFound, VaultApiError, type JobInfo } from '../client';
import { LifeboatError, NonRecoverableError } from '../errors';
import { resolveConnection, type ResolvedConnection } from './connection';
import { ResourceInitError } from './engine-error';
import { checkControl, unknownInputs } from './object-provider';
import { waitPlanJob } from './plan-job-wait';
import { type ProviderContext } from './provider-context';
import { pick, str, type Props } from './props';
import { checkName, containsUnknown } from './spec-check';
import { diffByRules } from './spec-diff';
import { type DrillDisk, type DrillVm } from './test-failover';

const INPUT_KEYS = ['vault', 'plan', 'point', 'expiresAfter', 'runId', 'checkData', 'operationTimeoutMinutes', 'implVersion'] as const;
const OUTPUT_KEYS = ['job', 'startedAt', 'expiresAt', 'status', 'passed', 'vms'] as const;
const DEFAULT_TIMEOUT_MINUTES = 30;
const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of an `expiresAfter` (`90s`, `30m`, `4h`, `2d`, or a number of seconds); undefined if malformed. */
export function expirySeconds(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 2_592_000 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+)\s*([smhd])$/.exec(v.trim());
  if (m === null) return undefined;
  const s = Number(m[1]) * UNITS[m[2]!]!;
  return s >= 1 && s <= 2_592_000 ? s : undefined;
}

const seconds = (from: string | undefined, to: string | undefined): number | undefined =>
  from === undefined || to === undefined ? undefined : (Date.parse(to) - Date.parse(from)) / 1000;

/** The drill report of a finished (or stopped) plan job, with each item's test-failover status. */
export async function drillReport(c: ResolvedConnection, vault: string, job: JobInfo): Promise<{ vms: DrillVm[]; passed: boolean }> {
  const vms: DrillVm[] = [];
  for (const g of job.plan?.groups ?? []) {
    for (const v of g.vms) {
      let tf: Awaited<ReturnType<typeof c.client.getProtectedItem>>['status']['testFailover'];
      try {
        tf = (await c.client.getProtectedItem(vault, v.item)).status.testFailover;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      const mine = tf !== undefined && v.job !== undefined && tf.job === v.job ? tf : undefined;
      const disks: DrillDisk[] = (mine?.check?.disks ?? []).map((d) => ({ name: d.id, bytes: d.bytes, sha256: d.sha256, matchesPoint: d.matchesPoint }));
      const point = v.point === undefined ? undefined : {
        id: v.point.id, ...(v.point.time === undefined ? {} : { time: v.point.time }), ...(v.point.kind === undefined ? {} : { kind: v.point.kind }),
        // The age of the data the test VM came up with, when it ran (its group may start well after the plan).
        ...(v.point.time === undefined || v.runningAt === undefined ? {} : { ageSeconds: seconds(v.point.time, v.runningAt)! }),
      };
      const rto = seconds(job.startedAt, v.runningAt);
      vms.push({
        name: v.item, group: g.name, state: v.state, disks,
        ...(mine === undefined ? {} : { testVm: mine.vm, host: mine.host }),
        ...(rto === undefined ? {} : { rtoSeconds: rto }),
        ...(point === undefined ? {} : { point }),
      });
    }
  }
  const ran = vms.every((v) => v.state === 'Succeeded' || v.state === 'Skipped');
  const dataOk = vms.every((v) => v.disks.every((d) => d.matchesPoint !== false));
  return { vms, passed: job.state === 'Succeeded' && ran && dataOk };
}

export function testFailoverProvider(ctx: ProviderContext): pulumi.dynamic.ResourceProvider<Props, Props> {
  const connect = (): ResolvedConnection => resolveConnection(ctx.sources);
  const deadlineOf = (p: Props): number => ctx.clock.now() + (typeof p.operationTimeoutMinutes === 'number' ? p.operationTimeoutMinutes : DEFAULT_TIMEOUT_MINUTES) * 60_000;
  const rules = { keys: INPUT_KEYS.filter((k) => k !== 'operationTimeoutMinutes'), identity: INPUT_KEYS.filter((k) => k !== 'operationTimeoutMinutes'), identifiers: ['vault', 'plan'] };

  /** Wait for the drill's job and make the outputs; a failure keeps the id with what is known. */
  const finish = async (c: ResolvedConnection, inputs: Props, id: string, jobId: string, expiresAt: string | undefined): Promise<Props> => {
    const vault = str(inputs, 'vault');
    const base = { ...pick(inputs, INPUT_KEYS), job: jobId, ...(expiresAt === undefined ? {} : { expiresAt }) };
    try {
      const job = await waitPlanJob(c, ctx, vault, jobId, deadlineOf(inputs));
      const report = await drillReport(c, vault, job);
      for (const v of report.vms) {
        ctx.log(`drill ${str(inputs, 'plan')}: ${v.name} ${v.state}${v.rtoSeconds === undefined ? '' : `, RTO ${v.rtoSeconds} s`}${v.point?.ageSeconds === undefined ? '' : `, point ${v.point.ageSeconds} s old`}${v.disks.length === 0 ? '' : `, data ${v.disks.every((d) => d.matchesPoint === true) ? 'matches the point' : 'DOES NOT match the point'}`}`);
      }
      if (!report.passed) {
        // A drill whose data does not hold fails the `up`: a pipeline must not go green on it.
        const bad = report.vms.flatMap((v) => v.disks.filter((d) => d.matchesPoint === false).map((d) => `${v.name}/${d.name}`));
        throw new NonRecoverableError('pulumi.drillDataMismatch', `test VMs do not hold their recovery points: ${bad.join(', ')}`, {
          hint: 'the item\'s status.testFailover.check has the differing bytes; report it with the recovery host\'s agent log',
        });
      }
      return { ...base, startedAt: job.startedAt ?? job.createdAt, status: 'running', passed: true, vms: report.vms as unknown as Props[] };
    } catch (e) {
      const le = LifeboatError.isInstance(e) ? e : undefined;
      let partial: Props = { ...base, status: 'failed' };
      try {
        const job = await c.client.getJob(vault, jobId);
        const report = await drillReport(c, vault, job);
        partial = { ...base, startedAt: job.startedAt ?? job.createdAt, status: 'failed', passed: false, vms: report.vms as unknown as Props[] };
      } catch {
        // The report is best effort; the id is what matters.
      }
      throw new ResourceInitError(le?.code ?? 'pulumi.drillFailed', `the drill of plan ${str(inputs, 'plan')} did not pass: ${le?.message ?? String(e)}`, id, partial, {
        cause: e,
        hint: `${le?.hint === undefined ? '' : `${le.hint}; `}the test VMs stay for investigation until \`pulumi destroy\` (or a new runId) cleans them up`,
      });
    }
  };

  return {
    async check(_olds, news) {
      const failures = [...checkName('vault', news.vault), ...checkName('plan', news.plan), ...checkControl(news), ...unknownInputs(news, [...INPUT_KEYS, ...OUTPUT_KEYS])];
      const point = news.point;
      if (point !== undefined && !containsUnknown(point) && (typeof point !== 'string' || (point !== 'latest' && point !== 'latestAppConsistent' && Number.isNaN(Date.parse(point))))) {
        failures.push({ property: 'point', reason: "valid: 'latest', 'latestAppConsistent', or an ISO 8601 time such as 2026-12-05T10:00:00Z" });
      }
      if (news.expiresAfter !== undefined && !containsUnknown(news.expiresAfter) && expirySeconds(news.expiresAfter) === undefined) {
        failures.push({ property: 'expiresAfter', reason: "a duration such as '90s', '30m', '4h' or '2d' (or a number of seconds), at most 30 days" });
      }
      if (news.checkData !== undefined && !containsUnknown(news.checkData) && typeof news.checkData !== 'boolean') failures.push({ property: 'checkData', reason: 'must be true or false' });
      if (news.runId !== undefined && !containsUnknown(news.runId) && typeof news.runId !== 'string') failures.push({ property: 'runId', reason: 'must be a string' });
      const op = news.operationTimeoutMinutes;
      if (op !== undefined && !containsUnknown(op) && (typeof op !== 'number' || !(op > 0))) failures.push({ property: 'operationTimeoutMinutes', reason: 'must be a number of minutes > 0' });
      return { inputs: news, failures };
    },
    async diff(_id, olds, news) {
      const d = diffByRules(olds, news, rules);
      return { ...d, changes: d.changes === true || olds.operationTimeoutMinutes !== news.operationTimeoutMinutes };
    },
    async create(inputs) {
      const c = connect();
      const vault = str(inputs, 'vault');
      const plan = str(inputs, 'plan');
      const expires = expirySeconds(inputs.expiresAfter);
      const job = await c.client.failoverPlan(vault, plan, {
        type: 'test',
        ...(typeof inputs.point === 'string' ? { point: inputs.point } : {}),
        checkData: inputs.checkData !== false,
        ...(expires === undefined ? {} : { expiresAfterSeconds: expires }),
      });
      const id = `${vault}/recoveryPlans/${plan}/testFailover/${job.id}`;
      ctx.log(`drill ${plan}: test failover started (job ${job.id})`);
      const expiresAt = (await c.client.getRecoveryPlan(vault, plan)).status.testFailover?.expiresAt;
      return { id, outs: await finish(c, inputs, id, job.id, expiresAt) };
    },
    async read(id, props) {
      const p = props ?? {};
      if (typeof p.job !== 'string') return { id, props: p };
      let current: string | undefined;
      try {
        current = (await connect().client.getRecoveryPlan(str(p, 'vault'), str(p, 'plan'))).status.testFailover?.job;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (current === p.job) return { id, props: p };
      const expired = typeof p.expiresAt === 'string' && Date.parse(p.expiresAt) <= ctx.clock.now();
      return { id, props: { ...p, status: expired ? 'expired' : 'cleanedUp' } };
    },
    async update(id, olds, news) {
      if (olds.status === 'failed' && typeof olds.job === 'string') {
        // A create that failed: wait for the same drill again.
        return { outs: await finish(connect(), news, id, olds.job, typeof olds.expiresAt === 'string' ? olds.expiresAt : undefined) };
      }
      return { outs: { ...olds, ...pick(news, INPUT_KEYS) } };
    },
    async delete(_id, props) {
      const c = connect();
      const vault = str(props, 'vault');
      const plan = str(props, 'plan');
      const deadline = deadlineOf(props);
      let env;
      try {
        env = await c.client.getRecoveryPlan(vault, plan);
      } catch (e) {
        if (isNotFound(e)) return;
        throw e;
      }
      const drill = typeof props.job === 'string' ? props.job : undefined;
      if (env.status.testFailover === undefined || (drill !== undefined && env.status.testFailover.job !== drill)) return;
      const running = env.status.activeJob;
      if (running !== undefined) {
        // The drill's own job still running (stopped at a failure, or waiting): cancel it; another plan job: wait for it.
        if (running.id === drill) await c.client.cancelJob(vault, running.id).catch(() => undefined);
        await c.client.waitForJob(vault, running.id, { pollMs: ctx.pollMs, timeoutMs: Math.max(ctx.pollMs, deadline - ctx.clock.now()) });
        if ((await c.client.getRecoveryPlan(vault, plan)).status.testFailover === undefined) return;
      }
      let job: JobInfo;
      try {
        job = await c.client.cleanUpPlanTestFailover(vault, plan);
      } catch (e) {
        if (isNotFound(e) || (e instanceof VaultApiError && e.code === 'plan.nothingToDo')) return;
        throw e;
      }
      ctx.log(`drill ${plan}: cleaning up the test failover (job ${job.id})`);
      await waitPlanJob(c, ctx, vault, job.id, deadline);
    },
  };
}
