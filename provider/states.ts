/**
 * States of Lifeboat's objects, one dimension at a time (DRBD style): the
 * replication state of a protected item, its health, the connection of a host
 * to the vault, and the state of a job. The dimensions are independent: an
 * item is, say, `Protected` and `Warning` at once; a host being `Disconnected`
 * does not change any item's replication state by itself.
 *
 * Each dimension is a string union whose PascalCase members double as display
 * names. Transitions live in one table per dimension and happen only through
 * `transition()`, which records the reason or returns a refusal value with a
 * stable code; nothing here throws. Code asks predicates (`canFailover`,
 * `isTerminal`...) instead of comparing states or their order.
 *
 * docs/state-machines.md draws each machine and explains every transition;
 * test/unit/states.test.ts checks that this file, the tables and that document
 * agree on every pair of states.
 */

/**
 * Replication state of a protected item (names follow Hyper-V Replica;
 * docs/state-machines.md §1). The direction of replication (which site is the
 * primary) is a property of the item, not a state: `Reprotecting` ends in
 * `Protected` with the direction reversed.
 */
export type ReplicationState =
  /** No replication relationship; no tracker runs; the item owns no replica data. */
  | 'NotProtected'
  /** The `protection.enable` job checks prerequisites and creates the relationship; no data has moved. */
  | 'EnablingProtection'
  /** The relationship and replica disks exist; the initial copy waits for its scheduled start; nothing is tracked yet. */
  | 'WaitingForInitialReplication'
  /** The tracker logs every write and the copy cursor advances; no recovery point exists yet. */
  | 'InitialReplicationInProgress'
  /** At least one recovery point exists and delta cycles ship on the copy frequency (retrying while they fail recoverably). */
  | 'Protected'
  /** Delta replication cannot continue (log lost, corrupt or over budget, unclean stop, diverged replica); retained points are intact; waits for the resync window or an operator. */
  | 'ResynchronizationRequired'
  /** Block digests are compared and differing blocks sent from a persisted cursor; writes are tracked; retained points predate the resync and stay usable. */
  | 'Resynchronizing'
  /** A failover job owns the item; replication is stopped; the replica changes only through that job. */
  | 'FailoverInProgress'
  /** A VM runs at the recovery side from the chosen point; the point can still change or the failover be cancelled; other points are kept. */
  | 'FailedOver'
  /** The failed-over VM is the workload; every other point is gone; nothing is replicated in either direction. */
  | 'FailoverCommitted'
  /** Reverse replication is being set up: the old primary becomes the replica by resync (digests), and its VM is fenced off. */
  | 'Reprotecting'
  /** The `protection.disable` job stops tracking and removes or keeps the replica as the policy says; then the item is `NotProtected`. */
  | 'DisablingProtection';

/** Health of a protected item (docs/state-machines.md §2). */
export type Health =
  /** Replication meets its RPO and nothing is being retried. */
  | 'Normal'
  /** Attention needed but the system copes: RPO over the threshold, log budget running out, recoverable errors being retried, resync pending automatically. */
  | 'Warning'
  /** An operator must act: a non-recoverable error stopped replication, or retrying is stuck. */
  | 'Critical';

/** Connection of a host agent to its vault, from the vault's side (docs/state-machines.md §3). */
export type ConnectionState =
  /** The last heartbeat arrived within one heartbeat interval (plus grace); commands are delivered. */
  | 'Connected'
  /** Heartbeats are overdue but within the disconnect timeout; commands queue; nothing is failed over or alerted as down. */
  | 'NotResponding'
  /** No heartbeat within the disconnect timeout, or the agent signed off; jobs that need it wait; health of its items is reported as unknown. */
  | 'Disconnected';

/** State of a job (docs/state-machines.md §4). */
export type JobState =
  /** Accepted and persisted; no step has run. */
  | 'NotStarted'
  /** A step runs (or waits on back-off); after a vault restart the engine resumes it from the persisted step. */
  | 'InProgress'
  /** The job waits for an operator: a recovery plan's manual action to be acknowledged, or a decision to resume or cancel after a failed plan step (its `waiting` says which); nothing runs (ASR calls the first `Suspended`). */
  | 'WaitingForAction'
  /** Every step finished; terminal. */
  | 'Succeeded'
  /** A step failed and the job stopped; what it left behind is in its record; terminal (a retry is a new job). */
  | 'Failed'
  /** Cancellation was requested; the current step stops at its next safe point and compensations run. */
  | 'Cancelling'
  /** Stopped on request after compensations; terminal. */
  | 'Cancelled';

/** The state dimensions. */
export type Dimension = 'replication' | 'health' | 'connection' | 'job';

/** The state type of each dimension. */
export interface StateOf {
  readonly replication: ReplicationState;
  readonly health: Health;
  readonly connection: ConnectionState;
  readonly job: JobState;
}

/**
 * One transition table: for each state, the states it may go to, each with
 * the trigger that takes it there (the text docs/state-machines.md lists).
 */
export type TransitionTable<S extends string> = { readonly [From in S]: { readonly [To in S]?: string } };

const replicationTable: TransitionTable<ReplicationState> = {
  NotProtected: {
    EnablingProtection: 'protection.enable job started',
  },
  EnablingProtection: {
    WaitingForInitialReplication: 'relationship and replica disks created',
    NotProtected: 'enabling failed or was cancelled; what it created was removed',
  },
  WaitingForInitialReplication: {
    InitialReplicationInProgress: 'scheduled start time reached, or started by an operator',
    DisablingProtection: 'protection.disable job started',
  },
  InitialReplicationInProgress: {
    Protected: 'copy finished and the logs of the copy applied: first recovery point committed',
    ResynchronizationRequired: 'a log of the copy was lost, corrupt or over budget; the copied blocks are kept and resync repairs them',
    DisablingProtection: 'protection.disable job started',
  },
  Protected: {
    ResynchronizationRequired: 'resync trigger: log budget exceeded, log lost or corrupt, unclean stop, replica diverged, or operator request',
    FailoverInProgress: 'planned or unplanned failover job started',
    DisablingProtection: 'protection.disable job started',
  },
  ResynchronizationRequired: {
    Resynchronizing: 'inside the resync window (automatic), or started by an operator',
    FailoverInProgress: 'unplanned failover to a retained point',
    DisablingProtection: 'protection.disable job started',
  },
  Resynchronizing: {
    Protected: 'every block compared, differing blocks and tracked writes applied: first point of the new generation committed',
    ResynchronizationRequired: 'resync interrupted (outage, agent restart, operator pause); the cursor is kept and resumes',
    FailoverInProgress: 'unplanned failover to a point retained from before the resync',
    DisablingProtection: 'protection.disable job started',
  },
  FailoverInProgress: {
    FailedOver: 'VM started at the recovery side from the chosen point',
    Protected: 'failover failed or was cancelled before the replica changed; it was started from Protected',
    ResynchronizationRequired: 'failover failed or was cancelled after the replica changed, or it was started from a resync state',
  },
  FailedOver: {
    FailoverInProgress: 'operator changes the recovery point (before commit)',
    FailoverCommitted: 'operator commits the failover',
    ResynchronizationRequired: 'operator cancels the failover: the failed-over VM is discarded and the replica, which it may have written, is resynced from the source',
  },
  FailoverCommitted: {
    Reprotecting: 'reprotect (reverse replication) job started',
    DisablingProtection: 'protection.disable job started',
  },
  Reprotecting: {
    Protected: 'old primary brought in sync by resync: first point in the reverse direction committed',
    FailoverCommitted: 'reprotect failed or was cancelled; the recovery side stays the active site',
  },
  DisablingProtection: {
    NotProtected: 'tracking stopped and the replica removed or kept as the policy says',
  },
};

const healthTable: TransitionTable<Health> = {
  Normal: {
    Warning: 'RPO over threshold, log budget running out, recoverable error being retried, or resync pending',
    Critical: 'non-recoverable error, or retrying stuck',
  },
  Warning: {
    Normal: 'condition cleared: RPO back under threshold, retry succeeded, resync finished',
    Critical: 'non-recoverable error, or retrying stuck',
  },
  Critical: {
    Normal: 'operator action resolved the error and replication caught up',
    Warning: 'operator action resolved the error; replication is catching up or retrying',
  },
};

const connectionTable: TransitionTable<ConnectionState> = {
  Connected: {
    NotResponding: 'heartbeat overdue by more than one interval plus grace',
    Disconnected: 'agent signed off (shutdown, deregistration) or its certificate was revoked',
  },
  NotResponding: {
    Connected: 'heartbeat received',
    Disconnected: 'no heartbeat within the disconnect timeout',
  },
  Disconnected: {
    Connected: 'heartbeat received from an authenticated agent',
  },
};

const jobTable: TransitionTable<JobState> = {
  NotStarted: {
    InProgress: 'job engine started the first step',
    Cancelled: 'cancelled before any step ran',
  },
  InProgress: {
    WaitingForAction: 'a manual action was reached, or a plan step failed',
    Succeeded: 'last step finished',
    Failed: 'a step failed and cannot be retried',
    Cancelling: 'cancellation requested',
  },
  WaitingForAction: {
    InProgress: 'operator acknowledged the manual action, or resumed after the failure',
    Failed: 'manual action timed out or was rejected',
    Cancelling: 'cancellation requested',
  },
  Cancelling: {
    Cancelled: 'current step stopped and compensations finished',
    Failed: 'a compensation failed',
  },
  Succeeded: {},
  Failed: {},
  Cancelled: {},
};

const tables: { readonly [D in Dimension]: TransitionTable<StateOf[D]> } = {
  replication: replicationTable,
  health: healthTable,
  connection: connectionTable,
  job: jobTable,
};

/** The transition table of a dimension (read-only; for docs, UIs and tests). */
export function transitionTable<D extends Dimension>(dimension: D): TransitionTable<StateOf[D]> {
  return tables[dimension];
}

/** Every member of a dimension, in table order. */
export function statesOf<D extends Dimension>(dimension: D): readonly StateOf[D][] {
  return Object.keys(tables[dimension]) as StateOf[D][];
}

/** True if `value` is a member of the dimension (e.g. a string read from a store). */
export function isState<D extends Dimension>(dimension: D, value: unknown): value is StateOf[D] {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(tables[dimension], value);
}

/** The trigger text of an allowed transition, or `undefined` if the table has no such pair. */
export function triggerOf<D extends Dimension>(dimension: D, from: StateOf[D], to: StateOf[D]): string | undefined {
  const row = (tables[dimension] as TransitionTable<string>)[from];
  return row === undefined || !Object.prototype.hasOwnProperty.call(row, to) ? undefined : row[to];
}

/** A transition that happened: the caller records it (store, job log, event). */
export interface Transitioned<S extends string> {
  readonly ok: true;
  readonly dimension: Dimension;
  readonly from: S;
  readonly to: S;
  /** What the table says takes `from` to `to`. */
  readonly trigger: string;
  /** The caller's reason for this occurrence, e.g. `segment 42 checksum mismatch`. */
  readonly reason: string;
}

/**
 * Why a transition was refused; stable codes.
 * - `state.unchanged`: `from` equals `to`; nothing to record. Usually benign.
 * - `state.notAllowed`: the table has no such pair.
 * - `state.unknown`: `from` or `to` is not a member of the dimension.
 * - `state.noReason`: the reason is empty; every transition records why.
 */
export type RefusalCode = 'state.unchanged' | 'state.notAllowed' | 'state.unknown' | 'state.noReason';

/** A refused transition: a value, not an exception. */
export interface Refusal<S extends string> {
  readonly ok: false;
  readonly dimension: Dimension;
  readonly code: RefusalCode;
  readonly from: S;
  readonly to: S;
  /** A sentence for people, naming the allowed targets when the pair is not allowed. */
  readonly message: string;
}

export type TransitionResult<S extends string> = Transitioned<S> | Refusal<S>;

/**
 * The one place a state changes. Returns the transition (with the table's
 * trigger and the caller's reason) when the table allows `from` → `to`, else a
 * refusal with a stable code. Pure: it neither stores nor throws; the caller
 * persists the result (and should persist the refusal too when it reports a
 * bug or a race, e.g. a failover requested for an item that is resyncing).
 */
export function transition<D extends Dimension>(
  dimension: D,
  from: StateOf[D],
  to: StateOf[D],
  reason: string,
): TransitionResult<StateOf[D]> {
  const refuse = (code: RefusalCode, message: string): Refusal<StateOf[D]> => ({ ok: false, dimension, code, from, to, message });
  if (!isState(dimension, from) || !isState(dimension, to)) {
    const bad = isState(dimension, from) ? to : from;
    return refuse('state.unknown', `'${String(bad)}' is not a ${dimension} state; valid: ${statesOf(dimension).join(', ')}`);
  }
  if (from === to) return refuse('state.unchanged', `${dimension} state is already ${from}`);
  if (reason.trim() === '') return refuse('state.noReason', `${dimension} transition ${from} → ${to} needs a reason`);
  const trigger = triggerOf(dimension, from, to);
  if (trigger === undefined) {
    const allowed = Object.keys((tables[dimension] as TransitionTable<string>)[from] ?? {});
    const options = allowed.length === 0 ? `${from} is terminal` : `from ${from} only: ${allowed.join(', ')}`;
    return refuse('state.notAllowed', `${dimension} transition ${from} → ${to} is not allowed (${options})`);
  }
  return { ok: true, dimension, from, to, trigger, reason };
}

// Predicates. Each names a set of states; the test checks each against the
// transition table so that the two cannot drift apart.

/** Data flows from the primary to the replica (copy, delta cycles, resync, reverse resync). */
export function isReplicating(s: ReplicationState): boolean {
  return s === 'InitialReplicationInProgress' || s === 'Protected' || s === 'Resynchronizing' || s === 'Reprotecting';
}

/**
 * A failover may start: the item has a replica with retained points. The
 * caller still checks that the chosen point exists (in `Resynchronizing` only
 * points from before the resync are consistent).
 */
export function canFailover(s: ReplicationState): boolean {
  return s === 'Protected' || s === 'ResynchronizationRequired' || s === 'Resynchronizing';
}

/**
 * A test failover may start. It does not change the replication state: it
 * reads a retained point through a copy-on-write overlay.
 */
export function canTestFailover(s: ReplicationState): boolean {
  return canFailover(s);
}

/** The recovery point of a failover may still be changed, or the failover cancelled or committed. */
export function isFailedOverUncommitted(s: ReplicationState): boolean {
  return s === 'FailedOver';
}

/** The workload runs at the recovery side (failover started and not reversed by reprotect). */
export function isFailedOver(s: ReplicationState): boolean {
  return s === 'FailedOver' || s === 'FailoverCommitted' || s === 'Reprotecting';
}

/** The item waits for, or runs, a resynchronisation. */
export function needsResync(s: ReplicationState): boolean {
  return s === 'ResynchronizationRequired' || s === 'Resynchronizing';
}

/** Protection may be disabled from here (a failed-over item must be committed first). */
export function canDisableProtection(s: ReplicationState): boolean {
  return s === 'WaitingForInitialReplication' || s === 'InitialReplicationInProgress' || s === 'Protected'
    || s === 'ResynchronizationRequired' || s === 'Resynchronizing' || s === 'FailoverCommitted';
}

/**
 * A job owns the item and others must wait: the states that only the job that
 * entered them may leave.
 */
export function isOperationInProgress(s: ReplicationState): boolean {
  return s === 'EnablingProtection' || s === 'FailoverInProgress' || s === 'Reprotecting' || s === 'DisablingProtection';
}

/** An operator must look at the item. */
export function needsAttention(h: Health): boolean {
  return h === 'Critical';
}

/** The worse of two health verdicts (combining several disks or conditions). */
export function worseHealth(a: Health, b: Health): Health {
  if (a === 'Critical' || b === 'Critical') return 'Critical';
  if (a === 'Warning' || b === 'Warning') return 'Warning';
  return 'Normal';
}

/** The vault may deliver commands to the host now. */
export function canDeliverCommands(c: ConnectionState): boolean {
  return c === 'Connected';
}

/** The job will not change state again. */
export function isTerminal(j: JobState): boolean {
  return j === 'Succeeded' || j === 'Failed' || j === 'Cancelled';
}

/** A step of the job may be executing (the engine must resume it after a restart). */
export function isRunning(j: JobState): boolean {
  return j === 'InProgress' || j === 'Cancelling';
}

/** Cancellation may be requested. */
export function canCancel(j: JobState): boolean {
  return j === 'NotStarted' || j === 'InProgress' || j === 'WaitingForAction';
}
