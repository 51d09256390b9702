/**
 * `protection.reprotect` (reverse replication; docs/failover.md §7): the old
 * primary becomes the replica of the host where the workload now runs,
 * without a full copy. The old primary hands its fenced VM's disk to its
 * replica store and reports the blocks its VM wrote after the failover point
 * (its unshipped log); the running side moves its failover VM onto a plain
 * tracked disk and seeds the reverse replication with the union of those
 * blocks, the blocks the old primary had shipped after the point (recorded at
 * commit) and the blocks the failover VM wrote (its overlay); a block
 * compare of only those blocks (`resync.run`) brings the replica in step.
 * Without those records every block is compared instead. Ends `Protected`
 * with the hosts swapped; `activeLocation` stays where the workload runs.
 *
 * Idempotent and resumable: each agent command keeps a record of what it did
 * and answers it again. What a failure or a cancellation leaves behind:
 * before the hosts are swapped the item returns to `FailoverCommitted` (the
 * old primary's disk may already be its replica store's: reprotect again);
 * after it, the item stays `Reprotecting` with `job.failed` until reprotect
 * runs again.
 */

import { NonRecoverableError } from '../../../errors';
import { itemStatus, transitionItem, updateItem } from '../../control/item-status';
import type { JsonObject } from '../../store/records';
import { dataString, type JobHandler } from '../job-handler';
import { failoverHosts } from './failover-steps';
import { itemJobHooks, itemPayload, loadItem } from './item-job';

export const protectionReprotect: JobHandler = {
  type: 'protection.reprotect',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'checkPrerequisites',
      title: 'Check both hosts',
      async run(ctx) {
        const c = loadItem(ctx);
        const f = c.status.failover;
        if (f?.host === undefined || f.vm === undefined) throw new NonRecoverableError('failover.unknown', `item '${c.item.name}' has no record of its failover VM`, { hint: 'run a failover first' });
        // The old primary must answer: its disk becomes the replica.
        const hosts = failoverHosts(ctx, c, true);
        ctx.set({ oldPrimary: hosts.source, newSource: f.host, vm: f.vm });
      },
    },
    {
      name: 'prepareReplica',
      title: 'Make the old primary\'s disk the replica',
      weight: 2,
      async run(ctx) {
        const c = loadItem(ctx);
        const r = await ctx.runCommand('prepareReplica', {
          host: String(ctx.get('oldPrimary')),
          type: 'reprotect.prepareReplica',
          payload: {
            ...itemPayload(c), vm: c.spec.vm, disks: (c.status.disks ?? []) as unknown as JsonObject[], policy: c.policy as unknown as JsonObject,
            sourceHost: String(ctx.get('newSource')), pointGenerations: (c.status.failover?.pointGenerations ?? {}) as JsonObject, job: ctx.job.id,
          },
        });
        ctx.set({ endpoint: r.endpoint ?? null, extents: r.extents ?? {} });
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => (s.failover === undefined ? s : { ...s, failover: { ...s.failover, released: true } }));
      },
    },
    {
      name: 'prepareSource',
      title: 'Track the running VM and seed the reverse replication',
      weight: 2,
      async run(ctx) {
        const c = loadItem(ctx);
        const oldPrimary = String(ctx.get('oldPrimary'));
        const newSource = String(ctx.get('newSource'));
        const ep = ctx.get('endpoint') as { address?: string; port?: number } | null;
        if (ep?.address === undefined || ep.port === undefined) throw new NonRecoverableError('reprotect.noEndpoint', `host ${oldPrimary} did not report a replication endpoint`);
        const site = ctx.services.store.getObject(ctx.job.vault, 'site', String(ctx.services.store.getObject(ctx.job.vault, 'host', newSource)?.spec.site ?? ''));
        const r = await ctx.runCommand('prepareSource', {
          host: newSource,
          type: 'reprotect.prepareSource',
          payload: {
            ...itemPayload(c), vm: dataString(ctx.get('vm')) ?? c.spec.vm, disks: (c.status.disks ?? []) as unknown as JsonObject[], policy: c.policy as unknown as JsonObject,
            target: { kind: 'host', host: oldPrimary, address: ep.address, port: ep.port, serverName: oldPrimary },
            timeZone: String(site?.spec.timeZone ?? 'UTC'), extents: (ctx.get('extents') ?? {}) as JsonObject, job: ctx.job.id,
          },
        });
        ctx.set({ regionBytes: Number(r.regionBytes ?? 0), delta: r.delta === true });
        // The reverse direction: reports of the new source count from now on.
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({
          ...s, sourceHost: newSource, targetHost: oldPrimary,
          reprotect: { job: ctx.job.id, delta: r.delta === true, regionBytes: Number(r.regionBytes ?? 0) },
        }));
      },
    },
    {
      name: 'sync',
      title: 'Compare and send the blocks that can differ',
      weight: 10,
      async run(ctx) {
        const c = loadItem(ctx);
        await ctx.runCommand('sync', { host: String(ctx.get('newSource')), type: 'resync.run', payload: itemPayload(c) }, (percent, message) => {
          updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, statistics: { ...(s.statistics ?? {}), resyncPercent: percent, ...(message === undefined ? {} : { resyncMessage: message }) } }));
        });
      },
    },
    {
      name: 'complete',
      title: 'Protected in the reverse direction',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.replicationState === 'Reprotecting') {
          transitionItem(ctx.services, ctx.job.vault, c.item.name, 'Protected', `replicating from ${String(ctx.get('newSource'))} to ${String(ctx.get('oldPrimary'))}`);
        }
      },
    },
  ],
  ...itemJobHooks(),
  async compensate(ctx) {
    const item = ctx.services.store.getObject(ctx.job.vault, 'protectedItem', ctx.job.target.name);
    if (item === undefined || itemStatus(item).replicationState !== 'Reprotecting') return;
    if (ctx.get('regionBytes') === undefined) {
      transitionItem(ctx.services, ctx.job.vault, ctx.job.target.name, 'FailoverCommitted', `job ${ctx.job.id} stopped before the reverse replication was set up`);
    }
  },
};
