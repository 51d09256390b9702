/**
 * `RecoveryPlan.activeLocation` (docs/pulumi.md §11): bring the plan's items
 * to the declared site through the plan's own jobs. Each round reads the
 * items and runs the one plan job the situation calls for, until every item
 * runs at the declared site and is protected again:
 *
 *   an item FailedOver at the declared site        → plan.commit
 *   an item FailoverCommitted                      → plan.reprotect
 *   an item replicating but at the other site      → plan.failover planned (direction)
 *
 * So `recovery` from a protected plan is a planned failover, its commit and
 * its reprotect; `primary` back is the failback (the same three the other
 * way); and an `up` that was interrupted goes on from where the items are.
 * An uncommitted failover at the other site is the operator's decision in
 * progress (an unplanned failover whose point may still change): it is
 * refused, never committed or reversed from code.
 */

import { isNotFound, type ProtectedItemStatus } from '../client';
import { BugError, NonRecoverableError } from '../errors';
import { canFailover, type ReplicationState } from '../states';
import { type ResolvedConnection } from './connection';
import { waitPlanJob } from './plan-job-wait';
import { type ProviderContext } from './provider-context';

export type Location = 'primary' | 'recovery';

/** An item of the plan as one round sees it. */
export interface PlanItemView {
  readonly name: string;
  readonly state: ReplicationState;
  readonly location: Location;
  readonly activeJob?: string;
}

/** The next step towards `want`: a plan job to run, done, or a refusal. */
export type LocationStep =
  | { readonly kind: 'done' }
  | { readonly kind: 'waitItemJob'; readonly item: string; readonly job: string }
  | { readonly kind: 'commit' }
  | { readonly kind: 'reprotect' }
  | { readonly kind: 'failover'; readonly direction: 'toRecovery' | 'toPrimary' }
  | { readonly kind: 'refuse'; readonly code: string; readonly message: string; readonly hint: string };

/** Decide the next step from the items (pure). */
export function nextLocationStep(plan: string, want: Location, items: readonly PlanItemView[]): LocationStep {
  const busy = items.find((i) => i.activeJob !== undefined);
  if (busy !== undefined) return { kind: 'waitItemJob', item: busy.name, job: busy.activeJob! };
  const other: Location = want === 'primary' ? 'recovery' : 'primary';
  const failedOverElsewhere = items.filter((i) => i.state === 'FailedOver' && i.location !== want);
  if (failedOverElsewhere.length > 0) {
    return {
      kind: 'refuse', code: 'pulumi.uncommittedFailover',
      message: `recovery plan '${plan}' has items failed over to the ${other} site and not committed: ${failedOverElsewhere.map((i) => i.name).join(', ')}; the program declares activeLocation: ${want}`,
      hint: `an uncommitted failover is decided by an operator (its point can still change): commit it (\`lifeboat commit --plan ${plan}\`) or declare activeLocation: ${other} to commit and reprotect from code`,
    };
  }
  if (items.some((i) => i.state === 'FailedOver')) return { kind: 'commit' };
  if (items.some((i) => i.state === 'FailoverCommitted')) return { kind: 'reprotect' };
  const away = items.filter((i) => i.location !== want);
  if (away.length === 0) return { kind: 'done' };
  const notReady = away.filter((i) => !canFailover(i.state));
  if (notReady.length > 0) {
    return {
      kind: 'refuse', code: 'pulumi.itemsNotReady',
      message: `recovery plan '${plan}' cannot move to the ${want} site: ${notReady.map((i) => `${i.name} is ${i.state}`).join(', ')}`,
      hint: 'a planned failover needs each item Protected (or waiting for a resync); wait for initial replication or a running job, then run `pulumi up` again',
    };
  }
  return { kind: 'failover', direction: want === 'recovery' ? 'toRecovery' : 'toPrimary' };
}

function viewOf(name: string, s: ProtectedItemStatus): PlanItemView {
  return { name, state: s.replicationState, location: s.activeLocation ?? 'primary', ...(s.activeJob === undefined ? {} : { activeJob: s.activeJob.id }) };
}

/** The item names of a plan spec. */
export function planItems(spec: unknown): string[] {
  const groups = (spec as { groups?: { vms?: unknown[] }[] } | undefined)?.groups ?? [];
  return groups.flatMap((g) => (g.vms ?? []).map(String));
}

/** Run plan jobs until every item of `plan` runs at `want` (see the file comment). */
export async function convergeLocation(c: ResolvedConnection, ctx: ProviderContext, vault: string, plan: string, want: Location, deadline: number): Promise<void> {
  // Failover, commit and reprotect, each at most once per direction, with waits between: a bound against a loop.
  for (let round = 0; round < 12; round++) {
    const env = await c.client.getRecoveryPlan(vault, plan);
    if (env.status.activeJob !== undefined) {
      ctx.log(`${plan}: waiting for the running plan job ${env.status.activeJob.id} (${env.status.activeJob.type})`);
      await waitPlanJob(c, ctx, vault, env.status.activeJob.id, deadline);
      continue;
    }
    const items: PlanItemView[] = [];
    for (const name of planItems(env.spec)) {
      try {
        items.push(viewOf(name, (await c.client.getProtectedItem(vault, name)).status));
      } catch (e) {
        if (!isNotFound(e)) throw e;
        throw new NonRecoverableError('pulumi.planItemMissing', `recovery plan '${plan}' names the protected item '${name}', which is not in vault ${vault}`, { hint: 'protect the VM first (ProtectedVm), or take it out of the plan' });
      }
    }
    const step = nextLocationStep(plan, want, items);
    switch (step.kind) {
      case 'done':
        return;
      case 'refuse':
        throw new NonRecoverableError(step.code, step.message, { hint: step.hint });
      case 'waitItemJob':
        ctx.log(`${plan}: waiting for job ${step.job} of item ${step.item}`);
        await c.client.waitForJob(vault, step.job, { pollMs: ctx.pollMs, timeoutMs: Math.max(ctx.pollMs, deadline - ctx.clock.now()) });
        continue;
      case 'commit': {
        const job = await c.client.commitPlan(vault, plan);
        ctx.log(`${plan}: committing the failover (job ${job.id})`);
        await waitPlanJob(c, ctx, vault, job.id, deadline);
        continue;
      }
      case 'reprotect': {
        const job = await c.client.reprotectPlan(vault, plan);
        ctx.log(`${plan}: reprotecting (job ${job.id})`);
        await waitPlanJob(c, ctx, vault, job.id, deadline);
        continue;
      }
      case 'failover': {
        const job = await c.client.failoverPlan(vault, plan, { type: 'planned', direction: step.direction });
        ctx.log(`${plan}: planned failover ${step.direction} (job ${job.id})`);
        await waitPlanJob(c, ctx, vault, job.id, deadline);
        continue;
      }
    }
  }
  throw new BugError('pulumi.locationLoop', `recovery plan '${plan}' did not reach the ${want} site after 12 plan jobs`);
}
