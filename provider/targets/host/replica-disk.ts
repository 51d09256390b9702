/**
 * One disk of the host replica store (docs/replica-format.md): the replica
 * file, its points manifest and undo files; cycles, points, views, rollback
 * and crash recovery.
 */
import { createHash } from 'node:crypto';
import { InvalidInputError, ReplicaStateError } from '../../errors';
import {
  type BlockDigests,
  type BlockRun,
  type CycleMeta,
  type CycleWriter,
  type DiskView,
  type MaterialisedDisk,
  type PointKind,
  type RecoveryPointInfo,
  type ReplicaDisk,
  type ReplicaDiskState,
} from '../../replication/target';
import { MiB } from '../../units';
import { type BlockHasher, type HashedBlocks, sharedBlockHasher } from '../../replication/block-hasher';
import { HostCycleWriter, type CycleHost } from './cycle-writer';
import { HostDiskView, type ViewHost } from './disk-view';
import { mergeEarliestWins } from './extent-map';
import { type FileHandleLike, type FileOps } from './file-ops';
import { classifyIoError, errnoOf } from './io-errors';
import { type ManifestPoint, type PointsManifest, readManifest, writeManifest } from './points-manifest';
import { openUndoFiles, rollBackCommitted, rollBackUncommitted } from './rollback';
import { AsyncMutex } from './async-mutex';
import { type DiskPaths, parseUndoFileName, pointIdOf } from './store-layout';
import { MAX_GENERATION_BYTES, UndoFileAppender } from './undo-log';

/** Bytes read (and handed to a hashing thread) at a time by `hashBlocks`. */
const HASH_SPAN = 4 * MiB;
/** Spans being hashed while the next is read: bounds memory to (this + 1) spans. */
const HASH_SPANS_IN_FLIGHT = 2;
/** Reads `hashBlockRuns` keeps in flight (the thread pool runs four at a time). */
const RUN_READS_IN_FLIGHT = 16;
const POINT_KINDS: readonly PointKind[] = ['crashConsistent', 'appConsistent'];

/** Everything a disk needs to open; made by the target. */
export interface HostReplicaDiskArgs {
  readonly ops: FileOps;
  readonly paths: DiskPaths;
  readonly diskId: string;
  readonly sizeBytes: number;
  /** Bytes of writes queued before a batch is applied (§7.2). */
  readonly undoBatchBytes: number;
  /** Called once when the disk is closed. */
  readonly onClose: (disk: HostReplicaDisk) => void;
  /** Threads that hash blocks for `hashBlocks`. @default sharedBlockHasher */
  readonly hasher?: BlockHasher;
  /** See `HostReplicaTargetOptions.earlySyncBytes`. @default 16 MiB */
  readonly earlySyncBytes?: number;
}

/** Space the store uses for a disk's points, for operators and measurements. */
export interface ReplicaStoreStats {
  readonly undoFiles: number;
  readonly undoBytes: number;
  readonly undoExtents: number;
}

function info(p: ManifestPoint): RecoveryPointInfo {
  return { id: p.id, seq: p.seq, generation: p.generation, time: p.time, kind: p.kind };
}

function pointNotFound(pointId: string, diskId: string): ReplicaStateError {
  return new ReplicaStateError('replica.pointNotFound', `Disk ${diskId} has no recovery point ${pointId}`, {
    details: { pointId, diskId },
    hint: 'List the points again: it may have been pruned by retention or discarded by a failover commit.',
  });
}

function badMeta(what: string, path: string): InvalidInputError {
  return new InvalidInputError('replica.invalidCycleMeta', `Invalid cycle metadata: ${what}`, {
    where: { path },
    hint: 'generation: non-empty string of at most 1024 UTF-8 bytes; seq: positive integer; time: ms since the epoch; point: crashConsistent, appConsistent or absent.',
  });
}

function validateMeta(meta: CycleMeta): void {
  if (typeof meta.generation !== 'string' || meta.generation.length === 0 || Buffer.byteLength(meta.generation, 'utf8') > MAX_GENERATION_BYTES) {
    throw badMeta('generation', '/generation');
  }
  if (!Number.isSafeInteger(meta.seq) || meta.seq <= 0) throw badMeta(`seq ${String(meta.seq)}`, '/seq');
  if (typeof meta.time !== 'number' || !Number.isFinite(meta.time)) throw badMeta(`time ${String(meta.time)}`, '/time');
  if (meta.point !== undefined && !POINT_KINDS.includes(meta.point)) throw badMeta(`point ${String(meta.point)}`, '/point');
  if (meta.skipUndoBeforeFirstPoint !== undefined && typeof meta.skipUndoBeforeFirstPoint !== 'boolean') {
    throw badMeta(`skipUndoBeforeFirstPoint ${String(meta.skipUndoBeforeFirstPoint)}`, '/skipUndoBeforeFirstPoint');
  }
}

/**
 * The `ReplicaDisk` of a host replica store. Operations are serialised per
 * disk (FIFO); one instance per disk folder and process (the target ensures
 * it). Every change is atomic at cycle granularity: a crash at any point
 * leaves the previous committed state, restored when the disk is next opened
 * (§8). I/O errors are classified (§10): `RecoverableError` for low disk and
 * transient I/O, `NonRecoverableError` for access denied.
 */
export class HostReplicaDisk implements ReplicaDisk {
  readonly diskId: string;
  readonly sizeBytes: number;
  private readonly ops: FileOps;
  private readonly paths: DiskPaths;
  private readonly batchBytes: number;
  private readonly onClose: (disk: HostReplicaDisk) => void;
  private readonly hasher: BlockHasher;
  private readonly earlySyncBytes: number;
  private readonly mutex = new AsyncMutex();
  private readonly views = new Set<HostDiskView>();
  private manifest: PointsManifest;
  private openCycle: HostCycleWriter | undefined;
  private needsRecovery = false;
  private closed = false;

  private readonly host: CycleHost & ViewHost;

  private constructor(
    args: HostReplicaDiskArgs,
    manifest: PointsManifest,
    private readonly replica: FileHandleLike,
  ) {
    this.diskId = args.diskId;
    this.sizeBytes = args.sizeBytes;
    this.ops = args.ops;
    this.paths = args.paths;
    this.batchBytes = args.undoBatchBytes;
    this.onClose = args.onClose;
    this.hasher = args.hasher ?? sharedBlockHasher;
    this.earlySyncBytes = args.earlySyncBytes ?? 16 * MiB;
    this.manifest = manifest;
    this.host = {
      sizeBytes: args.sizeBytes,
      locked: (fn) => this.locked(fn),
      commitCycle: (c) => this.commitCycle(c),
      abortCycle: (c) => this.abortCycle(c),
      readHead: (buf, offset) => this.readHead(buf, offset),
      release: (v) => {
        this.views.delete(v);
      },
    };
  }

  /**
   * Open an existing disk folder and recover it (§8). Throws
   * `ReplicaStateError` (`replica.sizeMismatch`, `replica.corrupt`,
   * `replica.formatVersion`) or a classified I/O error; then nothing stays
   * open, and recovery resumes on the next attempt.
   */
  static async open(args: HostReplicaDiskArgs): Promise<HostReplicaDisk> {
    const manifest = await readManifest(args.ops, args.paths);
    if (manifest.diskId !== args.diskId) {
      throw new ReplicaStateError('replica.corrupt', `Folder ${args.paths.dir} holds disk ${manifest.diskId}, not ${args.diskId}`, {
        details: { diskId: args.diskId, found: manifest.diskId },
        hint: 'Do not rename disk folders of the replica store by hand.',
      });
    }
    if (manifest.sizeBytes !== args.sizeBytes) {
      throw new ReplicaStateError('replica.sizeMismatch', `The replica of disk ${args.diskId} has ${manifest.sizeBytes} bytes, not ${args.sizeBytes}`, {
        details: { diskId: args.diskId, replicaBytes: manifest.sizeBytes, requestedBytes: args.sizeBytes },
        hint: 'A resized disk needs protection disabled and re-enabled (a new replica).',
      });
    }
    let replica: FileHandleLike;
    try {
      replica = await args.ops.open(args.paths.replica, 'readWrite');
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') {
        throw new ReplicaStateError('replica.corrupt', `The replica file ${args.paths.replica} is missing`, {
          cause: e,
          hint: 'Delete the disk (disable and re-enable protection) to replicate it again.',
        });
      }
      throw classifyIoError(e, `open ${args.paths.replica}`);
    }
    const disk = new HostReplicaDisk(args, manifest, replica);
    try {
      const size = await replica.size();
      if (size !== manifest.sizeBytes) {
        throw new ReplicaStateError('replica.corrupt', `The replica file has ${size} bytes, the manifest says ${manifest.sizeBytes}`, {
          details: { file: args.paths.replica, size, sizeBytes: manifest.sizeBytes },
          hint: 'Delete the disk (disable and re-enable protection) to replicate it again.',
        });
      }
      await disk.recoverFiles();
    } catch (e) {
      await replica.close().catch(() => undefined);
      throw classifyIoError(e, `recover ${args.paths.dir}`);
    }
    return disk;
  }

  /** Path of the replica file (the latest point, §9). */
  get replicaPath(): string {
    return this.paths.replica;
  }

  /** Space used by retained undo files (from the manifest). */
  storeStats(): ReplicaStoreStats {
    const u = this.manifest.undo;
    return {
      undoFiles: u.length,
      undoBytes: u.reduce((s, x) => s + x.bytes, 0),
      undoExtents: u.reduce((s, x) => s + x.extents, 0),
    };
  }

  state(): Promise<ReplicaDiskState> {
    return this.locked(async () => {
      const m = this.manifest;
      return { diskId: this.diskId, sizeBytes: this.sizeBytes, generation: m.generation, appliedSeq: m.appliedSeq, points: m.points.map(info) };
    });
  }

  /**
   * Begin a cycle (§7.2). Throws `InvalidInputError` for malformed metadata,
   * `ReplicaStateError` `cycle.alreadyApplied` when `seq` is not above
   * `appliedSeq` of the same generation, `replica.cycleOpen` when another
   * cycle is open (also a failed one not yet aborted). Does no I/O: the undo
   * file is created by the first applied batch.
   */
  beginCycle(meta: CycleMeta): Promise<CycleWriter> {
    try {
      validateMeta(meta);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.locked(async () => {
      if (this.openCycle !== undefined) {
        throw new ReplicaStateError('replica.cycleOpen', `Disk ${this.diskId} already has an open cycle (seq ${this.openCycle.meta.seq})`, {
          details: { diskId: this.diskId, openSeq: this.openCycle.meta.seq, seq: meta.seq },
          hint: 'Commit or abort the open cycle first.',
        });
      }
      const m = this.manifest;
      if (m.generation === meta.generation && meta.seq <= m.appliedSeq) {
        throw new ReplicaStateError('cycle.alreadyApplied', `Cycle seq ${meta.seq} of generation ${meta.generation} is not above the applied seq ${m.appliedSeq}`, {
          details: { diskId: this.diskId, seq: meta.seq, appliedSeq: m.appliedSeq, generation: meta.generation },
          hint: 'Resume shipping after appliedSeq (state()).',
        });
      }
      const cycle = m.nextCycle;
      const appender = new UndoFileAppender(this.ops, this.paths.undo(cycle), this.paths.undoDir, {
        cycle,
        diskSize: this.sizeBytes,
        seq: meta.seq,
        time: meta.time,
        point: meta.point,
        generation: meta.generation,
      });
      // §7.2a: no undo while there is no point to roll back to and the replica no longer reads as all zeros.
      const keepsUndo = !(meta.skipUndoBeforeFirstPoint === true && m.points.length === 0 && m.appliedSeq > 0);
      const w = new HostCycleWriter(this.host, { ...meta }, cycle, appender, this.replica, this.batchBytes, keepsUndo, this.earlySyncBytes);
      this.openCycle = w;
      return w;
    });
  }

  listPoints(): Promise<readonly RecoveryPointInfo[]> {
    return this.locked(async () => this.manifest.points.map(info));
  }

  /**
   * Remove points with `time < olderThan`, always keeping the latest, and the
   * undo files no retained point needs (§7.5). Idempotent. A failure before
   * the manifest commit changes nothing; undo files left behind by a failure
   * after it are deleted on the next open.
   */
  prunePoints(olderThan: number): Promise<readonly RecoveryPointInfo[]> {
    if (typeof olderThan !== 'number' || Number.isNaN(olderThan)) {
      return Promise.reject(new InvalidInputError('replica.invalidPruneTime', `olderThan must be a time in ms, not ${String(olderThan)}`, { where: { path: '/olderThan' } }));
    }
    return this.locked(async () => {
      const m = this.manifest;
      const last = m.points.length - 1;
      const removed = m.points.filter((p, i) => i < last && p.time < olderThan);
      if (removed.length === 0) return [];
      const points = m.points.filter((p) => !removed.includes(p));
      const oldest = points[0]!.cycle;
      const dropped = m.undo.filter((u) => u.cycle <= oldest);
      const next: PointsManifest = { ...m, points, undo: m.undo.filter((u) => u.cycle > oldest) };
      await writeManifest(this.ops, this.paths, next, () => {
        this.manifest = next;
      });
      // Failing to delete leaves unlisted files that the next open removes (§8 step 4).
      try {
        for (const u of dropped) await this.ops.unlink(this.paths.undo(u.cycle));
        if (dropped.length > 0) await this.ops.syncDir(this.paths.undoDir);
      } catch {
        // See above.
      }
      return removed.map(info);
    });
  }

  /**
   * SHA-256 of blocks of the head (latest committed cycle; an open cycle's
   * applied writes are hidden). Throws `InvalidInputError`
   * (`replica.invalidBlockRange`) for blocks outside the disk. The whole call
   * runs under the disk's lock: callers hash in bounded ranges.
   */
  hashBlocks(blockSize: number, firstBlock: number, count: number): Promise<BlockDigests> {
    const bad = this.checkBlockRange(blockSize, firstBlock, count);
    if (bad !== undefined) return Promise.reject(bad);
    return this.locked(async () => {
      try {
        return { blockSize, firstBlock, digests: await this.hashHead(blockSize, firstBlock, count) };
      } catch (e) {
        throw classifyIoError(e, `hash blocks of ${this.paths.replica}`);
      }
    });
  }

  /**
   * `hashBlocks` of several runs under one lock (target.ts): the runs' bytes
   * are read concurrently, then hashed together on the hasher's threads.
   * Throws `InvalidInputError` (`replica.invalidBlockRange`) if any run is
   * outside the disk, before reading anything.
   */
  hashBlockRuns(blockSize: number, runs: readonly BlockRun[]): Promise<readonly BlockDigests[]> {
    for (const r of Array.isArray(runs) ? runs : [undefined]) {
      const bad = this.checkBlockRange(blockSize, r?.firstBlock ?? Number.NaN, r?.count ?? Number.NaN);
      if (bad !== undefined) return Promise.reject(bad);
    }
    return this.locked(async () => {
      try {
        if (blockSize > HASH_SPAN || runs.some((r) => r.count * blockSize > HASH_SPAN)) {
          const out: BlockDigests[] = [];
          for (const r of runs) out.push({ blockSize, firstBlock: r.firstBlock, digests: await this.hashHead(blockSize, r.firstBlock, r.count) });
          return out;
        }
        const spans = runs.map((r) => {
          const start = r.firstBlock * blockSize;
          return { start, length: Math.min(start + r.count * blockSize, this.sizeBytes) - start };
        });
        // One buffer for all runs; each run starts on a block boundary in it, so the digests split by count.
        const stride = spans.map((x) => Math.ceil(x.length / blockSize) * blockSize);
        const joined = Buffer.allocUnsafeSlow(stride.reduce((a, b) => a + b, 0));
        let at = 0;
        const reads: Array<Promise<void>> = [];
        for (const [i, x] of spans.entries()) {
          const part = joined.subarray(at, at + stride[i]!);
          part.fill(0, x.length);
          reads.push(this.readHead(part.subarray(0, x.length), x.start));
          at += stride[i]!;
          if (reads.length >= RUN_READS_IN_FLIGHT) await Promise.all(reads.splice(0));
        }
        await Promise.all(reads);
        // Zero padding after a short last block would change its digest: hash such a run on its own.
        const short = spans.findIndex((x, i) => x.length !== stride[i]);
        const digests = (await this.hasher.digest(joined, blockSize, true)).digests;
        const out: BlockDigests[] = [];
        let k = 0;
        for (const [i, r] of runs.entries()) {
          const n = stride[i]! / blockSize;
          out.push({ blockSize, firstBlock: r.firstBlock, digests: i === short ? await this.hashHead(blockSize, r.firstBlock, r.count) : digests.slice(k, k + n) });
          k += n;
        }
        return out;
      } catch (e) {
        throw classifyIoError(e, `hash blocks of ${this.paths.replica}`);
      }
    });
  }

  /** `replica.invalidBlockRange` unless the blocks are within the disk. */
  private checkBlockRange(blockSize: number, firstBlock: number, count: number): InvalidInputError | undefined {
    const total = Number.isSafeInteger(blockSize) && blockSize > 0 ? Math.ceil(this.sizeBytes / blockSize) : 0;
    if (total === 0 || !Number.isSafeInteger(firstBlock) || !Number.isSafeInteger(count) || firstBlock < 0 || count < 0 || firstBlock + count > total) {
      return new InvalidInputError('replica.invalidBlockRange', `Blocks [${firstBlock}, ${firstBlock + count}) of ${blockSize} bytes are outside the disk (${this.sizeBytes} bytes)`, {
        details: { blockSize, firstBlock, count, sizeBytes: this.sizeBytes },
        hint: `blockSize must be a positive integer; blocks run from 0 to ${total}.`,
      });
    }
    return undefined;
  }

  /**
   * Read the blocks in spans of at least `HASH_SPAN` (one read per span, not
   * per block) and hash them on the hasher's threads, reading the next span
   * while the previous ones are hashed. Under the lock.
   */
  private async hashHead(blockSize: number, firstBlock: number, count: number): Promise<Buffer[]> {
    const start = firstBlock * blockSize;
    const end = Math.min(start + count * blockSize, this.sizeBytes);
    if (blockSize > HASH_SPAN) {
      // Blocks larger than a span: hashed incrementally, a span at a time.
      const digests: Buffer[] = [];
      const piece = Buffer.allocUnsafeSlow(HASH_SPAN);
      for (let b = start; b < end; b += blockSize) {
        const hash = createHash('sha256');
        const blockEnd = Math.min(b + blockSize, end);
        for (let at = b; at < blockEnd; at += HASH_SPAN) {
          const part = piece.subarray(0, Math.min(HASH_SPAN, blockEnd - at));
          await this.readHead(part, at);
          hash.update(part);
        }
        digests.push(hash.digest());
      }
      return digests;
    }
    const span = Math.floor(HASH_SPAN / blockSize) * blockSize;
    const free: Buffer[] = [];
    const inFlight: Array<Promise<HashedBlocks>> = [];
    const digests: Buffer[] = [];
    const collect = async (): Promise<void> => {
      const r = await inFlight.shift()!;
      digests.push(...r.digests);
      if (r.data.length === span) free.push(r.data);
    };
    try {
      for (let at = start; at < end; at += span) {
        const len = Math.min(span, end - at);
        const buf = len === span ? (free.pop() ?? Buffer.allocUnsafeSlow(span)) : Buffer.allocUnsafeSlow(len);
        await this.readHead(buf, at);
        inFlight.push(this.hasher.digest(buf, blockSize, true));
        if (inFlight.length >= HASH_SPANS_IN_FLIGHT) await collect();
      }
      while (inFlight.length > 0) await collect();
    } finally {
      // Settle what is still in flight after a failed read, so no rejection goes unobserved.
      await Promise.allSettled(inFlight);
    }
    return digests;
  }

  /**
   * A view at a point (§9), built from the undo indexes of the cycles after
   * it: O(extents changed since the point). Throws `ReplicaStateError`
   * (`replica.pointNotFound`, `replica.undoMissing`, `replica.corrupt`) or a
   * classified I/O error; nothing stays open then.
   */
  openView(pointId: string): Promise<DiskView> {
    return this.openHostView(pointId);
  }

  /** `openView` with the host view's type (its `stats`). */
  openHostView(pointId: string): Promise<HostDiskView> {
    return this.locked(async () => {
      const p = this.manifest.points.find((x) => x.id === pointId);
      if (p === undefined) throw pointNotFound(pointId, this.diskId);
      const files = this.manifest.undo.filter((u) => u.cycle > p.cycle).map((u) => ({ cycle: u.cycle, file: this.paths.undo(u.cycle) }));
      let opened;
      try {
        opened = await openUndoFiles(this.ops, files, this.sizeBytes);
      } catch (e) {
        throw classifyIoError(e, `open view of ${pointId}`);
      }
      const view = new HostDiskView(this.host, this.sizeBytes, info(p), p.cycle, opened.handles, mergeEarliestWins(opened.layers), opened.extentsConsulted);
      this.views.add(view);
      return view;
    });
  }

  /**
   * Make a point usable as a VM disk (§7.6). The head point: the replica
   * itself, nothing written (`zeroCopy`). An older point: the replica is
   * rolled back in place (O(extents changed since the point)), later points
   * are discarded and every open view is invalidated. Throws
   * `replica.pointNotFound`, `replica.cycleOpen`; after a failure past the
   * manifest commit the rollback completes on the next operation or open.
   */
  materialise(pointId: string): Promise<MaterialisedDisk> {
    return this.locked(async () => {
      const m = this.manifest;
      const q = m.points.find((x) => x.id === pointId);
      if (q === undefined) throw pointNotFound(pointId, this.diskId);
      if (this.openCycle !== undefined) {
        throw new ReplicaStateError('replica.cycleOpen', `Disk ${this.diskId} has an open cycle (seq ${this.openCycle.meta.seq}); cannot roll back`, {
          details: { diskId: this.diskId, openSeq: this.openCycle.meta.seq },
          hint: 'Stop replication of this disk (commit or abort its cycle) before failing over.',
        });
      }
      if (q.cycle === m.headCycle) return { location: this.paths.replica, zeroCopy: true };
      for (const v of this.views) await v.invalidate(`the disk was rolled back to point ${pointId}`);
      this.views.clear();
      const next: PointsManifest = {
        ...m,
        generation: q.generation,
        appliedSeq: q.seq,
        headCycle: q.cycle,
        points: m.points.filter((p) => p.cycle <= q.cycle),
        undo: m.undo.filter((u) => u.cycle <= q.cycle),
        rollback: { toCycle: q.cycle, cycles: m.undo.filter((u) => u.cycle > q.cycle).map((u) => u.cycle) },
      };
      let committed = false;
      try {
        await writeManifest(this.ops, this.paths, next, () => {
          committed = true;
          this.manifest = next;
        });
        await this.finishRollback();
      } catch (e) {
        if (committed) this.needsRecovery = true;
        throw classifyIoError(e, `roll back ${this.paths.replica} to ${pointId}`);
      }
      return { location: this.paths.replica, zeroCopy: false };
    });
  }

  /**
   * Close handles and invalidate views. An open cycle is abandoned: it is
   * rolled back when the disk is next opened (§8). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      if (this.closed) return;
      this.closed = true;
      const c = this.openCycle;
      this.openCycle = undefined;
      if (c !== undefined) {
        c.dropQueued();
        await c.settleEarlySync().catch(() => undefined);
        c.status = 'closed';
        await c.appender.close().catch(() => undefined);
      }
      for (const v of this.views) await v.invalidate('the disk was closed');
      this.views.clear();
      await this.replica.close().catch(() => undefined);
      this.onClose(this);
    });
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      if (this.closed) {
        throw new ReplicaStateError('replica.diskClosed', `Disk ${this.diskId} is closed`, {
          details: { diskId: this.diskId },
          hint: 'Open the disk again from its target.',
        });
      }
      if (this.needsRecovery) await this.recoverNow();
      return fn();
    });
  }

  /** Roll back everything uncommitted now (abort, and after a failed abort or rollback). */
  private async recoverNow(): Promise<void> {
    this.needsRecovery = true;
    const c = this.openCycle;
    if (c !== undefined) {
      c.dropQueued();
      await c.settleEarlySync().catch(() => undefined);
      await c.appender.close().catch(() => undefined);
    }
    try {
      await this.recoverFiles();
    } catch (e) {
      throw classifyIoError(e, `recover ${this.paths.dir}`);
    }
    if (c !== undefined) {
      c.status = 'aborted';
      this.openCycle = undefined;
    }
    this.needsRecovery = false;
  }

  /** §8 steps 1–5. Idempotent. */
  private async recoverFiles(): Promise<void> {
    await this.ops.unlink(this.paths.manifestTmp);
    if (this.manifest.rollback !== undefined) await this.finishRollback();
    const m = this.manifest;
    const listed = new Set(m.undo.map((u) => u.cycle));
    const cycles = (await this.ops.readdir(this.paths.undoDir)).map(parseUndoFileName).filter((c): c is number => c !== undefined);
    const beyond = cycles.filter((c) => c > m.nextCycle);
    if (beyond.length > 0) {
      throw new ReplicaStateError('replica.corrupt', `Undo files of cycles ${beyond.join(', ')} are beyond the next cycle ${m.nextCycle}`, {
        details: { dir: this.paths.undoDir, cycles: beyond, nextCycle: m.nextCycle },
        hint: 'The manifest is older than the undo files (restored from a backup?). Resynchronise the disk.',
      });
    }
    if (cycles.includes(m.nextCycle)) {
      await rollBackUncommitted(this.ops, this.replica, this.paths.undo(m.nextCycle), this.paths.undoDir, { cycle: m.nextCycle, diskSize: this.sizeBytes });
    }
    const leftovers = cycles.filter((c) => c < m.nextCycle && !listed.has(c));
    for (const c of leftovers) await this.ops.unlink(this.paths.undo(c));
    if (leftovers.length > 0) await this.ops.syncDir(this.paths.undoDir);
  }

  /** §7.6 steps 2–4 for the rollback the manifest records. */
  private async finishRollback(): Promise<void> {
    const r = this.manifest.rollback;
    if (r === undefined) return;
    await rollBackCommitted(this.ops, this.replica, r.cycles.map((c) => ({ cycle: c, file: this.paths.undo(c) })), this.sizeBytes);
    const next: PointsManifest = { ...this.manifest, rollback: undefined };
    await writeManifest(this.ops, this.paths, next, () => {
      this.manifest = next;
    });
    for (const c of r.cycles) await this.ops.unlink(this.paths.undo(c));
    if (r.cycles.length > 0) await this.ops.syncDir(this.paths.undoDir);
  }

  /** The head's bytes (§9): the replica, overlaid with an open cycle's saved bytes. */
  private async readHead(buf: Buffer, offset: number): Promise<void> {
    const n = await this.replica.read(buf, 0, buf.length, offset);
    if (n < buf.length) buf.fill(0, n);
    const c = this.openCycle;
    if (c !== undefined) await c.overlayHead(buf, offset);
  }

  /** §7.3, under the lock. */
  private async commitCycle(c: HostCycleWriter): Promise<RecoveryPointInfo | undefined> {
    c.assertOpen();
    await c.flush();
    const wrote = c.appender.created;
    if (wrote || c.wroteWithoutUndo) {
      const [sealed, synced] = await Promise.allSettled([
        wrote ? c.appender.seal(c.coverage.extents) : undefined,
        c.settleEarlySync().then(() => this.replica.sync()),
      ]);
      const failure = sealed.status === 'rejected' ? sealed.reason : synced.status === 'rejected' ? synced.reason : undefined;
      if (failure !== undefined) {
        c.status = 'failed';
        throw classifyIoError(failure, `commit cycle seq ${c.meta.seq}`);
      }
    }
    const m = this.manifest;
    const meta = c.meta;
    const point: ManifestPoint | undefined =
      meta.point === undefined ? undefined : { id: pointIdOf(c.cycle), cycle: c.cycle, seq: meta.seq, generation: meta.generation, time: meta.time, kind: meta.point };
    // I5: undo of this cycle is needed only by points taken before it.
    const keepUndo = wrote && m.points.length > 0;
    const next: PointsManifest = {
      ...m,
      generation: meta.generation,
      appliedSeq: meta.seq,
      headCycle: c.cycle,
      nextCycle: c.cycle + 1,
      points: point === undefined ? m.points : [...m.points, point],
      undo: keepUndo ? [...m.undo, { cycle: c.cycle, extents: c.coverage.extents.length, bytes: c.appender.bytes }] : m.undo,
    };
    const result = point === undefined ? undefined : info(point);
    let committed = false;
    let failure: unknown;
    try {
      await writeManifest(this.ops, this.paths, next, () => {
        committed = true;
        this.manifest = next;
        c.status = 'committed';
        c.result = result;
        this.openCycle = undefined;
      });
    } catch (e) {
      if (!committed) {
        c.status = 'failed';
        throw e;
      }
      failure = e;
    }
    await this.afterCommit(c, wrote || c.wroteWithoutUndo, keepUndo);
    if (failure !== undefined) throw failure;
    return result;
  }

  /** §7.3 step 4, and §9: views take in the committed cycle. */
  private async afterCommit(c: HostCycleWriter, wrote: boolean, keepUndo: boolean): Promise<void> {
    if (keepUndo) {
      for (const v of this.views) {
        try {
          v.incorporate(await this.ops.open(c.appender.file, 'read'), c.coverage.extents);
        } catch {
          this.views.delete(v);
          await v.invalidate(`cycle seq ${c.meta.seq} could not be added to the view`);
        }
      }
    } else if (wrote) {
      for (const v of this.views) await v.invalidate(`cycle seq ${c.meta.seq} kept no undo data`);
      this.views.clear();
    }
    await c.appender.close().catch(() => undefined);
    // A failure leaves an unlisted undo file that the next open deletes (§8 step 4).
    if (wrote && !keepUndo) await this.ops.unlink(c.appender.file).catch(() => undefined);
  }

  /** §7.4, under the lock. */
  private async abortCycle(c: HostCycleWriter): Promise<void> {
    if (c.status === 'aborted') return;
    if (c.status === 'committed') {
      throw new ReplicaStateError('cycle.alreadyApplied', `Cycle seq ${c.meta.seq} is committed; it cannot be aborted`, {
        details: { diskId: this.diskId, seq: c.meta.seq, generation: c.meta.generation },
        hint: 'Resume shipping after appliedSeq (state()).',
      });
    }
    if (c !== this.openCycle) c.assertOpen();
    await this.recoverNow();
  }
}
