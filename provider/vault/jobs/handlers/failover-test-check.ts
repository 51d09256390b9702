/**
 * The `checkDisks` step of `failover.test` (docs/failover.md §4a): when the
 * request asked for `checkData`, the recovery host compares each disk of the
 * test VM with the point the vault recorded for it (`failover.checkDisks`)
 * and the result goes into the item's `status.testFailover.check`. A
 * mismatch is recorded, not raised: the test VM stays for investigation
 * (a failed job would remove it). Without `checkData` the step does nothing.
 */

import { NonRecoverableError } from '../../../errors';
import { updateItem } from '../../control/item-status';
import type { JsonObject } from '../../store/records';
import type { StepContext } from '../job-handler';
import { isAzureItem } from './azure-failover-steps';
import { itemPayload, loadItem } from './item-job';

export async function checkTestVmDisks(ctx: StepContext, key = ''): Promise<void> {
  if (ctx.job.input.checkData !== true) return;
  const c = loadItem(ctx);
  const t = c.status.testFailover;
  if (isAzureItem(c)) {
    // The azure host runs the VM from a downloaded export, not from views of a replica store.
    updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => (s.testFailover === undefined ? s : { ...s, testFailover: { ...s.testFailover, check: { skipped: 'the data check of a test VM in Azure is not built' } } }));
    return;
  }
  if (t?.diskPoints === undefined) throw new NonRecoverableError('failover.unknown', `item '${c.item.name}' has no record of its test VM's points`, { hint: 'clean up and run the test failover again' });
  ctx.progress(0, `checking the disks of ${t.vm} against point ${String(t.point?.id ?? '')}`);
  const r = await ctx.runCommand(`${key}checkDisks`, { host: t.host, type: 'failover.checkDisks', payload: { ...itemPayload(c), vmName: t.vm, points: t.diskPoints } });
  const check: JsonObject = { checkedAt: String(r.checkedAt), disks: (r.disks ?? []) as JsonObject[] };
  updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => (s.testFailover === undefined ? s : { ...s, testFailover: { ...s.testFailover, check } }));
  const bad = (check.disks as { id: string; matchesPoint: boolean; mismatchedBytes: number; firstMismatch?: number; pointId: string; vmPointId: string }[]).filter((d) => !d.matchesPoint);
  // Recorded, not thrown: a failed job would remove the test VM, which is the evidence.
  ctx.progress(100, bad.length === 0
    ? `every disk of ${t.vm} equals its recovery point`
    : `the test VM ${t.vm} does not hold its recovery point: ${bad.map((d) => `disk ${d.id}: ${d.mismatchedBytes} bytes differ from point ${d.pointId}${d.firstMismatch === undefined ? '' : ` (first at offset ${d.firstMismatch})`}${d.vmPointId === d.pointId ? '' : `; the VM runs from point ${d.vmPointId}`}`).join('; ')}`);
}
