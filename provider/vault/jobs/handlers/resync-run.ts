/**
 * `resync.run`: resynchronise an item that needs it (or that an operator
 * wants checked): both sides hash their blocks, only differing blocks are
 * sent (DESIGN.md §3.5), then delta replication resumes.
 *
 * Idempotent and resumable: the source agent keeps the resync cursor, so a
 * resumed or repeated `resync.run` command continues where it stopped.
 * What a failure or a cancellation leaves behind: the item returns to
 * ResynchronizationRequired with its cursor kept (and a Critical
 * `job.failed` issue on failure); request the resync again to continue, or
 * let the policy's automatic resync window start it.
 */

import { transitionItem, updateItem } from '../../control/item-status';
import type { JobHandler } from '../job-handler';
import { itemJobHooks, itemPayload, loadItem } from './item-job';

export const resyncRun: JobHandler = {
  type: 'resync.run',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'start',
      title: 'Start resynchronisation',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.replicationState === 'ResynchronizationRequired') {
          transitionItem(ctx.services, ctx.job.vault, c.item.name, 'Resynchronizing', 'started by an operator');
        }
        return undefined;
      },
    },
    {
      name: 'resync',
      title: 'Compare and copy differing blocks',
      weight: 20,
      async run(ctx) {
        const c = loadItem(ctx);
        await ctx.runCommand('resync', { host: c.status.sourceHost!, type: 'resync.run', payload: itemPayload(c) }, (percent, message) => {
          updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, statistics: { ...(s.statistics ?? {}), resyncPercent: percent, ...(message === undefined ? {} : { resyncMessage: message }) } }));
        });
        return undefined;
      },
    },
    {
      name: 'complete',
      title: 'Resume delta replication',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.replicationState === 'Resynchronizing') {
          transitionItem(ctx.services, ctx.job.vault, c.item.name, 'Protected', 'resync finished; delta replication resumes');
        }
        return undefined;
      },
    },
  ],
  ...itemJobHooks(),
  async compensate(ctx) {
    const item = ctx.services.store.getObject(ctx.job.vault, 'protectedItem', ctx.job.target.name);
    if ((item?.status as { replicationState?: string } | undefined)?.replicationState === 'Resynchronizing') {
      transitionItem(ctx.services, ctx.job.vault, ctx.job.target.name, 'ResynchronizationRequired', `job ${ctx.job.id} stopped; the resync cursor is kept`);
    }
  },
};
