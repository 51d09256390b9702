/**
 * Seeded, reproducible guest workloads for lab VMs and tests (DESIGN.md §2):
 * a sequence of writes, flushes and idle periods generated from a seed, and
 * the bytes of every write generated from its own seed, so a scenario can be
 * replayed exactly and its expected disk content recomputed. The generator
 * does no I/O; `runWorkload` applies operations to a disk (a `TrackedDisk`
 * or anything with `write` and `flush`), rate-limited on an injected clock.
 */

import { createCipheriv } from 'node:crypto';
import { type Clock, systemClock } from '../../clock';
import { InvalidInputError } from '../../errors';

/** Where writes go. */
export type WorkloadPattern =
  /** Uniformly random offsets over the disk. */
  | 'random'
  /** One write after the other, wrapping at the end of the disk. */
  | 'sequential'
  /** Most writes in a small hot region, the rest anywhere. */
  | 'hotSpot'
  /** Random offsets in bursts of writes separated by idle periods. */
  | 'bursts';

export interface WorkloadOptions {
  /** The same seed and options always give the same operations. A 32-bit integer. */
  readonly seed: number;
  /** Disk size in bytes. */
  readonly diskSize: number;
  /** @default 'random' */
  readonly pattern?: WorkloadPattern;
  /** Smallest write (before alignment). @default 4096 */
  readonly minWriteBytes?: number;
  /** Largest write. @default 65536 */
  readonly maxWriteBytes?: number;
  /** Offsets and lengths of ordinary writes are multiples of this; 1 for any byte. @default 4096 */
  readonly alignment?: number;
  /** Fraction of writes that are tiny: 1 to 511 bytes at any byte offset. @default 0 */
  readonly tinyWriteFraction?: number;
  /** A flush follows a write with probability 1 / flushEvery; 0 for never. @default 16 */
  readonly flushEvery?: number;
  /** `hotSpot`: fraction of the disk that is hot. @default 0.1 */
  readonly hotFraction?: number;
  /** `hotSpot`: fraction of writes that go to the hot region. @default 0.9 */
  readonly hotProbability?: number;
  /** `bursts`: writes per burst. @default 32 */
  readonly burstWrites?: number;
  /** `bursts`: idle time after each burst, in milliseconds. @default 1000 */
  readonly burstIdleMs?: number;
}

/** One operation of a guest. */
export type WorkloadOp =
  /** Write `length` bytes at `offset`; the bytes are `workloadData(dataSeed, length)`. */
  | { readonly kind: 'write'; readonly offset: number; readonly length: number; readonly dataSeed: number }
  /** A guest flush. */
  | { readonly kind: 'flush' }
  /** No I/O for `ms` milliseconds. */
  | { readonly kind: 'idle'; readonly ms: number };

/** A 32-bit PRNG (xoshiro128**, seeded with splitmix32): fast and the same everywhere. */
class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 bits. */
  float(): number {
    return ((this.u32() >>> 5) * 0x400_0000 + (this.u32() >>> 6)) / 2 ** 53;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

interface Resolved {
  readonly seed: number;
  readonly diskSize: number;
  readonly pattern: WorkloadPattern;
  readonly minWriteBytes: number;
  readonly maxWriteBytes: number;
  readonly alignment: number;
  readonly tinyWriteFraction: number;
  readonly flushEvery: number;
  readonly hotFraction: number;
  readonly hotProbability: number;
  readonly burstWrites: number;
  readonly burstIdleMs: number;
}

function resolve(o: WorkloadOptions): Resolved {
  const r: Resolved = {
    seed: o.seed,
    diskSize: o.diskSize,
    pattern: o.pattern ?? 'random',
    minWriteBytes: o.minWriteBytes ?? 4096,
    maxWriteBytes: o.maxWriteBytes ?? 65536,
    alignment: o.alignment ?? 4096,
    tinyWriteFraction: o.tinyWriteFraction ?? 0,
    flushEvery: o.flushEvery ?? 16,
    hotFraction: o.hotFraction ?? 0.1,
    hotProbability: o.hotProbability ?? 0.9,
    burstWrites: o.burstWrites ?? 32,
    burstIdleMs: o.burstIdleMs ?? 1000,
  };
  const bad = (path: string, message: string): never => {
    throw new InvalidInputError('workload.invalidOptions', `${path}: ${message}`, { where: { path: `/${path}` } });
  };
  if (!Number.isInteger(r.seed)) bad('seed', `${r.seed} is not an integer`);
  if (!Number.isSafeInteger(r.diskSize) || r.diskSize <= 0) bad('diskSize', `${r.diskSize} is not a positive integer`);
  if (!['random', 'sequential', 'hotSpot', 'bursts'].includes(r.pattern)) bad('pattern', `${String(r.pattern)} is not random, sequential, hotSpot or bursts`);
  if (!Number.isSafeInteger(r.alignment) || r.alignment < 1 || r.alignment > r.diskSize) bad('alignment', `${r.alignment} is not 1 … the disk size`);
  if (!Number.isSafeInteger(r.minWriteBytes) || r.minWriteBytes < 1) bad('minWriteBytes', `${r.minWriteBytes} is not a positive integer`);
  if (!Number.isSafeInteger(r.maxWriteBytes) || r.maxWriteBytes < r.minWriteBytes) bad('maxWriteBytes', `${r.maxWriteBytes} is below minWriteBytes`);
  for (const [k, v] of [['tinyWriteFraction', r.tinyWriteFraction], ['hotFraction', r.hotFraction], ['hotProbability', r.hotProbability]] as const) {
    if (!(v >= 0 && v <= 1)) bad(k, `${v} is not between 0 and 1`);
  }
  if (!Number.isInteger(r.flushEvery) || r.flushEvery < 0) bad('flushEvery', `${r.flushEvery} is not a non-negative integer`);
  if (!Number.isInteger(r.burstWrites) || r.burstWrites < 1) bad('burstWrites', `${r.burstWrites} is not a positive integer`);
  if (!(r.burstIdleMs >= 0)) bad('burstIdleMs', `${r.burstIdleMs} is not a non-negative number`);
  return r;
}

/**
 * The operations of a workload, endless: take as many as needed. Pure and
 * deterministic: the same options give the same sequence on every platform.
 * Throws `InvalidInputError` (`workload.invalidOptions`, `where.path` naming
 * the option) for invalid options, when first iterated.
 */
export function* workloadOps(options: WorkloadOptions): Generator<WorkloadOp, never, undefined> {
  const o = resolve(options);
  const rng = new Prng(o.seed);
  const align = (n: number): number => Math.floor(n / o.alignment) * o.alignment;
  // Ordinary writes never exceed the disk, whatever the options.
  const maxLength = Math.max(o.alignment, align(Math.min(o.maxWriteBytes, o.diskSize)));
  const minLength = Math.min(maxLength, Math.max(o.alignment, align(o.minWriteBytes + o.alignment - 1)));
  const hotLength = Math.max(maxLength, align(o.hotFraction * o.diskSize));
  const hotStart = align(rng.below(o.diskSize - Math.min(hotLength, o.diskSize) + 1));
  let cursor = 0;
  let inBurst = 0;
  for (;;) {
    if (o.tinyWriteFraction > 0 && rng.float() < o.tinyWriteFraction) {
      const length = Math.min(o.diskSize, 1 + rng.below(511));
      yield { kind: 'write', offset: rng.below(o.diskSize - length + 1), length, dataSeed: rng.u32() };
    } else {
      const length = Math.min(o.diskSize, minLength + align(rng.below(maxLength - minLength + 1)));
      let offset: number;
      switch (o.pattern) {
        case 'sequential':
          if (cursor + length > o.diskSize) cursor = 0;
          offset = cursor;
          cursor += length;
          break;
        case 'hotSpot':
          if (rng.float() < o.hotProbability && hotLength >= length) {
            offset = Math.min(hotStart + align(rng.below(hotLength - length + 1)), align(o.diskSize - length));
          } else {
            offset = align(rng.below(o.diskSize - length + 1));
          }
          break;
        case 'random':
        case 'bursts':
          offset = align(rng.below(o.diskSize - length + 1));
          break;
      }
      yield { kind: 'write', offset, length, dataSeed: rng.u32() };
    }
    if (o.flushEvery > 0 && rng.below(o.flushEvery) === 0) yield { kind: 'flush' };
    if (o.pattern === 'bursts' && ++inBurst === o.burstWrites) {
      inBurst = 0;
      yield { kind: 'idle', ms: o.burstIdleMs };
    }
  }
}

/** The first `count` operations of a workload. Pure. */
export function takeWorkloadOps(options: WorkloadOptions, count: number): WorkloadOp[] {
  const out: WorkloadOp[] = [];
  if (count <= 0) return out;
  for (const op of workloadOps(options)) {
    out.push(op);
    if (out.length === count) break;
  }
  return out;
}

const ZEROS = Buffer.alloc(64 * 1024);

/**
 * The bytes of a write with `dataSeed`: AES-128-CTR keystream under a key
 * made from the seed, so they are incompressible, fast to make (GB/s) and
 * the same on every platform. Pure.
 */
export function workloadData(dataSeed: number, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(dataSeed >>> 0, 0);
  key.write('lifeboat-lab', 4, 'latin1');
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const parts: Buffer[] = [];
  for (let done = 0; done < length; done += ZEROS.length) {
    parts.push(cipher.update(ZEROS.subarray(0, Math.min(ZEROS.length, length - done))));
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
}

/** What a workload runs against. `TrackedDisk` is one. */
export interface WorkloadTarget {
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export interface RunWorkloadOptions {
  /** Paces writes and idle periods. @default systemClock */
  readonly clock?: Clock;
  /** Average write rate limit in bytes per second. @default unlimited */
  readonly bytesPerSecond?: number;
  /** Stop before the next operation once aborted. @default none */
  readonly signal?: AbortSignal;
  /** Stop after this many operations. @default every operation of `ops` */
  readonly maxOps?: number;
}

/** What a run did. */
export interface WorkloadRunStats {
  readonly ops: number;
  readonly writes: number;
  readonly flushes: number;
  readonly bytes: number;
}

/**
 * Apply operations to `target` in order: writes (bytes from
 * `workloadData`), flushes, idle periods on the clock; writes wait so that
 * the bytes written by time t never exceed `bytesPerSecond · t`. Resolves
 * with what was done when the operations end, `maxOps` is reached or the
 * signal aborts (never mid-operation). Errors of the target propagate; the
 * operations before it were applied. Throws `InvalidInputError`
 * (`workload.invalidOptions`) for a rate that is not positive.
 */
export async function runWorkload(target: WorkloadTarget, ops: Iterable<WorkloadOp>, options: RunWorkloadOptions = {}): Promise<WorkloadRunStats> {
  const clock = options.clock ?? systemClock;
  const rate = options.bytesPerSecond;
  if (rate !== undefined && !(rate > 0)) {
    throw new InvalidInputError('workload.invalidOptions', `bytesPerSecond ${rate} is not positive`, { where: { path: '/bytesPerSecond' } });
  }
  const max = options.maxOps ?? Infinity;
  const start = clock.now();
  let idle = 0;
  const stats = { ops: 0, writes: 0, flushes: 0, bytes: 0 };
  const aborted = (): boolean => options.signal?.aborted === true;
  try {
    for (const op of ops) {
      if (stats.ops >= max || aborted()) break;
      if (op.kind === 'write') {
        if (rate !== undefined) {
          // The bytes already written must have been paid for at `rate`, idle time aside.
          const due = start + idle + (stats.bytes / rate) * 1000;
          const wait = due - clock.now();
          if (wait > 0) await clock.sleep(wait, options.signal);
        }
        await target.write(op.offset, workloadData(op.dataSeed, op.length));
        stats.writes++;
        stats.bytes += op.length;
      } else if (op.kind === 'flush') {
        await target.flush();
        stats.flushes++;
      } else {
        await clock.sleep(op.ms, options.signal);
        idle += op.ms;
      }
      stats.ops++;
    }
  } catch (e) {
    if (!aborted()) throw e;
  }
  return stats;
}
