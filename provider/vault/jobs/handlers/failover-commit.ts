/**
 * `failover.commit` (docs/failover.md §3): the failover's point becomes the
 * only point of the replica (older points pruned; if it was not the latest,
 * the replica is rolled back to it, with the VM off meanwhile). Ends
 * `FailoverCommitted`.
 *
 * Idempotent: a second commit finds one point and changes nothing. What a
 * failure leaves behind: the item stays `FailedOver` (with `job.failed`)
 * and its replica either unchanged or committed per disk (each disk's
 * prune or rollback is atomic); commit again.
 */

import type { JobHandler } from '../job-handler';
import { commitFailover } from './failover-steps';
import { itemJobHooks } from './item-job';

export const failoverCommit: JobHandler = {
  type: 'failover.commit',
  targetKind: 'protectedItem',
  steps: [{ name: 'commit', title: 'Commit the failover: discard the other points', run: (ctx) => commitFailover(ctx) }],
  ...itemJobHooks(),
};
