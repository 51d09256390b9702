/**
 * The contract of a job type. A job is a fixed list of steps; the engine
 * runs them in order and records each step's state, progress and message in
 * the store. A step is a resumable function: it may run more than once (after
 * a recoverable failure, or when a restarted vault resumes the job at its
 * first unfinished step), so it must be idempotent, keeping whatever it must
 * not redo (a command id, a chosen host) in the job's persisted `data`.
 */

import type { Json, JobRecord, JsonObject, ObjectKind } from '../store/records';
import type { JobStarter, VaultServices } from '../control/services';

/** What a step (or a hook at engine start) may do with other jobs: start them, and cancel them. */
export interface JobControl extends JobStarter {
  /** Request cancellation of a job (docs/jobs.md §1); harmless for a finished or unknown job. */
  cancel(id: string): void;
}

/**
 * What a job waits on while it is `WaitingForAction`: an operator's
 * acknowledgement of a manual action, or an operator's decision to resume
 * after a failure (or cancel). `token` names the wait; an answer is recorded
 * under it, so a step that runs again (a vault restart) finds its answer.
 */
export interface OperatorWait {
  readonly kind: 'acknowledgement' | 'resume';
  readonly token: string;
  /** What the operator should do, for people (`lifeboat jobs show` prints it). */
  readonly message: string;
  /** Handler-specific details shown with the wait (e.g. the group and action). @default none */
  readonly details?: JsonObject;
}

/** What a step gets. */
export interface StepContext {
  readonly services: VaultServices;
  /** The job as it was when the step started (data included). */
  readonly job: JobRecord;
  /** Aborted when the job is cancelled or the vault stops; pass to every wait. */
  readonly signal: AbortSignal;
  /** A value of the job's persisted data. */
  get(key: string): Json | undefined;
  /** Merge into the job's persisted data (written at once; `null` removes a key). */
  set(patch: JsonObject): void;
  /** Report the step's progress (0-100) and what it is doing. */
  progress(percent: number, message?: string): void;
  /**
   * Queue a command for a host and wait for its result, resumably: the
   * command id is kept in the job's data under `key`, so a resumed step
   * waits for the same command instead of sending another. Returns the
   * command's result. A failed command throws its error (with its category,
   * so recoverable failures are retried on the back-off schedule and send a
   * new command); a host that disappears throws `NonRecoverableError`.
   * Progress reports of the command become the step's progress and are
   * passed to `onProgress`.
   */
  runCommand(
    key: string,
    command: { readonly host: string; readonly type: string; readonly payload: JsonObject },
    onProgress?: (percent: number, message: string | undefined) => void,
  ): Promise<JsonObject>;
  /** Wait until `time` (ms) on the vault's clock; resumable because `time` comes from data. */
  sleepUntil(time: number, message?: string): Promise<void>;
  /** Start and cancel other jobs (a recovery plan's per-item jobs). */
  readonly jobs: JobControl;
  /**
   * Park the job in `WaitingForAction` until an operator answers `wait`
   * (`JobEngine.answerOperator`, the API's `ack` and `resume`); resolves
   * with the answer (`{kind, at, comment?}`) once the job is InProgress
   * again. Resumable: a step that runs again after a vault restart waits
   * for the same token, and returns at once if it was answered already.
   * Rejects when the job is cancelled or the vault stops (`signal`).
   */
  waitForOperator(wait: OperatorWait): Promise<JsonObject>;
}

/** One step of a job type. */
export interface StepDefinition {
  /** Stable id within the job type, e.g. `initialReplication`. */
  readonly name: string;
  /** For people. */
  readonly title: string;
  /** Share of the job's overall progress. @default 1 */
  readonly weight?: number;
  /**
   * Do the step. Return `'skipped'` if it did not apply (e.g. no target host
   * for an Azure target). Throw a LifeboatError to fail: `recoverable` is
   * retried on the back-off schedule; any other category fails the job.
   */
  run(ctx: StepContext): Promise<void | 'skipped'>;
}

/** What hooks of a handler get: the job and the services; synchronous, inside the job's final write. */
export interface HookContext {
  readonly services: VaultServices;
  readonly job: JobRecord;
}

/** A job type. */
export interface JobHandler {
  /** `noun.verb`. */
  readonly type: string;
  /** Kind of object the job works on. */
  readonly targetKind: ObjectKind;
  readonly steps: readonly StepDefinition[];
  /** Every step finished. */
  onSucceeded?(ctx: HookContext): void;
  /**
   * A step failed with a non-retryable error, after `compensate` ran: record
   * what it left behind (item state, issues).
   */
  onFailed?(ctx: HookContext, error: JsonObject): void;
  /** The job reached a terminal state (any of them), in the same write. */
  onEnded?(ctx: HookContext): void;
  /** A step failed recoverably and will be retried at `nextAttemptAt` (ms). */
  onRetry?(ctx: HookContext, error: JsonObject, nextAttemptAt: number): void;
  /** Retrying made no progress for a while; surface it (the job keeps retrying). */
  onStuck?(ctx: HookContext, reason: string, hint: string): void;
  /** A step that had failed recoverably succeeded (after `onRetry`, maybe `onStuck`). */
  onRecovered?(ctx: HookContext): void;
  /**
   * Undo what the job did, after it was cancelled (the current step was
   * stopped and the job's open commands withdrawn) or failed with a
   * non-retryable error. May run commands through `ctx` (resumable like a
   * step). A throw during cancellation fails the job; during failure it is
   * recorded as a second error.
   */
  compensate?(ctx: StepContext, why: 'cancelled' | 'failed'): Promise<void>;
  /**
   * The engine started (vault start): re-arm what the handler keeps outside
   * jobs, e.g. timers of the vault's clock. `signal` aborts when the engine
   * stops. Must not throw.
   */
  onEngineStart?(ctx: EngineStartContext): void;
}

/** What `onEngineStart` gets. */
export interface EngineStartContext {
  readonly services: VaultServices;
  readonly jobs: JobControl;
  readonly signal: AbortSignal;
}

/** A string from job data, or `undefined`. */
export function dataString(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
