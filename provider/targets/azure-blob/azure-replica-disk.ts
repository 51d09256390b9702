/**
 * One disk of the Azure target (docs/azure-target.md): the base page blob (a
 * fixed VHD), its snapshots (the head and the recovery points), the checksum
 * index; cycles, points, views, rollback and recovery after a crash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type AppendBlobClient, type ContainerClient, type PageBlobClient } from '@azure/storage-blob';
import { InvalidInputError, ReplicaStateError } from '../../errors';
import {
  type BlockDigests,
  type BlockRun,
  type CycleMeta,
  type CycleWriter,
  type DiskView,
  type MaterialisedDisk,
  type RecoveryPointInfo,
  type ReplicaDisk,
  type ReplicaDiskState,
} from '../../replication/target';
import { MiB } from '../../units';
import { AsyncMutex } from './async-mutex';
import { AzureCycleWriter, type CycleHost, type QueuedBlock } from './azure-cycle-writer';
import { AzureDiskView } from './azure-disk-view';
import { azureCall, isNotFound, statusOf } from './azure-errors';
import { diskBlobNames, metaEncode, pointIdOf } from './blob-names';
import { bounded } from './bounded';
import { exportSnapshot } from './export-point';
import { baseProperties, checkBaseMetadata, FORMAT, infoOf, isPoint, isPointKind, listSnapshots, pointNotFound, type Snap } from './point-snapshots';
import { ChecksumIndex, entryOf, INDEX_BLOCK_SIZE, isZero, zeroDigest } from './checksum-index';
import { decodeVhdFooter, encodeVhdFooter, VHD_FOOTER_BYTES, vhdVirtualSize } from './vhd-footer';

/** Largest Put Page request (Azure's limit). */
export const MAX_PAGE_WRITE = 4 * MiB;
const PAGE = 512;

/** Tuning shared by the disks of a target. */
export interface AzureDiskTuning {
  readonly writeConcurrency: number;
  readonly readConcurrency: number;
  readonly batchBytes: number;
  readonly verifySampleFraction: number;
  readonly random: () => number;
}

/** Counters of one disk since it was opened, for jobs and measurements. */
export interface AzureReplicaStats {
  /** Index rebuilds (missing, stale, or a sample mismatch). A resync job reports these. */
  readonly indexRebuilds: number;
  /** Sampled blocks whose bytes did not match the index. */
  readonly indexMismatches: number;
  /** Block digests answered from the index. */
  readonly indexDigests: number;
  /** Blocks read to verify the index. */
  readonly sampledBlocks: number;
  /** Restores of the base blob from the head (abort, crash recovery, rollback). */
  readonly restores: number;
  /** Put Page requests and their bytes; Clear Pages requests. */
  readonly pageWrites: number;
  readonly pageBytes: number;
  readonly clearRequests: number;
  /** Bytes read from the base blob for read-modify-write. */
  readonly rmwBytes: number;
}

function badMeta(what: string, path: string): InvalidInputError {
  return new InvalidInputError('replica.invalidCycleMeta', `Invalid cycle metadata: ${what}`, {
    where: { path },
    hint: 'generation: non-empty string of at most 1024 characters; seq: positive integer; time: ms since the epoch; point: crashConsistent, appConsistent or absent.',
  });
}

function validateMeta(meta: CycleMeta): void {
  if (typeof meta.generation !== 'string' || meta.generation.length === 0 || meta.generation.length > 1024) throw badMeta('generation', '/generation');
  if (!Number.isSafeInteger(meta.seq) || meta.seq <= 0) throw badMeta(`seq ${String(meta.seq)}`, '/seq');
  if (typeof meta.time !== 'number' || !Number.isFinite(meta.time)) throw badMeta(`time ${String(meta.time)}`, '/time');
  if (meta.point !== undefined && !isPointKind(meta.point)) throw badMeta(`point ${String(meta.point)}`, '/point');
}

/** Merge `[from, to)` ranges. */
function merge(ranges: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** What `AzureReplicaDisk.open` needs; made by the target. */
export interface AzureReplicaDiskArgs {
  readonly container: ContainerClient;
  readonly diskId: string;
  readonly sizeBytes: number;
  readonly tuning: AzureDiskTuning;
  readonly now: () => number;
  readonly onClose: (d: AzureReplicaDisk) => void;
}

/**
 * The `ReplicaDisk` of the Azure target. Operations are serialised per disk
 * (FIFO); one writer process per disk (§11). Every change is atomic at cycle
 * granularity: the snapshot is the commit (§5 A1); a crash, a lost connection
 * or `abort()` mid-cycle leaves the base blob marked, and it is restored from
 * the head snapshot before anything else touches it (here, or at the next
 * open). Azure failures are classified (§10).
 */
export class AzureReplicaDisk implements ReplicaDisk {
  readonly diskId: string;
  readonly sizeBytes: number;
  private readonly base: PageBlobClient;
  private readonly journal: AppendBlobClient;
  private readonly index: ChecksumIndex;
  private readonly tuning: AzureDiskTuning;
  private readonly mutex = new AsyncMutex();
  private readonly views = new Set<AzureDiskView>();
  private readonly host: CycleHost;
  private readonly counters = { indexRebuilds: 0, indexMismatches: 0, indexDigests: 0, sampledBlocks: 0, restores: 0, pageWrites: 0, pageBytes: 0, clearRequests: 0, rmwBytes: 0 };
  /** Snapshots, ascending cycle; the last is the head. */
  private snaps: Snap[] = [];
  private nextCycle = 1;
  /** The base blob may differ from the head: restore before anything else. */
  private needsRestore = false;
  private openCycle: AzureCycleWriter | undefined;
  private closed = false;

  private constructor(private readonly args: AzureReplicaDiskArgs, private readonly instance: string, private readonly container: ContainerClient) {
    this.diskId = args.diskId;
    this.sizeBytes = args.sizeBytes;
    const names = diskBlobNames(args.diskId);
    this.base = container.getPageBlobClient(names.base);
    this.journal = container.getAppendBlobClient(names.journal);
    this.index = new ChecksumIndex(container.getPageBlobClient(names.index), instance, args.sizeBytes);
    this.tuning = args.tuning;
    this.host = {
      sizeBytes: args.sizeBytes,
      locked: (fn) => this.locked(fn),
      flush: (c, blocks) => this.flush(c, blocks),
      commitCycle: (c) => this.commitCycle(c),
      abortCycle: (c) => this.abortCycle(c),
    };
  }

  /** Length of the base blob: the VHD's virtual size plus the footer (§3). */
  private get blobBytes(): number {
    return vhdVirtualSize(this.sizeBytes) + VHD_FOOTER_BYTES;
  }

  private get head(): Snap | undefined {
    return this.snaps[this.snaps.length - 1];
  }

  /**
   * Open, creating if needed (§4), and recover (§5) the replica of a disk.
   * Throws `ReplicaStateError` (`replica.sizeMismatch`, `replica.corrupt`,
   * `replica.formatVersion`) or a classified Azure error; a failed open
   * leaves nothing that the next open does not finish.
   */
  static async open(args: AzureReplicaDiskArgs): Promise<AzureReplicaDisk> {
    const names = diskBlobNames(args.diskId);
    const base = args.container.getPageBlobClient(names.base);
    let props = await baseProperties(base, args.diskId);
    let created = false;
    if (props === undefined) {
      const instance = randomBytes(16).toString('hex');
      const size = vhdVirtualSize(args.sizeBytes) + VHD_FOOTER_BYTES;
      const metadata = { lbformat: FORMAT, lbdiskid: metaEncode(args.diskId), lbsize: String(args.sizeBytes), lbinstance: instance, lbnextcycle: '1' };
      try {
        await base.create(size, { metadata, conditions: { ifNoneMatch: '*' } });
        created = true;
      } catch (e) {
        if (statusOf(e) !== 409) return azureCall(`create the replica of disk ${args.diskId}`, () => Promise.reject(e));
      }
      props = await baseProperties(base, args.diskId);
      if (props === undefined) throw new ReplicaStateError('replica.corrupt', `The replica of disk ${args.diskId} vanished while it was created`, { hint: 'Another process deletes it; retry.' });
    }
    const m = props.metadata ?? {};
    const instance = checkBaseMetadata(m, names.base, args.diskId, args.sizeBytes);
    const disk = new AzureReplicaDisk(args, instance, args.container);
    await disk.recover(m, created);
    return disk;
  }

  /** §4 footer, §5 recovery steps 1–3. Idempotent. */
  private async recover(m: Record<string, string>, created: boolean): Promise<void> {
    const what = `recover the replica of disk ${this.diskId}`;
    await this.loadSnapshots();
    const head = this.head;
    this.nextCycle = Math.max(Number(m.lbnextcycle ?? '1') || 1, (head?.cycle ?? 0) + 1);
    // Footer: written right after creation; a blob without one never committed a cycle.
    const tail = created ? undefined : await azureCall(what, () => this.base.downloadToBuffer(this.blobBytes - VHD_FOOTER_BYTES, VHD_FOOTER_BYTES));
    let footerOk = false;
    if (tail !== undefined) {
      try {
        const f = decodeVhdFooter(tail);
        footerOk = f.sizeBytes === vhdVirtualSize(this.sizeBytes);
      } catch {
        footerOk = false;
      }
    }
    if (!footerOk) {
      if (this.snaps.length > 0) {
        throw new ReplicaStateError('replica.corrupt', `The replica of disk ${this.diskId} has no valid VHD footer`, { hint: 'Delete the disk (disable and re-enable protection) to replicate it again.' });
      }
      const footer = encodeVhdFooter(vhdVirtualSize(this.sizeBytes), this.args.now(), Buffer.from(this.instance, 'hex'));
      await azureCall(what, () => this.base.uploadPages(footer, this.blobBytes - VHD_FOOTER_BYTES, VHD_FOOTER_BYTES));
    }
    // A disk that committed nothing reads as zeros: a fresh index describes it (also replacing an orphan of a deleted disk).
    if (head === undefined && (created || !(await this.index.validFor(0)))) await this.index.createEmpty();
    await this.restore();
    for (const s of this.snaps.slice(0, -1).filter((x) => !isPoint(x))) await this.deleteSnapshot(s);
    this.snaps = this.snaps.filter((s) => isPoint(s) || s === this.head);
  }

  private async loadSnapshots(): Promise<void> {
    this.snaps = await listSnapshots(this.container, this.base, this.diskId);
  }

  /** Base metadata without a marker, with the current `lbnextcycle`. */
  private cleanMetadata(): Record<string, string> {
    return { lbformat: FORMAT, lbdiskid: metaEncode(this.diskId), lbsize: String(this.sizeBytes), lbinstance: this.instance, lbnextcycle: String(this.nextCycle) };
  }

  /**
   * §5 recovery step 2, driven by the journal: if it names a cycle that did
   * not commit, the extents it lists (or the whole disk, for a rollback) are
   * written back from the head snapshot (zeros with no head); then the
   * journal is deleted. Idempotent; nothing to do without a journal.
   */
  private async restore(): Promise<void> {
    this.needsRestore = true;
    const what = `restore the replica of disk ${this.diskId} from its head`;
    let props;
    try {
      props = await this.journal.getProperties();
    } catch (e) {
      if (!isNotFound(e)) await azureCall(what, () => Promise.reject(e));
    }
    // A commit whose reply was lost may have made its snapshot: ask the service, not memory.
    await this.loadSnapshots();
    this.nextCycle = Math.max(this.nextCycle, (this.head?.cycle ?? 0) + 1);
    if (props !== undefined) {
      const m = props.metadata ?? {};
      const cycle = Number(m.lbcycle);
      const committed = !Number.isSafeInteger(cycle) || m.lbinstance !== this.instance || this.snaps.some((s) => s.cycle >= cycle);
      if (!committed) {
        this.nextCycle = Math.max(this.nextCycle, cycle + 1);
        if (m.lbfull === '1') {
          await this.copyFromHead([[0, this.sizeBytes]]);
        } else {
          const raw = await azureCall(what, () => this.journal.downloadToBuffer());
          const extents: Array<[number, number]> = [];
          for (let at = 0; at + 16 <= raw.length; at += 16) extents.push([Number(raw.readBigUInt64BE(at)), Number(raw.readBigUInt64BE(at + 8))]);
          await this.copyFromHead(merge(extents.map(([o, n]) => [o, o + n] as [number, number])));
        }
        this.counters.restores++;
      }
      try {
        await this.journal.delete();
      } catch (e) {
        if (!isNotFound(e)) await azureCall(what, () => Promise.reject(e));
      }
    }
    this.needsRestore = false;
  }

  /** Write `[from, to)` ranges of the base from the head snapshot (zeros with no head), 4 MiB at a time. */
  private async copyFromHead(ranges: ReadonlyArray<readonly [number, number]>): Promise<void> {
    const head = this.head;
    const what = `restore the replica of disk ${this.diskId} from its head`;
    const jobs: Array<() => Promise<void>> = [];
    for (const [from, to] of ranges) {
      for (let at = from; at < to; at += MAX_PAGE_WRITE) {
        const n = Math.min(MAX_PAGE_WRITE, to - at);
        jobs.push(async () => {
          const data = head === undefined ? undefined : await this.readHead(head, at, n);
          if (data === undefined || isZero(data)) await azureCall(what, () => this.base.clearPages(at, n));
          else await azureCall(what, () => this.base.uploadPages(data, at, n));
        });
      }
    }
    await bounded(this.tuning.writeConcurrency, jobs);
  }

  /** Start the journal of cycle `cycle` (A2): the marker, before any page is written. */
  private async startJournal(cycle: number, full: boolean): Promise<void> {
    const metadata = { lbcycle: String(cycle), lbinstance: this.instance, ...(full ? { lbfull: '1' } : {}) };
    await azureCall(`journal cycle ${cycle} of disk ${this.diskId}`, () => this.journal.create({ metadata }));
    this.needsRestore = true;
  }

  /** Append extents to the journal before writing them. */
  private async journalExtents(extents: ReadonlyArray<readonly [number, number]>): Promise<void> {
    const b = Buffer.alloc(16 * extents.length);
    extents.forEach(([o, n], i) => {
      b.writeBigUInt64BE(BigInt(o), 16 * i);
      b.writeBigUInt64BE(BigInt(n), 16 * i + 8);
    });
    for (let at = 0; at < b.length; at += MAX_PAGE_WRITE) {
      const part = b.subarray(at, Math.min(b.length, at + MAX_PAGE_WRITE));
      await azureCall(`journal of disk ${this.diskId}`, () => this.journal.appendBlock(part, part.length));
    }
  }

  private async deleteSnapshot(s: Snap): Promise<void> {
    try {
      await this.base.withSnapshot(s.snapshot).delete();
    } catch (e) {
      if (!isNotFound(e)) await azureCall(`delete a snapshot of disk ${this.diskId}`, () => Promise.reject(e));
    }
  }

  /** Counters since the disk was opened (§9: `indexRebuilds` for the resync job). */
  stats(): AzureReplicaStats {
    return { ...this.counters };
  }

  /** URL of the base blob (no SAS): a fixed VHD, the head when no cycle is open. */
  get url(): string {
    return this.base.url;
  }

  state(): Promise<ReplicaDiskState> {
    return this.locked(async () => {
      const h = this.head;
      return { diskId: this.diskId, sizeBytes: this.sizeBytes, generation: h?.generation, appliedSeq: h?.seq ?? 0, points: this.snaps.filter(isPoint).map(infoOf) };
    });
  }

  /**
   * Begin a cycle (§5). Throws `InvalidInputError` for malformed metadata,
   * `ReplicaStateError` `cycle.alreadyApplied` or `replica.cycleOpen`. Does
   * no I/O unless an earlier failure left the base to restore.
   * `skipUndoBeforeFirstPoint` is ignored (this target keeps no undo data).
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
      const h = this.head;
      if (h !== undefined && h.generation === meta.generation && meta.seq <= h.seq) {
        throw new ReplicaStateError('cycle.alreadyApplied', `Cycle seq ${meta.seq} of generation ${meta.generation} is not above the applied seq ${h.seq}`, {
          details: { diskId: this.diskId, seq: meta.seq, appliedSeq: h.seq, generation: meta.generation },
          hint: 'Resume shipping after appliedSeq (state()).',
        });
      }
      const w = new AzureCycleWriter(this.host, { ...meta }, this.nextCycle, this.tuning.batchBytes);
      this.openCycle = w;
      return w;
    });
  }

  /** §5 step 2, under the lock or queued behind the previous flush: lay the queued writes over whole blocks, write pages, keep the blocks' index entries. */
  private async flush(c: AzureCycleWriter, blocks: readonly QueuedBlock[]): Promise<void> {
    if (blocks.length === 0) return;
    const what = `write cycle seq ${c.meta.seq} of disk ${this.diskId}`;
    if (!c.marked) {
      this.nextCycle = c.cycle + 1;
      await this.startJournal(c.cycle, false);
      c.marked = true;
    }
    await this.journalExtents(blocks.map((q) => [q.index * INDEX_BLOCK_SIZE, q.data.length] as const));
    // Read-modify-write: the base holds the head plus this cycle's earlier flushes.
    const reads: Array<() => Promise<void>> = [];
    const pieces: Array<{ offset: number; data: Buffer }> = [];
    for (const q of blocks) {
      const covered = merge(q.covered);
      const full = covered.length === 1 && covered[0]![0] === 0 && covered[0]![1] === q.data.length;
      const start = q.index * INDEX_BLOCK_SIZE;
      if (!full) {
        reads.push(async () => {
          const old = await azureCall(what, () => this.base.downloadToBuffer(start, q.data.length));
          this.counters.rmwBytes += old.length;
          let at = 0;
          for (const [a, b] of covered) {
            old.copy(q.data, at, at, a);
            at = b;
          }
          old.copy(q.data, at, at, q.data.length);
        });
      }
      // Covered ranges widened to pages: the bytes between come from the block (read above).
      for (const [a, b] of merge(covered.map(([x, y]) => [Math.floor(x / PAGE) * PAGE, Math.ceil(y / PAGE) * PAGE] as [number, number]))) {
        pieces.push({ offset: start + a, data: q.data.subarray(a, b) });
      }
    }
    await bounded(this.tuning.readConcurrency, reads);
    for (const q of blocks) c.entries.set(q.index, entryOf(q.data));
    // Adjacent pieces joined up to 4 MiB per request; all-zero runs cleared instead of written.
    const runs: Array<{ offset: number; parts: Buffer[]; length: number }> = [];
    for (const p of pieces) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last.offset + last.length === p.offset && last.length + p.data.length <= MAX_PAGE_WRITE) {
        last.parts.push(p.data);
        last.length += p.data.length;
      } else {
        runs.push({ offset: p.offset, parts: [p.data], length: p.data.length });
      }
    }
    await bounded(this.tuning.writeConcurrency, runs.map((r) => async () => {
      const body = r.parts.length === 1 ? r.parts[0]! : Buffer.concat(r.parts, r.length);
      if (isZero(body)) {
        await azureCall(what, () => this.base.clearPages(r.offset, r.length));
        this.counters.clearRequests++;
      } else {
        await azureCall(what, () => this.base.uploadPages(body, r.offset, r.length));
        this.counters.pageWrites++;
        this.counters.pageBytes += r.length;
      }
    }));
  }

  /** §5 steps 3–4, under the lock. */
  private async commitCycle(c: AzureCycleWriter): Promise<RecoveryPointInfo | undefined> {
    await c.settle();
    await this.flush(c, c.takeQueued());
    const meta = c.meta;
    const kind = meta.point ?? 'head';
    const metadata = { lbcycle: String(c.cycle), lbseq: String(meta.seq), lbgeneration: metaEncode(meta.generation), lbtime: String(meta.time), lbkind: kind };
    let r;
    try {
      r = await azureCall(`commit cycle seq ${meta.seq} of disk ${this.diskId}`, () => this.base.createSnapshot({ metadata }));
    } catch (e) {
      // The snapshot may exist although the reply was lost: the next step reloads the snapshots before anything else.
      this.needsRestore = true;
      throw e;
    }
    if (r.snapshot === undefined) throw new ReplicaStateError('replica.corrupt', 'Azure returned no snapshot id', { hint: 'Retry the cycle.' });
    // Committed (A1).
    const previous = this.head;
    const snap: Snap = { cycle: c.cycle, snapshot: r.snapshot, kind, seq: meta.seq, generation: meta.generation, time: meta.time };
    this.snaps.push(snap);
    this.nextCycle = Math.max(this.nextCycle, c.cycle + 1);
    this.needsRestore = false;
    c.status = 'committed';
    c.result = meta.point === undefined ? undefined : infoOf(snap);
    this.openCycle = undefined;
    // Best effort from here: a leftover head snapshot is deleted at the next open; a half-patched index is stale (§9).
    try {
      if (c.marked) await this.journal.delete().catch(() => undefined);
      if (previous !== undefined && !isPoint(previous)) {
        await this.deleteSnapshot(previous);
        this.snaps = this.snaps.filter((s) => s !== previous);
      }
      if (await this.index.validFor(previous?.cycle ?? 0)) await this.index.patch(c.entries, c.cycle);
    } catch {
      this.index.forget();
    }
    return c.result;
  }

  /** Abort: drop queued writes, restore the base if this cycle marked it. */
  private abortCycle(c: AzureCycleWriter): Promise<void> {
    return this.mutex.run(async () => {
      if (c.status === 'aborted' || c.status === 'closed') return;
      if (c.status === 'committed') {
        throw new ReplicaStateError('cycle.alreadyApplied', `Cycle seq ${c.meta.seq} is committed; it cannot be aborted`, {
          details: { diskId: this.diskId, seq: c.meta.seq }, hint: 'Resume shipping after appliedSeq (state()).',
        });
      }
      this.assertNotClosed();
      await c.quiesce();
      c.dropQueued();
      if (this.needsRestore) await this.restore();
      if (this.openCycle === c) this.openCycle = undefined;
      if (this.snaps.some((x) => x.cycle === c.cycle)) {
        // Its snapshot was made although the commit failed (the reply was lost): it is committed (target.ts).
        c.status = 'committed';
        throw new ReplicaStateError('cycle.alreadyApplied', `Cycle seq ${c.meta.seq} was committed although its commit reported a failure`, {
          details: { diskId: this.diskId, seq: c.meta.seq }, hint: 'Resume shipping after appliedSeq (state()).',
        });
      }
      c.status = 'aborted';
    });
  }

  listPoints(): Promise<readonly RecoveryPointInfo[]> {
    return this.locked(async () => this.snaps.filter(isPoint).map(infoOf));
  }

  /**
   * Delete point snapshots with `time < olderThan`, never the latest point
   * nor the head (§7). Idempotent; a failure part-way leaves some deleted.
   */
  prunePoints(olderThan: number): Promise<readonly RecoveryPointInfo[]> {
    if (typeof olderThan !== 'number' || Number.isNaN(olderThan)) {
      return Promise.reject(new InvalidInputError('replica.invalidPruneTime', `olderThan must be a time in ms, not ${String(olderThan)}`, { where: { path: '/olderThan' } }));
    }
    return this.locked(async () => {
      const points = this.snaps.filter(isPoint);
      const doomed = points.filter((p, i) => i < points.length - 1 && p !== this.head && p.time < olderThan);
      const removed: RecoveryPointInfo[] = [];
      for (const s of doomed) {
        await this.deleteSnapshot(s);
        this.snaps = this.snaps.filter((x) => x !== s);
        removed.push(infoOf(s));
      }
      return removed;
    });
  }

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
   * SHA-256 of blocks of the head (the head snapshot; an open cycle is
   * invisible). 64 KiB blocks come from the checksum index, checked by a
   * random sample and rebuilt when stale (§9); other sizes are read and
   * hashed. Throws `replica.invalidBlockRange` or a classified Azure error.
   */
  hashBlocks(blockSize: number, firstBlock: number, count: number): Promise<BlockDigests> {
    const bad = this.checkBlockRange(blockSize, firstBlock, count);
    if (bad !== undefined) return Promise.reject(bad);
    return this.locked(async () => ({ blockSize, firstBlock, digests: await this.digests(blockSize, firstBlock, count) }));
  }

  /** `hashBlocks` of several runs under one lock. */
  hashBlockRuns(blockSize: number, runs: readonly BlockRun[]): Promise<readonly BlockDigests[]> {
    for (const r of Array.isArray(runs) ? runs : [undefined]) {
      const bad = this.checkBlockRange(blockSize, r?.firstBlock ?? Number.NaN, r?.count ?? Number.NaN);
      if (bad !== undefined) return Promise.reject(bad);
    }
    return this.locked(async () => {
      const out: BlockDigests[] = [];
      const jobs = runs.map((r, i) => async () => {
        out[i] = { blockSize, firstBlock: r.firstBlock, digests: await this.digests(blockSize, r.firstBlock, r.count) };
      });
      await bounded(this.tuning.readConcurrency, jobs);
      return out;
    });
  }

  private async digests(blockSize: number, first: number, count: number): Promise<Buffer[]> {
    const head = this.head;
    const lengthOf = (i: number): number => Math.min(blockSize, this.sizeBytes - i * blockSize);
    if (count === 0) return [];
    if (head === undefined) return Array.from({ length: count }, (_, i) => zeroDigest(lengthOf(first + i)));
    if (blockSize === INDEX_BLOCK_SIZE) return this.indexDigests(head, first, count);
    return this.readAndHash(head, blockSize, first, count);
  }

  /** Read blocks of the head snapshot and hash them: whole blocks up to 4 MiB per read, larger blocks in 4 MiB pieces. */
  private async readAndHash(head: Snap, blockSize: number, first: number, count: number): Promise<Buffer[]> {
    const start = first * blockSize;
    const end = Math.min(this.sizeBytes, (first + count) * blockSize);
    const out: Buffer[] = [];
    if (blockSize > 4 * MiB) {
      for (let b = start; b < end; b += blockSize) {
        const hash = createHash('sha256');
        const blockEnd = Math.min(end, b + blockSize);
        for (let at = b; at < blockEnd; at += 4 * MiB) hash.update(await this.readHead(head, at, Math.min(4 * MiB, blockEnd - at)));
        out.push(hash.digest());
      }
      return out;
    }
    const span = Math.floor((4 * MiB) / blockSize) * blockSize;
    for (let at = start; at < end; at += span) {
      const data = await this.readHead(head, at, Math.min(span, end - at));
      for (let o = 0; o < data.length; o += blockSize) out.push(createHash('sha256').update(data.subarray(o, Math.min(data.length, o + blockSize))).digest());
    }
    return out;
  }

  private readHead(head: Snap, offset: number, length: number): Promise<Buffer> {
    return azureCall(`read the head of disk ${this.diskId}`, () =>
      this.base.withSnapshot(head.snapshot).downloadToBuffer(offset, length, { concurrency: this.tuning.readConcurrency, blockSize: 4 * MiB }));
  }

  /** §9: from the index, verified by a sample; rebuilt when stale or wrong. */
  private async indexDigests(head: Snap, first: number, count: number): Promise<Buffer[]> {
    if (!(await this.index.validFor(head.cycle))) await this.rebuildIndex(head);
    let digests = await this.index.read(first, count);
    const n = Math.min(count, Math.max(1, Math.ceil(count * this.tuning.verifySampleFraction)));
    const sample = new Set<number>();
    while (sample.size < n) sample.add(Math.min(count - 1, Math.floor(this.tuning.random() * count)));
    let mismatch = false;
    await bounded(this.tuning.readConcurrency, [...sample].map((i) => async () => {
      const b = first + i;
      const bytes = await this.readHead(head, b * INDEX_BLOCK_SIZE, this.index.blockLength(b));
      this.counters.sampledBlocks++;
      if (!createHash('sha256').update(bytes).digest().equals(digests[i]!)) mismatch = true;
    }));
    if (mismatch) {
      this.counters.indexMismatches++;
      await this.rebuildIndex(head);
      digests = await this.index.read(first, count);
    }
    this.counters.indexDigests += count;
    return digests;
  }

  private async rebuildIndex(head: Snap): Promise<void> {
    await this.index.rebuildFrom(head.cycle, (offset, length) => this.readHead(head, offset, length), 4 * MiB);
    this.counters.indexRebuilds++;
  }

  /** A view at a point: reads of its snapshot (§8). Throws `replica.pointNotFound`. */
  openView(pointId: string): Promise<DiskView> {
    return this.locked(async () => {
      const s = this.snaps.find((x) => isPoint(x) && pointIdOf(x.cycle) === pointId);
      if (s === undefined) throw pointNotFound(pointId, this.diskId);
      const v = new AzureDiskView(this.sizeBytes, infoOf(s), this.base.withSnapshot(s.snapshot), this.tuning.readConcurrency, (x) => this.views.delete(x));
      this.views.add(v);
      return v;
    });
  }

  /**
   * §8. The head point: nothing copied, the base blob's URL. An older point:
   * the replica is rolled back to it (later points deleted, the base restored
   * from its snapshot). Throws `replica.pointNotFound`, `replica.cycleOpen`;
   * a failure part-way is finished by the next operation or open.
   */
  materialise(pointId: string): Promise<MaterialisedDisk> {
    return this.locked(async () => {
      const q = this.snaps.find((x) => isPoint(x) && pointIdOf(x.cycle) === pointId);
      if (q === undefined) throw pointNotFound(pointId, this.diskId);
      if (this.openCycle !== undefined) {
        throw new ReplicaStateError('replica.cycleOpen', `Disk ${this.diskId} has an open cycle (seq ${this.openCycle.meta.seq}); cannot roll back`, {
          hint: 'Stop replication of this disk (commit or abort its cycle) before failing over.',
        });
      }
      if (q === this.head) return { location: this.base.url, zeroCopy: true };
      // A4: the numbers of the discarded cycles are never reused (a stale index could name one).
      const marker = this.nextCycle;
      this.nextCycle = marker + 1;
      await azureCall(`roll back disk ${this.diskId}`, () => this.base.setMetadata(this.cleanMetadata()));
      await this.startJournal(marker, true);
      for (const s of [...this.snaps].reverse()) {
        if (s.cycle <= q.cycle) break;
        await this.deleteSnapshot(s);
        this.snaps = this.snaps.filter((x) => x !== s);
      }
      await this.restore();
      this.index.forget();
      return { location: this.base.url, zeroCopy: false };
    });
  }

  /**
   * Failover to Azure (§8): copy a point's snapshot to the standalone blob
   * `exports/<name>.vhd`, a complete fixed VHD (footer included) that a
   * managed disk can import. The replica is not touched. Idempotent (an
   * export of the same name is replaced). Throws `replica.pointNotFound`,
   * `replica.invalidDiskId` for a bad name, or a classified Azure error; a
   * failure leaves a partial export, replaced by the next attempt.
   */
  exportPoint(pointId: string, name: string): Promise<MaterialisedDisk> {
    return this.locked(async () => {
      const s = this.snaps.find((x) => isPoint(x) && pointIdOf(x.cycle) === pointId);
      if (s === undefined) throw pointNotFound(pointId, this.diskId);
      return exportSnapshot({ container: this.container, source: this.base.withSnapshot(s.snapshot), blobBytes: this.blobBytes, diskId: this.diskId, pointId, name, concurrency: this.tuning.writeConcurrency });
    });
  }

  /** Close views; an open cycle is abandoned (the next open restores the base). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      if (this.closed) return;
      this.closed = true;
      const c = this.openCycle;
      if (c !== undefined) {
        await c.quiesce();
        c.dropQueued();
        c.status = 'closed';
        this.openCycle = undefined;
      }
      for (const v of [...this.views]) await v.close();
      this.args.onClose(this);
    });
  }

  private assertNotClosed(): void {
    if (this.closed) {
      throw new ReplicaStateError('replica.diskClosed', `Disk ${this.diskId} is closed`, { details: { diskId: this.diskId }, hint: 'Open the disk again from its target.' });
    }
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.assertNotClosed();
      if (this.needsRestore && (this.openCycle === undefined || this.openCycle.status !== 'open')) {
        await this.openCycle?.quiesce();
        await this.restore();
        const c = this.openCycle;
        if (c !== undefined) {
          c.status = this.snaps.some((x) => x.cycle === c.cycle) ? 'committed' : 'aborted';
          this.openCycle = undefined;
        }
      }
      return fn();
    });
  }
}
