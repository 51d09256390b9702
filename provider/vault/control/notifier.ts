/**
 * In-process wake-ups between the parts of the vault: a command was queued
 * for a host (wake its long-poll), an agent reported on a command (wake the
 * job step waiting for it), a job was cancelled. The store stays the source
 * of truth: a waiter re-reads it after waking, so a lost or spurious wake-up
 * costs at most one timeout, never correctness.
 */

import type { Clock } from '../../clock';

/** Why a wait ended. */
export type WaitOutcome = 'notified' | 'timeout';

export class Notifier {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Wake every waiter of `topic`. */
  notify(topic: string): void {
    const set = this.waiters.get(topic);
    if (set === undefined) return;
    this.waiters.delete(topic);
    for (const wake of set) wake();
  }

  /**
   * Wait until one of `topics` is notified, `timeoutMs` passes on `clock`, or
   * `signal` aborts (then rejects with its reason). Registers before
   * returning, so a notify after this call is never missed.
   */
  wait(topics: readonly string[], clock: Clock, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let done = false;
      const finish = (outcome: WaitOutcome | { error: unknown }): void => {
        if (done) return;
        done = true;
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        for (const t of topics) {
          const set = this.waiters.get(t);
          set?.delete(wake);
          if (set?.size === 0) this.waiters.delete(t);
        }
        if (typeof outcome === 'string') resolve(outcome);
        else reject(outcome.error);
      };
      const wake = (): void => finish('notified');
      const onAbort = (): void => finish({ error: signal?.reason });
      const timer = clock.setTimer(timeoutMs, () => finish('timeout'));
      for (const t of topics) {
        let set = this.waiters.get(t);
        if (set === undefined) {
          set = new Set();
          this.waiters.set(t, set);
        }
        set.add(wake);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Topic names, in one place. */
export const topics = {
  hostCommands: (vault: string, host: string): string => `host-commands:${vault}/${host.toLowerCase()}`,
  command: (id: string): string => `command:${id}`,
  job: (id: string): string => `job:${id}`,
  item: (vault: string, item: string): string => `item:${vault}/${item.toLowerCase()}`,
} as const;
