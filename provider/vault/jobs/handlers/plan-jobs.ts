/**
 * The recovery plan jobs (docs/recovery-plans.md): `plan.failover` (test,
 * planned or unplanned, in either direction, with the groups' actions),
 * `plan.commit`, `plan.testCleanup` and `plan.reprotect`. Each has one step,
 * `runGroups` (plan-run.ts): groups in order, one child item job per VM of a
 * group in parallel.
 *
 * Idempotent and resumable: child job ids, script commands and operator
 * answers are kept in the job's data, so a resumed job waits for the same
 * ones. A failed script or VM does not fail the job: it waits in
 * `WaitingForAction` for resume or cancel. What a cancellation leaves
 * behind: the unfinished child jobs are cancelled (each compensates as
 * docs/failover.md §3 says) and awaited; items that already failed over
 * stay failed over. The job fails only on an unexpected error (a bug), with
 * the same compensation.
 */

import { updatePlan } from '../../control/plans';
import type { HookContext, JobHandler } from '../job-handler';
import { compensatePlan, runPlanGroups } from './plan-run';
import { startPlanTestExpiry } from './plan-test-expiry';

function planHandler(type: string, title: string): JobHandler {
  return {
    type,
    targetKind: 'recoveryPlan',
    steps: [{ name: 'runGroups', title, weight: 1, run: (ctx) => runPlanGroups(ctx) }],
    compensate: (ctx) => compensatePlan(ctx),
    onEnded: ({ services, job }: HookContext) => {
      updatePlan(services, job.vault, job.target.name, (s) => {
        const { activeJob: _drop, testFailover, ...rest } = s;
        // A test failover ends with the cleanup that succeeded, not before.
        const keep = type === 'plan.testCleanup' && job.state === 'Succeeded' ? undefined : testFailover;
        return { ...rest, ...(keep === undefined ? {} : { testFailover: keep }), lastJob: { id: job.id, type: job.type, state: job.state } };
      });
    },
  };
}

export const planFailover: JobHandler = {
  ...planHandler('plan.failover', 'Fail the groups over in order'),
  onEngineStart: (ctx) => startPlanTestExpiry(ctx),
};
export const planCommit: JobHandler = planHandler('plan.commit', 'Commit the failover of each group\'s VMs');
export const planTestCleanup: JobHandler = planHandler('plan.testCleanup', 'Remove the test VMs of each group');
export const planReprotect: JobHandler = planHandler('plan.reprotect', 'Reprotect each group\'s VMs');
