/**
 * `failover.unplanned` (docs/failover.md §3): the source may be gone, so no
 * command goes to it. Starts the VM at the recovery host from the chosen
 * point (`input.point`: latest, latestAppConsistent or a time). From
 * `FailedOver` it changes the point: the failover VM is removed (with what
 * it wrote) and started again from the new point; the replica keeps every
 * point until commit. The returning source is fenced by the vault
 * (`fenceOrdersFor`).
 *
 * Idempotent and resumable (commands under stable keys). What a failure or a
 * cancellation leaves behind: before a VM started, the item returns to
 * `Protected` if it started there, else `ResynchronizationRequired` (a point
 * change that failed after removing the old VM leaves no VM: fail over
 * again); once the VM started, the item is `FailedOver`.
 */

import type { JobHandler } from '../job-handler';
import { checkPrerequisites, compensateFailover, removeFailoverVm, startFailoverVm } from './failover-steps';
import { itemJobHooks, loadItem } from './item-job';

export const failoverUnplanned: JobHandler = {
  type: 'failover.unplanned',
  targetKind: 'protectedItem',
  steps: [
    { name: 'checkPrerequisites', title: 'Check the recovery host and network mappings', run: async (ctx) => checkPrerequisites(ctx, false, false) },
    {
      name: 'removeOldVm',
      title: 'Remove the failover VM of the previous point',
      async run(ctx) {
        if (ctx.job.input.from !== 'FailedOver') return 'skipped';
        const f = loadItem(ctx).status.failover;
        if (f?.host === undefined || f.vm === undefined) return 'skipped';
        await removeFailoverVm(ctx, f.host, f.vm);
        return undefined;
      },
    },
    { name: 'startVm', title: 'Start the VM at the recovery site', weight: 2, run: (ctx) => startFailoverVm(ctx, false) },
  ],
  ...itemJobHooks(),
  compensate: (ctx) => compensateFailover(ctx),
};
