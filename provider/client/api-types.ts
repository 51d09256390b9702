/**
 * Shapes of the vault API's answers (docs/vault-api.md), re-declared here
 * because the client must not import provider/vault (lint: the client runs
 * in other processes: the CLI, the Pulumi provider). Request bodies are the
 * JSON Schemas of schemas/; their TypeScript views below are kept loose
 * (`Record<string, unknown>`) where the vault validates them anyway.
 */

import { type ConnectionState, type Health, type JobState, type ReplicationState } from '../states';

/** A JSON object as the API sends it. */
export type JsonObject = { readonly [key: string]: unknown };

/** The envelope of every named object (docs/vault-api.md §3). */
export interface ObjectEnvelope<Spec = JsonObject, Status = JsonObject> {
  readonly kind: string;
  /** The vault's display name. */
  readonly vault: string;
  readonly name: string;
  /** Changes when the object is deleted and created again. */
  readonly uid: string;
  /** Bumped by every change of the spec. */
  readonly generation: number;
  readonly spec: Spec;
  readonly status: Status;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Collections addressed under `/v1/vaults/{vault}/`. */
export type Collection = 'sites' | 'replicationPolicies' | 'networkMappings' | 'protectedItems' | 'recoveryPlans' | 'hosts';

/** An issue the vault observed on an item (`status.issues[]`). */
export interface ItemIssue {
  readonly code: string;
  readonly severity: 'Warning' | 'Critical';
  readonly message: string;
  readonly hint?: string;
  readonly since: string;
}

/** An error as the API and agents report it (`common.schema.json#/$defs/errorInfo`). */
export interface ErrorInfo {
  readonly code: string;
  readonly category?: string;
  readonly message: string;
  readonly hint?: string;
}

/** Replication counters an agent reports (`agent-report.schema.json`). */
export interface ItemStatistics {
  readonly bytesTransferred?: number;
  readonly pendingLogBytes?: number;
  readonly cyclesCompleted?: number;
  readonly cyclesFailed?: number;
  readonly lastCycleDurationMs?: number;
  readonly throughputBytesPerSecond?: number;
  readonly initialReplicationBytesCopied?: number;
  readonly initialReplicationBytesTotal?: number;
}

/** `status` of a protected item (docs/vault-api.md §6). */
export interface ProtectedItemStatus {
  readonly replicationState: ReplicationState;
  readonly replicationStateReason?: string;
  readonly health: Health;
  readonly healthReason?: string;
  readonly issues?: readonly ItemIssue[];
  readonly errors?: readonly ErrorInfo[];
  readonly sourceHost?: string;
  readonly targetHost?: string;
  readonly disks?: readonly { readonly id: string; readonly sizeBytes: number }[];
  readonly activeLocation?: 'primary' | 'recovery';
  readonly initialReplicationPercent?: number;
  readonly lastReplicatedTime?: string;
  readonly rpoSeconds?: number;
  readonly statistics?: ItemStatistics;
  readonly activeJob?: { readonly id: string; readonly type: string };
  readonly lastJob?: { readonly id: string; readonly type: string; readonly state: JobState };
  /** The current or last failover (docs/failover.md §5). */
  readonly failover?: FailoverInfo;
  /** The test-failover VM, while one exists. */
  readonly testFailover?: {
    readonly vm: string; readonly host: string; readonly point?: RecoveryPoint; readonly job: string;
    readonly diskPoints?: Readonly<Record<string, string>>;
    /** The data check of the test VM's disks, when the failover asked for it (docs/failover.md §4a). */
    readonly check?: TestFailoverCheck;
  };
  /** The last reprotect: whether only the blocks that can differ were compared (`delta`) and the bytes they cover. */
  readonly reprotect?: { readonly job: string; readonly delta: boolean; readonly regionBytes: number };
}

/** The data check of a test VM (`failover.checkDisks`, docs/failover.md §4a). */
export interface TestFailoverCheck {
  readonly checkedAt: string;
  readonly disks: readonly {
    readonly id: string; readonly bytes: number; readonly pointId: string; readonly vmPointId: string; readonly sha256: string;
    readonly matchesPoint: boolean; readonly mismatchedBytes: number; readonly firstMismatch?: number; readonly guestWrittenBytes: number;
  }[];
}

/** What the vault records of a failover. */
export interface FailoverInfo {
  readonly type: 'planned' | 'unplanned';
  /** The point spec asked for: `latest`, `latestAppConsistent` or an ISO time. */
  readonly requested: string;
  /** The point the failover VM runs from (the first disk's). */
  readonly point?: RecoveryPoint;
  /** Per disk: its point id. */
  readonly diskPoints?: Readonly<Record<string, string>>;
  readonly vm?: string;
  readonly host?: string;
  readonly startedAt?: string;
  readonly committedAt?: string;
  /** The host the workload failed over from. */
  readonly fromHost?: string;
  /** Reprotect made the old VM's disk the replica; nothing stays fenced. */
  readonly released?: boolean;
  readonly job: string;
}

/** Body of `POST …/protectedItems/{name}/failover` (schemas/failover-request.schema.json). */
export interface FailoverRequest {
  readonly type: 'test' | 'planned' | 'unplanned';
  /** `latest`, `latestAppConsistent` or an ISO time. @default 'latest' */
  readonly point?: string;
  /** Test only: compare the test VM's disks with the point (docs/failover.md §4a). @default false */
  readonly checkData?: boolean;
}

/** `spec` of a protected item (schemas/protected-item.schema.json). */
export interface ProtectedItemSpec {
  readonly site: string;
  readonly cloud?: string;
  readonly vm: string;
  readonly policy: string;
  readonly target?: { readonly site?: string; readonly host?: string };
  readonly disks?: readonly string[];
  readonly targetVm?: JsonObject;
}

/** A VM as a host's heartbeat lists it (schemas/heartbeat.schema.json). */
export interface InventoryVm {
  readonly name: string;
  readonly powerState?: string;
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number }[];
  readonly networks?: readonly string[];
}

/** `status` of a registered host. */
export interface HostStatus {
  readonly connectionState?: ConnectionState;
  readonly connectionReason?: string;
  readonly lastContactAt?: string;
  readonly lastHeartbeatAt?: string;
  readonly registeredAt?: string;
  readonly agentVersion?: string;
  readonly inventory?: { readonly vms: readonly InventoryVm[] };
  readonly storage?: { readonly freeBytes: number; readonly totalBytes?: number };
  readonly replicationEndpoint?: { readonly address: string; readonly port: number };
}

/** `spec` of a registered host: what it registered with. */
export interface HostSpec {
  readonly site: string;
  readonly cloud?: string;
  readonly addresses?: readonly string[];
  readonly replicationPort?: number;
  readonly agentVersion?: string;
}

/** One step of a job. */
export interface JobStep {
  readonly name: string;
  readonly title: string;
  readonly state: 'NotStarted' | 'InProgress' | 'Succeeded' | 'Skipped' | 'Failed' | 'Cancelled';
  readonly progress: number;
  readonly message?: string;
  readonly attempts: number;
  readonly startedAt?: string;
  readonly endedAt?: string;
}

/** A command a job sent to an agent (`GET …/jobs/{id}?commands=true`). */
export interface CommandDetail {
  readonly id: string;
  readonly type: string;
  readonly host: string;
  readonly state: string;
  readonly deliveries: number;
  readonly progress?: number;
  readonly message?: string;
  readonly error?: ErrorInfo;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A job (docs/jobs.md). */
export interface JobInfo {
  readonly id: string;
  readonly vault: string;
  readonly type: string;
  readonly target: { readonly kind: string; readonly name: string };
  readonly state: JobState;
  /** 0–100. */
  readonly progress: number;
  readonly message?: string;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly updatedAt: string;
  readonly cancelRequested?: boolean;
  readonly steps: readonly JobStep[];
  readonly errors: readonly (ErrorInfo & { readonly step?: string; readonly at: string })[];
  readonly retry?: { readonly step: string; readonly failures: number; readonly firstFailureAt: string; readonly nextAttemptAt: string };
  readonly stuck?: { readonly since: string; readonly reason: string; readonly hint: string };
  readonly commands?: readonly CommandDetail[];
  /** Recovery plan jobs: the record of groups, actions and VMs (docs/recovery-plans.md §3). */
  readonly plan?: PlanJobRecord;
  /** While `WaitingForAction`: what the job waits on (docs/recovery-plans.md §4, §6). */
  readonly waiting?: JobWaiting;
}

/** What a `WaitingForAction` job waits on: `ack` (acknowledgement) or `resume` (after a failure). */
export interface JobWaiting {
  readonly kind: 'acknowledgement' | 'resume';
  readonly message: string;
  readonly since?: string;
  readonly group?: string;
}

/** State of a group, action or VM of a plan job. */
export type PlanPartState = 'NotStarted' | 'InProgress' | 'WaitingForAcknowledgement' | 'Succeeded' | 'Failed' | 'Skipped' | 'Cancelled';

/** An action of a plan job's group. */
export interface PlanActionInfo {
  readonly phase: 'before' | 'after';
  readonly index: number;
  readonly kind: 'script' | 'manual';
  readonly script?: string;
  readonly instruction?: string;
  readonly timeoutSeconds?: number;
  readonly host?: string;
  readonly state: PlanPartState;
  readonly attempts: number;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly timedOut?: boolean;
  /** The last 64 KiB of the script's stdout and stderr. */
  readonly output?: string;
  readonly error?: ErrorInfo;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly acknowledgedAt?: string;
  readonly comment?: string;
}

/** A VM of a plan job's group. */
export interface PlanVmInfo {
  readonly item: string;
  readonly vm: string;
  readonly state: PlanPartState;
  /** The current child item job. */
  readonly job?: string;
  /** Every child job, oldest first. */
  readonly jobs: readonly string[];
  /** Why it is skipped. */
  readonly reason?: string;
  readonly error?: ErrorInfo;
  readonly point?: { readonly id: string; readonly time?: string; readonly kind?: string };
  readonly startedAt?: string;
  /** When the agent reported the failover (or test) VM running. */
  readonly runningAt?: string;
  readonly endedAt?: string;
}

/** The record of a plan job (`JobInfo.plan`). */
export interface PlanJobRecord {
  readonly plan: string;
  readonly operation: 'failover' | 'commit' | 'testCleanup' | 'reprotect';
  readonly type?: 'test' | 'planned' | 'unplanned';
  readonly direction?: 'toRecovery' | 'toPrimary';
  readonly point?: string;
  readonly groups: readonly {
    readonly name: string;
    readonly state: PlanPartState;
    readonly startedAt?: string;
    readonly endedAt?: string;
    readonly actions: readonly PlanActionInfo[];
    readonly vms: readonly PlanVmInfo[];
  }[];
}

/** Body of `POST …/recoveryPlans/{plan}/failover` (schemas/plan-failover-request.schema.json). */
export interface PlanFailoverRequest {
  readonly type: 'test' | 'planned' | 'unplanned';
  /** `latest`, `latestAppConsistent` or an ISO time (test and unplanned). @default 'latest' */
  readonly point?: string;
  /** @default derived from the items' activeLocation */
  readonly direction?: 'toRecovery' | 'toPrimary';
  /** Test only: the vault cleans up after this long. @default never */
  readonly expiresAfterSeconds?: number;
  /** Test only: each test VM's disks are compared with its point (docs/failover.md §4a). @default false */
  readonly checkData?: boolean;
}

/** `status` of a recovery plan (docs/recovery-plans.md §7). */
export interface RecoveryPlanStatus {
  /** Derived from the items at every read. */
  readonly activeLocation: 'primary' | 'recovery' | 'mixed';
  readonly testFailover?: { readonly job: string; readonly startedAt: string; readonly expiresAt?: string };
  readonly activeJob?: { readonly id: string; readonly type: string };
  readonly lastJob?: { readonly id: string; readonly type: string; readonly state: JobState };
}

/** A retained recovery point of an item. */
export interface RecoveryPoint {
  readonly id: string;
  readonly time: string;
  readonly kind: 'crashConsistent' | 'appConsistent';
}

/** `GET /healthz`. */
export interface VaultHealth {
  readonly status: string;
  readonly version: string;
}

/** Filters of `GET …/jobs`. */
export interface JobFilter {
  /** Only jobs in these states. @default every state */
  readonly states?: readonly JobState[];
  /** e.g. `protection.enable`. @default every type */
  readonly type?: string;
  /** Only jobs of this object. @default every object */
  readonly target?: { readonly kind: string; readonly name: string };
  /** 1–1000. @default 100 */
  readonly limit?: number;
}

/** What `DELETE` of a protected item started: a job, or nothing (removed at once). */
export type DeleteItemResult = { readonly removed: true } | { readonly removed: false; readonly job: JobInfo };
