/**
 * `failover.cancel` (docs/failover.md §3): an operator discards an
 * uncommitted failover and the workload returns to the primary VM it
 * came from, which must be reachable again. The failover VM is removed
 * (its writes were on overlays: the replica is as it was), the fence on the
 * source VM ends and the source host resumes replication; the item ends
 * `ResynchronizationRequired`, since the source may have written after the
 * last shipped point (an unplanned failover) and a resync, which sends only
 * differing blocks, is what proves the replica equal again
 * (`lifeboat cancel-failover` starts it right after).
 *
 * Idempotent: each command is (removing a missing VM is not an error,
 * resuming a resumed source changes nothing). Failure: the item stays
 * `FailedOver` until `complete`; cancel again.
 */

import { NonRecoverableError, RecoverableError } from '../../../errors';
import { transitionItem, updateItem, type ItemStatus } from '../../control/item-status';
import type { JobHandler } from '../job-handler';
import { removeFailoverVm } from './failover-steps';
import { isConnected, itemJobHooks, itemPayload, loadItem } from './item-job';

export const failoverCancel: JobHandler = {
  type: 'failover.cancel',
  targetKind: 'protectedItem',
  steps: [
    {
      name: 'checkPrerequisites',
      title: 'Check the failover VM and the source host',
      async run(ctx) {
        const c = loadItem(ctx);
        const f = c.status.failover;
        if (f?.host === undefined || f.vm === undefined) throw new NonRecoverableError('failover.unknown', `item '${c.item.name}' has no record of its failover VM`, { hint: 'there is nothing to cancel' });
        const source = f.fromHost ?? c.status.sourceHost;
        if (source === undefined) throw new NonRecoverableError('failover.noSource', `item '${c.item.name}' has no record of the host it failed over from`, { hint: 'commit the failover and reprotect instead' });
        for (const h of [source, f.host]) {
          if (!isConnected(ctx.services.store.getObject(ctx.job.vault, 'host', h))) {
            throw new RecoverableError('host.notConnected', `host ${h} is not connected; cancelling a failover needs the source host and the failover VM's host`, {
              hint: `check that the agent on ${h} runs; the job goes on when it is back (or cancel this job)`,
            });
          }
        }
        ctx.set({ source, failoverHost: f.host, vmName: f.vm });
      },
    },
    {
      name: 'removeFailoverVm',
      title: 'Remove the failover VM',
      run: (ctx) => removeFailoverVm(ctx, String(ctx.get('failoverHost')), String(ctx.get('vmName'))),
    },
    {
      name: 'resumeSource',
      title: 'Unfence the source VM and resume replication from it',
      async run(ctx) {
        const c = loadItem(ctx);
        // No fence order for the source VM any more: the agent unfences it now and a heartbeat must not fence it again.
        updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => (s.failover === undefined ? s : { ...s, failover: { ...s.failover, released: true } }));
        await ctx.runCommand('cancelSource', { host: String(ctx.get('source')), type: 'failover.cancelSource', payload: itemPayload(c) });
      },
    },
    {
      name: 'complete',
      title: 'Back at the primary site; a resync proves the replica equal',
      async run(ctx) {
        const c = loadItem(ctx);
        if (c.status.replicationState !== 'FailedOver') return;
        const t = transitionItem(ctx.services, ctx.job.vault, c.item.name, 'ResynchronizationRequired', `failover cancelled by an operator (job ${ctx.job.id}); the workload runs on ${String(ctx.get('source'))} again`, (s): ItemStatus => {
          const { failover: _gone, ...rest } = s;
          return { ...rest, activeLocation: 'primary', sourceHost: String(ctx.get('source')) };
        });
        if (t !== undefined && !t.ok && t.code !== 'state.unchanged') throw new NonRecoverableError('failover.stateRefused', t.message);
      },
    },
  ],
  ...itemJobHooks(),
};
