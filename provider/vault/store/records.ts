/**
 * What the vault store keeps, as plain records. The store is the only owner
 * of these shapes on disk; the API turns them into its JSON documents.
 * Times are milliseconds since the epoch.
 */

import type { JobState } from '../../states';

/** A JSON value as stored. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** Kinds of named objects (DESIGN.md §4). Jobs, commands and recovery points have their own tables. */
export type ObjectKind = 'vault' | 'site' | 'host' | 'replicationPolicy' | 'networkMapping' | 'protectedItem' | 'recoveryPlan';

/** A reference from one object to another in the same vault. */
export interface ObjectRef {
  readonly kind: ObjectKind;
  /** Name as written; compared case-insensitively. */
  readonly name: string;
}

/** One named object. */
export interface StoredObject {
  /** The vault's key (lower-case name). For kind `vault`, the object's own key. */
  readonly vault: string;
  readonly kind: ObjectKind;
  /** Name as first written; lookups are case-insensitive. */
  readonly name: string;
  /** Unique for the life of the object; a re-created object gets a new one. */
  readonly uid: string;
  /** 1 when created; +1 on every change of the spec. Status changes do not bump it. */
  readonly generation: number;
  /** What the client asked for, canonical (keys sorted, no `name`). */
  readonly spec: JsonObject;
  /** What the vault observed; written by the vault only. */
  readonly status: JsonObject;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Secrets of a vault, never returned by list/get of objects. */
export interface VaultSecrets {
  readonly registrationKey: string;
  readonly registrationKeyRotatedAt: number;
  readonly caPrivateKeyPem: string;
  readonly caCertificatePem: string;
}

/** State of one step of a job. */
export type StepState = 'NotStarted' | 'InProgress' | 'Succeeded' | 'Failed' | 'Skipped' | 'Cancelled';

export interface StepRecord {
  /** Stable identifier within the job type, e.g. `initialReplication`. */
  readonly name: string;
  /** For people, e.g. `Initial replication`. */
  readonly title: string;
  readonly state: StepState;
  /** 0-100. */
  readonly progress: number;
  readonly message?: string;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** How many times the step started (1 on the first run; more after retries or a vault restart). */
  readonly attempts: number;
}

/** An error recorded on a job. */
export interface JobError {
  readonly code: string;
  readonly category: string;
  readonly message: string;
  readonly hint?: string;
  /** Step during which it happened. */
  readonly step?: string;
  readonly at: number;
}

/** A job (DESIGN.md §4). */
export interface JobRecord {
  readonly id: string;
  /** Vault key. */
  readonly vault: string;
  /** `noun.verb`. */
  readonly type: string;
  readonly target: ObjectRef;
  readonly state: JobState;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt?: number;
  readonly endedAt?: number;
  /** Overall progress 0-100. */
  readonly progress: number;
  /** What the current step is doing (its latest message). */
  readonly message?: string;
  readonly steps: readonly StepRecord[];
  readonly errors: readonly JobError[];
  /** What the job was asked to do (handler-specific). */
  readonly input: JsonObject;
  /** The handler's persisted scratch state: command ids, chosen hosts, cursors. */
  readonly data: JsonObject;
  readonly cancelRequested: boolean;
  /** Back-off of the current step after recoverable failures. */
  readonly retry?: {
    readonly step: string;
    readonly failures: number;
    readonly firstFailureAt: number;
    readonly nextAttemptAt: number;
  };
  /** Set when retrying makes no progress: why, and what the operator should do. */
  readonly stuck?: { readonly since: number; readonly reason: string; readonly hint: string };
}

/** Life of a command sent to an agent. */
export type CommandState =
  /** Queued; not yet handed to the agent. */
  | 'Pending'
  /** Handed to the agent by a long-poll; redelivered if not acknowledged before the lease ends. */
  | 'Delivered'
  /** Acknowledged; the agent reports progress, each report extends the lease. */
  | 'Running'
  | 'Succeeded'
  | 'Failed'
  /** Withdrawn by the vault (job cancelled); the agent is told when it next reports. */
  | 'Cancelled';

export interface CommandRecord {
  readonly id: string;
  readonly vault: string;
  /** Host key (lower-case name). */
  readonly host: string;
  readonly jobId?: string;
  /** `noun.verb`, e.g. `replication.enable`. */
  readonly type: string;
  readonly payload: JsonObject;
  readonly state: CommandState;
  readonly progress: number;
  readonly message?: string;
  readonly result?: JsonObject;
  readonly error?: JsonObject;
  readonly deliveries: number;
  readonly leaseExpiresAt?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A recovery point of a protected item, as reported by its agent. */
export interface RecoveryPointRecord {
  readonly id: string;
  readonly time: number;
  readonly kind: 'crashConsistent' | 'appConsistent';
}
