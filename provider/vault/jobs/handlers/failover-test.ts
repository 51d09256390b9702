/**
 * `failover.test` (docs/failover.md §3): a disposable VM `<vm>-test` on the
 * recovery host, on copy-on-write overlays over the chosen point's view,
 * attached to the mapped test networks. The replication state does not
 * change and replication keeps running; the replica is never written.
 *
 * Idempotent (the agent returns the same VM for the same request). What a
 * failure or a cancellation leaves behind: the compensation removes the test
 * VM if its host is connected (else `protectedItem.leftovers` names it) and
 * clears `status.testFailover`.
 */

import { updateItem } from '../../control/item-status';
import type { JobHandler } from '../job-handler';
import { bestEffortCommand, itemJobHooks, itemPayload, loadItem } from './item-job';
import { azureRemovePayload, azureVmName, isAzureItem } from './azure-failover-steps';
import { checkPrerequisites, startFailoverVm } from './failover-steps';
import { checkTestVmDisks } from './failover-test-check';

export const failoverTest: JobHandler = {
  type: 'failover.test',
  targetKind: 'protectedItem',
  steps: [
    { name: 'checkPrerequisites', title: 'Check the recovery host and test network mappings', run: async (ctx) => checkPrerequisites(ctx, false, true) },
    { name: 'startTestVm', title: 'Start the test VM', weight: 2, run: (ctx) => startFailoverVm(ctx, true) },
    { name: 'checkDisks', title: 'Compare the test VM\'s disks with the recovery point (checkData)', weight: 2, run: (ctx) => checkTestVmDisks(ctx) },
  ],
  ...itemJobHooks(),
  async compensate(ctx) {
    const c = loadItem(ctx);
    const target = ctx.get('target');
    if (typeof target === 'string') {
      const vmName = isAzureItem(c) ? azureVmName(c, true) : `${c.spec.vm}-test`;
      // An azure test VM goes with its downloaded disks and its exports.
      const [type, payload] = isAzureItem(c) ? ['azure.removeVm', azureRemovePayload(c, vmName)] : ['failover.removeVm', { ...itemPayload(c), vmName }];
      await bestEffortCommand(ctx, 'removeTestVm', target, type, payload, `test VM ${vmName}`);
    }
    updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => {
      const { testFailover: _drop, ...rest } = s;
      return rest;
    });
  },
};
