/**
 * The job engine: runs persisted jobs step by step, survives vault restarts,
 * retries recoverable failures on the replication core's back-off schedule
 * (provider/replication/retry.ts: 1, 2, 4, 8, 10 then every 30 minutes
 * between attempts, with jitter so a fleet does not retry in lockstep), flags
 * a job stuck when retrying makes no progress, and cancels on request.
 *
 * Persistence: every change of a job (state, step, progress, data, errors)
 * is written to the store before the engine goes on, so the store always
 * says which steps finished. `start()` resumes every job that was
 * NotStarted, InProgress or Cancelling when the vault stopped, at its first
 * step that did not finish; that step runs again (steps are resumable, see
 * job-handler.ts). Job states and their transitions are those of
 * provider/states.ts; each change goes through `transition('job', …)`.
 */

import { randomUUID } from 'node:crypto';
import { BugError, categoryOf, LifeboatError, NonRecoverableError, RecoverableError, type ErrorCategory } from '../../errors';
import { backoffDelay, DEFAULT_JITTER_RATIO, DEFAULT_STUCK_AFTER_ATTEMPTS, type BackoffOptions } from '../../replication/retry';
import { canCancel, isTerminal, transition, type JobState } from '../../states';
import { formatDuration } from '../../units';
import { cancelCommandsOfJob, enqueueCommand } from '../control/commands';
import { topics } from '../control/notifier';
import { iso, type VaultServices } from '../control/services';
import type { JobError, JobRecord, JsonObject, ObjectRef, StepRecord, StepState } from '../store/records';
import { keyOf } from '../store/sqlite/sqlite-store';
import type { JobControl, JobHandler, OperatorWait, StepContext, StepDefinition } from './job-handler';

/** Most errors kept on a job record (oldest dropped). */
const MAX_ERRORS = 50;

/** Prefix of the job's data keys that hold command ids (`command:<step>:<key>`). */
const COMMAND_KEY = 'command:';

/** Key of the job's data holding the failure being compensated (survives a restart during compensation). */
const FAILURE_KEY = 'engine:failure';

/** Key of the job's data holding what a `WaitingForAction` job waits on (`OperatorWait`). */
export const OPERATOR_WAIT_KEY = 'operator:wait';

/** Prefix of the job's data keys holding an operator's answers, by token. */
const OPERATOR_ANSWER_KEY = 'operator:answer:';

export interface JobEngineOptions {
  readonly services: VaultServices;
  readonly handlers: readonly JobHandler[];
  /** Back-off between attempts of a failing step. @default the schedule of replication/retry.ts with 10 % jitter from `services.random` */
  readonly backoff?: BackoffOptions;
  /** Consecutive failures without progress after which a job is flagged stuck. @default DEFAULT_STUCK_AFTER_ATTEMPTS (8) */
  readonly stuckAfterFailures?: number;
}

/** Raised into a job's steps when the engine stops (vault shutdown): the job stays as persisted. */
class EngineStopped extends Error {
  constructor() {
    super('the vault is stopping');
  }
}

/** Raised into a job's step when the job is cancelled. */
class JobCancelled extends Error {
  constructor() {
    super('the job was cancelled');
  }
}

function errorInfo(e: unknown, step: string | undefined, at: number): JobError {
  const base = LifeboatError.isInstance(e)
    ? { code: e.code, category: e.category, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) }
    : { code: 'internal.error', category: 'bug', message: e instanceof Error ? e.message : String(e), hint: 'this is a bug in Lifeboat; report it with the vault log' };
  return { ...base, ...(step === undefined ? {} : { step }), at };
}

const CATEGORIES: readonly ErrorCategory[] = ['recoverable', 'resyncRequired', 'nonRecoverable', 'invalidInput', 'bug'];

/** The LifeboatError an agent reported for a failed command. */
function errorOfCommand(type: string, host: string, error: JsonObject | undefined): LifeboatError {
  const code = typeof error?.code === 'string' ? error.code : 'command.failed';
  const category = CATEGORIES.find((c) => c === error?.category) ?? 'nonRecoverable';
  const message = typeof error?.message === 'string' ? error.message : `command ${type} failed on ${host}`;
  const hint = typeof error?.hint === 'string' ? error.hint : undefined;
  return new LifeboatError(code, category, `${type} on ${host}: ${message}`, hint === undefined ? {} : { hint });
}

export class JobEngine {
  private readonly services: VaultServices;
  private readonly handlers = new Map<string, JobHandler>();
  private readonly backoff: BackoffOptions;
  private readonly stuckAfter: number;
  private readonly running = new Map<string, { readonly cancel: AbortController; readonly done: Promise<void> }>();
  private readonly stopController = new AbortController();

  constructor(options: JobEngineOptions) {
    this.services = options.services;
    for (const h of options.handlers) this.handlers.set(h.type, h);
    this.backoff = options.backoff ?? { jitterRatio: DEFAULT_JITTER_RATIO, random: options.services.random };
    this.stuckAfter = options.stuckAfterFailures ?? DEFAULT_STUCK_AFTER_ATTEMPTS;
  }

  /** The handler of a job type; throws `BugError` for an unknown type. */
  handler(type: string): JobHandler {
    const h = this.handlers.get(type);
    if (h === undefined) throw new BugError('job.unknownType', `no handler for job type ${type}`);
    return h;
  }

  /**
   * Persist a new job (NotStarted). Call inside the transaction that makes
   * the change the job carries out, then `kick(job.id)` after it commits.
   */
  createJob(vault: string, type: string, target: ObjectRef, input: JsonObject = {}): JobRecord {
    const handler = this.handler(type);
    const now = this.services.clock.now();
    const job: JobRecord = {
      id: `job-${randomUUID()}`,
      vault: keyOf(vault),
      type,
      target,
      state: 'NotStarted',
      createdAt: now,
      updatedAt: now,
      progress: 0,
      steps: handler.steps.map((s) => ({ name: s.name, title: s.title, state: 'NotStarted', progress: 0, attempts: 0 })),
      errors: [],
      input,
      data: {},
      cancelRequested: false,
    };
    this.services.store.insertJob(job);
    return job;
  }

  /**
   * Resume every unfinished job (call once, at vault start), a job waiting
   * for an operator included (its step waits again for the same answer),
   * then let each handler re-arm what it keeps outside jobs (`onEngineStart`).
   */
  start(): void {
    for (const job of this.services.store.jobsInStates(['NotStarted', 'InProgress', 'WaitingForAction', 'Cancelling'])) this.kick(job.id);
    for (const h of this.handlers.values()) h.onEngineStart?.({ services: this.services, jobs: this.jobControl(), signal: this.stopController.signal });
  }

  /**
   * Answer what a `WaitingForAction` job waits on (see
   * `StepContext.waitForOperator`): `kind` must be what it waits for. The
   * answer is recorded under the wait's token and the job goes back to
   * InProgress in one transaction, then its step wakes. Returns the job, a
   * refusal (the job does not wait, or waits for another kind of answer;
   * nothing changed), or `undefined` if there is no such job. A second
   * answer to the same wait is refused: the job no longer waits on it.
   */
  answerOperator(id: string, kind: OperatorWait['kind'], answer: JsonObject = {}): { readonly job: JobRecord } | { readonly refused: string; readonly waiting?: OperatorWait; readonly job: JobRecord } | undefined {
    const result = this.services.store.transaction(() => {
      const job = this.services.store.getJob(id);
      if (job === undefined) return undefined;
      const wait = job.data[OPERATOR_WAIT_KEY] as unknown as OperatorWait | undefined;
      if (job.state !== 'WaitingForAction' || wait === undefined) return { refused: `job ${id} is ${job.state} and waits for no operator`, job };
      if (wait.kind !== kind) return { refused: `job ${id} waits for ${wait.kind === 'resume' ? 'resume (after a failure)' : 'an acknowledgement'}, not ${kind === 'resume' ? 'resume' : 'an acknowledgement'}: ${wait.message}`, waiting: wait, job };
      const data: JsonObject = { ...job.data, [`${OPERATOR_ANSWER_KEY}${wait.token}`]: { ...answer, kind, at: this.services.clock.now() } };
      delete data[OPERATOR_WAIT_KEY];
      const next = this.withState({ ...job, data }, 'InProgress', kind === 'resume' ? 'operator resumed the job after a failure' : 'operator acknowledged the manual action');
      this.services.store.updateJob(next);
      return { job: next };
    });
    if (result !== undefined && !('refused' in result)) {
      this.services.notifier.notify(topics.job(id));
      if (!this.running.has(id)) this.kick(id);
    }
    return result;
  }

  /** Run the job if it is not already running. Harmless for finished or unknown jobs. */
  kick(id: string): void {
    if (this.stopController.signal.aborted || this.running.has(id)) return;
    const cancel = new AbortController();
    const done = this.drive(id, cancel)
      .catch((e: unknown) => {
        if (!this.stopController.signal.aborted) this.services.log('error', `job ${id}: engine error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      })
      .finally(() => this.running.delete(id));
    this.running.set(id, { cancel, done });
  }

  /**
   * Ask a job to stop. NotStarted and InProgress jobs go to Cancelling (or
   * straight to Cancelled when nothing ran yet): the current step is
   * interrupted, the job's open commands are withdrawn and the handler's
   * compensation runs. Returns the job as recorded, or `undefined` if there
   * is no such job. Throws `InvalidInput`-category `job.notCancellable` via
   * the returned refusal when the job already finished.
   */
  requestCancel(id: string): { readonly job: JobRecord } | { readonly refused: string; readonly job: JobRecord } | undefined {
    const result = this.services.store.transaction(() => {
      const job = this.services.store.getJob(id);
      if (job === undefined) return undefined;
      if (job.state === 'Cancelling' || (job.state === 'NotStarted' && job.cancelRequested)) return { job };
      if (!canCancel(job.state)) return { refused: `job ${id} is ${job.state}; only unfinished jobs can be cancelled`, job };
      if (job.steps.some((s) => s.state === 'Failed')) return { refused: `job ${id} failed and is undoing what it did; it cannot be cancelled`, job };
      const next: JobRecord = job.state === 'NotStarted'
        ? { ...job, cancelRequested: true, updatedAt: this.services.clock.now() }
        : this.withState(job, 'Cancelling', 'cancellation requested', { cancelRequested: true });
      this.services.store.updateJob(next);
      return { job: next };
    });
    if (result !== undefined && !('refused' in result)) {
      this.services.notifier.notify(topics.job(id));
      const r = this.running.get(id);
      if (r !== undefined) r.cancel.abort(new JobCancelled());
      else this.kick(id);
    }
    return result;
  }

  /** Stop running jobs without changing what is persisted (vault shutdown). Resolves when every step has unwound. */
  async stop(): Promise<void> {
    this.stopController.abort(new EngineStopped());
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  /** Resolves when the job is no longer running in this engine (finished, or stopped). For tests and tools. */
  async settled(id: string): Promise<void> {
    await this.running.get(id)?.done;
  }

  // ---------------------------------------------------------------------------

  private withState(job: JobRecord, to: JobState, reason: string, patch: Partial<JobRecord> = {}): JobRecord {
    const t = transition('job', job.state, to, reason);
    if (!t.ok) throw new BugError('job.badTransition', `job ${job.id}: ${t.message}`);
    const now = this.services.clock.now();
    return { ...job, ...patch, state: to, updatedAt: now, ...(isTerminal(to) ? { endedAt: now } : {}) };
  }

  /** Read-modify-write of a job in one transaction; wakes whoever follows the job (a parent job). */
  private mutate(id: string, fn: (job: JobRecord) => JobRecord): JobRecord {
    const next = this.services.store.transaction(() => {
      const job = this.services.store.getJob(id);
      if (job === undefined) throw new BugError('job.missing', `job ${id} disappeared`);
      const n = { ...fn(job), updatedAt: this.services.clock.now() };
      this.services.store.updateJob(n);
      return n;
    });
    this.services.notifier.notify(topics.job(id));
    return next;
  }

  /** What steps and hooks may do with other jobs. */
  private jobControl(): JobControl {
    return {
      createJob: (vault, type, target, input) => this.createJob(vault, type, target, input),
      kick: (id) => this.kick(id),
      cancel: (id) => {
        this.requestCancel(id);
      },
    };
  }

  private overallProgress(handler: JobHandler, steps: readonly StepRecord[]): number {
    let total = 0;
    let done = 0;
    for (const s of steps) {
      const w = handler.steps.find((d) => d.name === s.name)?.weight ?? 1;
      total += w;
      done += w * (s.state === 'Succeeded' || s.state === 'Skipped' ? 100 : s.progress);
    }
    return total === 0 ? 0 : Math.round((done / total) * 10) / 10;
  }

  private setStep(handler: JobHandler, job: JobRecord, name: string, patch: Partial<StepRecord>): JobRecord {
    const steps = job.steps.map((s) => (s.name === name ? { ...s, ...patch } : s));
    const current = steps.find((s) => s.name === name);
    return { ...job, steps, progress: this.overallProgress(handler, steps), ...(current?.message === undefined ? {} : { message: current.message }) };
  }

  private async drive(id: string, cancel: AbortController): Promise<void> {
    const stop = this.stopController.signal;
    const signal = AbortSignal.any([cancel.signal, stop]);
    const first = this.services.store.getJob(id);
    if (first === undefined || isTerminal(first.state)) return;
    const handler = this.handlers.get(first.type);
    if (handler === undefined) {
      this.services.log('error', `job ${id}: no handler for job type ${first.type}; it stays ${first.state} until a vault that knows it runs`);
      return;
    }
    for (;;) {
      if (stop.aborted) return;
      let job = this.services.store.getJob(id)!;
      if (isTerminal(job.state)) return;
      if (job.state === 'Cancelling' || job.cancelRequested) {
        await this.cancel(job, handler);
        return;
      }
      if (job.steps.some((s) => s.state === 'Failed')) {
        await this.compensateAndFail(handler, id);
        return;
      }
      if (job.state === 'NotStarted') {
        job = this.mutate(id, (j) => this.withState(j, 'InProgress', 'job engine started the first step', { startedAt: this.services.clock.now() }));
      }
      const record = job.steps.find((s) => s.state !== 'Succeeded' && s.state !== 'Skipped');
      if (record === undefined) {
        this.finish(handler, id);
        return;
      }
      const def = handler.steps.find((d) => d.name === record.name);
      if (def === undefined) {
        await this.fail(handler, id, record.name, new BugError('job.unknownStep', `job type ${job.type} has no step ${record.name}`));
        return;
      }
      const now = this.services.clock.now();
      if (job.retry !== undefined && job.retry.step === def.name && job.retry.nextAttemptAt > now) {
        try {
          await this.services.clock.sleep(job.retry.nextAttemptAt - now, signal);
        } catch {
          // stopped or cancelled: the loop decides
        }
        continue;
      }
      await this.runStep(handler, def, id, signal, cancel.signal);
    }
  }

  private async runStep(handler: JobHandler, def: StepDefinition, id: string, signal: AbortSignal, cancelSignal: AbortSignal): Promise<void> {
    const now = this.services.clock.now();
    const job = this.mutate(id, (j) => {
      const s = j.steps.find((x) => x.name === def.name)!;
      return this.setStep(handler, j, def.name, {
        state: 'InProgress', attempts: s.attempts + 1, startedAt: s.startedAt ?? now,
        ...(s.message === undefined && j.retry === undefined ? { message: 'running' } : {}),
      });
    });
    let progressed = false;
    const ctx = this.stepContext(handler, def.name, job, signal, () => { progressed = true; });
    try {
      const outcome = await def.run(ctx);
      this.mutate(id, (j) => {
        let next = this.setStep(handler, j, def.name, {
          state: outcome === 'skipped' ? 'Skipped' : 'Succeeded', progress: 100, endedAt: this.services.clock.now(),
        });
        next = { ...next, retry: undefined, stuck: undefined };
        if (j.retry !== undefined) handler.onRecovered?.({ services: this.services, job: next });
        return next;
      });
    } catch (e) {
      if (this.stopController.signal.aborted) return;
      if (cancelSignal.aborted) return;
      const category = categoryOf(e);
      if (category === 'recoverable') this.scheduleRetry(handler, def, id, e, progressed);
      else await this.fail(handler, id, def.name, e);
    }
  }

  private scheduleRetry(handler: JobHandler, def: StepDefinition, id: string, e: unknown, progressed: boolean): void {
    const now = this.services.clock.now();
    this.mutate(id, (j) => {
      const previous = j.retry !== undefined && j.retry.step === def.name && !progressed ? j.retry : undefined;
      const failures = (previous?.failures ?? 0) + 1;
      const delay = backoffDelay(failures, this.backoff);
      const err = errorInfo(e, def.name, now);
      const nextAttemptAt = now + delay;
      let next: JobRecord = {
        ...j,
        errors: [...j.errors, err].slice(-MAX_ERRORS),
        retry: { step: def.name, failures, firstFailureAt: previous?.firstFailureAt ?? now, nextAttemptAt },
      };
      next = this.setStep(handler, next, def.name, {
        message: `attempt ${failures} failed: ${err.message}; retrying at ${iso(nextAttemptAt)} (in ${formatDuration(delay)})`,
      });
      handler.onRetry?.({ services: this.services, job: next }, err as unknown as JsonObject, nextAttemptAt);
      if (failures >= this.stuckAfter && j.stuck === undefined) {
        const reason = `${def.title} failed ${failures} times in a row without progress since ${iso(next.retry!.firstFailureAt)}; last error: ${err.message} [${err.code}]`;
        const hint = err.hint ?? 'fix the cause named in the last error (the job keeps retrying every 30 minutes), or cancel the job';
        next = { ...next, stuck: { since: now, reason, hint } };
        handler.onStuck?.({ services: this.services, job: next }, reason, hint);
        this.services.log('warn', `job ${id} (${j.type}) is stuck: ${reason}`);
      }
      return next;
    });
  }

  /** Record a non-retryable failure of a step, then compensate and end the job as Failed. */
  private async fail(handler: JobHandler, id: string, step: string, e: unknown): Promise<void> {
    const now = this.services.clock.now();
    const err = errorInfo(e, step, now);
    this.mutate(id, (j) => ({
      ...this.setStep(handler, { ...j, errors: [...j.errors, err].slice(-MAX_ERRORS), retry: undefined }, step, { state: 'Failed', endedAt: now, message: err.message }),
      data: { ...j.data, [FAILURE_KEY]: err as unknown as JsonObject },
    }));
    this.services.log('warn', `job ${id} failed: ${err.message} [${err.code}]`);
    await this.compensateAndFail(handler, id);
  }

  /** Run the failure compensation (resumable) and end the job as Failed. */
  private async compensateAndFail(handler: JobHandler, id: string): Promise<void> {
    const stop = this.stopController.signal;
    const job = this.services.store.getJob(id)!;
    if (handler.compensate !== undefined) {
      try {
        await handler.compensate(this.stepContext(handler, 'compensation', job, stop, () => undefined), 'failed');
      } catch (e) {
        if (stop.aborted) return;
        const err = errorInfo(e, 'compensation', this.services.clock.now());
        this.mutate(id, (j) => ({ ...j, errors: [...j.errors, err].slice(-MAX_ERRORS) }));
      }
    }
    if (stop.aborted) return;
    this.services.store.transaction(() => {
      const j = this.services.store.getJob(id)!;
      const failure = (j.data[FAILURE_KEY] ?? {}) as JsonObject;
      const next = this.withState(j, 'Failed', `${String(failure.code ?? 'job.failed')}: ${String(failure.message ?? 'a step failed')}`);
      this.services.store.updateJob(next);
      handler.onFailed?.({ services: this.services, job: next }, failure);
      handler.onEnded?.({ services: this.services, job: next });
    });
    this.services.notifier.notify(topics.job(id));
  }

  private finish(handler: JobHandler, id: string): void {
    this.services.store.transaction(() => {
      const j = this.services.store.getJob(id)!;
      const next = this.withState({ ...j, progress: 100, retry: undefined, stuck: undefined }, 'Succeeded', 'last step finished');
      this.services.store.updateJob(next);
      handler.onSucceeded?.({ services: this.services, job: next });
      handler.onEnded?.({ services: this.services, job: next });
    });
    this.services.notifier.notify(topics.job(id));
  }

  private async cancel(job: JobRecord, handler: JobHandler): Promise<void> {
    const stop = this.stopController.signal;
    // Withdraw the steps' commands, not those of a compensation that was already under way before a restart.
    const compensating = new Set(Object.entries(job.data).filter(([k, v]) => k.startsWith(`${COMMAND_KEY}compensation:`) && typeof v === 'string').map(([, v]) => v as string));
    cancelCommandsOfJob(this.services, job.id, compensating);
    const stepState = (s: StepRecord): StepState => (s.state === 'InProgress' ? 'Cancelled' : s.state);
    const current = this.mutate(job.id, (j) => ({ ...j, retry: undefined, steps: j.steps.map((s) => ({ ...s, state: stepState(s) })) }));
    try {
      if (handler.compensate !== undefined) {
        await handler.compensate(this.stepContext(handler, 'compensation', current, stop, () => undefined), 'cancelled');
      }
    } catch (e) {
      if (stop.aborted) return;
      const err = errorInfo(e, 'compensation', this.services.clock.now());
      this.services.store.transaction(() => {
        const j = this.services.store.getJob(job.id)!;
        const next = j.state === 'NotStarted'
          ? this.withState(j, 'Cancelled', 'cancelled before any step ran', { errors: [...j.errors, err].slice(-MAX_ERRORS) })
          : this.withState({ ...j, errors: [...j.errors, err].slice(-MAX_ERRORS) }, 'Failed', 'a compensation failed');
        this.services.store.updateJob(next);
        handler.onEnded?.({ services: this.services, job: next });
      });
      this.services.notifier.notify(topics.job(job.id));
      return;
    }
    if (stop.aborted) return;
    this.services.store.transaction(() => {
      const j = this.services.store.getJob(job.id)!;
      const next = j.state === 'NotStarted'
        ? this.withState(j, 'Cancelled', 'cancelled before any step ran')
        : this.withState(j, 'Cancelled', 'current step stopped and compensations finished');
      this.services.store.updateJob(next);
      handler.onEnded?.({ services: this.services, job: next });
    });
    this.services.notifier.notify(topics.job(job.id));
  }

  private stepContext(handler: JobHandler, step: string, job: JobRecord, signal: AbortSignal, onProgress: () => void): StepContext {
    const services = this.services;
    const data = (): JsonObject => services.store.getJob(job.id)?.data ?? {};
    const set = (patch: JsonObject): void => {
      this.mutate(job.id, (j) => {
        const merged: JsonObject = { ...j.data };
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) delete merged[k];
          else merged[k] = v;
        }
        return { ...j, data: merged };
      });
    };
    let lastPercent = -1;
    const progress = (percent: number, message?: string): void => {
      const p = Math.max(0, Math.min(100, percent));
      if (p > lastPercent && lastPercent >= 0) onProgress();
      lastPercent = Math.max(lastPercent, p);
      if (step === 'compensation') return;
      this.mutate(job.id, (j) => this.setStep(handler, j, step, { progress: p, ...(message === undefined ? {} : { message }) }));
    };
    const ctx: StepContext = {
      services,
      job,
      signal,
      jobs: this.jobControl(),
      waitForOperator: async (wait) => {
        const answerKey = `${OPERATOR_ANSWER_KEY}${wait.token}`;
        for (;;) {
          signal.throwIfAborted();
          const current = services.store.getJob(job.id)!;
          const answer = current.data[answerKey];
          if (answer !== undefined && current.state === 'InProgress') return answer as JsonObject;
          const waiting = current.data[OPERATOR_WAIT_KEY] as unknown as OperatorWait | undefined;
          if (current.state !== 'WaitingForAction' || waiting?.token !== wait.token) {
            this.mutate(job.id, (j) => {
              const next: JobRecord = { ...j, data: { ...j.data, [OPERATOR_WAIT_KEY]: { ...wait, since: services.clock.now() } as unknown as JsonObject } };
              const moved = j.state === 'InProgress' ? this.withState(next, 'WaitingForAction', wait.kind === 'resume' ? 'a step failed; the operator resumes or cancels' : 'a manual action step was reached') : next;
              return step === 'compensation' ? moved : this.setStep(handler, moved, step, { message: wait.message });
            });
          }
          await services.notifier.wait([topics.job(job.id)], services.clock, services.timings.recheckMs, signal);
        }
      },
      get: (key) => data()[key],
      set,
      progress,
      sleepUntil: async (time, message) => {
        const wait = time - services.clock.now();
        if (wait <= 0) return;
        if (message !== undefined) progress(0, message);
        await services.clock.sleep(wait, signal);
      },
      runCommand: async (key, command, onProgress) => {
        const dataKey = `${COMMAND_KEY}${step}:${key}`;
        let id = data()[dataKey];
        if (typeof id !== 'string' || services.store.getCommand(id) === undefined) {
          id = services.store.transaction(() => {
            const c = enqueueCommand(services, { vault: job.vault, host: command.host, type: command.type, payload: command.payload, jobId: job.id });
            set({ [dataKey]: c.id });
            return c.id;
          });
        }
        const commandId: string = id;
        let seen: string | undefined;
        for (;;) {
          signal.throwIfAborted();
          const c = services.store.getCommand(commandId)!;
          if (c.state === 'Succeeded') {
            // Replace the transient "…: running" so a finished step does not read as still waiting.
            if (seen !== undefined) progress(100, `${c.type} on ${command.host}: done`);
            return c.result ?? {};
          }
          if (c.state === 'Failed' || c.state === 'Cancelled') {
            set({ [dataKey]: null });
            if (c.state === 'Cancelled') throw new RecoverableError('command.cancelled', `command ${c.type} on ${command.host} was withdrawn`);
            throw errorOfCommand(c.type, command.host, c.error);
          }
          const host = services.store.getObject(job.vault, 'host', command.host);
          if (host === undefined) {
            set({ [dataKey]: null });
            throw new NonRecoverableError('host.notRegistered', `host ${command.host} is no longer registered with the vault`, {
              hint: 'register the host again (or choose another one), then run the operation again',
            });
          }
          const connection = (host.status as JsonObject).connectionState;
          const waiting = connection === 'Connected' || c.state !== 'Pending'
            ? c.message ?? `${c.type} on ${command.host}: ${c.state === 'Pending' ? 'queued' : c.state === 'Delivered' ? 'delivered' : 'running'}`
            : `waiting for host ${command.host} (${String(connection)}) to take ${c.type}`;
          const key2 = `${c.progress}|${waiting}`;
          if (key2 !== seen) {
            seen = key2;
            progress(c.progress, waiting);
            onProgress?.(c.progress, c.message);
          }
          await services.notifier.wait([topics.command(commandId)], services.clock, services.timings.recheckMs, signal);
        }
      },
    };
    return ctx;
  }
}
