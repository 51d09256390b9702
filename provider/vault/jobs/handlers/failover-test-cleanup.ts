/**
 * `failover.testCleanup` (docs/failover.md §3): turn the test VM off and
 * delete it with its overlays and guest journals; clear
 * `status.testFailover`. The replica was never written, so nothing else is
 * left.
 *
 * Idempotent: a VM already gone is not an error. What a failure leaves
 * behind: the VM, still recorded; clean up again.
 */

import { updateItem } from '../../control/item-status';
import type { JobHandler } from '../job-handler';
import { removeFailoverVm } from './failover-steps';
import { itemJobHooks, loadItem } from './item-job';

export const failoverTestCleanup: JobHandler = {
  type: 'failover.testCleanup',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'removeTestVm',
      title: 'Remove the test VM',
      async run(ctx) {
        const c = loadItem(ctx);
        const t = c.status.testFailover;
        if (t === undefined) return 'skipped';
        await removeFailoverVm(ctx, t.host, t.vm);
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => {
          const { testFailover: _drop, ...rest } = s;
          return rest;
        });
        return undefined;
      },
    },
  ],
  ...itemJobHooks(),
};
