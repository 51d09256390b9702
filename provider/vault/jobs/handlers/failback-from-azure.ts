/**
 * `failback.fromAzure` (docs/azure-failover.md §5): the reprotect of an item
 * that failed over to Azure and committed, done as ASR does a failback in
 * scenario B — back to the original VM on its primary host (or to an
 * alternate host of the same site, input `host`), then protected to Azure
 * again. Started by the reprotect route for items of azure policies
 * (state `FailoverCommitted` → `Reprotecting` → `Protected`).
 *
 * | step | what | commands |
 * |---|---|---|
 * | `checkPrerequisites` | the azure host and the failback host (the source host, or `host`: registered, of the item's site, not the azure role) connected; NICs: the source networks of the Azure mappings; `status.failbackTo` lets the host fetch the storage credentials | — |
 * | `shutDownAzureVm` | fence the Azure-side VM (flush); its written blocks C go into the page blobs as one cycle (head P' = its disk) | `azure.prepareFailback` |
 * | `syncPrimary` | the old VM's disk gets the blob's blocks of U = B ∪ C (checksum compare as the fallback); a host without the VM (alternate, or the VM was deleted) creates it from the whole blob; tracked anew, protection to Azure seeded with a resync; VM unfenced and started; the item's source host is the failback host | `azure.failbackSource` |
 * | `verify` | the seeded resync over U: finds the disk equal to the blob, commits the first point of the new generation | `resync.run` |
 * | `removeAzureVm` | the Azure-side VM, its disks and exports removed | `azure.removeVm` |
 * | `releaseOriginal` | failing back to another host: the old source host drops its record and tracking (best effort; its VM stays fenced) | `replication.disable` |
 * | `complete` | `Protected`, `activeLocation: primary`, `status.failback` | — |
 *
 * An old VM left on the original host by a failback to an alternate host
 * stays fenced (its fence order is not released), and the vault no longer
 * gives that host the item's storage credentials.
 *
 * Idempotent and resumable (commands keyed, each idempotent on its agent).
 * A failure before `syncPrimary` returns the item to `FailoverCommitted` (the
 * Azure-side VM stays fenced: run the job again); after it the primary runs
 * the workload and the item stays `Reprotecting` with `job.failed` (reprotect again).
 */

import { NonRecoverableError, RecoverableError } from '../../../errors';
import { itemStatus, transitionItem, updateItem } from '../../control/item-status';
import type { JsonObject } from '../../store/records';
import { type JobHandler } from '../job-handler';
import { type StepContext } from '../job-handler';
import { azurePayload, azureRemovePayload } from './azure-failover-steps';
import { bestEffortCommand, type ItemContext, isConnected, itemJobHooks, itemPayload, loadItem, networkMappingsFor } from './item-job';

export const failbackFromAzure: JobHandler = {
  type: 'failback.fromAzure',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'checkPrerequisites',
      title: 'Check the Azure side and the primary host',
      async run(ctx) {
        const c = loadItem(ctx);
        const f = c.status.failover;
        if (f?.host === undefined || f.vm === undefined) throw new NonRecoverableError('failover.unknown', `item '${c.item.name}' has no record of its failover VM`, { hint: 'run a failover first' });
        const original = c.status.sourceHost;
        if (original === undefined) throw new NonRecoverableError('failback.noPrimary', `item '${c.item.name}' has no primary host`);
        const primary = failbackHost(ctx, c, typeof ctx.job.input.host === 'string' ? ctx.job.input.host : original);
        for (const h of [f.host, primary]) {
          if (!isConnected(ctx.services.store.getObject(ctx.job.vault, 'host', h))) {
            throw new RecoverableError('host.notConnected', `host ${h} is not connected; failback needs the Azure side and the primary`, {
              hint: h === primary ? `check that the agent on ${h} runs, or fail back to another host of site ${c.spec.site}: lifeboat failback ${c.item.name} --host HOST` : `check that the agent on ${h} runs`,
            });
          }
        }
        const alternate = primary.toLowerCase() !== original.toLowerCase();
        const rolledBack = (c.status as unknown as { azureVm?: { commitRolledBack?: boolean } }).azureVm?.commitRolledBack === true;
        ctx.set({ azureHost: f.host, primary, original, alternate, vmName: f.vm, delta: !rolledBack && !alternate, nics: sourceNics(ctx, c) });
        // The credentials route answers the failback host from here on (it opens the blobs before it is the source host).
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, failbackTo: primary } as typeof s));
      },
    },
    {
      name: 'shutDownAzureVm',
      title: 'Shut the Azure-side VM down and write its changes to the blobs',
      weight: 2,
      async run(ctx) {
        const c = loadItem(ctx);
        const r = await ctx.runCommand('prepareFailback', {
          host: String(ctx.get('azureHost')), type: 'azure.prepareFailback',
          payload: { ...itemPayload(c), vmName: String(ctx.get('vmName')), disks: (c.status.disks ?? []) as unknown as JsonObject[], azure: azurePayload(c), job: ctx.job.id },
        });
        ctx.set({ regions: r.regions ?? {}, azureRegionBytes: Number(r.regionBytes ?? 0) });
        // The old VM will run again: no fence order for it any more. Failing back elsewhere, it stays fenced.
        if (ctx.get('alternate') !== true) updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => (s.failover === undefined ? s : { ...s, failover: { ...s.failover, released: true } }));
      },
    },
    {
      name: 'syncPrimary',
      title: 'Bring the primary VM\'s disk to the blobs\' head (only what changed)',
      weight: 4,
      async run(ctx) {
        const c = loadItem(ctx);
        const site = ctx.services.store.getObject(ctx.job.vault, 'site', c.spec.site);
        const r = await ctx.runCommand('failbackSource', {
          host: String(ctx.get('primary')), type: 'azure.failbackSource',
          payload: {
            ...itemPayload(c), disks: (c.status.disks ?? []) as unknown as JsonObject[], policy: c.policy as unknown as JsonObject, azure: azurePayload(c),
            regions: (ctx.get('regions') ?? {}) as JsonObject, pointGenerations: (c.status.failover?.pointGenerations ?? {}) as JsonObject,
            delta: ctx.get('delta') === true, timeZone: String(site?.spec.timeZone ?? 'UTC'), job: ctx.job.id,
            alternate: ctx.get('alternate') === true, nics: (ctx.get('nics') ?? []) as JsonObject[],
          },
        });
        const primary = String(ctx.get('primary'));
        const failback = {
          job: ctx.job.id, host: primary, delta: r.delta === true, created: r.created === true,
          regionBytes: Number(r.regionBytes ?? 0), bytesReceived: Number(r.bytesReceived ?? 0), comparedBlocks: Number(r.comparedBlocks ?? 0),
        };
        ctx.set({ synced: true });
        // The workload runs there now: it is the item's source host (replication to Azure resumes from it).
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, sourceHost: primary, activeLocation: 'primary', failback } as typeof s));
      },
    },
    {
      name: 'verify',
      title: 'Compare the changed blocks with the blobs; first point of the resumed protection',
      weight: 4,
      async run(ctx) {
        const c = loadItem(ctx);
        await ctx.runCommand('verify', { host: String(ctx.get('primary')), type: 'resync.run', payload: itemPayload(c) });
      },
    },
    {
      name: 'removeAzureVm',
      title: 'Remove the Azure-side VM and its exports',
      async run(ctx) {
        const c = loadItem(ctx);
        await ctx.runCommand('removeAzureVm', { host: String(ctx.get('azureHost')), type: 'azure.removeVm', payload: azureRemovePayload(c, String(ctx.get('vmName'))) });
      },
    },
    {
      name: 'releaseOriginal',
      title: 'Failing back elsewhere: drop the old source host\'s record (its VM stays fenced)',
      async run(ctx) {
        if (ctx.get('alternate') !== true) return;
        const c = loadItem(ctx);
        // Best effort: a host that is away gets a leftovers issue naming it instead.
        await bestEffortCommand(ctx, 'releaseOriginal', String(ctx.get('original')), 'replication.disable', { ...itemPayload(c), deleteLogs: true },
          `the old replication record of item '${c.item.name}' (its VM ${c.spec.vm} stays fenced: delete it when it is no longer needed)`);
      },
    },
    {
      name: 'complete',
      title: 'Protected to Azure again',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.replicationState === 'Reprotecting') {
          transitionItem(ctx.services, ctx.job.vault, c.item.name, 'Protected', `failed back to ${String(ctx.get('primary'))}; replicating to Azure again`, (s) => {
            const { azureVm: _gone, failbackTo: _done, ...rest } = s as typeof s & { azureVm?: unknown; failbackTo?: unknown };
            return { ...rest, activeLocation: 'primary' } as typeof s;
          });
        }
      },
    },
  ],
  ...itemJobHooks(),
  async compensate(ctx) {
    const item = ctx.services.store.getObject(ctx.job.vault, 'protectedItem', ctx.job.target.name);
    if (item === undefined || itemStatus(item).replicationState !== 'Reprotecting') return;
    if (ctx.get('synced') !== true) {
      transitionItem(ctx.services, ctx.job.vault, ctx.job.target.name, 'FailoverCommitted', `job ${ctx.job.id} stopped before the primary took the workload back`, (s) => {
        const { failbackTo: _drop, ...rest } = s as typeof s & { failbackTo?: unknown };
        return rest as typeof s;
      });
    }
  },
};

/**
 * The host to fail back to: registered, of the item's site, not an azure-role
 * host. Throws `NonRecoverableError` `host.notRegistered` or
 * `failback.hostNotInSite`.
 */
function failbackHost(ctx: StepContext, c: ItemContext, name: string): string {
  const h = ctx.services.store.getObject(ctx.job.vault, 'host', name);
  if (h === undefined) {
    throw new NonRecoverableError('host.notRegistered', `host ${name} is not registered in vault ${ctx.job.vault}`, { hint: `fail back to a registered host of site ${c.spec.site} (lifeboat hosts)` });
  }
  if (String(h.spec.site).toLowerCase() !== c.spec.site.toLowerCase()) {
    throw new NonRecoverableError('failback.hostNotInSite', `host ${h.name} is in site ${String(h.spec.site)}, not in site ${c.spec.site} of item '${c.item.name}'`, {
      hint: `fail back to a host of site ${c.spec.site}`,
    });
  }
  return h.name;
}

/** The NICs of the VM on the primary site: each Azure NIC on the source network of its Azure mapping (for a VM the failback creates). */
function sourceNics(ctx: StepContext, c: ItemContext): JsonObject[] {
  const nics = ((c.status as unknown as { azureVm?: { nics?: { name: string; network: string }[] } }).azureVm?.nics ?? []);
  const mappings = networkMappingsFor(ctx.services, ctx.job.vault, c.spec.site, undefined);
  return nics.flatMap((n) => {
    const m = mappings.find((x) => String(x.targetNetwork).toLowerCase() === n.network.toLowerCase());
    return m === undefined ? [] : [{ name: n.name, network: String(m.sourceNetwork) }];
  });
}
