/**
 * Routes of the failover operations of one protected item (docs/failover.md
 * §3): failover (test, planned, unplanned; an unplanned
 * failover of a FailedOver item changes its point), commit, and test
 * cleanup, reprotect. Each answers 202 with the job it started; 404 for an unknown
 * item; 409 when another job owns the item or its state refuses the
 * operation (the error names the state).
 */

import type { JsonObject } from '../../store/records';
import { type FailoverOperation, requestFailover } from '../../control/failovers';
import { jobJson } from '../representation';
import type { Route, RouteContext, RouteResult } from '../route';
import { checkName, errors, ref, vaultOf } from './helpers';

function start(ctx: RouteContext, op: FailoverOperation, input: JsonObject = {}): RouteResult {
  const v = vaultOf(ctx);
  const job = requestFailover(ctx.app.services, ctx.app.engine, v.key, checkName(ctx, 'name'), op, input);
  ctx.app.engine.kick(job.id);
  return { status: 202, body: jobJson(job, v.name) };
}

const jobAnswer = { 202: { description: 'The job.', schema: ref('Job') }, ...errors(401, 404, 409) };

/** Every failover route. */
export function failoverRoutes(): Route[] {
  return [
    {
      method: 'POST', path: '/v1/vaults/{vault}/protectedItems/{name}/failover', operationId: 'failoverProtectedItem', summary: 'Start a failover',
      description: 'Starts failover.test, failover.planned or failover.unplanned (docs/failover.md §3). An unplanned failover of a FailedOver item changes its recovery point.',
      tags: ['protectedItems'], auth: 'admin', body: 'failover-request',
      responses: { ...jobAnswer, ...errors(400) },
      handle: (ctx) => {
        const body = ctx.body as { type: 'test' | 'planned' | 'unplanned'; point?: string; checkData?: boolean };
        return start(ctx, body.type, { ...(body.point === undefined ? {} : { point: body.point }), ...(body.type === 'test' && body.checkData === true ? { checkData: true } : {}) });
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/protectedItems/{name}/commit', operationId: 'commitFailover', summary: 'Commit a failover',
      description: 'Starts failover.commit for a FailedOver item: its point becomes the only one.',
      tags: ['protectedItems'], auth: 'admin', responses: jobAnswer,
      handle: (ctx) => start(ctx, 'commit'),
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/protectedItems/{name}/reprotect', operationId: 'reprotectProtectedItem', summary: 'Reprotect (reverse replication)',
      description: 'Starts protection.reprotect for a FailoverCommitted item: the old primary becomes the replica, brought in step by comparing only the blocks written on either side since the failover point. Failback is a planned failover of the reprotected item, a commit and a reprotect again. For an item of an azure policy it starts failback.fromAzure, to the item\'s source host or to the body\'s `host` of the same site.',
      tags: ['protectedItems'], auth: 'admin', body: 'reprotect-request', bodyOptional: true, responses: { ...jobAnswer, ...errors(400) },
      handle: (ctx) => {
        const host = (ctx.body as { host?: string } | undefined)?.host;
        return start(ctx, 'reprotect', host === undefined ? {} : { host });
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/protectedItems/{name}/cancelFailover', operationId: 'cancelFailover', summary: 'Cancel an uncommitted failover',
      description: 'Starts failover.cancel for a FailedOver item: the failover VM is removed, the source VM unfenced and replication resumed from it; the item ends ResynchronizationRequired (docs/failover.md §3).',
      tags: ['protectedItems'], auth: 'admin', responses: jobAnswer,
      handle: (ctx) => start(ctx, 'cancel'),
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/protectedItems/{name}/testCleanup', operationId: 'cleanUpTestFailover', summary: 'Clean up a test failover',
      description: 'Starts failover.testCleanup: the test VM and everything it created are removed.',
      tags: ['protectedItems'], auth: 'admin', responses: jobAnswer,
      handle: (ctx) => start(ctx, 'testCleanup'),
    },
  ];
}
