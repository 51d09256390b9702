/**
 * Which failover job a request starts, and the fence orders of returning
 * primaries (docs/failover.md §3, §6). Every request runs in one store
 * transaction: the item must exist (404), no job may own it (409
 * `job.inProgress`), and its replication state must allow the operation
 * (409 `protectedItem.notFailoverable` and friends, naming the state). A
 * planned or unplanned failover moves the item to `FailoverInProgress` in
 * the same transaction, so agents' reports can no longer move it.
 */

import { canFailover, canTestFailover, isFailedOverUncommitted, type ReplicationState } from '../../states';
import type { JobRecord, JsonObject, StoredObject } from '../store/records';
import { keyOf } from '../store/sqlite/sqlite-store';
import { itemStatus, transitionItem, updateItem, type ItemStatus } from './item-status';
import { activeJobOf } from './protected-items';
import type { JobStarter, VaultServices } from './services';
import { notFound, VaultError } from './vault-error';

/** The failover operations of one item. */
export type FailoverOperation = 'test' | 'testCleanup' | 'planned' | 'unplanned' | 'commit' | 'reprotect' | 'cancel';

/** The job type of each operation. */
export const FAILOVER_JOB_TYPES: Readonly<Record<FailoverOperation, string>> = {
  test: 'failover.test',
  testCleanup: 'failover.testCleanup',
  planned: 'failover.planned',
  unplanned: 'failover.unplanned',
  commit: 'failover.commit',
  reprotect: 'protection.reprotect',
  cancel: 'failover.cancel',
};

/** A point spec as the API takes it: `latest`, `latestAppConsistent`, or an ISO time. */
export function checkPointSpec(point: unknown): string {
  if (point === undefined) return 'latest';
  if (point === 'latest' || point === 'latestAppConsistent') return point;
  if (typeof point === 'string' && !Number.isNaN(Date.parse(point))) return new Date(Date.parse(point)).toISOString();
  throw new VaultError(400, 'request.invalid', `point ${JSON.stringify(point)} is not latest, latestAppConsistent or a date-time`, {
    hint: 'give --point latest, latestAppConsistent, or a time such as 2026-01-01T12:00:00Z',
  });
}

function refuse(code: string, item: string, state: ReplicationState, what: string, hint: string): VaultError {
  return new VaultError(409, code, `item '${item}' is ${state}; ${what}`, { hint });
}

/**
 * Start a failover operation on an item (see the file comment). `input`
 * carries `point` for test, planned and unplanned failovers. Returns the
 * job to kick after the transaction.
 */
export function requestFailover(services: VaultServices, jobs: JobStarter, vault: string, name: string, op: FailoverOperation, input: JsonObject = {}): JobRecord {
  return services.store.transaction(() => {
    const item = services.store.getObject(vault, 'protectedItem', name);
    if (item === undefined) throw notFound('protected item', name, vault);
    const active = activeJobOf(services, vault, name);
    if (active !== undefined) {
      throw new VaultError(409, 'job.inProgress', `job ${active.id} (${active.type}) is working on item '${item.name}'`, {
        hint: `wait for it to finish, or cancel it (lifeboat jobs ${active.id}), then ask again`, extra: { job: active.id },
      });
    }
    const s = itemStatus(item);
    const state = s.replicationState;
    const point = op === 'test' || op === 'planned' || op === 'unplanned' ? checkPointSpec(input.point) : undefined;
    switch (op) {
      case 'test':
        if (!canTestFailover(state)) throw refuse('protectedItem.notFailoverable', item.name, state, 'a test failover needs a replica with recovery points', 'wait until the item is Protected');
        if (s.testFailover !== undefined) {
          throw new VaultError(409, 'testFailover.exists', `item '${item.name}' already has a test failover VM ${s.testFailover.vm} on ${s.testFailover.host}`, {
            hint: `clean it up first: lifeboat test-cleanup ${item.name}`,
          });
        }
        break;
      case 'testCleanup':
        if (s.testFailover === undefined) {
          throw new VaultError(409, 'testFailover.none', `item '${item.name}' has no test failover to clean up`, { hint: 'start one with lifeboat failover ITEM --type test' });
        }
        break;
      case 'planned':
        if (!canFailover(state)) throw refuse('protectedItem.notFailoverable', item.name, state, 'a planned failover needs Protected, ResynchronizationRequired or Resynchronizing', 'wait for the current operation; after a failover, fail back instead');
        break;
      case 'unplanned':
        // From FailedOver it changes the recovery point (before commit).
        if (!canFailover(state) && !isFailedOverUncommitted(state)) {
          throw refuse('protectedItem.notFailoverable', item.name, state, 'an unplanned failover needs a replica with points, or an uncommitted failover whose point it changes', 'after commit the point can no longer change');
        }
        break;
      case 'commit':
        if (!isFailedOverUncommitted(state)) throw refuse('protectedItem.notCommittable', item.name, state, 'only a FailedOver item can be committed', 'run a failover first');
        break;
      case 'cancel':
        if (!isFailedOverUncommitted(state)) throw refuse('protectedItem.notCancellable', item.name, state, 'only a FailedOver item (not yet committed) can have its failover cancelled', 'after commit, reprotect and fail back instead');
        break;
      case 'reprotect':
        if (state !== 'FailoverCommitted') throw refuse('protectedItem.notReprotectable', item.name, state, 'reprotect needs a committed failover', 'commit the failover first (lifeboat commit ITEM)');
        if (input.host !== undefined && !isAzurePolicyItem(services, vault, item)) {
          throw new VaultError(400, 'reprotect.hostNotApplicable', `item '${item.name}' replicates to a secondary site; host applies to a failback from Azure only`, {
            hint: 'leave host out: reprotect makes the old primary the replica, and failback returns to the host that holds it',
          });
        }
        break;
    }
    // Items of azure policies fail back to their primary instead (docs/azure-failover.md §5).
    const type = op === 'reprotect' && isAzurePolicyItem(services, vault, item) ? 'failback.fromAzure' : FAILOVER_JOB_TYPES[op];
    const job = jobs.createJob(vault, type, { kind: 'protectedItem', name: item.name }, { ...input, ...(point === undefined ? {} : { point }), from: state });
    if (op === 'reprotect') {
      const t = transitionItem(services, vault, item.name, 'Reprotecting', 'reprotect requested');
      if (t !== undefined && !t.ok) throw new VaultError(409, t.code, t.message);
    }
    if (op === 'planned' || op === 'unplanned') {
      const reason = op === 'unplanned' && state === 'FailedOver' ? `operator changes the recovery point to ${point}` : `${op} failover to ${point} requested`;
      const t = transitionItem(services, vault, item.name, 'FailoverInProgress', reason, (x): ItemStatus => ({
        ...x,
        failover: state === 'FailedOver' && x.failover !== undefined
          ? { ...x.failover, type: op, requested: point!, job: job.id }
          : { type: op, requested: point!, job: job.id, ...(x.sourceHost === undefined ? {} : { fromHost: x.sourceHost }) },
      }));
      if (t !== undefined && !t.ok) throw new VaultError(409, t.code, t.message);
    }
    updateItem(services, vault, item.name, (x) => ({ ...x, activeJob: { id: job.id, type } }));
    return job;
  });
}

/** A fence order of the heartbeat answer (docs/failover.md §6). */
export interface FenceOrder {
  readonly vm: string;
  readonly item: string;
  readonly itemUid: string;
  readonly reason: string;
}

/**
 * The VMs of `host` that must stay off: the VM an item failed over from,
 * from the start of an unplanned failover (a planned one fences its source
 * itself once the last log is shipped, and is recorded then) until
 * reprotect made that VM's disk the replica of the reverse direction.
 */
export function fenceOrdersFor(services: VaultServices, vault: string, host: string): FenceOrder[] {
  const out: FenceOrder[] = [];
  for (const item of services.store.listObjects(vault, 'protectedItem')) {
    const s = itemStatus(item);
    const f = s.failover;
    if (f?.fromHost === undefined || f.released === true || keyOf(f.fromHost) !== keyOf(host)) continue;
    const pending = s.replicationState === 'FailoverInProgress' && f.type === 'planned' && f.vm === undefined;
    if (pending) continue;
    out.push({
      vm: String(item.spec.vm), item: item.name, itemUid: item.uid,
      reason: `item ${item.name} failed over to ${f.host ?? s.targetHost ?? 'the recovery side'} (${s.replicationState}); its replica runs there`,
    });
  }
  return out;
}

function isAzurePolicyItem(services: VaultServices, vault: string, item: StoredObject): boolean {
  return services.store.getObject(vault, 'replicationPolicy', String(item.spec.policy))?.spec.target === 'azure';
}
