/**
 * What the parts of the vault share at run time: the store, the clock, the
 * wake-ups, randomness for jitter, timing settings and a logger. One instance
 * per running vault server.
 */

import type { SecretBox } from './azure-credentials';
import type { Clock } from '../../clock';
import type { JobRecord, JsonObject, ObjectRef } from '../store/records';
import type { SqliteStore } from '../store/sqlite/sqlite-store';
import type { Notifier } from './notifier';

/** Timings of the vault's background work, all in ms. */
export interface VaultTimings {
  /** A delivered command not acknowledged (or reported on) within this time is delivered again. */
  readonly commandLeaseMs: number;
  /** Longest long-poll an agent may ask for. */
  readonly maxLongPollMs: number;
  /** How often a waiting job step re-reads the store even without a wake-up. */
  readonly recheckMs: number;
}

/** Log lines of the vault: one event, already formatted for people. */
export type VaultLogger = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface VaultServices {
  readonly store: SqliteStore;
  readonly clock: Clock;
  readonly notifier: Notifier;
  /** Uniform numbers in [0, 1), for retry jitter (seedable in tests). */
  readonly random: () => number;
  readonly timings: VaultTimings;
  readonly log: VaultLogger;
  /** Sealed storage account secrets of azure policies (docs/azure-failover.md §2). @default none: such secrets are refused */
  readonly secrets?: SecretBox;
}

/** What control code needs of the job engine: create a job inside a transaction, run it after the commit. */
export interface JobStarter {
  /** Persist a NotStarted job; call inside the transaction of the change it carries out. */
  createJob(vault: string, type: string, target: ObjectRef, input?: JsonObject): JobRecord;
  /** Start running a job (after its transaction committed). */
  kick(id: string): void;
}

/** ISO 8601 text of a time in ms, as the API shows times. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
