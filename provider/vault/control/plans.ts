/**
 * Requests of recovery plans (docs/recovery-plans.md §2): which plan job a
 * request starts, the failover direction derived from the items, which
 * items are skipped, the readiness of the others, and the plan's status
 * (§7). Every request runs in one store transaction with the creation of
 * its job, so two requests cannot both start a job of the same plan.
 */

import { canFailover, canTestFailover, isFailedOverUncommitted, type ReplicationState } from '../../states';
import type { JobRecord, JsonObject, StoredObject } from '../store/records';
import { checkPointSpec } from './failovers';
import { itemStatus } from './item-status';
import { activeJobOf, ACTIVE_JOB_STATES } from './protected-items';
import type { JobStarter, VaultServices } from './services';
import { iso } from './services';
import type { RecoveryPlanSpec } from './specs';
import { notFound, VaultError } from './vault-error';

/** The operations of a plan. */
export type PlanOperation = 'failover' | 'commit' | 'testCleanup' | 'reprotect';

/** Where the workload moves. */
export type PlanDirection = 'toRecovery' | 'toPrimary';

/** The job type of each operation. */
export const PLAN_JOB_TYPES: Readonly<Record<PlanOperation, string>> = {
  failover: 'plan.failover',
  commit: 'plan.commit',
  testCleanup: 'plan.testCleanup',
  reprotect: 'plan.reprotect',
};

/** Body of `POST …/recoveryPlans/{plan}/failover` (schemas/plan-failover-request.schema.json). */
export interface PlanFailoverRequest {
  readonly type: 'test' | 'planned' | 'unplanned';
  /** @default 'latest' */
  readonly point?: string;
  /** @default derived from the items (docs/recovery-plans.md §2) */
  readonly direction?: PlanDirection;
  /** Test only: the vault cleans the test failover up after this long. @default never */
  readonly expiresAfterSeconds?: number;
  /** Test only: each test VM's disks are compared with its point. @default false */
  readonly checkData?: boolean;
}

/** The plan's status fields the vault keeps (`activeLocation` is derived at read, `planStatusView`). */
export interface PlanStatus {
  readonly activeJob?: { readonly id: string; readonly type: string };
  readonly lastJob?: { readonly id: string; readonly type: string; readonly state: string };
  readonly testFailover?: { readonly job: string; readonly startedAt: string; readonly expiresAt?: string };
}

/** Where an item's workload runs, as the direction derivation reads it. */
export interface ItemLocation {
  readonly item: string;
  readonly activeLocation: 'primary' | 'recovery';
}

/**
 * The direction of a plan failover (pure): the requested one, else derived
 * from where the items run (all primary → toRecovery, all recovery →
 * toPrimary). `mixed` names the items of each side when it cannot be
 * derived. `skipped` lists the items already at the destination.
 */
export function planDirection(items: readonly ItemLocation[], requested?: PlanDirection):
  { readonly direction: PlanDirection; readonly skipped: readonly string[] } | { readonly mixed: { readonly primary: readonly string[]; readonly recovery: readonly string[] } } {
  const primary = items.filter((i) => i.activeLocation !== 'recovery').map((i) => i.item);
  const recovery = items.filter((i) => i.activeLocation === 'recovery').map((i) => i.item);
  let direction = requested;
  if (direction === undefined) {
    if (primary.length > 0 && recovery.length > 0) return { mixed: { primary, recovery } };
    direction = recovery.length > 0 ? 'toPrimary' : 'toRecovery';
  }
  return { direction, skipped: direction === 'toRecovery' ? recovery : primary };
}

/** The location a plan shows (pure): `mixed` when its items run on both sides. */
export function planLocation(locations: readonly ('primary' | 'recovery')[]): 'primary' | 'recovery' | 'mixed' {
  const recovery = locations.filter((l) => l === 'recovery').length;
  if (recovery === 0) return 'primary';
  return recovery === locations.length ? 'recovery' : 'mixed';
}

/** Why an item cannot take a failover of `type` in its state, or `undefined` if it can. */
export function failoverRefusal(type: PlanFailoverRequest['type'], state: ReplicationState, hasTestVm: boolean): string | undefined {
  switch (type) {
    case 'test':
      if (!canTestFailover(state)) return `is ${state}; a test failover needs a replica with recovery points`;
      return hasTestVm ? 'already has a test failover VM; clean it up first' : undefined;
    case 'planned':
      return canFailover(state) ? undefined : `is ${state}; a planned failover needs Protected, ResynchronizationRequired or Resynchronizing${state === 'FailoverCommitted' ? ' (reprotect it first)' : ''}`;
    case 'unplanned':
      return canFailover(state) || isFailedOverUncommitted(state) ? undefined : `is ${state}; an unplanned failover needs a replica with points${state === 'FailoverCommitted' ? ' (reprotect it first)' : ''}`;
  }
}

/** One VM of the snapshot a plan job runs. */
export interface PlanVmInput {
  readonly item: string;
  readonly vm: string;
  /** Why the VM is skipped. @default not skipped */
  readonly skip?: string;
}

/** One action of the snapshot. */
export interface PlanActionInput {
  readonly phase: 'before' | 'after';
  readonly index: number;
  readonly kind: 'script' | 'manual';
  readonly script?: string;
  readonly instruction?: string;
  readonly timeoutSeconds?: number;
}

/** The plan as the job runs it: a snapshot taken at the request (docs/recovery-plans.md §3). */
export interface PlanJobInput {
  readonly plan: string;
  readonly operation: PlanOperation;
  readonly type?: PlanFailoverRequest['type'];
  readonly direction?: PlanDirection;
  readonly point?: string;
  readonly expiresAfterSeconds?: number;
  readonly checkData?: boolean;
  /** Started by the vault (an expired test failover), not by an operator. @default false */
  readonly automatic?: boolean;
  readonly groups: readonly { readonly name: string; readonly vms: readonly PlanVmInput[]; readonly actions: readonly PlanActionInput[] }[];
}

/** The unfinished plan job of a plan, if any. */
export function activePlanJob(services: VaultServices, vault: string, plan: string): JobRecord | undefined {
  return services.store.listJobs(vault, { target: { kind: 'recoveryPlan', name: plan }, states: ACTIVE_JOB_STATES, limit: 1 })[0];
}

/** The typed status of a plan object. */
export function planStatus(o: StoredObject): PlanStatus {
  return o.status as PlanStatus;
}

/** Change a plan's status. No-op if the plan is gone. */
export function updatePlan(services: VaultServices, vault: string, plan: string, update: (s: PlanStatus) => PlanStatus): void {
  services.store.updateStatus(vault, 'recoveryPlan', plan, (raw) => JSON.parse(JSON.stringify(update(raw as PlanStatus))) as JsonObject, services.clock.now());
}

/**
 * A plan's status as the API shows it: what the vault keeps plus
 * `activeLocation`, derived from its items now (items that no longer exist
 * are left out).
 */
export function planStatusView(services: VaultServices, vault: string, plan: StoredObject): JsonObject {
  const spec = plan.spec as unknown as RecoveryPlanSpec;
  const locations = spec.groups.flatMap((g) => g.vms)
    .map((vm) => services.store.getObject(vault, 'protectedItem', vm))
    .filter((o): o is StoredObject => o !== undefined)
    .map((o) => (itemStatus(o).activeLocation === 'recovery' ? 'recovery' as const : 'primary' as const));
  return { ...plan.status, activeLocation: planLocation(locations) };
}

function groupName(g: RecoveryPlanSpec['groups'][number], i: number): string {
  return g.name ?? `Group ${i + 1}`;
}

/**
 * Start a plan job (see the file comment and docs/recovery-plans.md §2).
 * Throws `VaultError` 404 (no plan, or an item of it is gone), 409
 * `job.inProgress`, `plan.mixedLocation`, `plan.itemsNotReady`,
 * `plan.nothingToDo`, 400 for a bad point. Nothing is created when it
 * throws. Returns the job to kick after the transaction.
 */
export function requestPlanOperation(
  services: VaultServices, jobs: JobStarter, vault: string, name: string, operation: PlanOperation,
  request: Partial<PlanFailoverRequest> & { readonly automatic?: boolean } = {},
): JobRecord {
  return services.store.transaction(() => {
    const plan = services.store.getObject(vault, 'recoveryPlan', name);
    if (plan === undefined) throw notFound('recovery plan', name, vault);
    const running = activePlanJob(services, vault, plan.name);
    if (running !== undefined) {
      throw new VaultError(409, 'job.inProgress', `job ${running.id} (${running.type}) is running recovery plan '${plan.name}'`, {
        hint: `wait for it to finish, or cancel it (lifeboat jobs cancel ${running.id}), then ask again`, extra: { job: running.id },
      });
    }
    const spec = plan.spec as unknown as RecoveryPlanSpec;
    const items = new Map<string, StoredObject>();
    for (const vm of spec.groups.flatMap((g) => g.vms)) {
      const item = services.store.getObject(vault, 'protectedItem', vm);
      if (item === undefined) throw new VaultError(404, 'object.notFound', `protected item '${vm}' of recovery plan '${plan.name}' does not exist`, { hint: 'remove it from the plan, or protect the VM again' });
      const active = activeJobOf(services, vault, item.name);
      if (active !== undefined) {
        throw new VaultError(409, 'job.inProgress', `job ${active.id} (${active.type}) is working on item '${item.name}' of recovery plan '${plan.name}'`, {
          hint: `wait for it to finish, or cancel it (lifeboat jobs cancel ${active.id}), then ask again`, extra: { job: active.id },
        });
      }
      items.set(vm.toLowerCase(), item);
    }
    const itemOf = (vm: string): StoredObject => items.get(vm.toLowerCase())!;
    const skip = new Map<string, string>();
    let direction: PlanDirection | undefined;
    let point: string | undefined;
    const status = planStatus(plan);
    if (operation === 'failover') {
      const type = request.type ?? 'test';
      point = type === 'planned' ? 'latest' : checkPointSpec(request.point);
      const d = planDirection([...items.values()].map((o) => ({ item: o.name, activeLocation: itemStatus(o).activeLocation })), request.direction);
      if ('mixed' in d) {
        throw new VaultError(409, 'plan.mixedLocation', `the items of recovery plan '${plan.name}' run on both sides: at the primary site ${d.mixed.primary.join(', ')}; at the recovery site ${d.mixed.recovery.join(', ')}`, {
          hint: 'give the direction (--direction toRecovery or toPrimary): the items already there are skipped', extra: { primary: d.mixed.primary, recovery: d.mixed.recovery },
        });
      }
      direction = d.direction;
      for (const s of d.skipped) skip.set(s.toLowerCase(), `already at the ${direction === 'toRecovery' ? 'recovery' : 'primary'} site`);
      const notReady: string[] = [];
      for (const o of items.values()) {
        if (skip.has(o.name.toLowerCase())) continue;
        const s = itemStatus(o);
        const why = failoverRefusal(type, s.replicationState, s.testFailover !== undefined);
        if (why !== undefined) notReady.push(`${o.name} ${why}`);
      }
      if (notReady.length > 0) {
        throw new VaultError(409, 'plan.itemsNotReady', `recovery plan '${plan.name}' cannot run a ${type} failover: ${notReady.join('; ')}`, {
          hint: 'bring each named item to a state that allows it (lifeboat status), or take it out of the plan', extra: { items: notReady },
        });
      }
      if (type === 'test' && status.testFailover !== undefined) {
        throw new VaultError(409, 'testFailover.exists', `recovery plan '${plan.name}' already has a test failover (job ${status.testFailover.job})`, {
          hint: `clean it up first: lifeboat test-cleanup --plan ${plan.name}`,
        });
      }
    } else {
      for (const o of items.values()) {
        const s = itemStatus(o);
        const why = operation === 'commit' ? (isFailedOverUncommitted(s.replicationState) ? undefined : `is ${s.replicationState}, not FailedOver`)
          : operation === 'testCleanup' ? (s.testFailover === undefined ? 'has no test failover VM' : undefined)
            : (s.replicationState === 'FailoverCommitted' ? undefined : `is ${s.replicationState}, not FailoverCommitted`);
        if (why !== undefined) skip.set(o.name.toLowerCase(), why);
      }
      const keepsStatus = operation === 'testCleanup' && status.testFailover !== undefined;
      if (skip.size === items.size && !keepsStatus) {
        throw new VaultError(409, 'plan.nothingToDo', `no item of recovery plan '${plan.name}' needs ${operation === 'testCleanup' ? 'a test cleanup' : operation}: ${[...items.values()].map((o) => `${o.name} ${skip.get(o.name.toLowerCase()) ?? ''}`).join('; ')}`, {
          hint: operation === 'commit' ? 'fail the plan over first (lifeboat failover --plan)' : operation === 'reprotect' ? 'commit the failover first (lifeboat commit --plan)' : 'start a test failover first',
        });
      }
    }
    if (operation === 'failover' && skip.size === items.size) {
      throw new VaultError(409, 'plan.nothingToDo', `every item of recovery plan '${plan.name}' already runs at the ${direction === 'toRecovery' ? 'recovery' : 'primary'} site`, {
        hint: 'nothing to fail over in that direction',
      });
    }
    const type = operation === 'failover' ? request.type ?? 'test' : undefined;
    const input: PlanJobInput = {
      plan: plan.name,
      operation,
      ...(type === undefined ? {} : { type }),
      ...(direction === undefined ? {} : { direction }),
      ...(point === undefined ? {} : { point }),
      ...(type === 'test' && request.expiresAfterSeconds !== undefined ? { expiresAfterSeconds: request.expiresAfterSeconds } : {}),
      ...(type === 'test' && request.checkData === true ? { checkData: true } : {}),
      ...(request.automatic === true ? { automatic: true } : {}),
      groups: spec.groups.map((g, i) => ({
        name: groupName(g, i),
        vms: g.vms.map((vm) => {
          const o = itemOf(vm);
          const why = skip.get(o.name.toLowerCase());
          return { item: o.name, vm: String(o.spec.vm), ...(why === undefined ? {} : { skip: why }) };
        }),
        actions: operation !== 'failover' ? [] : (['before', 'after'] as const).flatMap((phase) => (g[phase] ?? []).map((a, index) => ({
          phase, index, kind: a.script !== undefined ? 'script' as const : 'manual' as const,
          ...(a.script === undefined ? {} : { script: a.script, timeoutSeconds: a.timeoutSeconds ?? 300 }),
          ...(a.manual === undefined ? {} : { instruction: a.manual }),
        }))),
      })),
    };
    const jobType = PLAN_JOB_TYPES[operation];
    const job = jobs.createJob(vault, jobType, { kind: 'recoveryPlan', name: plan.name }, input as unknown as JsonObject);
    const now = services.clock.now();
    updatePlan(services, vault, plan.name, (s) => ({
      ...s,
      activeJob: { id: job.id, type: jobType },
      ...(type === 'test' ? {
        testFailover: {
          job: job.id, startedAt: iso(now),
          ...(request.expiresAfterSeconds === undefined ? {} : { expiresAt: iso(now + request.expiresAfterSeconds * 1000) }),
        },
      } : {}),
    }));
    return job;
  });
}

