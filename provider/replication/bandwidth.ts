/**
 * Bandwidth limit of replication traffic (DESIGN.md §3.3, the policy's
 * "bandwidth"; docs/replication-policy.md §4): a token bucket in bytes per
 * second, with an optional different limit inside a daily off-hours window.
 *
 * The bucket holds at most one burst (`burstSeconds` of the current rate)
 * and starts full. A large `take` is served in pieces of at most one burst,
 * so over any interval the bytes granted never exceed rate × interval plus
 * one burst. A limit of 0 or none means unlimited. When the window opens or
 * closes the new rate applies from that instant, and the bucket is clipped to
 * the new burst.
 */

import { type Clock, systemClock } from '../clock';
import { BugError, InvalidInputError } from '../errors';
import { formatBytes } from '../units';
import { type DailyWindow } from './window';

/** Limits of one policy. */
export interface BandwidthLimits {
  /** Limit outside the off-hours window, in bytes per second; 0 means unlimited. @default unlimited */
  readonly bytesPerSecond?: number;
  /** A different limit inside a daily window. @default none (the same limit all day) */
  readonly offHours?: {
    readonly window: DailyWindow;
    /** Limit inside the window, in bytes per second; 0 means unlimited. @default unlimited */
    readonly bytesPerSecond?: number;
  };
}

export interface BandwidthLimiterOptions extends BandwidthLimits {
  /** Depth of the bucket, in seconds of the current rate. @default 1 */
  readonly burstSeconds?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

interface Segment {
  /** Bytes per second; Infinity when unlimited. */
  readonly rate: number;
  /** First instant of the segment. */
  readonly from: number;
  /** First instant after it (the next window edge), or Infinity. */
  readonly until: number;
}

function checkRate(value: number | undefined, name: string): number {
  if (value === undefined || value === 0) return Number.POSITIVE_INFINITY;
  if (!Number.isFinite(value) || value < 0) {
    throw new InvalidInputError('bandwidth.invalidLimit', `${name} ${value} is not a valid limit`, {
      hint: 'give bytes per second as a positive number, or 0 for unlimited',
    });
  }
  return value;
}

/**
 * A token-bucket limiter shared by every transfer of one policy (or host).
 * Takes are served first come, first served.
 */
export class BandwidthLimiter {
  private readonly clock: Clock;
  private readonly burstSeconds: number;
  private baseRate = Number.POSITIVE_INFINITY;
  private offRate = Number.POSITIVE_INFINITY;
  private window: DailyWindow | undefined;
  private tokens = Number.POSITIVE_INFINITY;
  private last: number;
  private segment: Segment | undefined;
  private tail: Promise<void> = Promise.resolve();
  private granted = 0;

  /** @throws InvalidInputError `bandwidth.invalidLimit` for a negative or non-finite limit or burst. */
  constructor(options: BandwidthLimiterOptions = {}) {
    this.clock = options.clock ?? systemClock;
    const burst = options.burstSeconds ?? 1;
    if (!(Number.isFinite(burst) && burst > 0)) {
      throw new InvalidInputError('bandwidth.invalidLimit', `burstSeconds ${burst} is not valid`, { hint: 'use a positive number of seconds' });
    }
    this.burstSeconds = burst;
    this.last = this.clock.now();
    this.reconfigure(options);
  }

  /**
   * Change the limits (a policy edit). Applies from now; bytes already
   * granted stay granted; waiting takes continue under the new limits.
   *
   * @throws InvalidInputError `bandwidth.invalidLimit`; the old limits then stay.
   */
  reconfigure(limits: BandwidthLimits): void {
    const base = checkRate(limits.bytesPerSecond, 'bytesPerSecond');
    const off = checkRate(limits.offHours?.bytesPerSecond, 'offHours.bytesPerSecond');
    this.refill(this.clock.now());
    this.baseRate = base;
    this.offRate = off;
    this.window = limits.offHours?.window;
    this.segment = undefined;
    this.tokens = Math.min(this.tokens, this.burstOf(this.segmentAt(this.last).rate));
  }

  /** The limit in force at `t`, in bytes per second; `undefined` when unlimited. */
  rateAt(t: number): number | undefined {
    const r = this.window?.contains(t) === true ? this.offRate : this.baseRate;
    return Number.isFinite(r) ? r : undefined;
  }

  /** Total bytes granted since creation. */
  get bytesGranted(): number {
    return this.granted;
  }

  /**
   * Wait until `bytes` may be sent, then return; the caller sends them right
   * after. Call it per unit actually sent (e.g. per 1 MiB piece of a
   * segment), not once for a whole disk, so that the traffic is smooth.
   *
   * If `signal` aborts first, rejects with its reason; the caller must then
   * send nothing (pieces already counted for this call stay consumed, which
   * can only make later transfers slower, never faster).
   *
   * @throws BugError `bandwidth.invalidTake` if `bytes` is negative or not finite.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isFinite(bytes) || bytes < 0) {
      throw new BugError('bandwidth.invalidTake', `cannot take ${bytes} bytes of bandwidth`);
    }
    signal?.throwIfAborted();
    if (bytes === 0) return;
    const prev = this.tail;
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    this.tail = prev.then(() => mine);
    try {
      await untilOrAbort(prev, signal);
      await this.consume(bytes, signal);
    } finally {
      release();
    }
  }

  /** A description for logs: `1.00 MiB/s, 10.0 MiB/s in 22:00–06:00 UTC`. */
  toString(): string {
    const fmt = (r: number): string => (Number.isFinite(r) ? `${formatBytes(r)}/s` : 'unlimited');
    return this.window === undefined ? fmt(this.baseRate) : `${fmt(this.baseRate)}, ${fmt(this.offRate)} in ${this.window.toString()}`;
  }

  private async consume(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    let remaining = bytes;
    while (remaining > 0) {
      signal?.throwIfAborted();
      const now = this.clock.now();
      this.refill(now);
      const seg = this.segmentAt(now);
      if (!Number.isFinite(seg.rate)) {
        this.granted += remaining;
        return;
      }
      const piece = Math.min(remaining, this.burstOf(seg.rate));
      if (this.tokens >= piece) {
        this.tokens -= piece;
        remaining -= piece;
        this.granted += piece;
        continue;
      }
      const needMs = Math.ceil(((piece - this.tokens) * 1000) / seg.rate);
      // Wake at the window edge if it comes first: the rate changes there.
      const wait = Math.max(1, Math.min(needMs, Math.ceil(seg.until - now)));
      await this.clock.sleep(wait, signal);
    }
  }

  private burstOf(rate: number): number {
    return Number.isFinite(rate) ? Math.max(1, rate * this.burstSeconds) : Number.POSITIVE_INFINITY;
  }

  /** The rate in force at `t` and until when; cached until the next window edge. */
  private segmentAt(t: number): Segment {
    const s = this.segment;
    if (s !== undefined && t >= s.from && t < s.until) return s;
    const w = this.window;
    const seg: Segment = w === undefined
      ? { rate: this.baseRate, from: Number.NEGATIVE_INFINITY, until: Number.POSITIVE_INFINITY }
      : { rate: w.contains(t) ? this.offRate : this.baseRate, from: t, until: w.nextChange(t) };
    this.segment = seg;
    return seg;
  }

  /** Add the tokens earned from `last` to `now`, segment by segment. */
  private refill(now: number): void {
    while (this.last < now) {
      const seg = this.segmentAt(this.last);
      const end = Math.min(now, seg.until);
      const burst = this.burstOf(seg.rate);
      const earned = Number.isFinite(seg.rate) ? (seg.rate * (end - this.last)) / 1000 : Number.POSITIVE_INFINITY;
      this.tokens = Math.min(burst, Math.min(this.tokens, burst) + earned);
      this.last = end;
    }
    // At an edge the new segment has earned nothing yet, but its burst caps the bucket.
    this.tokens = Math.min(this.tokens, this.burstOf(this.segmentAt(this.last).rate));
  }
}

/** Resolve when `p` does, or reject with the signal's reason if it aborts first. */
function untilOrAbort(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return p;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}
