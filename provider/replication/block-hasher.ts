/**
 * SHA-256 digests of fixed-size blocks, computed on worker threads so that
 * the two sides of a resync (the source's blocks in the driver, the replica's
 * in `ReplicaDisk.hashBlocks`) hash at the same time on different cores
 * instead of taking turns on the main thread (docs/benchmarks.md §6). The
 * digests are exactly those of `digestBlocks` (resync-plan.ts): SHA-256 of
 * each block's bytes, the last block possibly short.
 *
 * Buffers travel to a worker and back by transfer, not copy, when the caller
 * hands over ownership (`transfer: true`); otherwise the bytes are copied
 * once. Small inputs are hashed inline: a round trip to a worker costs more
 * than hashing them.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BugError, RecoverableError } from '../errors';
import { KiB } from '../units';

/** Bytes of one digest. */
const DIGEST_BYTES = 32;

/** Inputs up to this size are hashed on the calling thread. */
const INLINE_BYTES = 64 * KiB;

// Plain JavaScript, run with `eval`, so that it works the same from sources
// (ts-node) and from dist/ without a separate worker file.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', (m) => {
  const data = Buffer.from(m.buf, 0, m.length);
  const n = Math.ceil(m.length / m.blockSize);
  const out = Buffer.allocUnsafeSlow(n * ${DIGEST_BYTES});
  for (let i = 0; i < n; i++) {
    const at = i * m.blockSize;
    createHash('sha256').update(data.subarray(at, Math.min(at + m.blockSize, m.length))).digest().copy(out, i * ${DIGEST_BYTES});
  }
  parentPort.postMessage({ id: m.id, buf: m.buf, digests: out.buffer }, [m.buf, out.buffer]);
});
`;

/** What `BlockHasher.digest` returns. */
export interface HashedBlocks {
  /** One SHA-256 digest per block, in order. */
  readonly digests: Buffer[];
  /**
   * The hashed bytes: the caller's buffer when it was not transferred, else
   * the same bytes in the buffer that came back from the worker. Use this one
   * afterwards: a transferred input buffer is detached (length 0).
   */
  readonly data: Buffer;
}

export interface BlockHasherOptions {
  /** Worker threads. 0 hashes everything inline. @default min(2, available parallelism) */
  readonly threads?: number;
  /** Inputs up to this many bytes are hashed on the calling thread. @default 64 KiB */
  readonly inlineBytes?: number;
}

interface Job {
  readonly resolve: (r: { digests: ArrayBuffer; buf: ArrayBuffer }) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly jobs: Map<number, Job & { readonly bytes: number }>;
  /** Bytes of the jobs it holds: the measure of its load. */
  pendingBytes: number;
}

function digestsOf(all: Buffer, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(all.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES));
  return out;
}

/** SHA-256 of each block of `data`, on the calling thread. */
export function digestInline(data: Buffer, blockSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += blockSize) out.push(createHash('sha256').update(data.subarray(at, Math.min(data.length, at + blockSize))).digest());
  return out;
}

/**
 * A small pool of hashing threads. Idle workers do not keep the process
 * alive. A worker that dies fails only the jobs it held (with
 * `RecoverableError` `hash.workerFailed`); the next job starts a new one. Safe to share between
 * every disk of a process.
 */
export class BlockHasher {
  private readonly threads: number;
  private readonly inlineBytes: number;
  private readonly slots: Array<Slot | undefined>;
  private nextId = 1;

  constructor(options: BlockHasherOptions = {}) {
    this.threads = Math.max(0, Math.floor(options.threads ?? Math.min(2, availableParallelism())));
    this.inlineBytes = options.inlineBytes ?? INLINE_BYTES;
    this.slots = new Array<Slot | undefined>(this.threads).fill(undefined);
  }

  /**
   * Digests of the `blockSize` blocks of `data` (the last may be short).
   * With `transfer`, the caller hands `data`'s memory over: `data` must be
   * the only view of its whole `ArrayBuffer` (as from `Buffer.allocUnsafeSlow`
   * or a `Buffer.alloc` of at least 4 KiB) and is detached until the result's
   * `data` gives the bytes back; if it is not such a buffer, it is copied
   * instead. Throws `BugError` `hash.invalidBlockSize` for a block size that
   * is not a positive integer; rejects with `RecoverableError`
   * `hash.workerFailed` if a worker dies (e.g. out of memory). Nothing is
   * left behind either way.
   */
  async digest(data: Buffer, blockSize: number, transfer = false): Promise<HashedBlocks> {
    if (!Number.isSafeInteger(blockSize) || blockSize <= 0) throw new BugError('hash.invalidBlockSize', `block size ${blockSize} is not a positive integer`);
    const length = data.length;
    const count = Math.ceil(length / blockSize);
    if (this.threads === 0 || length <= this.inlineBytes) return { digests: digestInline(data, blockSize), data };
    const owned = transfer && data.byteOffset === 0 && data.buffer.byteLength === data.length && data.buffer instanceof ArrayBuffer;
    let buf: ArrayBuffer;
    if (owned) {
      buf = data.buffer as ArrayBuffer;
    } else {
      buf = new ArrayBuffer(length);
      data.copy(new Uint8Array(buf));
    }
    const r = await this.run(buf, length, blockSize);
    return { digests: digestsOf(Buffer.from(r.digests), count), data: owned ? Buffer.from(r.buf, 0, length) : data };
  }

  /** Stop every worker; jobs in flight fail. The pool starts new ones if used again. */
  async close(): Promise<void> {
    const all = this.slots.splice(0, this.slots.length, ...new Array<Slot | undefined>(this.threads).fill(undefined));
    await Promise.all(all.map((s) => s?.worker.terminate()));
  }

  private run(buf: ArrayBuffer, length: number, blockSize: number): Promise<{ digests: ArrayBuffer; buf: ArrayBuffer }> {
    const slot = this.pick();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject, bytes: length });
      slot.pendingBytes += length;
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, buf, length, blockSize }, [buf]);
    });
  }

  /** The live worker with the fewest bytes to hash, started if needed. */
  private pick(): Slot {
    let best = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (s === undefined) {
        best = i;
        break;
      }
      if (best < 0 || s.pendingBytes < this.slots[best]!.pendingBytes) best = i;
    }
    return this.slots[best] ?? this.start(best);
  }

  private start(index: number): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, jobs: new Map(), pendingBytes: 0 };
    this.slots[index] = slot;
    worker.unref();
    worker.on('message', (m: { id: number; buf: ArrayBuffer; digests: ArrayBuffer }) => {
      const job = slot.jobs.get(m.id);
      slot.jobs.delete(m.id);
      slot.pendingBytes -= job?.bytes ?? 0;
      if (slot.jobs.size === 0) worker.unref();
      job?.resolve(m);
    });
    const fail = (why: string): void => {
      if (this.slots[index] === slot) this.slots[index] = undefined;
      const jobs = [...slot.jobs.values()];
      slot.jobs.clear();
      slot.pendingBytes = 0;
      worker.unref();
      for (const j of jobs) {
        j.reject(new RecoverableError('hash.workerFailed', `A hashing thread stopped: ${why}`, {
          hint: 'Usually a lack of memory on this host; the step is retried. If it persists, check the agent\'s memory limit.',
        }));
      }
    };
    worker.on('error', (e) => fail(e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    return slot;
  }
}

/** The process's shared pool. */
export const sharedBlockHasher = new BlockHasher();
