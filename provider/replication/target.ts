/**
 * The `ReplicaTarget` contract (DESIGN.md §3): where a protected disk's replica
 * lives and how recovery points are kept. Implementations live in
 * provider/targets/<kind>/ and must pass the conformance suite in
 * test/unit/targets/conformance.ts.
 *
 * Terms:
 * - **generation**: an unbroken chain of cycles for one disk. A break in the log
 *   is never patched: a resynchronisation starts a new generation.
 * - **cycle**: one atomic change of the replica: the extents of one or more
 *   sealed log segments (coalesced), or of one resync/initial-copy batch. A
 *   cycle has a sequence number, strictly increasing within a disk.
 * - **recovery point**: the replica as it stood after a committed cycle that
 *   was marked as a point. The latest point is the replica itself.
 *
 * Every method that changes the replica is atomic at cycle granularity: a
 * crash, a lost connection or `abort()` before `commit()` leaves the replica,
 * and every retained point, exactly as after the previous committed cycle
 * (the one exception, asked for by the caller, is a cycle begun with
 * `CycleMeta.skipUndoBeforeFirstPoint` while no point exists).
 */

/** Kind of a recovery point. */
export type PointKind = 'crashConsistent' | 'appConsistent';

/** A recovery point as listed by a target. */
export interface RecoveryPointInfo {
  /** Stable id within the disk (e.g. `p-000000000000002a`). */
  readonly id: string;
  /** Sequence number of the cycle after which the point was taken. */
  readonly seq: number;
  /** Generation the point belongs to. */
  readonly generation: string;
  /** Source-side time of the cut, ms since the epoch. */
  readonly time: number;
  readonly kind: PointKind;
}

/** What a target knows about one replica disk; the shipper resumes from it. */
export interface ReplicaDiskState {
  readonly diskId: string;
  readonly sizeBytes: number;
  /** Generation of the last committed cycle; `undefined` before the first. */
  readonly generation: string | undefined;
  /** Sequence number of the last committed cycle; 0 before the first. */
  readonly appliedSeq: number;
  /** Retained recovery points, oldest first. */
  readonly points: readonly RecoveryPointInfo[];
}

export interface OpenDiskOptions {
  readonly diskId: string;
  /** Virtual size in bytes; a multiple of 512. */
  readonly sizeBytes: number;
}

/** Metadata of a cycle, fixed when it begins. */
export interface CycleMeta {
  readonly generation: string;
  /**
   * Sequence number; must be greater than `appliedSeq`, or equal to it if the
   * generation changes (a new generation may restart numbering at any value
   * greater than 0).
   */
  readonly seq: number;
  /** Source-side time of the cut, ms since the epoch. */
  readonly time: number;
  /** Whether committing the cycle creates a recovery point, and of which kind. @default none */
  readonly point?: PointKind;
  /**
   * A request to write this cycle without undo data, honoured only while the
   * disk holds no recovery point and has committed at least one cycle
   * (`appliedSeq` > 0): there is no point to roll back to, and a replica that
   * committed nothing still reads as zeros. When honoured, a crash, lost
   * connection or `abort()` before `commit()` leaves `state()` and the
   * (absent) points as before, but the bytes the cycle wrote may stay
   * written, and reads of the head (`hashBlocks`) during the cycle may see
   * them; the caller must redo the cycle, or compare, before relying on the
   * replica (docs/replication.md §5.1). A target that ignores the request
   * keeps undo data as for any cycle. @default false
   */
  readonly skipUndoBeforeFirstPoint?: boolean;
}

/** Writes of one cycle. Nothing is visible in points until `commit()`. */
export interface CycleWriter {
  /**
   * Write `data` at `offset` (any alignment, within the disk). Later writes to
   * the same bytes in the same cycle win. The caller may reuse `data` once the
   * returned promise settles: an implementation that keeps bytes for later
   * (queued, batched) must copy them.
   */
  write(offset: number, data: Buffer): Promise<void>;
  /**
   * Make the cycle durable and visible: the replica now equals the source at
   * the cut, and a point is recorded if `meta.point` was set. Idempotent
   * across a retry only in the sense that a committed sequence number is
   * refused afterwards with `ReplicaStateError` (code `cycle.alreadyApplied`).
   */
  commit(): Promise<RecoveryPointInfo | undefined>;
  /** Discard every write of this cycle; the replica is as before `beginCycle`. */
  abort(): Promise<void>;
}

/** A read-only view of a disk at a recovery point. */
export interface DiskView {
  readonly sizeBytes: number;
  readonly point: RecoveryPointInfo;
  /** Read `length` bytes at `offset` as they were at the point. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Release resources. The view must not be used afterwards. */
  close(): Promise<void>;
}

/** Digests of fixed-size blocks, for resynchronisation. */
export interface BlockDigests {
  readonly blockSize: number;
  /** Index of the first block. */
  readonly firstBlock: number;
  /** One digest per block, in order; the last block may be short. */
  readonly digests: readonly Buffer[];
}

/** Consecutive blocks `[firstBlock, firstBlock + count)`. */
export interface BlockRun {
  readonly firstBlock: number;
  readonly count: number;
}

/** Where a failed-over VM's disk comes from. */
export interface MaterialisedDisk {
  /** Local path (host target) or blob URL (Azure) of a disk that a VM can run from. */
  readonly location: string;
  /** True when nothing was copied (the latest point is the replica itself). */
  readonly zeroCopy: boolean;
}

export interface ReplicaDisk {
  readonly diskId: string;
  readonly sizeBytes: number;
  state(): Promise<ReplicaDiskState>;
  /**
   * Begin a cycle. Fails with `ReplicaStateError` if `meta.seq` does not follow
   * `appliedSeq` of the same generation or another cycle is open.
   */
  beginCycle(meta: CycleMeta): Promise<CycleWriter>;
  /** Retained recovery points, oldest first. */
  listPoints(): Promise<readonly RecoveryPointInfo[]>;
  /**
   * Remove points older than `olderThan` (ms since the epoch), always keeping
   * the latest. Returns the removed points. Idempotent.
   */
  prunePoints(olderThan: number): Promise<readonly RecoveryPointInfo[]>;
  /**
   * Digests of blocks `[firstBlock, firstBlock + count)` of the replica as it
   * is now (latest committed cycle), computed where the replica lives: only
   * digests cross the wire. The digest is SHA-256 of the block bytes.
   */
  hashBlocks(blockSize: number, firstBlock: number, count: number): Promise<BlockDigests>;
  /**
   * `hashBlocks` for several runs of blocks in one call (a resync's second
   * level asks for many short runs; one call saves a round trip and a lock
   * per run). Same digests, errors and view of the head as `hashBlocks`; the
   * result has one entry per run, in order. Optional: when a target lacks it,
   * callers ask `hashBlocks` once per run. Rejects the whole call if any run
   * is outside the disk.
   */
  hashBlockRuns?(blockSize: number, runs: readonly BlockRun[]): Promise<readonly BlockDigests[]>;
  /**
   * A view at a point, built in time proportional to the extents changed
   * since that point, never to the disk size.
   */
  openView(pointId: string): Promise<DiskView>;
  /**
   * Make a point usable as a VM disk. For the latest point this copies
   * nothing. For an older point the replica is rolled back to it, discarding
   * newer points (used at failover commit and when unplanned failover picks an
   * older point).
   */
  materialise(pointId: string): Promise<MaterialisedDisk>;
  /** Close handles. Idempotent. */
  close(): Promise<void>;
}

export interface ReplicaTarget {
  /** `host`, `azure-blob`, … */
  readonly kind: string;
  /** Open (creating if needed) the replica of a disk. Idempotent. */
  openDisk(options: OpenDiskOptions): Promise<ReplicaDisk>;
  /** Ids of disks this target holds. */
  listDisks(): Promise<readonly string[]>;
  /** Delete a disk's replica and all its points. Idempotent. */
  deleteDisk(diskId: string): Promise<void>;
  /** Release every handle. */
  close(): Promise<void>;
}
