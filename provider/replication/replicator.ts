/**
 * The replication driver of one disk (docs/replication.md): initial copy,
 * catch-up, delta cycles, recovery points, resynchronisation (full, or of the
 * suspect extents after an unclean stop). It joins a tracked source to a
 * `ReplicaDisk`; every step is safe to run again after a crash (§2, §4).
 *
 * One replicator per disk; its methods must not run concurrently with each
 * other (the caller's loop serialises them). Guest writes to the tracked disk
 * may run concurrently with everything here.
 */
import { BugError, InvalidInputError, LifeboatError, NonRecoverableError, ResyncRequiredError } from '../errors';
import { type Clock, systemClock } from '../clock';
import { HOUR, MiB, KiB } from '../units';
import { type BandwidthLimiter } from './bandwidth';
import {
  type PassStats,
  type Region,
  type ReplicationPhase,
  type ReplicationProgress,
  emptyStats,
  readProgress,
  writeProgress,
} from './progress-file';
import { type HashedBlocks, type BlockHasher, sharedBlockHasher } from './block-hasher';
import { DIGEST_BYTES, blockRangesToRegions, compareDigests, differingRegions, regionsToBlockRanges, validateBlockSize } from './resync-plan';
import { coalesceSegments } from './extent-map';
import { type SealedSegmentInfo, type TrackedDisk } from './tracker';
import { type BlockDigests, type BlockRun, type CycleWriter, type PointKind, type RecoveryPointInfo, type ReplicaDisk } from './target';

/** Asks the guest to quiesce; resolves with a function that resumes it. */
export type QuiesceHook = () => Promise<() => Promise<void>>;

export interface ReplicatorOptions {
  /** The tracked source disk (docs/log-format.md). */
  readonly source: TrackedDisk;
  readonly replica: ReplicaDisk;
  /** The progress file (§4), conventionally `<disk>.replication.json`. */
  readonly progressFile: string;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Unit a pass reads (zeros are skipped per 4 KiB within it). @default 1 MiB */
  readonly chunkBytes?: number;
  /** Pass bytes per replica cycle (one persisted cursor step). @default 64 MiB */
  readonly batchBytes?: number;
  /**
   * Pass bytes per cycle of the initial copy after its first cycle (§5.1):
   * those cycles keep no undo data, so a cycle costs the copy plus one commit
   * (a sync and a manifest write on the replica, two progress writes here),
   * and fewer, larger cycles cost fewer commits. The first cycle stays at
   * `batchBytes`: the replica keeps undo data for it. Rounded down to whole
   * blocks, at least `batchBytes`.
   * @default batchBytes
   */
  readonly copyBatchBytes?: number;
  /**
   * Pass bytes of the first cycle of an initial copy onto a replica that has
   * committed none: the replica keeps undo data for that cycle only (so that
   * a replica that never committed a cycle reads as zeros, §5.1), and a
   * small one makes every later cycle skip it sooner. Rounded down to whole
   * blocks, at least one block, at most `batchBytes`.
   * @default batchBytes
   */
  readonly firstCopyBatchBytes?: number;
  /** Resync block size; a multiple of 4 KiB. @default 64 KiB */
  readonly blockSize?: number;
  /**
   * Block size of the second compare level inside differing blocks (§7.1):
   * a multiple of 4 KiB that divides `blockSize`; equal to it for one level.
   * @default 4 KiB
   */
  readonly fineBlockSize?: number;
  /** Threads that hash the source's blocks. @default sharedBlockHasher */
  readonly hasher?: BlockHasher;
  /** Keep points this long. @default 24 hours */
  readonly retentionMs?: number;
  /** Take an app-consistent point this often; 0 never. @default 0 */
  readonly appConsistentEveryMs?: number;
  /** Needed when `appConsistentEveryMs` > 0. @default none */
  readonly quiesce?: QuiesceHook;
  /** Shared limiter of the policy. @default unlimited */
  readonly limiter?: BandwidthLimiter;
  /** Fraction of the disk size pending logs may reach before a resync. @default 0.5 */
  readonly resyncThreshold?: number;
  /** Progress of passes and cycles. Must not throw. @default none */
  readonly onEvent?: (event: ReplicationEvent) => void;
  /** Stops work between chunks; the step in flight is abandoned safely. @default none */
  readonly signal?: AbortSignal;
}

export type ReplicationEvent =
  | { readonly type: 'pass'; readonly kind: 'copy' | 'compare'; readonly doneBytes: number; readonly totalBytes: number; readonly stats: PassStats }
  | { readonly type: 'cycle'; readonly seq: number; readonly segments: number; readonly bytes: number; readonly point: RecoveryPointInfo | undefined }
  | { readonly type: 'phase'; readonly phase: ReplicationPhase; readonly reason: string | undefined };

/** What one delta cycle did. */
export interface CycleResult {
  /** Point recorded, if any segment was shipped. */
  readonly point: RecoveryPointInfo | undefined;
  readonly segments: number;
  /** Coalesced bytes written to the replica. */
  readonly bytes: number;
  /** Guest bytes the shipped segments logged, before coalescing (the churn). */
  readonly logBytes: number;
  /** Points removed by retention. */
  readonly pruned: number;
}

/** A cycle the driver began; recorded before it is applied (§2). */
interface PendingCycle {
  readonly seq: number;
  /** Pass batch: the cursor after it. Shipment: the last segment it covers. */
  readonly doneBytesAfter?: number;
  readonly uptoSegment?: number;
  /** Shipment: the segment checksum of `uptoSegment`. */
  readonly uptoChecksum?: number;
}

interface Progress extends ReplicationProgress {
  readonly pending?: PendingCycle;
  /** Suspect extents still to reconcile and the segment they follow (§7). */
  readonly reconcile?: { readonly regions: readonly Region[]; readonly afterSeq: number };
  /** Segments shipped up to (inclusive) in the current generation. */
  readonly shippedSeq?: number;
  /** Segment checksum of segment `shippedSeq`: the next shipment must link to it. */
  readonly shippedChecksum?: number;
  /** Time of the last committed shipment: the replica equals the source at the last seal before it. */
  readonly lastSyncAt?: number;
}

/** Default second-level compare block (§7.1): a guest page, the unit of most scattered writes. */
const DEFAULT_FINE_BLOCK_SIZE = 4 * KiB;

/** Source bytes a compare hashes and keeps before comparing them with the replica's digests. */
const COMPARE_WINDOW_BYTES = 8 * MiB;

/** Chunks a copy pass reads ahead of the one it writes. */
const COPY_READS_AHEAD = 2;

/** Windows whose replica digests are requested before the source reaches them. */
const REPLICA_WINDOWS_AHEAD = 2;

/** `p`, marked as observed: it is awaited later, or abandoned after an earlier failure of the same step. */
function observed<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** The source bytes of a compare window, in the chunks they were read in. */
class SourceWindow {
  constructor(
    readonly offset: number,
    private readonly chunks: readonly Buffer[],
    /** Digests of the window's blocks, in order. */
    readonly digests: readonly Buffer[],
  ) {}

  /** `length` bytes at `from` (relative to the window): a view when within one chunk, else a copy. */
  slice(from: number, length: number): Buffer {
    const parts: Buffer[] = [];
    let skip = from;
    let left = length;
    for (const c of this.chunks) {
      if (left <= 0) break;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const n = Math.min(c.length - skip, left);
      parts.push(c.subarray(skip, skip + n));
      left -= n;
      skip = 0;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

/** Granularity of zero detection in a copy pass. */
const SPARSE_GRAIN = 4 * KiB;
const ZERO_GRAIN = Buffer.alloc(SPARSE_GRAIN);

/** `[from, to)` runs of `buf` that are not all zero, in `grain`-sized steps. */
export function nonZeroRuns(buf: Buffer, grain: number): Array<readonly [number, number]> {
  const runs: Array<readonly [number, number]> = [];
  let start = -1;
  for (let at = 0; at < buf.length; at += grain) {
    const end = Math.min(at + grain, buf.length);
    const zero = buf.subarray(at, end).equals(ZERO_GRAIN.subarray(0, end - at));
    if (!zero && start < 0) start = at;
    if (zero && start >= 0) {
      runs.push([start, at]);
      start = -1;
    }
  }
  if (start >= 0) runs.push([start, buf.length]);
  return runs;
}

function totalOf(regions: readonly Region[]): number {
  return regions.reduce((s, r) => s + r.length, 0);
}

/** Widen regions to whole blocks within the disk, sorted and merged. */
function alignRegions(regions: readonly Region[], blockSize: number, sizeBytes: number): Region[] {
  return blockRangesToRegions(regionsToBlockRanges(regions, blockSize, sizeBytes), blockSize, sizeBytes);
}

/** Sub-ranges of `regions` covering bytes `[from, from + max)` of their concatenation. */
function sliceRegions(regions: readonly Region[], from: number, max: number): Region[] {
  const out: Region[] = [];
  let skip = from;
  let left = max;
  for (const r of regions) {
    if (left <= 0) break;
    if (skip >= r.length) {
      skip -= r.length;
      continue;
    }
    const offset = r.offset + skip;
    const length = Math.min(r.length - skip, left);
    out.push({ offset, length });
    left -= length;
    skip = 0;
  }
  return out;
}

/** The replication driver of one disk. Create with `DiskReplicator.open`. */
export class DiskReplicator {
  private progress: Progress;
  private readonly clock: Clock;
  private readonly chunkBytes: number;
  private readonly batchBytes: number;
  private readonly copyBatchBytes: number;
  private readonly firstCopyBatchBytes: number;
  private readonly blockSize: number;
  private readonly fineBlockSize: number;
  private readonly hasher: BlockHasher;
  /** Free chunk buffers of the copy pass. */
  private readonly copyBuffers: Buffer[] = [];

  private constructor(private readonly o: ReplicatorOptions, progress: Progress) {
    this.progress = progress;
    this.clock = o.clock ?? systemClock;
    this.chunkBytes = o.chunkBytes ?? MiB;
    this.blockSize = o.blockSize ?? 64 * KiB;
    this.batchBytes = Math.max(this.blockSize, Math.floor((o.batchBytes ?? 64 * MiB) / this.blockSize) * this.blockSize);
    this.copyBatchBytes = Math.max(this.batchBytes, Math.floor((o.copyBatchBytes ?? 0) / this.blockSize) * this.blockSize);
    this.firstCopyBatchBytes = Math.min(this.batchBytes, Math.max(this.blockSize, Math.floor((o.firstCopyBatchBytes ?? this.batchBytes) / this.blockSize) * this.blockSize));
    validateBlockSize(this.blockSize);
    this.fineBlockSize = o.fineBlockSize ?? Math.min(this.blockSize, DEFAULT_FINE_BLOCK_SIZE);
    validateBlockSize(this.fineBlockSize);
    if (this.blockSize % this.fineBlockSize !== 0) {
      throw new InvalidInputError('resync.invalidBlockSize', `fine block size ${this.fineBlockSize} does not divide the block size ${this.blockSize}`, {
        hint: 'use 4 KiB (the default), or another multiple of 4096 bytes that divides the block size',
      });
    }
    this.hasher = o.hasher ?? sharedBlockHasher;
  }

  /**
   * Open the driver: read the progress file, settle a cycle that was in
   * flight at a crash (§2), check the replica is the one the progress
   * describes, and take in the source's recovery report (§7).
   *
   * @throws InvalidInputError `progress.*` if the progress file is unreadable.
   */
  static async open(options: ReplicatorOptions): Promise<DiskReplicator> {
    const progress = (await readProgress(options.progressFile)) as Progress;
    const r = new DiskReplicator(options, progress);
    await r.settlePending();
    await r.checkReplica();
    await r.takeRecoveryReport();
    return r;
  }

  get phase(): ReplicationPhase {
    return this.progress.phase;
  }

  /** The persisted progress, for status reports. */
  get status(): Readonly<Progress> {
    return this.progress;
  }

  /**
   * Run initial replication to its first recovery point: start tracking in a
   * new generation, copy the disk (resuming at the cursor), then catch up.
   * Resumes whatever phase a previous run reached. Returns the first point.
   */
  async runInitialReplication(): Promise<RecoveryPointInfo> {
    if (this.progress.phase === 'delta') return this.latestPoint();
    if (this.progress.phase === 'notStarted') {
      const state = await this.o.replica.state();
      const generation = await this.o.source.startGeneration();
      // A replica that already holds cycles (its progress file was lost) is
      // compared, not overwritten blindly: zero chunks would be skipped.
      const phase = state.appliedSeq > 0 ? 'resync' : 'initialCopy';
      await this.save({
        phase, generation, regions: [{ offset: 0, length: this.o.source.sizeBytes }],
        nextCycleSeq: Math.max(this.progress.nextCycleSeq, state.appliedSeq + 1),
        doneBytes: 0, stats: emptyStats, reason: phase === 'resync' ? 'initial replication onto an existing replica' : 'initial replication',
        shippedSeq: 0, shippedChecksum: undefined, reconcile: undefined,
      });
    }
    return this.finish();
  }

  /**
   * Resynchronise the whole disk by block comparison: a new generation, a
   * compare pass (resuming at its cursor if one is under way), then catch-up.
   * Retained points survive. Returns the first point of the new generation.
   */
  async resync(reason: string): Promise<RecoveryPointInfo> {
    if (this.progress.phase !== 'resync' || this.progress.reconcile !== undefined) {
      const generation = await this.o.source.startGeneration();
      await this.save({
        phase: 'resync', generation, regions: [{ offset: 0, length: this.o.source.sizeBytes }],
        doneBytes: 0, stats: emptyStats, reason, shippedSeq: 0, shippedChecksum: undefined, reconcile: undefined,
      });
    }
    return this.finish();
  }

  /**
   * One delta cycle (§3, §8): seal (quiescing first if an app-consistent point
   * is due), ship the sealed segments coalesced as one cycle with a point,
   * release them, prune points past retention.
   *
   * @throws ResyncRequiredError when pending logs reach the threshold or a
   *   segment is missing or corrupt; the caller then runs `resync`.
   */
  async runCycle(): Promise<CycleResult> {
    if (this.progress.phase === 'resync') {
      throw new ResyncRequiredError('replication.resyncPending', `Disk ${this.o.source.diskId} needs a resynchronisation: ${this.progress.reason ?? 'reason unknown'}`, {
        hint: 'Run the resynchronisation (it starts by itself inside the policy window), or start it by hand.',
      });
    }
    if (this.progress.phase !== 'delta') {
      throw new BugError('replicator.notInDelta', `Disk ${this.o.source.diskId} is in phase ${this.progress.phase}, not delta`);
    }
    const threshold = (this.o.resyncThreshold ?? 0.5) * this.o.source.sizeBytes;
    const pendingBytes = this.o.source.pendingLogBytes();
    if (pendingBytes >= threshold) {
      throw new ResyncRequiredError('replication.logBudgetExceeded', `Pending replication logs of disk ${this.o.source.diskId} reached ${Math.round((100 * pendingBytes) / this.o.source.sizeBytes)} % of the disk size`, {
        details: { pendingBytes, sizeBytes: this.o.source.sizeBytes },
        hint: 'The replica fell too far behind (network down or too slow for the churn); a resynchronisation will bring it back in step.',
      });
    }
    const reconciled = await this.reconcileIfPending();
    const kind = await this.sealForPoint();
    let shipped = await this.shipSealed(kind);
    if (shipped.point === undefined) {
      this.assertNoGap();
      if (reconciled) {
        // The reconcile changed the replica and nothing followed it: the
        // new state still needs its point.
        shipped = { ...shipped, point: await this.pointNow(kind) };
      } else {
        // Nothing written since the last cut: the replica is still in step.
        await this.save({ lastSyncAt: this.clock.now() });
      }
    }
    const pruned = await this.prune();
    return { ...shipped, pruned };
  }

  /** The newest retained point. */
  async latestPoint(): Promise<RecoveryPointInfo> {
    const points = await this.o.replica.listPoints();
    const last = points[points.length - 1];
    if (last === undefined) {
      throw new NonRecoverableError('replica.noPoint', `The replica of disk ${this.o.source.diskId} holds no recovery point`, {
        hint: 'Resynchronise the item.',
      });
    }
    return last;
  }

  /** Whether an app-consistent point is due now. */
  appConsistentDue(): boolean {
    const every = this.o.appConsistentEveryMs ?? 0;
    if (every <= 0 || this.o.quiesce === undefined) return false;
    const last = this.progress.lastAppConsistentAt;
    return last === undefined || this.clock.now() - last >= every;
  }

  // ---------------------------------------------------------------------------

  /** Drive the current phase to delta and return the first point. */
  private async finish(): Promise<RecoveryPointInfo> {
    const p = this.progress;
    if (p.phase === 'initialCopy' || p.phase === 'resync') {
      await this.runPass(p.phase === 'initialCopy' ? 'copy' : 'compare');
      await this.save({ phase: 'catchUp' });
    }
    if (this.progress.phase !== 'catchUp') {
      throw new BugError('replicator.badPhase', `Cannot finish replication of ${this.o.source.diskId} from phase ${this.progress.phase}`);
    }
    await this.reconcileIfPending();
    const kind = await this.sealForPoint();
    const { point } = await this.shipSealed(kind);
    if (point === undefined) this.assertNoGap();
    const first = point ?? (await this.pointNow(kind));
    await this.save({ phase: 'delta', reason: undefined, regions: [], doneBytes: 0 });
    return first;
  }

  /** Seal the source, quiescing the guest around the seal when due. */
  private async sealForPoint(): Promise<PointKind> {
    if (!this.appConsistentDue()) {
      await this.o.source.seal();
      return 'crashConsistent';
    }
    const resume = await this.o.quiesce!();
    try {
      await this.o.source.seal();
    } finally {
      await resume();
    }
    return 'appConsistent';
  }

  /**
   * A point when there was nothing to ship (no write since the last cut): an
   * empty cycle, so the first point of a generation always exists.
   */
  private async pointNow(kind: PointKind): Promise<RecoveryPointInfo> {
    const point = await this.applyCycle({ uptoSegment: this.progress.shippedSeq ?? 0, uptoChecksum: this.progress.shippedChecksum }, kind, async () => 0);
    if (point === undefined) throw new BugError('replicator.noPoint', 'A cycle marked as a point recorded none');
    return point;
  }

  /**
   * Reconcile pending suspect extents (§7): ship the segments up to the stop,
   * then compare the suspect extents. Runs before the seal that ends the next
   * point, so the compare reads nothing newer than that point's cut.
   */
  private async reconcileIfPending(): Promise<boolean> {
    const rec = this.progress.reconcile;
    if (rec === undefined) return false;
    const before = await this.unshipped(rec.afterSeq);
    if (before.length > 0) await this.shipSegments(before, undefined);
    await this.reconcileSuspects(rec.regions);
    return true;
  }

  /**
   * Ship every sealed, unshipped segment (§3 catch-up and delta) as one
   * cycle that records a point of `kind`: the point's cut is the last seal.
   */
  private async shipSealed(kind: PointKind): Promise<Omit<CycleResult, 'pruned'>> {
    const rest = await this.unshipped(Number.MAX_SAFE_INTEGER);
    if (rest.length === 0) return { point: undefined, segments: 0, bytes: 0, logBytes: 0 };
    const r = await this.shipSegments(rest, kind);
    return { point: r.point, segments: rest.length, bytes: r.bytes, logBytes: rest.reduce((n, x) => n + x.dataBytes, 0) };
  }

  /**
   * Nothing between the last shipped segment and the current one went
   * missing (§6): a segment lost before shipping, with nothing sealed after
   * it, is otherwise invisible. Checked before a point is recorded without a
   * shipment.
   */
  private assertNoGap(): void {
    const expected = (this.progress.shippedSeq ?? 0) + 1;
    const current = this.o.source.currentSeq;
    if (this.o.source.generation === this.progress.generation && current !== expected) {
      throw new ResyncRequiredError('chain.gap', `Disk ${this.o.source.diskId}: the log is at segment ${current} but segment ${expected} was never shipped`, {
        details: { expected, current },
        hint: 'A segment of the replication log was lost before it reached the replica; the item needs a resynchronisation.',
      });
    }
  }

  private async unshipped(upto: number): Promise<readonly SealedSegmentInfo[]> {
    const shipped = this.progress.shippedSeq ?? 0;
    return (await this.o.source.sealedSegments()).filter((s) => s.seq > shipped && s.seq <= upto);
  }

  /** One cycle holding `segments` coalesced; then release them (§2, I10 of the log format). */
  private async shipSegments(segments: readonly SealedSegmentInfo[], kind: PointKind | undefined): Promise<{ point: RecoveryPointInfo | undefined; bytes: number }> {
    const first = segments[0]!;
    const last = segments[segments.length - 1]!;
    const upto = last.seq;
    // coalesceSegments checks the links within a shipment; this checks the
    // link to the previous one (docs/log-format.md §5).
    const shippedSeq = this.progress.shippedSeq ?? 0;
    const shippedChecksum = this.progress.shippedChecksum;
    if (first.seq !== shippedSeq + 1 || (shippedChecksum !== undefined && first.previousChecksum !== shippedChecksum)) {
      throw new ResyncRequiredError('chain.linkMismatch', `Segment ${first.seq} of disk ${this.o.source.diskId} does not follow segment ${shippedSeq}, the last one shipped`, {
        hint: 'The replication log was altered between shipments; the item needs a resynchronisation.',
      });
    }
    let bytes = 0;
    const point = await this.applyCycle({ uptoSegment: upto, uptoChecksum: last.segmentChecksum }, kind, async (w) => {
      const src = this.o.source;
      const batch = await coalesceSegments(segments, { diskId: src.diskId, generation: src.generation, diskSize: src.sizeBytes });
      try {
        for (const e of batch.extents) {
          this.checkAborted();
          const data = await batch.read(e);
          await this.o.limiter?.take(data.length, this.o.signal);
          await w.write(e.offset, data);
          bytes += data.length;
        }
      } finally {
        await batch.close();
      }
      return bytes;
    });
    await this.o.source.release(upto);
    this.emit({ type: 'cycle', seq: this.progress.nextCycleSeq - 1, segments: segments.length, bytes, point });
    return { point, bytes };
  }

  /**
   * Apply one cycle: record it as pending, apply it, then record it as done
   * (§2, §4). On failure the cycle is aborted and the error rethrown.
   */
  private async applyCycle(
    pending: Omit<PendingCycle, 'seq'>,
    point: PointKind | undefined,
    fill: (w: CycleWriter) => Promise<number>,
    /** More progress to record with the cycle's completion (one progress write, not two). */
    extra?: () => Partial<Progress>,
  ): Promise<RecoveryPointInfo | undefined> {
    const seq = this.progress.nextCycleSeq;
    const generation = this.progress.generation;
    if (generation === undefined) throw new BugError('replicator.noGeneration', 'A cycle was begun before a generation');
    await this.save({ pending: { seq, ...pending } });
    // Before the first point nothing can be rolled back to: the store may skip undo data (§5.1).
    const beforeFirstPoint = this.progress.phase !== 'delta';
    const writer = await this.o.replica.beginCycle({
      generation, seq, time: this.clock.now(), ...(point === undefined ? {} : { point }), ...(beforeFirstPoint ? { skipUndoBeforeFirstPoint: true } : {}),
    });
    let committed: RecoveryPointInfo | undefined;
    try {
      await fill(writer);
      committed = await writer.commit();
    } catch (e) {
      await writer.abort().catch(() => undefined);
      throw e;
    }
    await this.completePending(point === undefined ? undefined : this.clock.now(), point, extra?.());
    return committed;
  }

  /** Record the pending cycle as applied. */
  private async completePending(syncAt: number | undefined, kind: PointKind | undefined, extra: Partial<Progress> = {}): Promise<void> {
    const pend = this.progress.pending;
    if (pend === undefined) return;
    await this.save({
      ...extra,
      pending: undefined,
      nextCycleSeq: pend.seq + 1,
      ...(pend.doneBytesAfter === undefined ? {} : { doneBytes: pend.doneBytesAfter }),
      ...(pend.uptoSegment === undefined ? {} : { shippedSeq: pend.uptoSegment, shippedChecksum: pend.uptoChecksum }),
      ...(syncAt === undefined ? {} : { lastSyncAt: syncAt }),
      ...(kind === 'appConsistent' ? { lastAppConsistentAt: syncAt } : {}),
    });
  }

  /** After a crash: was the pending cycle committed? (§2) */
  private async settlePending(): Promise<void> {
    const pend = this.progress.pending;
    if (pend === undefined) return;
    const state = await this.o.replica.state();
    if (state.appliedSeq >= pend.seq && state.generation === this.progress.generation) {
      await this.completePending(undefined, undefined);
      if (pend.uptoSegment !== undefined) await this.o.source.release(pend.uptoSegment);
    } else {
      await this.save({ pending: undefined });
    }
  }

  /** The replica must be where the progress says; otherwise it diverged (§6). */
  private async checkReplica(): Promise<void> {
    const p = this.progress;
    if (p.phase === 'notStarted') return;
    const state = await this.o.replica.state();
    const expectedSeq = p.nextCycleSeq - 1;
    const known = state.appliedSeq === expectedSeq && (expectedSeq === 0 || state.generation === p.generation);
    if (!known) {
      await this.markDiverged(`the replica is at cycle ${state.appliedSeq} of generation ${state.generation ?? '(none)'}, but cycle ${expectedSeq} of ${p.generation ?? '(none)'} was the last applied`);
    }
  }

  /** Take in the source's report of its open (§6, §7). */
  private async takeRecoveryReport(): Promise<void> {
    const rec = this.o.source.recovery;
    const p = this.progress;
    if (p.phase === 'notStarted' || p.phase === 'resync') return;
    if (this.o.source.generation !== p.generation) {
      // The tracker could not continue its log (lost or corrupt): it already
      // began a new generation, and only a full compare can bridge the gap.
      const why = rec.generationRestarted?.reason ?? `the source is at generation ${this.o.source.generation}, the replica at ${p.generation ?? '(none)'}`;
      await this.requireResync(why, false);
      return;
    }
    if (rec.suspectExtents.length > 0) {
      await this.save({ reconcile: { regions: alignRegions(rec.suspectExtents, this.blockSize, this.o.source.sizeBytes), afterSeq: rec.preStopSeq } });
    }
  }

  /** The replica no longer matches: the next step must be a resync. */
  private async markDiverged(reason: string): Promise<void> {
    await this.requireResync(`replica diverged: ${reason}`, true);
  }

  /**
   * Enter the resync phase at cursor 0 with a fresh generation (started here,
   * or already started by the tracker).
   */
  private async requireResync(reason: string, startGeneration: boolean): Promise<void> {
    const generation = startGeneration ? await this.o.source.startGeneration() : this.o.source.generation;
    const appliedSeq = (await this.o.replica.state()).appliedSeq;
    await this.save({
      phase: 'resync', reason, generation, regions: [{ offset: 0, length: this.o.source.sizeBytes }], doneBytes: 0,
      stats: emptyStats, shippedSeq: 0, shippedChecksum: undefined, reconcile: undefined, nextCycleSeq: Math.max(this.progress.nextCycleSeq, appliedSeq + 1),
    });
  }

  /** Compare pass over suspect extents, then forget them (§7). */
  private async reconcileSuspects(regions: readonly Region[]): Promise<void> {
    const saved = { phase: this.progress.phase, regions: this.progress.regions, doneBytes: this.progress.doneBytes, stats: this.progress.stats };
    await this.save({ regions, doneBytes: 0, stats: emptyStats });
    await this.runPass('compare');
    await this.o.source.acknowledgeSuspects();
    await this.save({ ...saved, reconcile: undefined });
  }

  /**
   * A pass over `progress.regions` from `progress.doneBytes` (§3, §4): copy
   * (skip zero chunks) or compare (send differing blocks), one cycle per batch.
   */
  private async runPass(kind: 'copy' | 'compare'): Promise<void> {
    const total = totalOf(this.progress.regions);
    while (this.progress.doneBytes < total) {
      this.checkAborted();
      // §5.1: the replica keeps undo data for the first cycle of an initial copy only; later ones are larger (fewer commits).
      const copying = kind === 'copy' && this.progress.phase === 'initialCopy';
      const step = !copying ? this.batchBytes : this.progress.nextCycleSeq > 1 ? this.copyBatchBytes : this.firstCopyBatchBytes;
      const batch = sliceRegions(this.progress.regions, this.progress.doneBytes, step);
      const batchBytes = totalOf(batch);
      let stats = this.progress.stats;
      await this.applyCycle({ doneBytesAfter: this.progress.doneBytes + batchBytes }, undefined, async (w) => {
        stats = kind === 'copy' ? await this.copyBatch(batch, w, stats) : await this.compareBatch(batch, w, stats);
        return stats.sentBytes;
      }, () => ({ stats }));
      this.emit({ type: 'pass', kind, doneBytes: this.progress.doneBytes, totalBytes: total, stats });
    }
  }

  /**
   * Copy pass: read a chunk, send its non-zero runs (4 KiB granularity, as
   * `cp --sparse` does), skip the rest: a new replica reads as zeros. The
   * next chunks are read while the current one is written (`COPY_READS_AHEAD`),
   * into buffers reused across chunks.
   */
  private async copyBatch(batch: readonly Region[], w: CycleWriter, stats: PassStats): Promise<PassStats> {
    let { scannedBytes, sentBytes, skippedBytes } = stats;
    const chunks: Array<readonly [number, number]> = [];
    for (const r of batch) {
      for (let at = r.offset; at < r.offset + r.length; at += this.chunkBytes) chunks.push([at, Math.min(this.chunkBytes, r.offset + r.length - at)]);
    }
    const reads: Array<Promise<Buffer>> = [];
    const readAhead = (upto: number): void => {
      while (reads.length < Math.min(chunks.length, upto)) {
        const [at, len] = chunks[reads.length]!;
        const buf = len === this.chunkBytes ? (this.copyBuffers.pop() ?? Buffer.allocUnsafeSlow(len)) : Buffer.allocUnsafeSlow(len);
        reads.push(observed(this.o.source.readInto(buf, at).then(() => buf)));
      }
    };
    try {
      for (const [i, [at, len]] of chunks.entries()) {
        this.checkAborted();
        readAhead(i + 1 + COPY_READS_AHEAD);
        const data = await reads[i]!;
        scannedBytes += len;
        for (const [from, to] of nonZeroRuns(data, SPARSE_GRAIN)) {
          await this.o.limiter?.take(to - from, this.o.signal);
          await w.write(at + from, data.subarray(from, to));
          sentBytes += to - from;
        }
        skippedBytes = scannedBytes - sentBytes;
        // The writer is done with it once its write settled (target.ts).
        if (data.length === this.chunkBytes && this.copyBuffers.length < COPY_READS_AHEAD + 1) this.copyBuffers.push(data);
      }
    } finally {
      await Promise.allSettled(reads);
    }
    return { ...stats, scannedBytes, sentBytes, skippedBytes };
  }

  /**
   * Block compare (§7.1): only digests come back from the replica; only
   * differing blocks go out. Two levels: digests of `blockSize` blocks over
   * the whole batch, then digests of `fineBlockSize` blocks only inside the
   * blocks that differed, so a scattered small change costs one fine block,
   * not one coarse block, while the digest traffic stays near that of the
   * coarse blocks. The replica's digests are asked for before the source is
   * read, so both sides hash at the same time (on the hasher's threads here,
   * on the replica's host there). The source bytes of a window are kept
   * until its comparison is done: what is sent is what was hashed.
   */
  private async compareBatch(batch: readonly Region[], w: CycleWriter, stats: PassStats): Promise<PassStats> {
    let { scannedBytes, sentBytes, skippedBytes, comparedBlocks, differingBlocks, digestBytes } = stats;
    const bs = this.blockSize;
    const fine = this.fineBlockSize;
    const size = this.o.source.sizeBytes;
    const chunk = Math.max(bs, Math.floor(this.chunkBytes / bs) * bs);
    const window = Math.max(chunk, Math.floor(COMPARE_WINDOW_BYTES / chunk) * chunk);
    const windows: Array<readonly [number, number]> = [];
    for (const r of batch) {
      const end = Math.min(size, r.offset + r.length);
      for (let at = r.offset; at < end; at += window) windows.push([at, Math.min(end, at + window)]);
    }
    // The replica's digests of the next windows are asked for ahead, so it hashes while the source does; only a
    // few ahead, so that the fine requests of a window do not queue behind the coarse hashing of the whole batch.
    const theirs: Array<Promise<BlockDigests>> = [];
    const askReplica = (upto: number): void => {
      while (theirs.length < Math.min(windows.length, upto)) {
        const [at, end] = windows[theirs.length]!;
        theirs.push(observed(this.o.replica.hashBlocks(bs, at / bs, Math.ceil((end - at) / bs))));
      }
    };
    askReplica(REPLICA_WINDOWS_AHEAD);
    // The source hashes window i + 1 while window i is compared and sent.
    let next = windows.length > 0 ? observed(this.hashSource(windows[0]![0], windows[0]![1], chunk, bs)) : undefined;
    for (const [i, [at, end]] of windows.entries()) {
      this.checkAborted();
      const mine = await next!;
      next = i + 1 < windows.length ? observed(this.hashSource(windows[i + 1]![0], windows[i + 1]![1], chunk, bs)) : undefined;
      const remote = await theirs[i]!;
      scannedBytes += end - at;
      skippedBytes += end - at;
      comparedBlocks += mine.digests.length;
      digestBytes += DIGEST_BYTES * remote.digests.length;
      const coarse = compareDigests({ blockSize: bs, firstBlock: at / bs, digests: mine.digests }, remote);
      differingBlocks += coarse.length;
      const runs = differingRegions(coarse, bs, size);
      let send: Region[];
      if (fine === bs || runs.length === 0) {
        askReplica(i + 1 + REPLICA_WINDOWS_AHEAD);
        send = runs;
      } else {
        // One replica request per run of differing blocks, all in flight together; the source's fine digests in one job.
        const fineTheirs = this.replicaDigestsOfRuns(fine, runs.map((run) => ({ firstBlock: run.offset / fine, count: Math.ceil(run.length / fine) })));
        // The next coarse request goes after these: they wait behind one window of hashing, not two.
        askReplica(i + 1 + REPLICA_WINDOWS_AHEAD);
        const joined = Buffer.concat(runs.map((run) => mine.slice(run.offset - at, run.length)));
        const ours = (await this.hasher.digest(joined, fine, true)).digests;
        send = [];
        let k = 0;
        for (const [j, run] of runs.entries()) {
          const count = Math.ceil(run.length / fine);
          const remoteFine = await fineTheirs[j]!;
          digestBytes += DIGEST_BYTES * remoteFine.digests.length;
          send.push(...differingRegions(compareDigests({ blockSize: fine, firstBlock: run.offset / fine, digests: ours.slice(k, k + count) }, remoteFine), fine, size));
          k += count;
        }
      }
      for (const region of send) {
        const piece = mine.slice(region.offset - at, region.length);
        skippedBytes -= piece.length;
        await this.o.limiter?.take(piece.length, this.o.signal);
        await w.write(region.offset, piece);
        sentBytes += piece.length;
      }
    }
    await next;
    return { ...stats, scannedBytes, sentBytes, skippedBytes, comparedBlocks, differingBlocks, digestBytes };
  }

  /** The replica's digests of several runs: in one call if the target offers it, else one call per run, all in flight. */
  private replicaDigestsOfRuns(blockSize: number, runs: readonly BlockRun[]): Array<Promise<BlockDigests>> {
    const replica = this.o.replica;
    if (replica.hashBlockRuns === undefined) return runs.map((r) => observed(replica.hashBlocks(blockSize, r.firstBlock, r.count)));
    const all = observed(replica.hashBlockRuns(blockSize, runs));
    return runs.map((_, i) => observed(all.then((d) => {
      const one = d[i];
      if (one === undefined) throw new BugError('resync.digestMismatch', `hashBlockRuns answered ${d.length} runs, asked for ${runs.length}`);
      return one;
    })));
  }

  /**
   * Read `[from, to)` of the source in `chunk`s and hash its `blockSize`
   * blocks on the hasher's threads, the next chunk read while earlier ones
   * are hashed. Keeps the bytes.
   */
  private async hashSource(from: number, to: number, chunk: number, blockSize: number): Promise<SourceWindow> {
    const jobs: Array<Promise<HashedBlocks>> = [];
    try {
      for (let at = from; at < to; at += chunk) {
        // A buffer of its own, handed to the hashing thread and back without a copy.
        const data = Buffer.allocUnsafeSlow(Math.min(chunk, to - at));
        await this.o.source.readInto(data, at);
        jobs.push(observed(this.hasher.digest(data, blockSize, true)));
      }
      const done = await Promise.all(jobs);
      return new SourceWindow(from, done.map((d) => d.data), done.flatMap((d) => d.digests));
    } finally {
      await Promise.allSettled(jobs);
    }
  }

  /** Drop points past retention, always keeping the latest. */
  private async prune(): Promise<number> {
    const retention = this.o.retentionMs ?? 24 * HOUR;
    const removed = await this.o.replica.prunePoints(this.clock.now() - retention);
    return removed.length;
  }

  private checkAborted(): void {
    const s = this.o.signal;
    if (s?.aborted === true) throw s.reason instanceof Error ? s.reason : new NonRecoverableError('replication.aborted', 'Replication was stopped');
  }

  private async save(change: Partial<Progress>): Promise<void> {
    const next = { ...this.progress, ...change } as Progress;
    await writeProgress(this.o.progressFile, next);
    const phaseChanged = next.phase !== this.progress.phase;
    this.progress = next;
    if (phaseChanged) this.emit({ type: 'phase', phase: next.phase, reason: next.reason });
  }

  private emit(e: ReplicationEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch {
      // An observer must not break replication.
    }
  }
}

/** True when an error means the item needs a resync rather than a retry. */
export function needsResync(e: unknown): boolean {
  return LifeboatError.isInstance(e) && e.category === 'resyncRequired';
}
