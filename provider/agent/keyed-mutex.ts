/**
 * One FIFO lock per key (the agent's per-item lock): calls with the same key
 * run one at a time in call order, calls with different keys concurrently.
 * A failure of one call does not affect the next. Calls must not nest on the
 * same key (they would wait forever).
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
