/** Routes of jobs: list, read, cancel; acknowledge and resume (recovery plans, docs/recovery-plans.md §4, §6). */

import { isState } from '../../../states';
import { VaultError, notFound } from '../../control/vault-error';
import type { ObjectKind } from '../../store/records';
import { commandDetailJson } from '../representation';
import type { Route, RouteContext } from '../route';
import { errors, numberParam, ref, vaultOf } from './helpers';
import { planJobJson as jobJson } from './plan-routes';

/** The job of the path in the request's vault; 404 otherwise. */
function jobOf(ctx: RouteContext): { readonly id: string; readonly vaultName: string } {
  const v = vaultOf(ctx);
  const id = ctx.params.id ?? '';
  const existing = ctx.app.services.store.getJob(id);
  if (existing === undefined || existing.vault !== v.key) throw notFound('job', id);
  return { id, vaultName: v.name };
}


export function jobRoutes(): Route[] {
  return [
    {
      method: 'GET', path: '/v1/vaults/{vault}/jobs', operationId: 'listJobs', summary: 'List jobs, newest first', tags: ['jobs'], auth: 'admin',
      query: [
        { name: 'state', description: 'Only jobs in these states (comma-separated).', schema: { type: 'string' } },
        { name: 'type', description: 'Only jobs of this type, e.g. protection.enable.', schema: { type: 'string' } },
        { name: 'targetKind', description: 'With targetName: only jobs of this object.', schema: { type: 'string' } },
        { name: 'targetName', description: 'With targetKind: only jobs of this object.', schema: { type: 'string' } },
        { name: 'limit', description: 'At most this many (1-1000). Default 100.', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
      ],
      responses: { 200: { description: 'Jobs.', schema: ref('JobList') }, ...errors(400, 401, 404) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const states = (ctx.query.get('state') ?? '').split(',').filter((s) => s !== '');
        const bad = states.find((s) => !isState('job', s));
        if (bad !== undefined) {
          throw new VaultError(400, 'request.invalidQuery', `unknown job state '${bad}'`, {
            details: [{ path: '?state', message: `unknown job state '${bad}'`, allowed: ['NotStarted', 'InProgress', 'WaitingForAction', 'Succeeded', 'Failed', 'Cancelling', 'Cancelled'] }],
          });
        }
        const kind = ctx.query.get('targetKind');
        const name = ctx.query.get('targetName');
        const type = ctx.query.get('type');
        const jobs = ctx.app.services.store.listJobs(v.key, {
          states,
          ...(type === null ? {} : { type }),
          ...(kind !== null && name !== null ? { target: { kind: kind as ObjectKind, name } } : {}),
          limit: numberParam(ctx, 'limit', 100, 1, 1000),
        });
        return { status: 200, body: { items: jobs.map((j) => jobJson(j, v.name)) } };
      },
    },
    {
      method: 'GET', path: '/v1/vaults/{vault}/jobs/{id}', operationId: 'getJob', summary: 'Read a job, with its steps, progress and errors', tags: ['jobs'], auth: 'admin',
      query: [{ name: 'commands', description: 'Also list the commands the job sent to agents.', schema: { type: 'boolean' } }],
      responses: { 200: { description: 'The job.', schema: ref('Job') }, ...errors(401, 404) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const { store } = ctx.app.services;
        const id = ctx.params.id ?? '';
        const record = store.getJob(id);
        if (record === undefined || record.vault !== v.key) throw notFound('job', id);
        const job = jobJson(record, v.name);
        const body = ctx.query.get('commands') === 'true' ? { ...job, commands: store.commandsOfJob(id).map(commandDetailJson) } : job;
        return { status: 200, body };
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/jobs/{id}/cancel', operationId: 'cancelJob', summary: 'Cancel a job',
      description: 'The current step stops, the job\'s commands are withdrawn and its compensation runs (docs/jobs.md says what each job type leaves behind). Cancelling a job that is already cancelling returns it unchanged.',
      tags: ['jobs'], auth: 'admin',
      responses: { 202: { description: 'Cancellation requested; the job is Cancelling (or Cancelled).', schema: ref('Job') }, ...errors(401, 404, 409) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const id = ctx.params.id ?? '';
        const existing = ctx.app.services.store.getJob(id);
        if (existing === undefined || existing.vault !== v.key) throw notFound('job', id);
        const r = ctx.app.engine.requestCancel(id);
        if (r === undefined) throw notFound('job', id);
        if ('refused' in r) throw new VaultError(409, 'job.notCancellable', r.refused, { extra: { job: id } });
        return { status: 202, body: jobJson(ctx.app.services.store.getJob(id)!, v.name) };
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/jobs/{id}/ack', operationId: 'acknowledgeJob', summary: 'Acknowledge the manual action a job waits on',
      description: 'A recovery plan job in WaitingForAction with waiting.kind acknowledgement continues; the comment is kept with the action (docs/recovery-plans.md §6). 409 job.notWaiting when the job waits on no acknowledgement.',
      tags: ['jobs'], auth: 'admin', body: 'job-ack-request', bodyOptional: true,
      responses: { 202: { description: 'Acknowledged; the job is InProgress again.', schema: ref('Job') }, ...errors(400, 401, 404, 409) },
      handle: (ctx) => {
        const { id, vaultName } = jobOf(ctx);
        const comment = (ctx.body as { comment?: string } | undefined)?.comment;
        const r = ctx.app.engine.answerOperator(id, 'acknowledgement', comment === undefined ? {} : { comment });
        if (r === undefined) throw notFound('job', id);
        if ('refused' in r) {
          throw new VaultError(409, 'job.notWaiting', r.refused, {
            extra: { job: id }, hint: r.waiting?.kind === 'resume' ? `the job stopped at a failure: fix it, then lifeboat jobs resume ${id}` : 'only a job waiting at a manual action can be acknowledged (lifeboat jobs show)',
          });
        }
        return { status: 202, body: jobJson(ctx.app.services.store.getJob(id)!, vaultName) };
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/jobs/{id}/resume', operationId: 'resumeJob', summary: 'Resume a job stopped at a failure',
      description: 'A recovery plan job in WaitingForAction with waiting.kind resume continues from the failed step: a failed script runs again, failed VMs get a new item job (docs/recovery-plans.md §4). 409 job.notResumable otherwise.',
      tags: ['jobs'], auth: 'admin',
      responses: { 202: { description: 'Resumed; the job is InProgress again.', schema: ref('Job') }, ...errors(401, 404, 409) },
      handle: (ctx) => {
        const { id, vaultName } = jobOf(ctx);
        const r = ctx.app.engine.answerOperator(id, 'resume');
        if (r === undefined) throw notFound('job', id);
        if ('refused' in r) {
          throw new VaultError(409, 'job.notResumable', r.refused, {
            extra: { job: id }, hint: r.waiting?.kind === 'acknowledgement' ? `it waits at a manual action: lifeboat jobs ack ${id}` : 'only a recovery plan job stopped at a failure can be resumed; start a new job instead',
          });
        }
        return { status: 202, body: jobJson(ctx.app.services.store.getJob(id)!, vaultName) };
      },
    },
  ];
}
