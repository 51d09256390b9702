/**
 * Replication health from measurements (DESIGN.md §4 "RPO lag, statistics";
 * docs/replication-policy.md §5): per-disk churn and shipping rates, the log
 * budget (pending logs against the resynchronisation threshold), a projected
 * RPO, and a Normal/Warning verdict with reasons an operator can read.
 *
 * Everything here is a pure function of its inputs and the time passed in
 * (from the injected Clock); nothing is stored. Critical never comes from
 * metrics: it comes from errors (retry.ts `healthOfError`) and stuck retries.
 */

import { InvalidInputError } from '../errors';
import { type Health } from '../states';
import { formatBytes, formatDuration, HOUR, MINUTE } from '../units';

/** Pending logs reaching this fraction of the disk size require a resync (asr-reference.md: 50 %). */
export const RESYNC_THRESHOLD_FRACTION = 0.5;

/** Default half-life of the rate averages: recent cycles count, a burst an hour ago barely does. */
export const DEFAULT_RATE_HALF_LIFE_MS = 15 * MINUTE;

/** Default budget fraction above which health turns Warning ("trouble before resync"). */
export const DEFAULT_BUDGET_WARN_FRACTION = 0.8;

/** Default horizon: Warning if, at the current rates, the budget runs out sooner than this. */
export const DEFAULT_RESYNC_HORIZON_MS = HOUR;

/** Bytes moved over an interval: written by the guest (churn) or shipped to the replica. */
export interface RateSample {
  readonly bytes: number;
  /** Start of the interval, ms since the epoch. */
  readonly startMs: number;
  /** End of the interval, ms since the epoch; after `startMs`. */
  readonly endMs: number;
}

/** An exponentially weighted rate; serialisable as JSON. */
export interface RateEstimate {
  readonly bytesPerSecond: number;
  /** End of the last sample folded in. */
  readonly updatedAt: number;
  readonly samples: number;
}

/**
 * Fold one sample into a rate estimate. The weight of the new sample grows
 * with its duration (`1 − 2^(−duration / halfLife)`), so cycles of any length
 * (30 s or 15 min) and missed cycles are weighted by the time they cover, not
 * by their count. The first sample is taken as is. Samples of zero or
 * negative duration are ignored (the previous estimate is returned).
 *
 * @throws InvalidInputError `metrics.invalidSample` for negative or non-finite bytes.
 */
export function updateRate(
  prev: RateEstimate | undefined,
  sample: RateSample,
  options: { readonly halfLifeMs?: number } = {},
): RateEstimate | undefined {
  if (!Number.isFinite(sample.bytes) || sample.bytes < 0) {
    throw new InvalidInputError('metrics.invalidSample', `rate sample of ${sample.bytes} bytes`, { hint: 'bytes are a non-negative count' });
  }
  const duration = sample.endMs - sample.startMs;
  if (!(duration > 0)) return prev;
  const rate = (sample.bytes * 1000) / duration;
  if (prev === undefined) return { bytesPerSecond: rate, updatedAt: sample.endMs, samples: 1 };
  const weight = 1 - 2 ** (-duration / (options.halfLifeMs ?? DEFAULT_RATE_HALF_LIFE_MS));
  return {
    bytesPerSecond: prev.bytesPerSecond + weight * (rate - prev.bytesPerSecond),
    updatedAt: Math.max(prev.updatedAt, sample.endMs),
    samples: prev.samples + 1,
  };
}

/** How much of the log budget is used. */
export interface LogBudget {
  readonly pendingBytes: number;
  /** Pending bytes at which a resync becomes required: `fraction × disk size`. */
  readonly thresholdBytes: number;
  /** `pendingBytes / thresholdBytes`; 1 or more means resync required. */
  readonly usedFraction: number;
}

/**
 * The log budget of a disk: pending (tracked, not yet applied) log bytes as
 * a fraction of the resync threshold, which is `thresholdFraction` (50 %) of
 * the disk size.
 */
export function logBudget(pendingLogBytes: number, diskSizeBytes: number, thresholdFraction = RESYNC_THRESHOLD_FRACTION): LogBudget {
  if (!(diskSizeBytes > 0) || !(thresholdFraction > 0) || !(pendingLogBytes >= 0)) {
    throw new InvalidInputError('metrics.invalidBudget', `log budget of ${pendingLogBytes} bytes on a ${diskSizeBytes}-byte disk at ${thresholdFraction}`, {
      hint: 'disk size and threshold are positive; pending bytes are not negative',
    });
  }
  const thresholdBytes = diskSizeBytes * thresholdFraction;
  return { pendingBytes: pendingLogBytes, thresholdBytes, usedFraction: pendingLogBytes / thresholdBytes };
}

/**
 * Time until the budget runs out at the current rates: the backlog grows at
 * `churn − shipping`. 0 if already exhausted; `undefined` if it is not
 * growing (shipping keeps up).
 */
export function timeToBudgetExhaustedMs(budget: LogBudget, churnBytesPerSecond: number, shippingBytesPerSecond: number): number | undefined {
  if (budget.pendingBytes >= budget.thresholdBytes) return 0;
  const growth = churnBytesPerSecond - shippingBytesPerSecond;
  if (!(growth > 0)) return undefined;
  return ((budget.thresholdBytes - budget.pendingBytes) * 1000) / growth;
}

export interface RpoInput {
  readonly now: number;
  /** Source-side time of the latest recovery point's cut; `undefined` before the first point. */
  readonly lastPointTime: number | undefined;
  readonly copyFrequencyMs: number;
  /** When the current segment is sealed (the next cut). @default now + copyFrequencyMs (the latest it can be) */
  readonly nextCutAt?: number;
  /** Log bytes not yet applied at the replica (sealed or still open). */
  readonly backlogBytes: number;
  /** Measured shipping rate; `undefined` when not measured yet, 0 when measured and stalled. */
  readonly shippingBytesPerSecond: number | undefined;
  /** Measured churn, to estimate what is written until the next cut. @default 0 */
  readonly churnBytesPerSecond?: number;
}

export interface RpoProjection {
  /** Age of the latest point now (`now − lastPointTime`); `undefined` before the first point. */
  readonly currentRpoMs: number | undefined;
  readonly nextCutAt: number;
  /** When the point of the next cut should be applied; `undefined` when there are bytes to ship and no (or a zero) shipping rate. */
  readonly nextPointAt: number | undefined;
  /**
   * The RPO just before that point lands (`nextPointAt − lastPointTime`): the
   * worst RPO until the next cycle completes. `undefined` when it cannot be
   * projected (no point yet, or stalled).
   */
  readonly projectedRpoMs: number | undefined;
  /** True if there are bytes to ship and the measured shipping rate is 0. */
  readonly stalled: boolean;
}

/**
 * Project the RPO at the next cycle. Bytes that must reach the replica
 * before the next point exists: the backlog now, plus the churn until the
 * cut. They ship at the measured rate starting now, and the point cannot land
 * before its cut: `nextPointAt = max(nextCutAt, now + bytes / rate)`.
 * Apply time at the replica is not modelled (it is part of the measured
 * shipping rate when the rate is measured from applied bytes).
 */
export function projectRpo(input: RpoInput): RpoProjection {
  const nextCutAt = Math.max(input.now, input.nextCutAt ?? input.now + input.copyFrequencyMs);
  const bytes = input.backlogBytes + (input.churnBytesPerSecond ?? 0) * ((nextCutAt - input.now) / 1000);
  const rate = input.shippingBytesPerSecond;
  const stalled = bytes > 0 && rate !== undefined && !(rate > 0);
  const nextPointAt = bytes === 0
    ? nextCutAt
    : rate === undefined || !(rate > 0) ? undefined : Math.max(nextCutAt, input.now + (bytes * 1000) / rate);
  const last = input.lastPointTime;
  return {
    currentRpoMs: last === undefined ? undefined : input.now - last,
    nextCutAt,
    nextPointAt,
    projectedRpoMs: last === undefined || nextPointAt === undefined ? undefined : nextPointAt - last,
    stalled,
  };
}

/** Default RPO threshold for a copy frequency: 3 × the frequency, at least 15 minutes. */
export function defaultRpoThresholdMs(copyFrequencyMs: number): number {
  return Math.max(15 * MINUTE, 3 * copyFrequencyMs);
}

export interface DiskHealthInput {
  /** From the injected Clock. */
  readonly now: number;
  readonly diskSizeBytes: number;
  /** Log bytes tracked and not yet applied at the replica. */
  readonly pendingLogBytes: number;
  /** Source-side time of the latest recovery point; `undefined` before the first. */
  readonly lastPointTime: number | undefined;
  readonly copyFrequencyMs: number;
  /** @default now + copyFrequencyMs */
  readonly nextCutAt?: number;
  /** Guest write rate (from `updateRate` over tracked bytes per cycle). @default unknown (0) */
  readonly churn?: RateEstimate;
  /** Shipping rate (from `updateRate` over applied bytes per cycle). @default unknown */
  readonly shipping?: RateEstimate;
  /** @default defaultRpoThresholdMs(copyFrequencyMs) */
  readonly rpoThresholdMs?: number;
  /** @default RESYNC_THRESHOLD_FRACTION (0.5) */
  readonly resyncThresholdFraction?: number;
  /** @default DEFAULT_BUDGET_WARN_FRACTION (0.8) */
  readonly budgetWarnFraction?: number;
  /** @default DEFAULT_RESYNC_HORIZON_MS (1 hour) */
  readonly resyncHorizonMs?: number;
}

export interface DiskHealthReport {
  /** Normal or Warning (metrics never say Critical). */
  readonly health: Health;
  /** Every condition that holds, most urgent first; empty when Normal. */
  readonly reasons: readonly string[];
  /** One line for people: the first reason, or why all is well. */
  readonly reason: string;
  readonly budget: LogBudget;
  readonly rpo: RpoProjection;
  readonly rpoThresholdMs: number;
  /** Time until a resync would be required at current rates; `undefined` if the backlog is not growing. */
  readonly timeToResyncMs: number | undefined;
}

/**
 * The metrics verdict for one disk. Warning when: the log budget is used
 * beyond `budgetWarnFraction`; the backlog grows fast enough to exhaust it
 * within `resyncHorizonMs`; the current or projected RPO exceeds the
 * threshold; or shipping is stalled. Before the first recovery point only the
 * budget conditions apply (initial replication reports its own progress).
 */
export function diskHealth(input: DiskHealthInput): DiskHealthReport {
  const budget = logBudget(input.pendingLogBytes, input.diskSizeBytes, input.resyncThresholdFraction);
  const churn = input.churn?.bytesPerSecond ?? 0;
  const shipping = input.shipping?.bytesPerSecond;
  const rpo = projectRpo({
    now: input.now, lastPointTime: input.lastPointTime, copyFrequencyMs: input.copyFrequencyMs, nextCutAt: input.nextCutAt,
    backlogBytes: input.pendingLogBytes, shippingBytesPerSecond: shipping, churnBytesPerSecond: churn,
  });
  const rpoThresholdMs = input.rpoThresholdMs ?? defaultRpoThresholdMs(input.copyFrequencyMs);
  const timeToResyncMs = timeToBudgetExhaustedMs(budget, churn, shipping ?? 0);
  const warnAt = input.budgetWarnFraction ?? DEFAULT_BUDGET_WARN_FRACTION;
  const horizon = input.resyncHorizonMs ?? DEFAULT_RESYNC_HORIZON_MS;
  const pct = (f: number): string => `${Math.round(f * 100)} %`;

  const reasons: string[] = [];
  if (budget.usedFraction >= 1) {
    reasons.push(`pending logs ${formatBytes(budget.pendingBytes)} reached the resync threshold ${formatBytes(budget.thresholdBytes)}`);
  } else if (budget.usedFraction >= warnAt) {
    reasons.push(`pending logs use ${pct(budget.usedFraction)} of the budget before resync (${formatBytes(budget.pendingBytes)} of ${formatBytes(budget.thresholdBytes)})`);
  }
  if (timeToResyncMs !== undefined && timeToResyncMs > 0 && timeToResyncMs <= horizon) {
    reasons.push(`at ${formatBytes(churn)}/s written and ${formatBytes(shipping ?? 0)}/s shipped, a resync will be required in ${formatDuration(timeToResyncMs)}`);
  }
  if (input.lastPointTime !== undefined) {
    if (rpo.currentRpoMs !== undefined && rpo.currentRpoMs > rpoThresholdMs) {
      reasons.push(`RPO ${formatDuration(rpo.currentRpoMs)} is over the threshold of ${formatDuration(rpoThresholdMs)}`);
    } else if (rpo.stalled) {
      reasons.push(`shipping is stalled with ${formatBytes(input.pendingLogBytes)} pending: the RPO grows`);
    } else if (rpo.projectedRpoMs !== undefined && rpo.projectedRpoMs > rpoThresholdMs) {
      reasons.push(`RPO is expected to reach ${formatDuration(rpo.projectedRpoMs)} by the next point, over the threshold of ${formatDuration(rpoThresholdMs)}`);
    }
  }
  const health: Health = reasons.length === 0 ? 'Normal' : 'Warning';
  const reason = reasons[0] ?? (rpo.currentRpoMs === undefined
    ? 'no recovery point yet'
    : `RPO ${formatDuration(rpo.currentRpoMs)}, log budget ${pct(budget.usedFraction)} used`);
  return { health, reasons, reason, budget, rpo, rpoThresholdMs, timeToResyncMs };
}
