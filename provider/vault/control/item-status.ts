/**
 * The status of a protected item as the vault keeps it, and the only code
 * that changes its replication state and health. Replication state changes
 * go through `transition('replication', …)` of provider/states.ts with a
 * reason; health is derived: the worse of what the item's agent reports and
 * the vault's own issues (a disconnected host, a stuck or failed job), and
 * each change is recorded through `transition('health', …)`.
 */

import { transition, worseHealth, type Health, type ReplicationState, type TransitionResult } from '../../states';
import type { JsonObject, StoredObject } from '../store/records';
import { iso, type VaultServices } from './services';

/** A condition the vault itself observed about an item. */
export interface ItemIssue {
  /** Stable code; one issue per code. E.g. `host.disconnected`, `job.failed`, `job.stuck`. */
  readonly code: string;
  readonly severity: 'Warning' | 'Critical';
  readonly message: string;
  readonly hint?: string;
  /** ISO time since when it holds. */
  readonly since: string;
}

/** The typed view of a protected item's status. */
export interface ItemStatus {
  readonly replicationState: ReplicationState;
  readonly replicationStateReason?: string;
  readonly replicationStateChangedAt?: string;
  /** Effective health: worse of `agentHealth` and the issues. */
  readonly health: Health;
  readonly healthReason?: string;
  readonly agentHealth?: Health;
  readonly issues: readonly ItemIssue[];
  /** Errors the source agent reports (replaced by each report). */
  readonly errors?: readonly JsonObject[];
  readonly sourceHost?: string;
  readonly targetHost?: string;
  readonly disks?: readonly { readonly id: string; readonly sizeBytes: number }[];
  /** Where the workload runs: `primary` until a failover. */
  readonly activeLocation: 'primary' | 'recovery';
  readonly initialReplicationPercent?: number;
  readonly lastReplicatedTime?: string;
  readonly rpoSeconds?: number;
  readonly statistics?: JsonObject;
  /** The current or last failover (docs/failover.md §5). */
  readonly failover?: FailoverInfo;
  /** The last reprotect: whether it sent only the blocks that can differ (`delta`), and how many bytes they cover. */
  readonly reprotect?: { readonly job: string; readonly delta: boolean; readonly regionBytes: number };
  /** The test-failover VM, while one exists. */
  readonly testFailover?: {
    readonly vm: string; readonly host: string; readonly point?: JsonObject; readonly job: string;
    /** Per disk: the point id the test VM runs from. */
    readonly diskPoints?: Readonly<Record<string, string>>;
    /** The data check of the test VM's disks (`checkData`, docs/failover.md §4a). */
    readonly check?: JsonObject;
    /** An azure item's: the VM the test VM stands for in Azure (docs/azure-failover.md §4). */
    readonly azureVm?: JsonObject;
  };
  /** The job that currently owns the item, if any. */
  readonly activeJob?: { readonly id: string; readonly type: string };
  readonly lastJob?: { readonly id: string; readonly type: string; readonly state: string };
  /** Latest refused state report, for diagnosis. */
  readonly lastRefusedTransition?: { readonly from: string; readonly to: string; readonly code: string; readonly message: string; readonly at: string };
}

/** What the vault records of a failover (docs/failover.md §5). */
export interface FailoverInfo {
  readonly type: 'planned' | 'unplanned';
  /** The point spec asked for: `latest`, `latestAppConsistent` or an ISO time. */
  readonly requested: string;
  /** The point the failover VM runs from (the first disk's), once started. */
  readonly point?: JsonObject;
  /** Per disk: the point id. */
  readonly diskPoints?: JsonObject;
  readonly vm?: string;
  readonly host?: string;
  readonly startedAt?: string;
  readonly committedAt?: string;
  /** Per disk: the generation of its committed point (reprotect checks the old primary's log against it). */
  readonly pointGenerations?: JsonObject;
  /** The host the workload failed over from: its VM stays fenced until reprotect made its disk the replica. */
  readonly fromHost?: string;
  /** Set once reprotect made the old VM's disk the replica: nothing is fenced any more. */
  readonly released?: boolean;
  /** The networks the failover VM's NICs were attached to, in order. */
  readonly networks?: readonly string[];
  readonly job: string;
}

/** The status of a new item. */
export function initialItemStatus(): JsonObject {
  const s: ItemStatus = { replicationState: 'NotProtected', health: 'Normal', issues: [], activeLocation: 'primary' };
  return toJson(s);
}

export function toJson(s: ItemStatus): JsonObject {
  return JSON.parse(JSON.stringify(s)) as JsonObject;
}

/** The typed status of an item object. */
export function itemStatus(o: StoredObject): ItemStatus {
  return o.status as unknown as ItemStatus;
}

function derivedHealth(s: ItemStatus): { health: Health; reason: string } {
  let health: Health = s.agentHealth ?? 'Normal';
  let reason = health === 'Normal' ? 'no issue' : 'reported by the agent';
  for (const i of s.issues) {
    const next = worseHealth(health, i.severity);
    if (next !== health) reason = i.message;
    health = next;
  }
  return { health, reason };
}

/** Statistics of a copy or resync pass (docs/agent.md §6): they describe a pass in progress and nothing else. */
export const PASS_COUNTERS: readonly string[] = ['initialReplicationBytesCopied', 'initialReplicationBytesTotal'];

/**
 * `s` without copy counters that no longer describe anything: a Protected
 * item has finished its pass, so its percent is 100 (when it was ever set)
 * and its statistics carry no pass counters. Pure; applied at every write of
 * an item's status, so no path (a report, a job step) can leave a stale one.
 */
export function withSettledCounters(s: ItemStatus): ItemStatus {
  if (s.replicationState !== 'Protected') return s;
  const stale = s.statistics !== undefined && PASS_COUNTERS.some((k) => k in s.statistics!);
  const percentStale = s.initialReplicationPercent !== undefined && s.initialReplicationPercent !== 100;
  if (!stale && !percentStale) return s;
  return {
    ...s,
    ...(percentStale ? { initialReplicationPercent: 100 } : {}),
    ...(stale ? { statistics: withoutPassCounters(s.statistics!) } : {}),
  };
}

/** `stats` without the pass counters. */
export function withoutPassCounters(stats: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(stats).filter(([k]) => !PASS_COUNTERS.includes(k))) as JsonObject;
}

/** `s` with its health recomputed, the change recorded with its reason. */
export function withHealth(s: ItemStatus): ItemStatus {
  const { health, reason } = derivedHealth(s);
  if (health === s.health) return s;
  const t = transition('health', s.health, health, reason);
  return { ...s, health, healthReason: t.ok ? `${t.trigger}: ${t.reason}` : reason };
}

/**
 * Move an item's replication state through the state table. Persists the
 * change with its reason and returns the transition; a refusal is returned
 * (and nothing written) when the table does not allow it. `update` may also
 * change other fields in the same write.
 */
export function transitionItem(
  services: VaultServices, vault: string, item: string, to: ReplicationState, reason: string,
  update: (s: ItemStatus) => ItemStatus = (s) => s,
): TransitionResult<ReplicationState> | undefined {
  let result: TransitionResult<ReplicationState> | undefined;
  services.store.updateStatus(vault, 'protectedItem', item, (raw) => {
    const s = raw as unknown as ItemStatus;
    result = transition('replication', s.replicationState, to, reason);
    if (!result.ok) return raw;
    return toJson(withHealth(withSettledCounters(update({
      ...s, replicationState: to, replicationStateReason: `${result.trigger}: ${reason}`, replicationStateChangedAt: iso(services.clock.now()),
    }))));
  }, services.clock.now());
  return result;
}

/** Change an item's status fields (not its replication state) and recompute health. No-op if the item is gone. */
export function updateItem(services: VaultServices, vault: string, item: string, update: (s: ItemStatus) => ItemStatus): StoredObject | undefined {
  return services.store.updateStatus(vault, 'protectedItem', item,
    (raw) => toJson(withHealth(withSettledCounters(update(raw as unknown as ItemStatus)))), services.clock.now());
}

/** Add or replace an issue by code (keeping its `since` when it already held). */
export function raiseIssue(services: VaultServices, vault: string, item: string, issue: Omit<ItemIssue, 'since'>): void {
  updateItem(services, vault, item, (s) => {
    const old = s.issues.find((i) => i.code === issue.code);
    const since = old?.since ?? iso(services.clock.now());
    return { ...s, issues: [...s.issues.filter((i) => i.code !== issue.code), { ...issue, since }] };
  });
}

/** Remove an issue by code; no-op if absent. */
export function clearIssue(services: VaultServices, vault: string, item: string, code: string): void {
  updateItem(services, vault, item, (s) => (s.issues.some((i) => i.code === code) ? { ...s, issues: s.issues.filter((i) => i.code !== code) } : s));
}
