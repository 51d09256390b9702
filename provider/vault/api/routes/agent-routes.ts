/**
 * The agent-facing routes: registration (with the vault registration key),
 * then, with the host's own agent token: heartbeat, long-poll for commands,
 * reports on commands, and reports on items. Agents connect out to the vault
 * only; the vault never connects to an agent.
 */

import { fenceOrdersFor } from '../../control/failovers';
import { applyCommandUpdate, nextLeaseExpiry, takeCommands, type CommandUpdate } from '../../control/commands';
import { recordContact, registerHost, type HeartbeatBody, type RegistrationRequest } from '../../control/hosts';
import { topics } from '../../control/notifier';
import { applyReport, type ItemReport } from '../../control/protected-items';
import { iso } from '../../control/services';
import { VaultError } from '../../control/vault-error';
import { vaultSettings } from '../../control/vaults';
import { itemCredentialsFor } from '../../control/item-credentials';
import type { JsonObject } from '../../store/records';
import { commandJson } from '../representation';
import type { Route } from '../route';
import { errors, numberParam, ref, vaultOf } from './helpers';

export function agentRoutes(): Route[] {
  return [
    {
      method: 'POST', path: '/v1/vaults/{vault}/registrations', operationId: 'registerHost', summary: 'Register a host (agents)',
      description: 'Authorised by the vault registration key as bearer token. Answers the host\'s agent token (shown once), its certificate issued by the vault CA, and the CA certificate. Registering again replaces the host\'s token and certificate.',
      tags: ['agents'], auth: 'registrationKey', body: 'host-registration',
      responses: { 201: { description: 'Registered.', schema: ref('RegistrationResponse') }, ...errors(400, 401, 409) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        return { status: 201, body: registerHost(ctx.app.services, v.key, ctx.body as RegistrationRequest) };
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/hosts/{host}/heartbeat', operationId: 'heartbeat', summary: 'Heartbeat (agents)',
      description: 'Every heartbeat interval. Carries the inventory (VMs and disks), the room for replicas and the replication endpoint. Any agent request also counts as a sign of life.',
      tags: ['agents'], auth: 'agent', body: 'heartbeat', bodyOptional: true,
      responses: { 200: { description: 'Accepted.', schema: ref('HeartbeatResponse') }, ...errors(400, 401) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const host = recordContact(ctx.app.services, v.key, ctx.params.host ?? '', (ctx.body ?? {}) as HeartbeatBody);
        const pending = ctx.app.services.store.commandsOfHost(v.key, host.name, ['Pending']).length;
        return {
          status: 200,
          body: {
            heartbeatIntervalSeconds: vaultSettings(v.object).heartbeatIntervalMs / 1000,
            serverTime: iso(ctx.app.services.clock.now()),
            pendingCommands: pending,
            connectionState: host.status.connectionState ?? 'Connected',
            fence: fenceOrdersFor(ctx.app.services, v.key, host.name),
          },
        };
      },
    },
    {
      method: 'GET', path: '/v1/vaults/{vault}/hosts/{host}/commands', operationId: 'pollCommands', summary: 'Long-poll for commands (agents)',
      description: 'Returns the host\'s deliverable commands, waiting up to `wait` seconds for one to arrive. A delivered command must be acknowledged (report Running) or finished within the command lease, else it is delivered again: agents treat a known command id as the same command.',
      tags: ['agents'], auth: 'agent',
      query: [{ name: 'wait', description: 'Seconds to wait for a command (0-60; default 30). Keep it at most the heartbeat interval.', schema: { type: 'number', minimum: 0, maximum: 60 } }],
      responses: { 200: { description: 'Commands (possibly none).', schema: ref('CommandList') }, ...errors(400, 401) },
      handle: async (ctx) => {
        const v = vaultOf(ctx);
        const { services } = ctx.app;
        const host = ctx.params.host ?? '';
        const waitMs = Math.min(numberParam(ctx, 'wait', 30, 0, 60) * 1000, services.timings.maxLongPollMs);
        recordContact(services, v.key, host);
        const deadline = services.clock.now() + waitMs;
        let commands = takeCommands(services, v.key, host);
        while (commands.length === 0) {
          const left = deadline - services.clock.now();
          if (left <= 0) break;
          const lease = nextLeaseExpiry(services, v.key, host);
          await services.notifier.wait([topics.hostCommands(v.key, host)], services.clock, Math.min(left, lease === undefined ? left : Math.max(lease, 1)), ctx.signal);
          commands = takeCommands(services, v.key, host);
        }
        if (waitMs > 0) recordContact(services, v.key, host);
        return { status: 200, body: { commands: commands.map(commandJson), serverTime: iso(services.clock.now()) } };
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/hosts/{host}/commands/{id}', operationId: 'reportCommand', summary: 'Report on a command (agents)',
      description: 'Running (acknowledge, progress; extends the lease), Succeeded with a result, or Failed with an error. Repeating a final report is accepted; a different final report for a finished command is refused (409). The answer says whether the vault withdrew the command (then stop it).',
      tags: ['agents'], auth: 'agent', body: 'command-update',
      responses: { 200: { description: 'Recorded.', schema: ref('CommandReportResponse') }, ...errors(400, 401, 404, 409) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const host = ctx.params.host ?? '';
        const id = ctx.params.id ?? '';
        recordContact(ctx.app.services, v.key, host);
        const r = applyCommandUpdate(ctx.app.services, v.key, host, id, ctx.body as CommandUpdate);
        switch (r.kind) {
          case 'notFound':
            throw new VaultError(404, 'object.notFound', `host ${host} has no command ${id}`);
          case 'conflict':
            throw new VaultError(409, 'command.alreadyFinished', `command ${id} already finished as ${r.command.state}`, { extra: { state: r.command.state } });
          default:
            return { status: 200, body: { id, state: r.command.state, cancelRequested: r.kind === 'cancelled' } };
        }
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/hosts/{host}/reports', operationId: 'reportItems', summary: 'Report item state, health, RPO and statistics (agents)',
      description: 'Each entry updates one protected item the host replicates. Replication states are taken from the source host only, through the state table; refused entries are listed in the answer (the rest still apply).',
      tags: ['agents'], auth: 'agent', body: 'agent-report',
      responses: { 200: { description: 'What was accepted and refused.', schema: ref('ReportResponse') }, ...errors(400, 401) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const host = ctx.params.host ?? '';
        recordContact(ctx.app.services, v.key, host);
        const body = ctx.body as { items: ItemReport[] };
        return { status: 200, body: applyReport(ctx.app.services, v.key, host, body.items) };
      },
    },
    {
      method: 'POST', path: '/v1/vaults/{vault}/hosts/{host}/items/{item}/storageCredentials', operationId: 'itemStorageCredentials', summary: 'Storage account credentials of an item of an azure policy (agents)',
      description: 'Answers the storage account, container, endpoint and key (or connection string) of the item\'s azure policy, to the host that replicates the item or runs its failed-over VM only. The only answer of the API that carries these secrets; agents keep them in memory.',
      tags: ['agents'], auth: 'agent',
      responses: { 200: { description: 'The credentials.' }, ...errors(401, 403, 404, 409) },
      handle: (ctx) => {
        const v = vaultOf(ctx);
        const host = ctx.params.host ?? '';
        recordContact(ctx.app.services, v.key, host);
        return { status: 200, body: itemCredentialsFor(ctx.app.services, v.key, host, ctx.params.item ?? '') as unknown as JsonObject };
      },
    },
  ];
}
