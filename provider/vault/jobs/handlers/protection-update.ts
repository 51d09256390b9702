/**
 * `protection.update`: push changed settings (the item's policy or target VM
 * settings) to the hosts of an item that replicates: `replication.configure`
 * to the source host, `replica.configure` to the recovery host. Input
 * `credentialsChanged` (a policy PUT gave a new storage key or connection
 * string): the source host re-opens the item's blobs with it
 * (`reopenStorage`); the azure host opens them per command and needs no
 * word.
 *
 * Idempotent: it sends the current settings, whatever changed; running it
 * twice is harmless. What a failure leaves behind: hosts that did not take
 * the change keep the previous settings; the item gets a Critical
 * `job.failed` issue; PUT the item (or the policy) again to retry.
 */

import { parseSiteRef } from '../../control/specs';
import type { JsonObject } from '../../store/records';
import type { JobHandler } from '../job-handler';
import { itemJobHooks, itemPayload, loadItem, networkMappingsFor } from './item-job';

export const protectionUpdate: JobHandler = {
  type: 'protection.update',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'configureSource',
      title: 'Apply the settings on the source host',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.sourceHost === undefined || c.status.replicationState === 'NotProtected') return 'skipped';
        await ctx.runCommand('configure', {
          host: c.status.sourceHost,
          type: 'replication.configure',
          payload: {
            ...itemPayload(c), policy: c.policy as unknown as JsonObject, targetVm: (c.spec.targetVm ?? {}) as JsonObject,
            ...(ctx.job.input.credentialsChanged === true ? { reopenStorage: true } : {}),
          },
        });
        return undefined;
      },
    },
    {
      name: 'configureReplica',
      title: 'Apply the settings on the recovery host',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.targetHost === undefined || c.status.replicationState === 'NotProtected') return 'skipped';
        const targetSite = ctx.services.store.getObject(ctx.job.vault, 'host', c.status.targetHost)?.spec.site;
        await ctx.runCommand('configure', {
          host: c.status.targetHost,
          type: 'replica.configure',
          payload: {
            ...itemPayload(c), policy: c.policy as unknown as JsonObject, targetVm: (c.spec.targetVm ?? {}) as JsonObject,
            networkMappings: networkMappingsFor(ctx.services, ctx.job.vault, c.spec.site, typeof targetSite === 'string' ? parseSiteRef(targetSite).site : undefined),
          },
        });
        return undefined;
      },
    },
  ],
  ...itemJobHooks(),
};
