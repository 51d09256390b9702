/**
 * The replicator's persisted progress for one disk (docs/replication.md §4):
 * what phase it is in, how far a copy or resync has come, and which cycle
 * number comes next. Written atomically (temp file, fsync, rename, fsync of
 * the folder), so after any crash it holds either the previous or the new
 * state, never a torn one.
 */
import * as fs from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file';
import { InvalidInputError } from '../errors';

/** Phase of a disk's replication; see docs/replication.md §3. */
export type ReplicationPhase =
  /** Nothing copied yet; initial replication has not started (scheduled later, or new). */
  | 'notStarted'
  /** Initial copy running: the replica is fuzzy until the copy ends and the log written meanwhile is applied. */
  | 'initialCopy'
  /** Block-compare resync running over `regions` (whole disk, or suspect extents after an unclean stop). */
  | 'resync'
  /** Copy or resync done; shipping the segments written meanwhile until the first consistent point. */
  | 'catchUp'
  /** In step: every cycle ships sealed segments and records a point. */
  | 'delta';

/** A byte range of the disk. */
export interface Region {
  readonly offset: number;
  readonly length: number;
}

export interface ReplicationProgress {
  readonly version: 1;
  readonly phase: ReplicationPhase;
  /** Tracker generation the replica is being brought to (or is in step with). */
  readonly generation: string | undefined;
  /** Next cycle sequence number to use on the replica. */
  readonly nextCycleSeq: number;
  /** Regions a copy/resync covers, sorted; the whole disk for a full pass. */
  readonly regions: readonly Region[];
  /** Bytes of `regions` already done (the cursor): the pass resumes here. */
  readonly doneBytes: number;
  /** Why the current resync runs, for the operator. */
  readonly reason: string | undefined;
  /** Time of the last app-consistent point, ms since the epoch. */
  readonly lastAppConsistentAt: number | undefined;
  /** Counters of the current pass, for progress and the benchmarks. */
  readonly stats: PassStats;
}

export interface PassStats {
  /** Bytes of the disk examined by the pass. */
  readonly scannedBytes: number;
  /** Bytes written to the replica by the pass. */
  readonly sentBytes: number;
  /** Bytes skipped because they were zero (initial copy) or equal (resync). */
  readonly skippedBytes: number;
  /** Blocks whose digests were compared (resync). */
  readonly comparedBlocks: number;
  /** Blocks whose digests differed (resync); with two levels, only their differing fine blocks were sent. */
  readonly differingBlocks: number;
  /** Bytes of digests the replica returned (resync, both levels): what crossed besides the blocks sent. */
  readonly digestBytes: number;
}

export const emptyStats: PassStats = { scannedBytes: 0, sentBytes: 0, skippedBytes: 0, comparedBlocks: 0, differingBlocks: 0, digestBytes: 0 };

export function initialProgress(): ReplicationProgress {
  return {
    version: 1,
    phase: 'notStarted',
    generation: undefined,
    nextCycleSeq: 1,
    regions: [],
    doneBytes: 0,
    reason: undefined,
    lastAppConsistentAt: undefined,
    stats: emptyStats,
  };
}

/**
 * Read the progress file; a missing file means a new disk (`initialProgress`).
 *
 * @throws InvalidInputError `progress.corrupt` or `progress.unknownVersion` if the
 *   file exists but is not a progress record this code understands: the
 *   replicator then refuses to guess and the item needs a resync.
 */
export async function readProgress(file: string): Promise<ReplicationProgress> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return initialProgress();
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InvalidInputError('progress.corrupt', `Replication progress file ${file} is not valid JSON`, {
      cause: e,
      where: { file },
      hint: 'Delete the file and start a resynchronisation of the item.',
    });
  }
  const p = parsed as Partial<ReplicationProgress>;
  if (p.version !== 1) {
    throw new InvalidInputError('progress.unknownVersion', `Replication progress file ${file} has version ${String(p.version)}; this Lifeboat reads version 1`, {
      where: { file },
      hint: 'Run the Lifeboat version that wrote it, or delete it and resynchronise.',
    });
  }
  return { ...initialProgress(), ...p, stats: { ...emptyStats, ...p.stats } } as ReplicationProgress;
}

/** Replace the progress file atomically (old or new content after any crash). */
export async function writeProgress(file: string, progress: ReplicationProgress): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(progress), 0o644);
}
