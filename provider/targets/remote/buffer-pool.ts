/**
 * Reuse of chunk-sized buffers (docs/replication-protocol.md §10): at a few
 * hundred MiB/s, allocating a fresh 1 MiB buffer per chunk costs more in
 * garbage collection than the copy into it. A buffer goes back to the pool
 * only once nothing refers to its bytes any more; the pool keeps a bounded
 * number of them.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    /** Size of every buffer of the pool. */
    readonly size: number,
    /** Most idle buffers kept; more are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  /** A buffer of `size` bytes, uninitialised. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Return a buffer taken from this pool; its bytes must no longer be in use. */
  give(b: Buffer): void {
    if (b.length === this.size && this.free.length < this.keep) this.free.push(b);
  }
}
