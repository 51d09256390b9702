/**
 * Retry of replication work (DESIGN.md §3.6, docs/replication-policy.md §1).
 *
 * Errors are typed (provider/errors.ts). Only `recoverable` errors are
 * retried; `nonRecoverable`, `invalidInput`, `bug` and `resyncRequired` stop at
 * once and are rethrown unchanged, for the caller to turn into a state and a
 * health verdict.
 *
 * The schedule, as this module reads the reference ("retried with
 * exponential back-off from the start of the first attempt: 1, 2, 4, 8 and 10
 * minutes; if the error persists, every 30 minutes"): the numbers are the
 * delays *between* attempts, each measured from the moment the previous
 * attempt failed. After the first failure wait 1 min, after the second 2 min,
 * then 4, 8, 10, and 30 min after every later failure. The sequence counts
 * from the first failed attempt and is not restarted by later failures; only
 * success (or, by default, reported progress) restarts it. So attempts of an
 * operation that fails instantly run at 0, 1, 3, 7, 15, 25, 55, 85, … minutes.
 *
 * Jitter is added on top (never subtracted, so no retry comes earlier than
 * the schedule says) so that a fleet that lost the same link does not retry
 * in lockstep; it is off in the pure `backoffDelay` unless asked for, and
 * seedable everywhere.
 */

import { type Clock, systemClock } from '../clock';
import { BugError, categoryOf, describe, type ErrorCategory, InvalidInputError, NonRecoverableError } from '../errors';
import { type Health } from '../states';
import { MINUTE, formatDuration } from '../units';

/** Delays after the 1st … 5th consecutive failure: 1, 2, 4, 8, 10 minutes. */
export const DEFAULT_BACKOFF_MS: readonly number[] = Object.freeze([1, 2, 4, 8, 10].map((m) => m * MINUTE));

/** Delay after every later failure: 30 minutes. */
export const DEFAULT_STEADY_RETRY_MS = 30 * MINUTE;

/** Jitter the `Retrier` adds by default: up to +10 % of each delay. */
export const DEFAULT_JITTER_RATIO = 0.1;

/** Consecutive failed attempts without progress after which retrying is called stuck. */
export const DEFAULT_STUCK_AFTER_ATTEMPTS = 8;

export interface BackoffOptions {
  /** Delays after the 1st, 2nd, … consecutive failure, in ms. @default DEFAULT_BACKOFF_MS (1, 2, 4, 8, 10 min) */
  readonly schedule?: readonly number[];
  /** Delay after every failure past the schedule, in ms. @default DEFAULT_STEADY_RETRY_MS (30 min) */
  readonly steadyMs?: number;
  /**
   * Fraction of each delay added at random, in [0, 1]: the delay becomes
   * `d + floor(random() × ratio × d)`. @default 0 in `backoffDelay`; DEFAULT_JITTER_RATIO (0.1) in `Retrier`
   */
  readonly jitterRatio?: number;
  /** Source of uniform numbers in [0, 1), e.g. `seededRandom(seed)`. @default Math.random */
  readonly random?: () => number;
}

function validateBackoff(o: BackoffOptions): void {
  const bad = (what: string): never => {
    throw new InvalidInputError('retry.invalidOptions', `retry ${what}`, {
      hint: 'delays are finite, non-negative milliseconds; jitterRatio is between 0 and 1',
    });
  };
  for (const d of o.schedule ?? []) if (!Number.isFinite(d) || d < 0) bad(`schedule delay ${d} is invalid`);
  if (o.steadyMs !== undefined && (!Number.isFinite(o.steadyMs) || o.steadyMs < 0)) bad(`steady delay ${o.steadyMs} is invalid`);
  if (o.jitterRatio !== undefined && !(o.jitterRatio >= 0 && o.jitterRatio <= 1)) bad(`jitterRatio ${o.jitterRatio} is invalid`);
}

/**
 * The delay before the next attempt after `failures` consecutive failed
 * attempts (1 → 1 min, 2 → 2 min, 3 → 4 min, 4 → 8 min, 5 → 10 min, 6 and
 * later → 30 min, with the defaults). Pure unless jitter is asked for.
 *
 * @throws BugError `retry.invalidFailureCount` if `failures` is not an integer ≥ 1.
 * @throws InvalidInputError `retry.invalidOptions` for negative or non-finite delays or a jitter ratio outside [0, 1].
 */
export function backoffDelay(failures: number, options: BackoffOptions = {}): number {
  if (!Number.isInteger(failures) || failures < 1) {
    throw new BugError('retry.invalidFailureCount', `backoff asked for failure number ${failures}; counts start at 1`);
  }
  validateBackoff(options);
  const schedule = options.schedule ?? DEFAULT_BACKOFF_MS;
  const base = failures <= schedule.length ? schedule[failures - 1]! : options.steadyMs ?? DEFAULT_STEADY_RETRY_MS;
  const ratio = options.jitterRatio ?? 0;
  if (ratio === 0) return base;
  const u = (options.random ?? Math.random)();
  return base + Math.floor(Math.min(Math.max(u, 0), 1) * ratio * base);
}

/**
 * A deterministic source of uniform numbers in [0, 1) (mulberry32): the same
 * seed gives the same sequence. For jitter in tests and in the lab; seeding
 * each agent differently (e.g. from its host id) spreads a fleet's retries.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The health an error category implies (docs/state-machines.md §2):
 * recoverable → Warning (being retried); resyncRequired → Warning if a resync
 * will start automatically, else Critical; nonRecoverable, invalidInput and
 * bug → Critical.
 */
export function healthOfError(category: ErrorCategory, options: { readonly automaticResync?: boolean } = {}): Health {
  switch (category) {
    case 'recoverable':
      return 'Warning';
    case 'resyncRequired':
      return (options.automaticResync ?? true) ? 'Warning' : 'Critical';
    case 'nonRecoverable':
    case 'invalidInput':
    case 'bug':
      return 'Critical';
  }
}

/** Why work is considered stuck. */
export interface StuckReport {
  /** Consecutive cycles (or attempts) without progress. */
  readonly cycles: number;
  /** Time of the last progress, or of the first cycle if there was none, ms since the epoch. */
  readonly since: number;
  /** A sentence for the operator. */
  readonly reason: string;
}

export interface ProgressWatchOptions {
  /** Cycles without progress after which the work is stuck. @default DEFAULT_STUCK_AFTER_ATTEMPTS (8) */
  readonly afterCycles?: number;
  /** What is watched, for the reason text. @default 'replication' */
  readonly what?: string;
}

/**
 * Detects work that no longer moves forward. The caller ends each cycle (a
 * delta cycle, a retry attempt, a resync batch) with `endCycle(now,
 * progressed)`, where `progressed` means the cycle moved something forward
 * (a segment applied, a batch committed) or had nothing to do. Not persisted:
 * after a restart the count starts again.
 */
export class ProgressWatch {
  private readonly afterCycles: number;
  private readonly what: string;
  private idle = 0;
  private since: number | undefined;

  constructor(options: ProgressWatchOptions = {}) {
    const n = options.afterCycles ?? DEFAULT_STUCK_AFTER_ATTEMPTS;
    if (!Number.isInteger(n) || n < 1) {
      throw new InvalidInputError('retry.invalidOptions', `stuck threshold ${n} is invalid`, { hint: 'use a whole number of cycles ≥ 1' });
    }
    this.afterCycles = n;
    this.what = options.what ?? 'replication';
  }

  /** Record one cycle; returns the stuck report if, counting it, the work is stuck. */
  endCycle(now: number, progressed: boolean): StuckReport | undefined {
    if (progressed) {
      this.idle = 0;
      this.since = now;
      return undefined;
    }
    this.since ??= now;
    this.idle++;
    return this.stuck(now);
  }

  /** The current verdict at `now`; `undefined` while not stuck. */
  stuck(now: number): StuckReport | undefined {
    if (this.idle < this.afterCycles || this.since === undefined) return undefined;
    return {
      cycles: this.idle,
      since: this.since,
      reason: `${this.what} made no progress in ${this.idle} consecutive cycles (${formatDuration(now - this.since)})`,
    };
  }

  /** Forget every cycle (e.g. after an operator intervened). */
  reset(): void {
    this.idle = 0;
    this.since = undefined;
  }
}

/** What the operation gets on each attempt. */
export interface RetryContext {
  /** 1-based number of this attempt. */
  readonly attempt: number;
  /** Aborted when the caller aborts the retry; pass it to every I/O. */
  readonly signal: AbortSignal;
  /**
   * Say that this attempt moved something forward (a segment applied, a
   * batch committed). Clears the stuck count and, unless `resetOnProgress` is
   * false, restarts the back-off at its first step.
   */
  progress(): void;
}

/** One failed attempt, as reported to `onAttemptFailed`. */
export interface RetryReport {
  /** 1-based number of the attempt that failed. */
  readonly attempt: number;
  readonly error: unknown;
  readonly category: ErrorCategory;
  /** Consecutive failures counted by the back-off (restarted by success or progress). */
  readonly consecutiveFailures: number;
  /** True if another attempt follows after `delayMs`. */
  readonly willRetry: boolean;
  /** Wait before the next attempt; `undefined` when giving up. */
  readonly delayMs: number | undefined;
  /** When the next attempt starts, ms since the epoch; `undefined` when giving up. */
  readonly nextAttemptAt: number | undefined;
  /** When the first failure of this run of failures happened. */
  readonly firstFailureAt: number;
  /** Set once retrying is stuck (no progress for `stuckAfterAttempts` failed attempts). */
  readonly stuck: StuckReport | undefined;
  /** The item's health while this holds: Warning while retrying, Critical when stuck or stopped by a fatal error. */
  readonly health: Health;
}

export interface RetrierOptions extends BackoffOptions {
  /** @default systemClock */
  readonly clock?: Clock;
  /** Aborts waiting and is passed to the operation. @default none */
  readonly signal?: AbortSignal;
  /** Give up after this many attempts and rethrow the last error. @default unlimited (the reference retries forever) */
  readonly maxAttempts?: number;
  /** Failed attempts in a row without progress after which the report says stuck (health Critical). @default DEFAULT_STUCK_AFTER_ATTEMPTS (8, about 85 min of failures with the default schedule) */
  readonly stuckAfterAttempts?: number;
  /** Stop when stuck, throwing NonRecoverableError `retry.stuck` with the last error as cause. @default false (keep retrying every 30 min) */
  readonly giveUpWhenStuck?: boolean;
  /** Progress within a failed attempt restarts the back-off at its first step. @default true */
  readonly resetOnProgress?: boolean;
  /** Whether resync starts automatically, for the health of a `resyncRequired` error. @default true */
  readonly automaticResync?: boolean;
  /** Called after every failed attempt, before waiting. Must not throw (a throw is ignored). @default none */
  readonly onAttemptFailed?: (report: RetryReport) => void;
  /** What is retried, for messages (`delta cycle of disk-0`). @default 'operation' */
  readonly what?: string;
}

const neverAborted = new AbortController().signal;

/**
 * Runs an async operation under the retry policy. Stateless between runs:
 * one `Retrier` may run many operations, concurrently.
 */
export class Retrier {
  private readonly options: RetrierOptions;

  /** @throws InvalidInputError `retry.invalidOptions` for invalid delays, ratios or counts. */
  constructor(options: RetrierOptions = {}) {
    validateBackoff(options);
    if (options.maxAttempts !== undefined && !(Number.isInteger(options.maxAttempts) && options.maxAttempts >= 1)) {
      throw new InvalidInputError('retry.invalidOptions', `maxAttempts ${options.maxAttempts} is invalid`, { hint: 'use a whole number ≥ 1, or leave it out' });
    }
    new ProgressWatch({ afterCycles: options.stuckAfterAttempts }); // validates
    this.options = options;
  }

  /**
   * Run `op` until it succeeds, a non-recoverable error stops it, the
   * attempts run out, or the signal aborts. Returns what `op` returned.
   *
   * Throws: the first error that is not `recoverable`, unchanged; the last
   * error when `maxAttempts` is reached; the signal's reason when aborted
   * (also when `op` fails after the abort); NonRecoverableError `retry.stuck`
   * when stuck and `giveUpWhenStuck`. Whatever `op` left behind on a failed
   * attempt is `op`'s business: it must be safe to run again (idempotent or
   * resumable), which is true of every replication step by design.
   */
  async run<T>(op: (ctx: RetryContext) => Promise<T>): Promise<T> {
    const o = this.options;
    const clock = o.clock ?? systemClock;
    const signal = o.signal ?? neverAborted;
    const what = o.what ?? 'operation';
    const watch = new ProgressWatch({ afterCycles: o.stuckAfterAttempts, what: `retrying ${what}` });
    const backoff: BackoffOptions = { ...o, jitterRatio: o.jitterRatio ?? DEFAULT_JITTER_RATIO };
    let failures = 0;
    let firstFailureAt: number | undefined;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw signal.reason;
      let progressed = false;
      const ctx: RetryContext = { attempt, signal, progress: () => { progressed = true; } };
      try {
        return await op(ctx);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const now = clock.now();
        if (progressed && (o.resetOnProgress ?? true)) {
          failures = 0;
          firstFailureAt = undefined;
        }
        failures++;
        firstFailureAt ??= now;
        const category = categoryOf(error);
        const stuck = watch.endCycle(now, progressed);
        const fatal = category !== 'recoverable';
        const exhausted = o.maxAttempts !== undefined && attempt >= o.maxAttempts;
        const giveUp = fatal || exhausted || (stuck !== undefined && (o.giveUpWhenStuck ?? false));
        const delayMs = giveUp ? undefined : backoffDelay(failures, backoff);
        const health: Health = fatal
          ? healthOfError(category, { automaticResync: o.automaticResync })
          : stuck !== undefined || exhausted ? 'Critical' : 'Warning';
        const report: RetryReport = {
          attempt, error, category, consecutiveFailures: failures, willRetry: !giveUp, delayMs,
          nextAttemptAt: delayMs === undefined ? undefined : now + delayMs, firstFailureAt, stuck, health,
        };
        try {
          o.onAttemptFailed?.(report);
        } catch {
          // A broken observer must not change what is retried.
        }
        if (fatal || exhausted) throw error;
        if (delayMs === undefined) {
          throw new NonRecoverableError('retry.stuck', `${stuck!.reason}; last error: ${describe(error)}`, {
            cause: error,
            hint: 'fix the cause named in the last error, then resume replication (or start a resync)',
            details: { attempts: attempt, since: stuck!.since },
          });
        }
        await clock.sleep(delayMs, signal);
      }
    }
  }
}
