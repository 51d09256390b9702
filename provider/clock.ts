/**
 * Time, injected. Everything that waits, schedules or stamps takes a `Clock`,
 * so retry schedules, copy cycles and retention run in milliseconds in tests.
 */

export interface Timer {
  /** Cancel the timer; harmless if it already fired. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Call `fn` once after `ms` milliseconds. */
  setTimer(ms: number, fn: () => void): Timer;
  /**
   * Resolve after `ms` milliseconds; reject with the signal's reason if it is
   * aborted first.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Call `fn` every `ms` milliseconds until the returned timer is cancelled. A
 * throw from one run goes to `onError` and the next run still happens.
 */
export function repeat(clock: Clock, ms: number, fn: () => void, onError: (e: unknown) => void): Timer {
  let current: Timer | undefined;
  let cancelled = false;
  const schedule = (): void => {
    if (cancelled) return;
    current = clock.setTimer(ms, () => {
      try {
        fn();
      } catch (e) {
        onError(e);
      }
      schedule();
    });
  };
  schedule();
  return {
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. `advance(ms)` fires every timer due in
 * that span in time order, letting promise callbacks settle between timers.
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const p: Pending = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.pending.push(p);
    return { cancel: () => { p.cancelled = true; } };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const timer = this.setTimer(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      const onAbort = (): void => {
        timer.cancel();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Number of timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  /** Move time forward by `ms`, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      await settle();
      this.pending = this.pending.filter((p) => !p.cancelled);
      const next = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = end;
    await settle();
  }
}

/** Let queued promise callbacks run (several turns, for chained awaits). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
