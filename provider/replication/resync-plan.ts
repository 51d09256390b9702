/**
 * The pure part of resynchronisation (DESIGN.md §3.5, docs/replication-policy.md
 * §6): when a resync is needed and over what, when it may start, how the disk
 * is cut into blocks, the resumable cursor, and the comparison of digests.
 * The driver that reads disks, calls `ReplicaDisk.hashBlocks` and writes
 * cycles lives elsewhere and uses these pieces.
 *
 * Terms:
 * - **block**: a fixed-size piece of the disk, `blockSize` bytes (the last
 *   one may be short). Block `i` covers bytes `[i × blockSize, (i + 1) × blockSize)`.
 * - **full** resync: every block of the disk. **partial** resync: only the
 *   blocks of listed regions (the activity log after an unclean stop, as DRBD
 *   does).
 * - **cursor**: how far a resync has come; JSON, persisted by the driver.
 *
 * Write order (must hold, or a resumed resync can skip a differing block and
 * the replica silently differs from the source): the driver persists an
 * advanced cursor only after the replica committed the cycle that wrote that
 * batch's differing blocks. A crash in between re-compares the batch, which
 * is harmless: comparing is idempotent.
 */

import { createHash } from 'node:crypto';
import { BugError, type ErrorLocation, InvalidInputError } from '../errors';
import { KiB, MiB } from '../units';
import { logBudget, RESYNC_THRESHOLD_FRACTION } from './health-metrics';
import { type BlockDigests } from './target';
import { type DailyWindow } from './window';

/**
 * Default block size: 64 KiB. A differing 4 KiB write costs one 64 KiB
 * block re-sent (16× amplification, bounded), while the digests crossing the
 * wire stay at 32 B per 64 KiB (1/2048 of the disk: 50 MiB for 100 GiB).
 * Smaller blocks multiply digest traffic and hash calls; larger ones re-send
 * more data for scattered writes. It is also a common guest I/O size.
 */
export const DEFAULT_RESYNC_BLOCK_SIZE = 64 * KiB;

/** Block sizes must be multiples of this (guest page and sector alignment). */
export const BLOCK_ALIGNMENT = 4 * KiB;

/** Bytes of one digest (SHA-256, as `ReplicaDisk.hashBlocks` computes). */
export const DIGEST_BYTES = 32;

/** Default disk bytes covered by one `hashBlocks` request (1024 blocks of 64 KiB; 32 KiB of digests back). */
export const DEFAULT_HASH_BATCH_BYTES = 64 * MiB;

/** A byte range of the disk (same shape as the driver's `Region`). */
export interface ByteRegion {
  readonly offset: number;
  readonly length: number;
}

/** Consecutive blocks `[first, first + count)`. */
export interface BlockRange {
  readonly first: number;
  readonly count: number;
}

/** @throws InvalidInputError `resync.invalidBlockSize` unless a positive multiple of 4 KiB. */
export function validateBlockSize(blockSize: number, where?: ErrorLocation): void {
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0 || blockSize % BLOCK_ALIGNMENT !== 0) {
    throw new InvalidInputError('resync.invalidBlockSize', `resync block size ${blockSize} is not a positive multiple of 4 KiB`, {
      where, hint: 'use 64 KiB (the default), or another multiple of 4096 bytes',
    });
  }
}

/** Number of blocks of a disk (the last may be short). */
export function blockCount(diskSizeBytes: number, blockSize: number): number {
  return Math.ceil(diskSizeBytes / blockSize);
}

/**
 * The blocks touching `regions`: rounded outward to block boundaries, clipped
 * to the disk, sorted, overlapping and adjacent ranges merged, empty ones
 * dropped.
 */
export function regionsToBlockRanges(regions: readonly ByteRegion[], blockSize: number, diskSizeBytes: number): BlockRange[] {
  const total = blockCount(diskSizeBytes, blockSize);
  const spans = regions
    .filter((r) => r.length > 0 && r.offset < diskSizeBytes && r.offset + r.length > 0)
    .map((r) => [Math.max(0, Math.floor(r.offset / blockSize)), Math.min(total, Math.ceil((r.offset + r.length) / blockSize))] as const)
    .sort((a, b) => a[0] - b[0]);
  const out: { first: number; end: number }[] = [];
  for (const [first, end] of spans) {
    const last = out[out.length - 1];
    if (last !== undefined && first <= last.end) last.end = Math.max(last.end, end);
    else out.push({ first, end });
  }
  return out.map((s) => ({ first: s.first, count: s.end - s.first }));
}

/** Byte regions of block ranges, the last block clipped to the disk. */
export function blockRangesToRegions(ranges: readonly BlockRange[], blockSize: number, diskSizeBytes: number): ByteRegion[] {
  return ranges.map((r) => {
    const offset = r.first * blockSize;
    return { offset, length: Math.min(diskSizeBytes, (r.first + r.count) * blockSize) - offset };
  });
}

/** Blocks per `hashBlocks` request: `batchBytes / blockSize`, at least 1. */
export function hashBatchBlocks(blockSize: number, batchBytes = DEFAULT_HASH_BATCH_BYTES): number {
  return Math.max(1, Math.floor(batchBytes / blockSize));
}

/**
 * Digests of the blocks of `data`, which holds blocks `firstBlock, …` of a
 * disk as read from it (the last block may be short, at the end of the disk).
 * SHA-256 per block, as `ReplicaDisk.hashBlocks` computes them on the replica:
 * the source side of a compare.
 */
export function digestBlocks(data: Buffer, blockSize: number, firstBlock: number): BlockDigests {
  const digests: Buffer[] = [];
  for (let at = 0; at < data.length; at += blockSize) {
    digests.push(createHash('sha256').update(data.subarray(at, Math.min(data.length, at + blockSize))).digest());
  }
  return { blockSize, firstBlock, digests };
}

/**
 * Indexes (absolute block numbers, ascending) of the blocks whose digests
 * differ. Both sides must describe the same blocks.
 *
 * @throws BugError `resync.digestMismatch` if block size, first block or
 *   count differ: the two sides were asked different questions.
 */
export function compareDigests(source: BlockDigests, replica: BlockDigests): number[] {
  if (source.blockSize !== replica.blockSize || source.firstBlock !== replica.firstBlock || source.digests.length !== replica.digests.length) {
    throw new BugError('resync.digestMismatch',
      `digests of different blocks compared: source ${source.digests.length} × ${source.blockSize} B from block ${source.firstBlock}, `
      + `replica ${replica.digests.length} × ${replica.blockSize} B from block ${replica.firstBlock}`);
  }
  const out: number[] = [];
  for (let i = 0; i < source.digests.length; i++) {
    if (!source.digests[i]!.equals(replica.digests[i]!)) out.push(source.firstBlock + i);
  }
  return out;
}

/** Byte regions of differing blocks, adjacent blocks coalesced, the last block clipped to the disk: what to read and send. */
export function differingRegions(blockIndexes: readonly number[], blockSize: number, diskSizeBytes: number): ByteRegion[] {
  const ranges: BlockRange[] = [];
  for (const i of [...blockIndexes].sort((a, b) => a - b)) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && i <= last.first + last.count) {
      if (i === last.first + last.count) ranges[ranges.length - 1] = { first: last.first, count: last.count + 1 };
    } else {
      ranges.push({ first: i, count: 1 });
    }
  }
  return blockRangesToRegions(ranges, blockSize, diskSizeBytes);
}

/** Counters of a resync, for progress reports and the job record. */
export interface ResyncCounters {
  readonly blocksCompared: number;
  readonly blocksDiffering: number;
  /** Bytes of differing blocks written to the replica. */
  readonly bytesSent: number;
}

export type ResyncScope = 'full' | 'partial';

/** How far a resync has come. Plain JSON; persist with `serialiseCursor`. */
export interface ResyncCursor {
  readonly version: 1;
  readonly diskId: string;
  /** Generation the resync brings the replica to (started when the resync began). */
  readonly generation: string;
  readonly diskSizeBytes: number;
  readonly blockSize: number;
  readonly scope: ResyncScope;
  /** Blocks to compare, sorted, disjoint, non-adjacent; the whole disk when full. */
  readonly ranges: readonly BlockRange[];
  /** Next block to compare; at or past the end of the last range when done. */
  readonly nextBlock: number;
  readonly counters: ResyncCounters;
  /** Why the resync runs, for the operator. */
  readonly reason: string;
  readonly startedAt: number;
  readonly updatedAt: number;
}

export interface PlanResyncOptions {
  readonly diskId: string;
  readonly diskSizeBytes: number;
  /** Generation the resync brings the replica to. */
  readonly generation: string;
  readonly reason: string;
  /** From the injected Clock. */
  readonly now: number;
  /** @default DEFAULT_RESYNC_BLOCK_SIZE (64 KiB) */
  readonly blockSize?: number;
  /** Regions of a partial resync. @default the whole disk (full resync) */
  readonly regions?: readonly ByteRegion[];
}

/**
 * A new cursor at the first block to compare.
 *
 * @throws InvalidInputError `resync.invalidBlockSize`, or `resync.invalidDiskSize`
 *   if the size is not a positive multiple of 512.
 */
export function planResync(o: PlanResyncOptions): ResyncCursor {
  const blockSize = o.blockSize ?? DEFAULT_RESYNC_BLOCK_SIZE;
  validateBlockSize(blockSize);
  if (!Number.isSafeInteger(o.diskSizeBytes) || o.diskSizeBytes <= 0 || o.diskSizeBytes % 512 !== 0) {
    throw new InvalidInputError('resync.invalidDiskSize', `disk size ${o.diskSizeBytes} is not a positive multiple of 512`, {
      hint: 'disk sizes are whole sectors',
    });
  }
  const ranges = o.regions === undefined
    ? [{ first: 0, count: blockCount(o.diskSizeBytes, blockSize) }]
    : regionsToBlockRanges(o.regions, blockSize, o.diskSizeBytes);
  return {
    version: 1,
    diskId: o.diskId,
    generation: o.generation,
    diskSizeBytes: o.diskSizeBytes,
    blockSize,
    scope: o.regions === undefined ? 'full' : 'partial',
    ranges,
    nextBlock: ranges[0]?.first ?? 0,
    counters: { blocksCompared: 0, blocksDiffering: 0, bytesSent: 0 },
    reason: o.reason,
    startedAt: o.now,
    updatedAt: o.now,
  };
}

function rangeIndexOf(c: ResyncCursor, block: number): number {
  return c.ranges.findIndex((r) => block >= r.first && block < r.first + r.count);
}

/** True once every block of the cursor's ranges has been compared. */
export function isResyncComplete(c: ResyncCursor): boolean {
  return rangeIndexOf(c, c.nextBlock) < 0;
}

/** Blocks done and to do, for progress reports. */
export function resyncProgress(c: ResyncCursor): { readonly totalBlocks: number; readonly doneBlocks: number; readonly fraction: number } {
  const totalBlocks = c.ranges.reduce((n, r) => n + r.count, 0);
  let doneBlocks = 0;
  for (const r of c.ranges) doneBlocks += Math.max(0, Math.min(r.count, c.nextBlock - r.first));
  return { totalBlocks, doneBlocks, fraction: totalBlocks === 0 ? 1 : doneBlocks / totalBlocks };
}

/**
 * The next blocks to compare: from the cursor, at most `maxBlocks`, never
 * across a gap between ranges (one `hashBlocks` request covers contiguous
 * blocks). `undefined` when the resync is complete. Pure: call it again after
 * a crash and it returns the same batch.
 */
export function nextBatch(c: ResyncCursor, maxBlocks = hashBatchBlocks(c.blockSize)): BlockRange | undefined {
  const i = rangeIndexOf(c, c.nextBlock);
  if (i < 0) return undefined;
  const r = c.ranges[i]!;
  return { first: c.nextBlock, count: Math.min(Math.max(1, maxBlocks), r.first + r.count - c.nextBlock) };
}

/** What the driver did with a batch. */
export interface BatchOutcome {
  /** Blocks whose digests differed (and were written). */
  readonly blocksDiffering: number;
  /** Bytes written to the replica for them. */
  readonly bytesSent: number;
}

/**
 * The cursor after `batch` was compared and its differing blocks committed
 * to the replica (see the write order above). Returns a new cursor.
 *
 * @throws BugError `resync.cursorMismatch` if `batch` is not the one
 *   `nextBatch` returns now (a stale or repeated batch): advancing twice
 *   would skip blocks.
 */
export function advanceCursor(c: ResyncCursor, batch: BlockRange, outcome: BatchOutcome, now: number): ResyncCursor {
  const i = rangeIndexOf(c, c.nextBlock);
  const r = i < 0 ? undefined : c.ranges[i]!;
  if (r === undefined || batch.first !== c.nextBlock || batch.count < 1 || batch.first + batch.count > r.first + r.count) {
    throw new BugError('resync.cursorMismatch', `batch of ${batch.count} blocks from ${batch.first} does not follow the cursor at block ${c.nextBlock}`);
  }
  if (outcome.blocksDiffering < 0 || outcome.blocksDiffering > batch.count || outcome.bytesSent < 0) {
    throw new BugError('resync.cursorMismatch', `batch outcome ${outcome.blocksDiffering} differing blocks / ${outcome.bytesSent} bytes is impossible for ${batch.count} blocks`);
  }
  const end = batch.first + batch.count;
  const next = end < r.first + r.count ? end : c.ranges[i + 1]?.first ?? end;
  return {
    ...c,
    nextBlock: next,
    counters: {
      blocksCompared: c.counters.blocksCompared + batch.count,
      blocksDiffering: c.counters.blocksDiffering + outcome.blocksDiffering,
      bytesSent: c.counters.bytesSent + outcome.bytesSent,
    },
    updatedAt: now,
  };
}

/** What a cursor must match to be resumed. */
export interface ResumeTarget {
  readonly diskId: string;
  readonly generation: string;
  readonly diskSizeBytes: number;
  readonly blockSize: number;
}

/**
 * Whether a persisted cursor can be resumed for this disk: `true`, or the
 * reason it cannot (then plan a new resync; comparing again from the start is
 * always safe, only slower).
 */
export function canResume(c: ResyncCursor, target: ResumeTarget): true | string {
  if (c.diskId !== target.diskId) return `cursor is for disk ${c.diskId}, not ${target.diskId}`;
  if (c.generation !== target.generation) return `cursor is for generation ${c.generation}, the source is at ${target.generation}`;
  if (c.diskSizeBytes !== target.diskSizeBytes) return `disk size changed from ${c.diskSizeBytes} to ${target.diskSizeBytes}`;
  if (c.blockSize !== target.blockSize) return `block size changed from ${c.blockSize} to ${target.blockSize}`;
  return true;
}

/** The cursor as JSON text (stable key order), for the driver's progress file. */
export function serialiseCursor(c: ResyncCursor): string {
  return JSON.stringify({
    version: c.version, diskId: c.diskId, generation: c.generation, diskSizeBytes: c.diskSizeBytes, blockSize: c.blockSize,
    scope: c.scope, ranges: c.ranges.map((r) => ({ first: r.first, count: r.count })), nextBlock: c.nextBlock,
    counters: { blocksCompared: c.counters.blocksCompared, blocksDiffering: c.counters.blocksDiffering, bytesSent: c.counters.bytesSent },
    reason: c.reason, startedAt: c.startedAt, updatedAt: c.updatedAt,
  });
}

/**
 * Parse and check a persisted cursor.
 *
 * @throws InvalidInputError `resync.cursorInvalid` (not JSON, unknown
 *   version, a missing or impossible field); the hint says that deleting it
 *   restarts the resync from its first block, which is safe.
 */
export function parseCursor(text: string, where?: ErrorLocation): ResyncCursor {
  const invalid = (why: string, cause?: unknown): never => {
    throw new InvalidInputError('resync.cursorInvalid', `resync cursor is invalid: ${why}`, {
      cause, where, hint: 'delete the cursor: the resync then restarts from its first block, which is safe (it compares, it never assumes)',
    });
  };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return invalid('not JSON', e);
  }
  if (typeof v !== 'object' || v === null) return invalid('not an object');
  const o = v as Record<string, unknown>;
  if (o.version !== 1) return invalid(`unknown version ${JSON.stringify(o.version)} (this build reads version 1)`);
  const nat = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  for (const k of ['diskId', 'generation', 'reason'] as const) if (typeof o[k] !== 'string') invalid(`${k} is not a string`);
  for (const k of ['diskSizeBytes', 'blockSize', 'nextBlock', 'startedAt', 'updatedAt'] as const) if (!nat(o[k])) invalid(`${k} is not a whole number`);
  if (o.scope !== 'full' && o.scope !== 'partial') invalid('scope is neither full nor partial');
  const counters = o.counters as Record<string, unknown> | null;
  if (typeof counters !== 'object' || counters === null) return invalid('counters missing');
  for (const k of ['blocksCompared', 'blocksDiffering', 'bytesSent'] as const) if (!nat(counters[k])) invalid(`counters.${k} is not a whole number`);
  if (!Array.isArray(o.ranges)) return invalid('ranges is not a list');
  const blockSize = o.blockSize as number;
  const size = o.diskSizeBytes as number;
  try {
    validateBlockSize(blockSize);
  } catch (e) {
    invalid(`block size ${blockSize}`, e);
  }
  const total = blockCount(size, blockSize);
  let end = -1;
  const ranges: BlockRange[] = [];
  for (const r of o.ranges as unknown[]) {
    const rr = r as Record<string, unknown> | null;
    if (typeof rr !== 'object' || rr === null || !nat(rr.first) || !nat(rr.count) || rr.count === 0) return invalid('a range is malformed');
    if (rr.first <= end || rr.first + rr.count > total) return invalid(`range ${rr.first}+${rr.count} is out of order or past the disk`);
    end = rr.first + rr.count;
    ranges.push({ first: rr.first, count: rr.count });
  }
  const nextBlock = o.nextBlock as number;
  const c: ResyncCursor = {
    version: 1, diskId: o.diskId as string, generation: o.generation as string, diskSizeBytes: size, blockSize,
    scope: o.scope as ResyncScope, ranges, nextBlock,
    counters: { blocksCompared: counters.blocksCompared as number, blocksDiffering: counters.blocksDiffering as number, bytesSent: counters.bytesSent as number },
    reason: o.reason as string, startedAt: o.startedAt as number, updatedAt: o.updatedAt as number,
  };
  if (rangeIndexOf(c, nextBlock) < 0 && nextBlock < end) return invalid(`nextBlock ${nextBlock} is in a gap between ranges`);
  return c;
}

/** Why a resync is needed; stable codes. */
export type ResyncTriggerCode =
  | 'resync.logBudgetExceeded'
  | 'resync.segmentLost'
  | 'resync.uncleanStop'
  | 'resync.replicaDiverged'
  | 'resync.manual';

export interface ResyncTriggerInput {
  readonly diskSizeBytes: number;
  /** Log bytes tracked and not yet applied at the replica. */
  readonly pendingLogBytes: number;
  /** @default RESYNC_THRESHOLD_FRACTION (0.5) */
  readonly thresholdFraction?: number;
  /** A sealed segment is missing or corrupt, or the chain is broken: what was found. @default none */
  readonly segmentProblem?: string;
  /**
   * The source stopped uncleanly. `activityLog`: the extents that may have
   * had writes in flight; `undefined` if the activity log itself is lost or
   * unreadable. @default no unclean stop
   */
  readonly uncleanStop?: { readonly activityLog: readonly ByteRegion[] | undefined };
  /** The replica's generation or applied cycle is unknown to the source, or it was written by someone else: what was found. @default none */
  readonly replicaDiverged?: string;
  /** An operator asked for a resync. @default false */
  readonly manual?: boolean;
}

export interface ResyncDecision {
  /** `partial` only when the unclean stop with a readable activity log is the sole trigger. */
  readonly scope: ResyncScope;
  /** Regions to compare: the activity log's extents for partial, the whole disk for full. */
  readonly regions: readonly ByteRegion[];
  /** Every trigger that holds, in the order of the table in docs/replication-policy.md §6. */
  readonly triggers: readonly { readonly code: ResyncTriggerCode; readonly message: string }[];
  /** The messages joined, for the transition's reason. */
  readonly reason: string;
}

/**
 * Whether delta replication must give way to a resync, and over what.
 * `undefined` when none is needed (an unclean stop whose activity log is
 * empty needs none: no write was in flight). Any full trigger makes the
 * whole resync full.
 */
export function resyncTrigger(input: ResyncTriggerInput): ResyncDecision | undefined {
  const triggers: { code: ResyncTriggerCode; message: string }[] = [];
  let partial: readonly ByteRegion[] | undefined;
  const budget = logBudget(input.pendingLogBytes, input.diskSizeBytes, input.thresholdFraction ?? RESYNC_THRESHOLD_FRACTION);
  if (budget.usedFraction >= 1) {
    triggers.push({ code: 'resync.logBudgetExceeded', message: `pending logs (${input.pendingLogBytes} bytes) reached ${Math.round((input.thresholdFraction ?? RESYNC_THRESHOLD_FRACTION) * 100)} % of the disk size` });
  }
  if (input.segmentProblem !== undefined) triggers.push({ code: 'resync.segmentLost', message: `log lost or corrupt: ${input.segmentProblem}` });
  if (input.replicaDiverged !== undefined) triggers.push({ code: 'resync.replicaDiverged', message: `replica diverged: ${input.replicaDiverged}` });
  if (input.manual === true) triggers.push({ code: 'resync.manual', message: 'requested by an operator' });
  if (input.uncleanStop !== undefined) {
    const al = input.uncleanStop.activityLog;
    if (al === undefined) {
      triggers.push({ code: 'resync.uncleanStop', message: 'unclean stop and the activity log is unreadable' });
    } else if (al.some((r) => r.length > 0)) {
      partial = al.filter((r) => r.length > 0);
      triggers.push({ code: 'resync.uncleanStop', message: `unclean stop: ${partial.length} activity-log extent(s) may differ` });
    }
  }
  if (triggers.length === 0) return undefined;
  const onlyPartial = partial !== undefined && triggers.length === 1;
  return {
    scope: onlyPartial ? 'partial' : 'full',
    regions: onlyPartial ? partial! : [{ offset: 0, length: input.diskSizeBytes }],
    triggers,
    reason: triggers.map((t) => t.message).join('; '),
  };
}

/** Whether a resync may start now. */
export interface ResyncStartDecision {
  readonly start: boolean;
  /** When it may start, if not now and it will start by itself. */
  readonly notBefore?: number;
  /** A sentence for the operator. */
  readonly reason: string;
}

/**
 * Whether a required resync starts by itself now. Full resyncs wait for the
 * policy's window (default: the off-hours window) when `automatic`; with no
 * window they start at once; with `automatic` off they wait for an operator.
 * A partial resync (a few activity-log extents) starts at once: it is small
 * and no new recovery point can be made until it is done. An operator's
 * manual start is always allowed and does not ask this function.
 */
export function shouldStartAutomatically(now: number, window: DailyWindow | undefined, automatic: boolean, scope: ResyncScope = 'full'): ResyncStartDecision {
  if (scope === 'partial') return { start: true, reason: 'partial resync of the activity-log extents starts at once' };
  if (!automatic) return { start: false, reason: 'automatic resync is off: waiting for an operator to start it' };
  if (window === undefined) return { start: true, reason: 'no resync window: starts at once' };
  if (window.contains(now)) return { start: true, reason: `inside the resync window ${window.toString()}` };
  const notBefore = window.nextStart(now);
  return { start: false, notBefore, reason: `waiting for the resync window ${window.toString()}, opening ${new Date(notBefore).toISOString()}` };
}
