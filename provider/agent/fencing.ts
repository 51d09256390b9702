/**
 * Fencing of a returning old primary (docs/failover.md §6): the vault's
 * heartbeat answer lists the VMs of this host whose items failed over; each
 * is fenced (the mark is written before a running guest is stopped, so it
 * is never started again while its replica runs) and its item's replication
 * is stopped and dropped from the agent's reports. The item's record, its
 * trackers and their unshipped log stay: reprotect reads them.
 *
 * Idempotent: a fenced VM keeps its first reason; a stopped item is gone
 * from the map. A VM that no longer exists is skipped. Errors of one VM are
 * logged and do not stop the others (the next heartbeat tries again).
 */

import { LifeboatError, describe } from '../errors';
import { type Hypervisor } from '../hypervisor/hypervisor';
import { type AgentLogger } from './command-runner';
import { type SourceItem } from './source-item';
import { type FenceOrder } from './vault-channel';

export interface FencingContext {
  readonly hypervisor: Hypervisor;
  /** The agent's source items by item uid; fenced items are removed. */
  readonly sources: Map<string, SourceItem>;
  readonly log: AgentLogger;
}

/** Apply the vault's fence orders. Returns the uids of the items they name. */
export async function applyFenceOrders(ctx: FencingContext, orders: readonly FenceOrder[]): Promise<Set<string>> {
  const uids = new Set<string>();
  for (const f of orders) {
    uids.add(f.itemUid);
    try {
      const item = ctx.sources.get(f.itemUid);
      if (item !== undefined) {
        ctx.sources.delete(f.itemUid);
        await item.stop();
        ctx.log('warn', `item ${f.item}: replication stopped: ${f.reason}`);
      }
      let vm;
      try {
        vm = await ctx.hypervisor.get(f.vm);
      } catch (e) {
        if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') continue;
        throw e;
      }
      if (vm.fence === undefined) {
        await ctx.hypervisor.fence(f.vm, f.reason);
        ctx.log('warn', `VM ${f.vm} fenced: ${f.reason}`);
      }
    } catch (e) {
      ctx.log('error', `fencing VM ${f.vm} of item ${f.item}: ${describe(e)}`);
    }
  }
  return uids;
}
