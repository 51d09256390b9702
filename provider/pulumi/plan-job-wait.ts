/**
 * Waiting for a recovery plan job from a provider call
 * (docs/pulumi.md §11): poll the job, log a line when a group's state
 * changes, keep waiting while a manual action waits for its
 * acknowledgement (someone runs `lifeboat jobs ack`), and stop with the
 * job's own words when it fails or stops at a failure.
 */

import { type JobInfo, type PlanJobRecord } from '../client';
import { LifeboatError, NonRecoverableError } from '../errors';
import { type ResolvedConnection } from './connection';
import { type ProviderContext } from './provider-context';

/** One line of where a plan job is: `erp: plan.failover planned toRecovery — web Succeeded, data InProgress (db01 InProgress)`. */
export function planJobLine(job: JobInfo): string {
  const p: PlanJobRecord | undefined = job.plan;
  const what = [job.type, p?.type, p?.direction].filter((x) => x !== undefined).join(' ');
  const groups = (p?.groups ?? []).map((g) => {
    const busy = g.state === 'InProgress' ? g.vms.filter((v) => v.state === 'InProgress').map((v) => `${v.vm} ${v.state}`) : [];
    return `${g.name} ${g.state}${busy.length === 0 ? '' : ` (${busy.join(', ')})`}`;
  });
  return `${p?.plan ?? job.target.name}: ${what} — ${groups.length === 0 ? job.state : groups.join(', ')}`;
}

/** The job's latest error as text. */
export function jobErrorText(job: JobInfo): string {
  const e = job.errors[job.errors.length - 1];
  return e === undefined ? '' : `: ${e.message}${e.hint === undefined ? '' : ` (${e.hint})`}`;
}

/**
 * Wait until the plan job `id` ends or stops at a failure. Resolves with the
 * job when it Succeeded; throws `pulumi.planJobFailed` (Failed, Cancelled),
 * `pulumi.planJobStopped` (WaitingForAction to be resumed) or
 * `pulumi.deadline`.
 */
export async function waitPlanJob(c: ResolvedConnection, ctx: ProviderContext, vault: string, id: string, deadline: number): Promise<JobInfo> {
  let lastLine = '';
  for (;;) {
    const job = await c.client.getJob(vault, id);
    const line = job.state === 'WaitingForAction' && job.waiting !== undefined ? `${planJobLine(job)}; ${job.waiting.message}` : planJobLine(job);
    if (line !== lastLine) {
      ctx.log(line);
      lastLine = line;
    }
    if (job.state === 'Succeeded') return job;
    if (job.state === 'Failed' || job.state === 'Cancelled') {
      throw new NonRecoverableError('pulumi.planJobFailed', `${job.type} job ${id} ended ${job.state}${jobErrorText(job)}`, {
        hint: `see \`lifeboat jobs show ${id}\`; fix the cause and run \`pulumi up\` again`,
      });
    }
    if (job.state === 'WaitingForAction' && job.waiting?.kind === 'resume') {
      throw new NonRecoverableError('pulumi.planJobStopped', `${job.type} job ${id} stopped: ${job.waiting.message}`, {
        hint: `fix the cause, then \`lifeboat jobs resume ${id}\` (or \`lifeboat jobs cancel ${id}\`) and run \`pulumi up\` again: it goes on from where the plan is`,
      });
    }
    if (ctx.clock.now() + ctx.pollMs > deadline) {
      throw new LifeboatError('pulumi.deadline', 'recoverable', `${job.type} job ${id} did not finish in time: ${line}`, {
        hint: 'the job keeps running in the vault; run `pulumi up` again to go on waiting (raise operationTimeoutMinutes to wait longer)',
      });
    }
    await ctx.clock.sleep(ctx.pollMs);
  }
}
