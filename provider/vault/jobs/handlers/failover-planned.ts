/**
 * `failover.planned` (docs/failover.md §3): check both hosts and the network
 * mappings, fence the source VM and ship its last log (no acknowledged
 * flushed write is lost), then start the VM at the recovery host from
 * exactly the points that log ended in. Ends `FailedOver` with
 * `activeLocation: recovery`.
 *
 * Idempotent and resumable: each command is idempotent on its agent and
 * kept under its key. What a failure or a cancellation leaves behind: before
 * the recovery VM started, the source is unfenced and resumes replicating
 * (best effort; a disconnected source is named in `protectedItem.leftovers`)
 * and the item returns to `Protected` (or `ResynchronizationRequired` if it
 * started there); after it, the item is `FailedOver`.
 */

import type { JobHandler } from '../job-handler';
import { checkPrerequisites, compensateFailover, shutDownSource, startFailoverVm } from './failover-steps';
import { itemJobHooks } from './item-job';

export const failoverPlanned: JobHandler = {
  type: 'failover.planned',
  targetKind: 'protectedItem',
  steps: [
    { name: 'checkPrerequisites', title: 'Check hosts and network mappings', run: async (ctx) => checkPrerequisites(ctx, true, false) },
    { name: 'shutDownSource', title: 'Shut the source VM down and ship its last log', weight: 5, run: (ctx) => shutDownSource(ctx) },
    { name: 'startVm', title: 'Start the VM at the recovery site', weight: 2, run: (ctx) => startFailoverVm(ctx, false) },
  ],
  ...itemJobHooks(),
  compensate: (ctx) => compensateFailover(ctx),
};
