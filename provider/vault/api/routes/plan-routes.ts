/**
 * Routes of recovery plans (docs/recovery-plans.md §2): failover (test,
 * planned, unplanned, either direction), commit, test cleanup, reprotect.
 * Each answers 202 with the plan job it started; 404 for an unknown plan or
 * item; 409 when a job runs the plan or owns one of its items, when the
 * direction cannot be derived (`plan.mixedLocation`), when items are not
 * ready (`plan.itemsNotReady`) or nothing applies (`plan.nothingToDo`).
 * Also the job representation with the plan record (`planJobJson`).
 */

import { requestPlanOperation, type PlanFailoverRequest, type PlanOperation } from '../../control/plans';
import type { JobRecord, JsonObject } from '../../store/records';
import { OPERATOR_WAIT_KEY } from '../../jobs/engine';
import { planRecordOf } from '../../jobs/handlers/plan-run';
import { armPlanTestExpiry } from '../../jobs/handlers/plan-test-expiry';
import { iso } from '../../control/services';
import { jobJson } from '../representation';
import type { Route, RouteContext, RouteResult } from '../route';
import { checkName, errors, ref, vaultOf } from './helpers';

/**
 * A job as the API shows it, with `plan` (a plan job's record) and
 * `waiting` (what a `WaitingForAction` job waits on) when they apply.
 */
export function planJobJson(j: JobRecord, vaultName: string): JsonObject {
  const json = jobJson(j, vaultName);
  const wait = j.state === 'WaitingForAction' ? j.data[OPERATOR_WAIT_KEY] as JsonObject | undefined : undefined;
  return {
    ...json,
    ...(j.target.kind === 'recoveryPlan' ? { plan: planRecordOf(j) as unknown as JsonObject } : {}),
    ...(wait === undefined ? {} : {
      waiting: {
        kind: wait.kind ?? 'acknowledgement', message: wait.message ?? '', ...(typeof wait.since === 'number' ? { since: iso(wait.since) } : {}),
        ...(typeof wait.details === 'object' && wait.details !== null ? wait.details as JsonObject : {}),
      },
    }),
  };
}

function start(ctx: RouteContext, op: PlanOperation, request: Partial<PlanFailoverRequest> = {}): RouteResult {
  const v = vaultOf(ctx);
  const plan = checkName(ctx, 'plan');
  const job = requestPlanOperation(ctx.app.services, ctx.app.engine, v.key, plan, op, request);
  ctx.app.engine.kick(job.id);
  if (request.expiresAfterSeconds !== undefined) armPlanTestExpiry(ctx.app.services, v.key, plan);
  return { status: 202, body: planJobJson(job, v.name) };
}

const jobAnswer = { 202: { description: 'The plan job (its `plan` field lists the groups, actions and VMs).', schema: ref('Job') }, ...errors(401, 404, 409) };

/** Every recovery plan route. */
export function planRoutes(): Route[] {
  const base = '/v1/vaults/{vault}/recoveryPlans/{plan}';
  return [
    {
      method: 'POST', path: `${base}/failover`, operationId: 'failoverRecoveryPlan', summary: 'Fail a recovery plan over',
      description: 'Starts plan.failover: groups in order, the VMs of a group in parallel (one failover.test, failover.planned or failover.unplanned job each), the groups\' scripts and manual actions before and after. Direction derived from the items unless given (docs/recovery-plans.md §2).',
      tags: ['recoveryPlans'], auth: 'admin', body: 'plan-failover-request',
      responses: { ...jobAnswer, ...errors(400) },
      handle: (ctx) => start(ctx, 'failover', ctx.body as PlanFailoverRequest),
    },
    {
      method: 'POST', path: `${base}/commit`, operationId: 'commitRecoveryPlan', summary: 'Commit the failover of a recovery plan',
      description: 'Starts plan.commit: failover.commit for every FailedOver item of the plan, group by group; the others are skipped.',
      tags: ['recoveryPlans'], auth: 'admin', responses: jobAnswer,
      handle: (ctx) => start(ctx, 'commit'),
    },
    {
      method: 'POST', path: `${base}/testCleanup`, operationId: 'cleanUpRecoveryPlanTestFailover', summary: 'Clean up the test failover of a recovery plan',
      description: 'Starts plan.testCleanup: failover.testCleanup for every item of the plan with a test VM; clears status.testFailover once it succeeded.',
      tags: ['recoveryPlans'], auth: 'admin', responses: jobAnswer,
      handle: (ctx) => start(ctx, 'testCleanup'),
    },
    {
      method: 'POST', path: `${base}/reprotect`, operationId: 'reprotectRecoveryPlan', summary: 'Reprotect the items of a recovery plan',
      description: 'Starts plan.reprotect: protection.reprotect (failback.fromAzure for azure items) for every FailoverCommitted item of the plan. Failback of a plan is a planned failover toPrimary, a commit and a reprotect.',
      tags: ['recoveryPlans'], auth: 'admin', responses: jobAnswer,
      handle: (ctx) => start(ctx, 'reprotect'),
    },
  ];
}
