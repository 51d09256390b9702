/**
 * A FIFO lock for async work: `run` calls start in the order they were made
 * and never overlap. A failure of one call does not affect the next. Calls
 * must not nest (a `run` inside `run` on the same mutex waits forever).
 */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
