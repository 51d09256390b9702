/**
 * `protection.disable`: stop replication on the source host (tracking stops,
 * its logs are deleted), delete or keep the replica as the policy's
 * `deleteReplicaOnDisable` says, then remove the item (NotProtected, then
 * gone, with its recovery points).
 *
 * Idempotent: every step is safe to run again; DELETE of the item while the
 * job runs returns the same job. With `force` (DELETE ?force=true), steps
 * whose host is not connected are skipped and what they would have removed
 * is named in a `protectedItem.leftovers` issue instead of waiting.
 *
 * What a failure leaves behind: the item stays DisablingProtection with a
 * Critical `job.failed` issue; whatever the finished steps removed is gone.
 * DELETE again starts a new job that continues. Cancelling leaves the item
 * DisablingProtection too (a half-disabled item cannot replicate): DELETE
 * again to finish.
 */

import { transitionItem } from '../../control/item-status';
import { type JobHandler, type StepContext } from '../job-handler';
import { bestEffortCommand, isConnected, itemJobHooks, itemPayload, loadItem } from './item-job';

async function onHost(ctx: StepContext, key: string, host: string | undefined, type: string, what: string): Promise<'skipped' | undefined> {
  if (host === undefined) return 'skipped';
  const c = loadItem(ctx);
  const h = ctx.services.store.getObject(ctx.job.vault, 'host', host);
  if (h === undefined) return 'skipped';
  const payload = { ...itemPayload(c), deleteLogs: true };
  if (ctx.job.input.force === true && !isConnected(h)) {
    await bestEffortCommand(ctx, key, host, type, payload, what);
    return 'skipped';
  }
  await ctx.runCommand(key, { host, type, payload });
  return undefined;
}

export const protectionDisable: JobHandler = {
  type: 'protection.disable',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'stopReplication',
      title: 'Stop replication on the source host',
      run: (ctx) => onHost(ctx, 'disable', loadItem(ctx).status.sourceHost, 'replication.disable', 'the replication relationship and its logs'),
    },
    {
      name: 'removeReplica',
      title: 'Delete or keep the replica as the policy says',
      async run(ctx) {
        const c = loadItem(ctx);
        const remove = c.policy.deleteReplicaOnDisable;
        if (c.policy.target === 'azure') {
          return remove ? onHost(ctx, 'delete', c.status.sourceHost, 'replica.delete', 'the replica blobs') : 'skipped';
        }
        const r = await onHost(ctx, remove ? 'delete' : 'release', c.status.targetHost, remove ? 'replica.delete' : 'replica.release', 'the replica');
        if (r === undefined) ctx.progress(100, remove ? 'replica deleted' : 'replica kept on the recovery host');
        return r;
      },
    },
    {
      name: 'removeItem',
      title: 'Remove the protected item',
      async run(ctx) {
        const { store } = ctx.services;
        store.transaction(() => {
          transitionItem(ctx.services, ctx.job.vault, ctx.job.target.name, 'NotProtected', 'protection disabled');
          store.deleteObject(ctx.job.vault, 'protectedItem', ctx.job.target.name);
        });
        return undefined;
      },
    },
  ],
  ...itemJobHooks(),
};

