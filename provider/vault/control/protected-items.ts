/**
 * The life of a protected item outside its jobs: which job a PUT, a DELETE
 * or a resync request starts (one active job per item), and how the reports
 * of its agents change its status.
 *
 * - PUT of a new item starts `protection.enable`. PUT again while no job
 *   runs restarts `protection.enable` if the item is NotProtected (or
 *   EnablingProtection) or its last enable failed or was cancelled; otherwise
 *   a changed spec starts `protection.update`. While a job runs, PUT only
 *   records the spec.
 * - DELETE starts `protection.disable` (202), or removes an item that was
 *   never protected at once (204). A failed-over item is refused (409: fail
 *   back first).
 * - Resync starts `resync.run` for a Protected or ResynchronizationRequired item.
 */

import {
  canDisableProtection, isFailedOver, isOperationInProgress, type Health, type ReplicationState,
} from '../../states';
import type { JobRecord, JsonObject, RecoveryPointRecord, StoredObject } from '../store/records';
import { keyOf } from '../store/sqlite/sqlite-store';
import { itemStatus, transitionItem, updateItem, withoutPassCounters, type ItemStatus } from './item-status';
import type { JobStarter, VaultServices } from './services';
import { notFound, VaultError } from './vault-error';

/** Job states during which a job owns its item. */
export const ACTIVE_JOB_STATES = ['NotStarted', 'InProgress', 'WaitingForAction', 'Cancelling'] as const;

/** The job that currently works on the item, if any. */
export function activeJobOf(services: VaultServices, vault: string, item: string): JobRecord | undefined {
  return services.store.listJobs(vault, { target: { kind: 'protectedItem', name: item }, states: ACTIVE_JOB_STATES, limit: 1 })[0];
}

function startJob(services: VaultServices, jobs: JobStarter, vault: string, item: string, type: string, input: JsonObject = {}): JobRecord {
  const job = jobs.createJob(vault, type, { kind: 'protectedItem', name: item }, input);
  updateItem(services, vault, item, (s) => ({ ...s, activeJob: { id: job.id, type } }));
  return job;
}

/**
 * After a PUT of an item (inside its transaction): start the job the change
 * calls for, if any. Returns the job to run after commit.
 */
export function afterItemPut(services: VaultServices, jobs: JobStarter, vault: string, item: StoredObject, created: boolean, changed: boolean): JobRecord | undefined {
  if (created) {
    transitionItem(services, vault, item.name, 'EnablingProtection', 'item created');
    return startJob(services, jobs, vault, item.name, 'protection.enable');
  }
  if (activeJobOf(services, vault, item.name) !== undefined) return undefined;
  const s = itemStatus(item);
  const last = s.lastJob;
  const enableUnfinished = last !== undefined && last.type === 'protection.enable' && last.state !== 'Succeeded';
  if (s.replicationState === 'NotProtected') {
    transitionItem(services, vault, item.name, 'EnablingProtection', 'enabling again (PUT of an unprotected item)');
    return startJob(services, jobs, vault, item.name, 'protection.enable');
  }
  if (s.replicationState === 'EnablingProtection') {
    // No job owns it (the vault stopped at a bad moment): enabling continues.
    return startJob(services, jobs, vault, item.name, 'protection.enable');
  }
  if (enableUnfinished && (s.replicationState === 'WaitingForInitialReplication' || s.replicationState === 'InitialReplicationInProgress')) {
    return startJob(services, jobs, vault, item.name, 'protection.enable');
  }
  if (changed && !isOperationInProgress(s.replicationState) && !isFailedOver(s.replicationState)) {
    return startJob(services, jobs, vault, item.name, 'protection.update');
  }
  return undefined;
}

/**
 * After a policy changed (inside its transaction): reconfigure the items that
 * use it; with `credentialsChanged` (a new storage key or connection string)
 * their source hosts also re-open the blobs with it. Returns the jobs to run.
 */
export function afterPolicyChange(services: VaultServices, jobs: JobStarter, vault: string, policy: string, credentialsChanged = false): JobRecord[] {
  const out: JobRecord[] = [];
  for (const ref of services.store.referrers(vault, 'replicationPolicy', policy)) {
    if (ref.kind !== 'protectedItem') continue;
    const item = services.store.getObject(vault, 'protectedItem', ref.name);
    if (item === undefined || activeJobOf(services, vault, item.name) !== undefined) continue;
    const state = itemStatus(item).replicationState;
    if (state === 'NotProtected' || isOperationInProgress(state) || isFailedOver(state)) continue;
    out.push(startJob(services, jobs, vault, item.name, 'protection.update', credentialsChanged ? { credentialsChanged: true } : {}));
  }
  return out;
}

/** What a DELETE of an item did. */
export type ItemDeletion = { readonly kind: 'deleted' } | { readonly kind: 'disabling'; readonly job: JobRecord; readonly started: boolean };

/** DELETE of an item: see the file comment. 404 if missing; 409 if failed over or another job runs. */
export function deleteItem(services: VaultServices, jobs: JobStarter, vault: string, name: string, force: boolean): ItemDeletion {
  return services.store.transaction((): ItemDeletion => {
    const item = services.store.getObject(vault, 'protectedItem', name);
    if (item === undefined) throw notFound('protected item', name, vault);
    const s = itemStatus(item);
    const active = activeJobOf(services, vault, name);
    if (active !== undefined) {
      if (active.type === 'protection.disable') return { kind: 'disabling', job: active, started: false };
      throw new VaultError(409, 'job.inProgress', `job ${active.id} (${active.type}) is working on item '${item.name}'`, {
        hint: `wait for it to finish, or cancel it (POST /v1/vaults/${vault}/jobs/${active.id}/cancel), then delete again`,
        extra: { job: active.id },
      });
    }
    if (s.replicationState === 'FailoverInProgress' || (isFailedOver(s.replicationState) && !(force && s.replicationState === 'FailoverCommitted'))) {
      throw new VaultError(409, 'protectedItem.failedOver', `item '${item.name}' is ${s.replicationState}: its workload runs at the recovery site`, {
        hint: 'fail back first (a planned failover to the primary site, then reprotect); to drop a committed failover anyway, DELETE with ?force=true',
      });
    }
    if (s.replicationState === 'NotProtected') {
      services.store.deleteObject(vault, 'protectedItem', name);
      return { kind: 'deleted' };
    }
    if (s.replicationState !== 'DisablingProtection') {
      if (!canDisableProtection(s.replicationState)) {
        throw new VaultError(409, 'protectedItem.busy', `item '${item.name}' is ${s.replicationState}; protection cannot be disabled now`, {
          hint: 'wait until the current operation finishes, then delete again',
        });
      }
      transitionItem(services, vault, name, 'DisablingProtection', 'DELETE of the item');
    }
    return { kind: 'disabling', job: startJob(services, jobs, vault, name, 'protection.disable', { force }), started: true };
  });
}

/**
 * Start a resynchronisation (an operator's request, or the automatic resync
 * window). 404 if the item is missing; 409 while another job owns it or
 * unless it is Protected or ResynchronizationRequired.
 */
export function requestResync(services: VaultServices, jobs: JobStarter, vault: string, name: string, input: JsonObject = {}): JobRecord {
  return services.store.transaction(() => {
    const item = services.store.getObject(vault, 'protectedItem', name);
    if (item === undefined) throw notFound('protected item', name, vault);
    const active = activeJobOf(services, vault, name);
    if (active !== undefined) {
      throw new VaultError(409, 'job.inProgress', `job ${active.id} (${active.type}) is working on item '${item.name}'`, {
        hint: 'wait for it to finish or cancel it, then request the resync again', extra: { job: active.id },
      });
    }
    const state = itemStatus(item).replicationState;
    if (state === 'Protected') transitionItem(services, vault, name, 'ResynchronizationRequired', 'operator requested a resynchronisation');
    else if (state !== 'ResynchronizationRequired') {
      throw new VaultError(409, 'protectedItem.notResyncable', `item '${item.name}' is ${state}; a resync needs Protected or ResynchronizationRequired`, {
        hint: 'wait for initial replication to finish, or for the current operation to end',
      });
    }
    return startJob(services, jobs, vault, name, 'resync.run', input);
  });
}

/** One item of an agent report (schemas/agent-report.schema.json). */
export interface ItemReport {
  readonly item: string;
  readonly replicationState?: ReplicationState;
  readonly health?: Health;
  readonly initialReplicationPercent?: number;
  readonly lastReplicatedTime?: string;
  readonly rpoSeconds?: number;
  readonly statistics?: JsonObject;
  readonly errors?: readonly JsonObject[];
  readonly recoveryPoints?: readonly { readonly id: string; readonly time: string; readonly kind: RecoveryPointRecord['kind'] }[];
}

/** What a report did, item by item. */
export interface ReportOutcome {
  readonly accepted: readonly string[];
  readonly refused: readonly { readonly item: string; readonly code: string; readonly message: string }[];
}

/**
 * Apply a host's report. Entries for unknown items or items the host does not
 * replicate are refused; a replication state is taken only from the item's
 * source host, only through the state table, and never while a job owns the
 * item (the job moves it). Other fields are recorded; the source's copy
 * counters (`initialReplicationBytesCopied`/`Total`) only while its reports
 * carry them, and a Protected item keeps none (`withSettledCounters`).
 */
export function applyReport(services: VaultServices, vault: string, host: string, items: readonly ItemReport[]): ReportOutcome {
  const accepted: string[] = [];
  const refused: { item: string; code: string; message: string }[] = [];
  for (const r of items) {
    services.store.transaction(() => {
      const item = services.store.getObject(vault, 'protectedItem', r.item);
      if (item === undefined) {
        refused.push({ item: r.item, code: 'object.notFound', message: `no protected item '${r.item}'` });
        return;
      }
      const s = itemStatus(item);
      const isSource = s.sourceHost !== undefined && keyOf(s.sourceHost) === keyOf(host);
      const isTarget = s.targetHost !== undefined && keyOf(s.targetHost) === keyOf(host);
      if (!isSource && !isTarget) {
        refused.push({ item: item.name, code: 'report.notItsHost', message: `host ${host} does not replicate item '${item.name}'` });
        return;
      }
      if (r.replicationState !== undefined && r.replicationState !== s.replicationState) {
        if (!isSource) {
          refused.push({ item: item.name, code: 'report.notSourceHost', message: `only the source host ${s.sourceHost ?? '?'} reports the replication state` });
        } else if (isOperationInProgress(s.replicationState)) {
          refused.push({ item: item.name, code: 'state.ownedByJob', message: `item is ${s.replicationState}; only its job changes the state` });
        } else {
          const t = transitionItem(services, vault, item.name, r.replicationState, `reported by host ${host}`);
          if (t !== undefined && !t.ok) {
            const now = new Date(services.clock.now()).toISOString();
            updateItem(services, vault, item.name, (x) => ({ ...x, lastRefusedTransition: { from: t.from, to: t.to, code: t.code, message: t.message, at: now } }));
            refused.push({ item: item.name, code: t.code, message: t.message });
          }
        }
      }
      updateItem(services, vault, item.name, (x): ItemStatus => ({
        ...x,
        ...(r.health === undefined || !isSource ? {} : { agentHealth: r.health }),
        ...(r.initialReplicationPercent === undefined ? {} : { initialReplicationPercent: r.initialReplicationPercent }),
        ...(r.lastReplicatedTime === undefined ? {} : { lastReplicatedTime: r.lastReplicatedTime }),
        ...(r.rpoSeconds === undefined ? {} : { rpoSeconds: r.rpoSeconds }),
        // The source sends pass counters only while a pass runs: a report without them ends them.
        ...(r.statistics === undefined ? {} : { statistics: { ...(isSource ? withoutPassCounters(x.statistics ?? {}) : (x.statistics ?? {})), ...r.statistics } }),
        ...(r.errors === undefined || !isSource ? {} : { errors: r.errors }),
      }));
      if (r.recoveryPoints !== undefined) {
        services.store.replaceRecoveryPoints(vault, item.name, r.recoveryPoints.map((p) => ({ id: p.id, time: Date.parse(p.time), kind: p.kind })));
      }
      accepted.push(item.name);
    });
  }
  return { accepted, refused };
}

