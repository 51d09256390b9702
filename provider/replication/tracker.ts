/**
 * The write tracker (DESIGN.md §3.1, docs/log-format.md §7–§9): every guest
 * write to a protected disk passes `TrackedDisk`, which records it in the
 * disk's replication log before writing the disk, keeps the activity log of
 * extents with writes in flight, seals segments into cuts for the shipper and
 * recovers after an unclean stop.
 *
 * Concurrency: one `TrackedDisk` per disk. Its methods may be called
 * concurrently from one process: writes, flushes, seals and every call that
 * changes the log run one at a time in call order (an internal lock); `read`
 * is not ordered with them and sees every write that completed before it was
 * called. A second `TrackedDisk` on the same files in the same process is
 * refused (`tracker.alreadyOpen`); nothing protects the files from another
 * process: the agent runs one tracker per disk.
 *
 * Writes of up to 1 MiB per piece go to the log and the disk with
 * synchronous system calls (no fsync): they land in the page cache in tens of
 * microseconds, and a trip through libuv's thread pool roughly doubled the
 * cost of a tracked write. The event loop is therefore busy for the duration
 * of such a write; larger pieces, fsyncs and everything else are
 * asynchronous.
 *
 * Failure: an I/O error while writing the log, the disk or the activity log
 * stops the tracker (`tracker.ioFailed`, or `tracker.noSpace`); every later
 * call fails with `tracker.failed` until it is closed and opened again, and
 * the open then recovers as after an unclean stop (§8): the files are never
 * left in a state that recovery does not cover.
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { writeSync, writevSync } from 'node:fs';
import * as path from 'node:path';
import { type Clock, systemClock } from '../clock';
import { InvalidInputError, LifeboatError, NonRecoverableError, RecoverableError } from '../errors';
import { MiB } from '../units';
import {
  type ByteRange,
  checkRecordHeader,
  checkSegmentHeader,
  crc32,
  crc32Combine,
  encodeFlushMarker,
  encodeSeal,
  encodeSegmentHeader,
  encodeWriteRecordHeader,
  formatSegmentName,
  isDiskId,
  isFlushMarkerAt,
  MAX_ACTIVITY_LOG_SLOTS,
  MAX_EXTENT_SIZE,
  MAX_RECORD_DATA,
  MAX_RECORDS_PER_SEGMENT,
  MIN_EXTENT_SIZE,
  parseSegmentName,
  RECORD_HEADER_SIZE,
  RecordType,
  SECTOR_SIZE,
  SEGMENT_HEADER_SIZE,
} from '../format';
import { syncDirectory } from '../atomic-file';
import { ActivityLog, type ActivityLogGeometry, type ActivityLogReading, readActivityLog } from './activity-log';
import { scanSegmentFile } from './segment-reader';

/** Where a tracked disk and its log live, and how the activity log is shaped. */
export interface TrackedDiskOptions {
  /** The raw disk file. */
  readonly diskPath: string;
  /** The disk id (docs/log-format.md §1): 1 to 64 of `A-Z a-z 0-9 _ -`. */
  readonly diskId: string;
  /** Directory of the segments and the activity log. @default the directory of `diskPath` */
  readonly logDir?: string;
  /** Stamps creation and seal times. @default systemClock */
  readonly clock?: Clock;
  /**
   * Activity-log extent size (§9): a power of two, 4 KiB … 1 GiB. Applies
   * from this open on. @default 4 MiB
   */
  readonly activityLogExtentSize?: number;
  /** Activity-log slots (§9), 1 … 503. Applies from this open on. @default 503 (about 2 GiB of 4 MiB extents) */
  readonly activityLogSlots?: number;
}

export interface CreateTrackedDiskOptions extends TrackedDiskOptions {
  /**
   * Size of the disk file to create (sparse) when `diskPath` does not exist:
   * a positive multiple of 512. If the file exists it must have this size.
   * @default the size of the existing file (which must then exist)
   */
  readonly sizeBytes?: number;
}

/** A sealed segment not yet released (docs/log-format.md §3.5). */
export interface SealedSegmentInfo {
  readonly diskId: string;
  readonly generation: string;
  readonly seq: number;
  /** Full path of the file. */
  readonly path: string;
  readonly fileBytes: number;
  /** Records before the seal: writes and flush markers. */
  readonly recordCount: number;
  /** Bytes of write data (before coalescing). */
  readonly dataBytes: number;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Milliseconds since the epoch: the cut. */
  readonly sealedAt: number;
  /** Segment checksum (§4), which the next segment's header links to. */
  readonly segmentChecksum: number;
  /** Segment checksum of the previous segment; 0 for seq 1. */
  readonly previousChecksum: number;
}

/** Why an open started a new generation (docs/log-format.md §5, §8). */
export interface GenerationRestart {
  /** The abandoned generation; `undefined` if it could not be read. */
  readonly previousGeneration: string | undefined;
  /** `activityLog.lost`, `chain.gap`, `chain.linkMismatch`, `segment.missing`, `segment.notSealed`, `segment.corrupt`. */
  readonly code: string;
  readonly reason: string;
}

/** What an open found (docs/log-format.md §8). */
export interface RecoveryReport {
  /** The tracker did not stop cleanly (or the activity log was lost). */
  readonly uncleanStop: boolean;
  /**
   * Byte ranges (sorted, disjoint) where the disk and the log may disagree
   * (§8.2): they stay suspect, across stops, until `acknowledgeSuspects()` or
   * `relogSuspects()`. Empty after a generation restart (the new generation
   * needs a full resync anyway).
   */
  readonly suspectExtents: readonly ByteRange[];
  /** Last sealed segment holding writes from before the stop; 0 if none. */
  readonly preStopSeq: number;
  /** Bytes of torn tail cut from the current segment. */
  readonly truncatedBytes: number;
  /** Set when the log could not be continued and a new generation began. */
  readonly generationRestarted: GenerationRestart | undefined;
}

/** What `relogSuspects` did. */
export interface RelogResult {
  readonly ranges: number;
  readonly bytes: number;
}

const DEFAULT_EXTENT_SIZE = 4 * MiB;
// As many as one page holds: 503 × 4 MiB ≈ 2 GiB of hot set. Random writes
// rarely pay an activity-log fsync; a crash costs a compare of at most that
// much (hashing, seconds). DRBD makes the same trade with its al-extents.
const DEFAULT_SLOTS = MAX_ACTIVITY_LOG_SLOTS;
/** Leave room for a flush marker before the `u32` record index runs out (§12). */
const RECORD_LIMIT = MAX_RECORDS_PER_SEGMENT - 2;
const RELOG_CHUNK = MiB;
/**
 * Pieces up to this size are written with synchronous calls: a write to the
 * page cache costs less than a trip through libuv's thread pool, which
 * roughly doubled the cost of a tracked 64 KiB write. Larger pieces go
 * through the pool so the event loop never stalls long on one write.
 */
const SYNC_WRITE_LIMIT = MiB;

/** Activity-log files open in this process. */
const openLogs = new Set<string>();

interface Resolved {
  readonly diskPath: string;
  readonly diskId: string;
  readonly logDir: string;
  readonly clock: Clock;
  readonly extentSize: number;
  readonly slots: number;
  readonly alFile: string;
}

/** The segment receiving appends. */
interface CurrentSegment {
  readonly fh: fs.FileHandle;
  readonly path: string;
  readonly generation: string;
  readonly seq: number;
  readonly createdAt: number;
  readonly previousChecksum: number;
  position: number;
  recordCount: number;
  writeCount: number;
  dataBytes: number;
  /** CRC-32 of every byte so far (§4). */
  running: number;
  /** Records appended since the last flush. */
  unflushed: boolean;
}

interface ListedSegment {
  readonly path: string;
  readonly generation: string;
  readonly seq: number;
}

/**
 * A raw sparse disk file whose writes are tracked. Create one with
 * `TrackedDisk.create` (start tracking) or `TrackedDisk.open` (continue,
 * recovering after a stop); `close` it for a clean stop.
 */
export class TrackedDisk {
  private tail: Promise<unknown> = Promise.resolve();
  private failure: LifeboatError | undefined;
  /** Set by the first `close()`: later calls are refused, queued ones still run. */
  private closing: Promise<void> | undefined;
  private diskDirty = false;
  private readonly recordHeader = Buffer.alloc(RECORD_HEADER_SIZE);

  private constructor(
    private readonly o: Resolved,
    private readonly disk: fs.FileHandle,
    /** Disk size in bytes, a multiple of 512. */
    readonly sizeBytes: number,
    private readonly al: ActivityLog,
    private seg: CurrentSegment,
    private sealedList: SealedSegmentInfo[],
    /** What the open found (§8); fixed for the life of this object. */
    readonly recovery: RecoveryReport,
  ) {}

  /**
   * Start tracking a disk: create the disk file if it does not exist
   * (`sizeBytes`, sparse), a new generation with segment 1, and the
   * activity log. Every write from now on is logged; the disk's content now
   * is the base the log applies to. Throws `InvalidInputError`:
   * `tracker.alreadyTracked` (an activity log exists: use `open`),
   * `tracker.noDisk`, `tracker.sizeMismatch`, `tracker.invalidDiskSize`,
   * `tracker.invalidOptions`, `tracker.alreadyOpen`. If it fails, a disk file
   * it created may remain; no activity log does, so `create` can be run
   * again.
   */
  static async create(options: CreateTrackedDiskOptions): Promise<TrackedDisk> {
    const o = resolveOptions(options);
    register(o.alFile);
    let disk: fs.FileHandle | undefined;
    let seg: CurrentSegment | undefined;
    try {
      if (await exists(o.alFile)) {
        throw new InvalidInputError('tracker.alreadyTracked', `disk ${o.diskId} is already tracked (${o.alFile} exists)`, {
          hint: 'Open it with TrackedDisk.open, or remove its tracking first (TrackedDisk.remove).',
        });
      }
      disk = await openOrCreateDisk(o.diskPath, options.sizeBytes);
      const size = (await disk.stat()).size;
      assertDiskSize(size, o.diskPath);
      // Leftovers of an earlier tracking whose activity log is gone mean nothing now.
      for (const s of await listSegments(o.logDir, o.diskId)) await unlinkIfExists(s.path);
      await unlinkIfExists(`${o.alFile}.tmp`);
      const generation = newGenerationId();
      seg = await createSegment(o, generation, 1, 0, size);
      const al = await ActivityLog.replace(o.alFile, geometryOf(o, size), generation, []);
      return new TrackedDisk(o, disk, size, al, seg, [], {
        uncleanStop: false,
        suspectExtents: [],
        preStopSeq: 0,
        truncatedBytes: 0,
        generationRestarted: undefined,
      });
    } catch (e) {
      await seg?.fh.close();
      await disk?.close();
      openLogs.delete(o.alFile);
      throw e;
    }
  }

  /**
   * Continue tracking a disk, recovering after any stop (§8): torn tail
   * truncated, the recovered segment sealed, suspect extents computed,
   * or a new generation started when the log cannot be continued
   * (`recovery` says which). Throws `InvalidInputError` `tracker.notTracked`
   * (no activity log and no segment: use `create`),
   * `segment.unknownVersion` / `activityLog.unknownVersion` (a newer
   * Lifeboat wrote the files; nothing is changed), `tracker.alreadyOpen`,
   * `tracker.invalidOptions`; `NonRecoverableError` `tracker.diskMissing`,
   * `tracker.diskResized`. If it fails part-way, the files are in a state
   * that the next open recovers the same way.
   */
  static async open(options: TrackedDiskOptions): Promise<TrackedDisk> {
    const o = resolveOptions(options);
    register(o.alFile);
    let disk: fs.FileHandle | undefined;
    let seg: CurrentSegment | undefined;
    let al: ActivityLog | undefined;
    try {
      const reading = await readActivityLog(o.alFile);
      const listed = await listSegments(o.logDir, o.diskId);
      if (reading.kind === 'missing' && listed.length === 0) {
        throw new InvalidInputError('tracker.notTracked', `disk ${o.diskId} is not tracked in ${o.logDir}`, {
          hint: 'Start tracking with TrackedDisk.create.',
        });
      }
      try {
        disk = await fs.open(o.diskPath, 'r+');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        throw new NonRecoverableError('tracker.diskMissing', `disk file ${o.diskPath} of tracked disk ${o.diskId} is missing`, {
          cause: e,
          hint: 'Restore the disk file, or remove the tracking and protect the disk again.',
        });
      }
      const size = (await disk.stat()).size;
      if (reading.kind === 'found' && reading.page.diskSize !== size) {
        throw new NonRecoverableError(
          'tracker.diskResized',
          `disk ${o.diskId} has ${size} bytes but was tracked with ${reading.page.diskSize}`,
          { hint: 'Resizing a protected disk is not supported: disable protection, resize, protect again.' },
        );
      }
      assertDiskSize(size, o.diskPath);
      await unlinkIfExists(`${o.alFile}.tmp`);
      const r = await recoverLog(o, reading, listed, size);
      seg = r.seg;
      const lastTransaction = reading.kind === 'found' ? reading.page.transaction : 0;
      al = await ActivityLog.replace(o.alFile, geometryOf(o, size), r.generation, r.suspects, lastTransaction);
      if (r.discard.length > 0) {
        for (const file of r.discard) await unlinkIfExists(file);
        await syncDirectory(o.logDir);
      }
      return new TrackedDisk(o, disk, size, al, seg, r.sealed, {
        uncleanStop: reading.kind !== 'found' || reading.page.state === 'running',
        suspectExtents: r.suspects,
        preStopSeq: r.sealed.length === 0 ? 0 : r.sealed[r.sealed.length - 1]!.seq,
        truncatedBytes: r.truncatedBytes,
        generationRestarted: r.restart,
      });
    } catch (e) {
      await al?.close(false);
      await seg?.fh.close();
      await disk?.close();
      openLogs.delete(o.alFile);
      throw e;
    }
  }

  /**
   * Stop tracking a closed disk: delete its segments and activity log (the
   * disk file stays). Idempotent. Throws `InvalidInputError`
   * `tracker.alreadyOpen` if it is open in this process.
   */
  static async remove(options: TrackedDiskOptions): Promise<void> {
    const o = resolveOptions(options);
    register(o.alFile);
    try {
      for (const s of await listSegments(o.logDir, o.diskId)) await unlinkIfExists(s.path);
      await unlinkIfExists(`${o.alFile}.tmp`);
      await unlinkIfExists(o.alFile);
      await syncDirectory(o.logDir);
    } finally {
      openLogs.delete(o.alFile);
    }
  }

  /** The disk id. */
  get diskId(): string {
    return this.o.diskId;
  }

  /** The current generation id (16 lowercase hex digits). */
  get generation(): string {
    return this.al.generation;
  }

  /** Sequence number of the current (unsealed) segment. */
  get currentSeq(): number {
    return this.seg.seq;
  }

  /** Activity-log extent size in bytes. */
  get extentSize(): number {
    return this.o.extentSize;
  }

  /** The log directory. */
  get logDir(): string {
    return this.o.logDir;
  }

  /**
   * Write `data` at `offset` (any alignment; `offset + length ≤ sizeBytes`),
   * in the order of §7.1: activity log, log record, disk. Not durable until
   * `flush`. A zero-length write does nothing. Throws `InvalidInputError`
   * `tracker.outOfRange` (nothing written), `tracker.closed`, or the
   * stopping errors of the class comment. `data` is not kept after the
   * promise settles.
   */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.length, 'write');
    if (data.length === 0) return;
    return this.exclusive(() => this.writeLocked(offset, data));
  }

  /** Read `length` bytes at `offset`. Throws `InvalidInputError` `tracker.outOfRange`, `tracker.closed`. */
  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.readInto(out, offset);
    return out;
  }

  /**
   * Read `buffer.length` bytes at `offset` into `buffer`, so a caller can
   * reuse its buffers. Same errors as `read`; on failure `buffer` holds a
   * partial read.
   */
  async readInto(buffer: Buffer, offset: number): Promise<void> {
    const length = buffer.length;
    this.checkRange(offset, length, 'read');
    this.assertOpen();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.disk.read(buffer, done, length - done, offset + done);
      if (bytesRead === 0) break; // beyond the end of a sparse file reads as zeros
      done += bytesRead;
    }
    if (done < length) buffer.fill(0, done);
  }

  /**
   * Make every completed write durable (§7.2): flush marker, `fdatasync` of
   * the log, then of the disk. Idempotent: does nothing if nothing was
   * written since the last flush.
   */
  async flush(): Promise<void> {
    return this.exclusive(() => this.flushLocked());
  }

  /**
   * Seal the current segment and open the next (§7.3): the sealed segments
   * then hold every write that completed before this call. Returns the
   * sealed segment, or `undefined` when the current segment holds no write
   * (nothing is sealed and no empty segment joins the chain; the flush still
   * happens). If it fails after the seal was written, the tracker stops and
   * the next open finishes the job (§8 step 5).
   */
  async seal(): Promise<SealedSegmentInfo | undefined> {
    return this.exclusive(() => this.sealLocked());
  }

  /** Sealed, unreleased segments of the current generation, in sequence order. No I/O. */
  sealedSegments(): readonly SealedSegmentInfo[] {
    return [...this.sealedList];
  }

  /**
   * Delete the sealed segments with `seq ≤ uptoSeq` (§7.5): call only after
   * the replica committed them (I10). The current segment is never
   * released. Idempotent. If it fails part-way, the segments not yet deleted
   * stay listed. Throws `InvalidInputError` `tracker.invalidSeq`.
   */
  async release(uptoSeq: number): Promise<void> {
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq < 0) {
      throw new InvalidInputError('tracker.invalidSeq', `cannot release up to ${uptoSeq}: not a sequence number`);
    }
    return this.exclusive(async () => {
      let removed = 0;
      try {
        for (const s of this.sealedList) {
          if (s.seq > uptoSeq) break;
          await unlinkIfExists(s.path);
          removed++;
        }
      } finally {
        this.sealedList = this.sealedList.slice(removed);
      }
      if (removed > 0) await syncDirectory(this.o.logDir);
    }, false);
  }

  /**
   * Bytes of log not yet released: sealed segments plus the current one. The
   * shipper compares it with the disk size (resync at 50 %). No I/O.
   */
  pendingLogBytes(): number {
    let sum = this.seg.position;
    for (const s of this.sealedList) sum += s.fileBytes;
    return sum;
  }

  /**
   * Start a new generation (§7.4): a fresh id, segment 1, every segment of
   * the old generation deleted (sealed or not) and the suspect extents
   * cleared: the replica must now be resynchronised. Returns the new id.
   */
  async startGeneration(): Promise<string> {
    return this.exclusive(async () => {
      await this.flushLocked();
      const old = this.seg;
      const oldSealed = this.sealedList;
      const generation = newGenerationId();
      const seg = await createSegment(this.o, generation, 1, 0, this.sizeBytes);
      try {
        await this.al.setGeneration(generation);
      } catch (e) {
        await seg.fh.close();
        throw e;
      }
      this.seg = seg;
      this.sealedList = [];
      await old.fh.close();
      await unlinkIfExists(old.path);
      for (const s of oldSealed) await unlinkIfExists(s.path);
      await syncDirectory(this.o.logDir);
      if (this.al.suspects.length > 0) await this.al.setSuspects([]);
      return generation;
    });
  }

  /** Suspect ranges not yet reconciled (§8.2); the open's report, until acknowledged or relogged. */
  currentSuspects(): readonly ByteRange[] {
    return this.al.suspects;
  }

  /**
   * The suspect extents were reconciled by comparing both sides (§8.2):
   * forget them, durably. Idempotent.
   */
  async acknowledgeSuspects(): Promise<void> {
    return this.exclusive(async () => {
      if (this.al.suspects.length > 0) await this.al.setSuspects([]);
    });
  }

  /**
   * Reconcile the suspect extents through the log (§8.2): append write
   * records holding the disk's current bytes of every suspect range, flush,
   * then forget them. Afterwards the log describes the disk exactly (I9 with
   * no exceptions). If it fails, the suspects stay and it can be run again.
   */
  async relogSuspects(): Promise<RelogResult> {
    return this.exclusive(async () => {
      const ranges = this.al.suspects;
      let bytes = 0;
      for (const r of ranges) {
        for (let at = r.offset; at < r.offset + r.length; at += RELOG_CHUNK) {
          const n = Math.min(RELOG_CHUNK, r.offset + r.length - at);
          const data = Buffer.alloc(n);
          const { bytesRead } = await this.disk.read(data, 0, n, at);
          if (bytesRead < n) data.fill(0, bytesRead);
          if (this.seg.recordCount >= RECORD_LIMIT) await this.sealLocked();
          await this.appendWrite(at, data);
          bytes += n;
        }
      }
      await this.flushLocked();
      if (ranges.length > 0) await this.al.setSuspects([]);
      return { ranges: ranges.length, bytes };
    });
  }

  /**
   * Stop cleanly (§7.6): seal, then mark the activity log clean, so that the
   * next open reports no unclean stop. After a failure of the tracker, only
   * closes the files (the next open recovers). Idempotent; calls made after
   * it fail with `tracker.closed`.
   */
  close(): Promise<void> {
    this.closing ??= this.tail.then(() => this.closeNow());
    return this.closing;
  }

  // --- internals, all run under the lock ---

  private async closeNow(): Promise<void> {
    try {
      if (this.failure === undefined) {
        await this.sealLocked();
        await this.al.close(true);
      }
    } finally {
      await this.al.close(false).catch(() => undefined);
      await this.seg.fh.close().catch(() => undefined);
      await this.disk.close().catch(() => undefined);
      openLogs.delete(this.o.alFile);
    }
  }

  /**
   * Run `fn` after every call before it. With `stopOnError`, an error that
   * is not invalid input stops the tracker (class comment).
   */
  private exclusive<T>(fn: () => Promise<T>, stopOnError = true): Promise<T> {
    this.assertOpen();
    const run = this.tail.then(async () => {
      if (this.failure !== undefined) {
        throw new RecoverableError('tracker.failed', `tracking of disk ${this.o.diskId} stopped after an error: ${this.failure.message}`, {
          cause: this.failure,
          hint: 'Close and reopen the disk; the open recovers as after an unclean stop.',
        });
      }
      try {
        return await fn();
      } catch (e) {
        if (!stopOnError || (LifeboatError.isInstance(e) && e.category === 'invalidInput')) throw e;
        this.failure = stoppingError(e, this.o.diskId);
        throw this.failure;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async writeLocked(offset: number, data: Uint8Array): Promise<void> {
    const es = this.o.extentSize;
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const firstExtent = Math.floor(at / es);
      // A piece fits one record and the activity log's slots (§7.1).
      const n = Math.min(data.length - done, MAX_RECORD_DATA, (firstExtent + this.o.slots) * es - at);
      const piece = n === data.length ? data : data.subarray(done, done + n);
      const lastExtent = Math.floor((at + n - 1) / es);
      if (!this.al.touch(firstExtent, lastExtent)) await this.al.activate(firstExtent, lastExtent, () => this.flushLocked());
      if (this.seg.recordCount >= RECORD_LIMIT) await this.sealLocked();
      await this.appendWrite(at, piece);
      const bytesWritten = n <= SYNC_WRITE_LIMIT ? writeSync(this.disk.fd, piece, 0, n, at) : (await this.disk.write(piece, 0, n, at)).bytesWritten;
      if (bytesWritten !== n) throw new Error(`short write to ${this.o.diskPath}: ${bytesWritten} of ${n} bytes`);
      this.diskDirty = true;
      this.al.markDirty(firstExtent, lastExtent);
      done += n;
    }
  }

  /** Append a write record (§3.3) to the current segment, no fsync. */
  private async appendWrite(offset: number, data: Uint8Array): Promise<void> {
    const seg = this.seg;
    const dataChecksum = crc32(data);
    const header = encodeWriteRecordHeader({ index: seg.recordCount, offset, length: data.length, dataChecksum }, this.recordHeader);
    const total = RECORD_HEADER_SIZE + data.length;
    const bytesWritten =
      data.length <= SYNC_WRITE_LIMIT
        ? writevSync(seg.fh.fd, [header, data], seg.position)
        : (await seg.fh.writev([header, data], seg.position)).bytesWritten;
    if (bytesWritten !== total) throw new Error(`short write to ${seg.path}: ${bytesWritten} of ${total} bytes`);
    seg.running = crc32Combine(crc32(header, seg.running), dataChecksum, data.length);
    seg.position += total;
    seg.recordCount++;
    seg.writeCount++;
    seg.dataBytes += data.length;
    seg.unflushed = true;
  }

  private async flushLocked(): Promise<void> {
    const seg = this.seg;
    if (!seg.unflushed && !this.diskDirty) return;
    if (seg.unflushed) {
      const marker = encodeFlushMarker({ index: seg.recordCount, position: seg.position });
      const { bytesWritten } = await seg.fh.write(marker, 0, marker.length, seg.position);
      if (bytesWritten !== marker.length) throw new Error(`short write to ${seg.path}`);
      seg.running = crc32(marker, seg.running);
      seg.position += marker.length;
      seg.recordCount++;
    }
    // Both at once (I6): until this flush completes its extents stay in the activity log (I4), so a crash that
    // keeps the disk's data but loses its records leaves suspect extents for recovery (§8), whatever the order.
    const [logSynced, diskSynced] = await Promise.allSettled([seg.unflushed ? seg.fh.datasync() : undefined, this.diskDirty ? this.disk.datasync() : undefined]);
    if (logSynced.status === 'rejected') throw logSynced.reason;
    if (diskSynced.status === 'rejected') throw diskSynced.reason;
    seg.unflushed = false;
    this.diskDirty = false;
    this.al.markAllClean();
  }

  private async sealLocked(): Promise<SealedSegmentInfo | undefined> {
    await this.flushLocked();
    const seg = this.seg;
    if (seg.writeCount === 0) return undefined;
    const info = await sealSegment(seg, this.o.diskId, this.o.clock.now());
    this.sealedList.push(info);
    this.seg = await createSegment(this.o, seg.generation, seg.seq + 1, info.segmentChecksum, this.sizeBytes);
    return info;
  }

  private checkRange(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new InvalidInputError(
        'tracker.outOfRange',
        `cannot ${what} ${length} bytes at ${offset}: the disk has ${this.sizeBytes} bytes`,
      );
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new InvalidInputError('tracker.closed', `tracked disk ${this.o.diskId} is closed`);
  }
}

// --- recovery (§8) ---

interface Recovered {
  readonly generation: string;
  readonly seg: CurrentSegment;
  readonly sealed: SealedSegmentInfo[];
  readonly suspects: readonly ByteRange[];
  readonly truncatedBytes: number;
  readonly restart: GenerationRestart | undefined;
  /** Files to delete once the activity log names the generation. */
  readonly discard: readonly string[];
}

class Restart extends Error {
  constructor(
    readonly code: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** §8 steps 1–7: the generation to continue, its segments, the current one. */
async function recoverLog(o: Resolved, reading: ActivityLogReading, listed: readonly ListedSegment[], size: number): Promise<Recovered> {
  const generation = reading.kind === 'found' ? reading.page.generation : undefined;
  const others = listed.filter((s) => s.generation !== generation).map((s) => s.path);
  const ours = listed.filter((s) => s.generation === generation).sort((a, b) => a.seq - b.seq);
  let restart: Restart | undefined;
  if (reading.kind !== 'found') {
    restart = new Restart('activityLog.lost', reading.kind === 'missing' ? 'the activity log is missing' : `the activity log is unreadable: ${reading.reasons.map((r) => r.message).join('; ')}`);
  } else {
    try {
      const chain = await recoverChain(o, ours, size);
      return { generation: generation!, ...chain, suspects: reading.suspectsOnOpen, restart: undefined, discard: others };
    } catch (e) {
      if (!(e instanceof Restart)) throw e;
      restart = e;
    }
  }
  const fresh = newGenerationId();
  const seg = await createSegment(o, fresh, 1, 0, size);
  return {
    generation: fresh,
    seg,
    sealed: [],
    suspects: [],
    truncatedBytes: 0,
    restart: { previousGeneration: generation, code: restart.code, reason: restart.reason },
    discard: [...others, ...ours.map((s) => s.path)],
  };
}

/** §8 steps 3–7 for the segments of the current generation; throws `Restart`. */
async function recoverChain(
  o: Resolved,
  ours: readonly ListedSegment[],
  size: number,
): Promise<{ seg: CurrentSegment; sealed: SealedSegmentInfo[]; truncatedBytes: number }> {
  if (ours.length === 0) throw new Restart('segment.missing', 'no segment of the current generation exists');
  for (let i = 1; i < ours.length; i++) {
    if (ours[i]!.seq !== ours[i - 1]!.seq + 1) {
      throw new Restart('chain.gap', `segments ${ours[i - 1]!.seq + 1} … ${ours[i]!.seq - 1} are missing`);
    }
  }
  const sealed: SealedSegmentInfo[] = [];
  const link = (info: { seq: number; previousChecksum: number }): void => {
    const prev = sealed[sealed.length - 1];
    if (prev !== undefined && info.previousChecksum !== prev.segmentChecksum) {
      throw new Restart('chain.linkMismatch', `segment ${info.seq} does not link to segment ${prev.seq}`);
    }
  };
  for (const s of ours.slice(0, -1)) {
    const info = await readSealedInfo(o, s, size);
    if (typeof info === 'string') throw new Restart('segment.notSealed', `segment ${s.seq} is not sealed: ${info}`);
    link(info);
    sealed.push(info);
  }
  const last = ours[ours.length - 1]!;
  const lastInfo = await readSealedInfo(o, last, size);
  if (typeof lastInfo !== 'string') {
    // Stopped between sealing and creating the next segment (§8 step 5).
    link(lastInfo);
    sealed.push(lastInfo);
    const seg = await createSegment(o, last.generation, last.seq + 1, lastInfo.segmentChecksum, size);
    return { seg, sealed, truncatedBytes: 0 };
  }
  const fh = await fs.open(last.path, 'r+');
  try {
    const fileSize = (await fh.stat()).size;
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
    const { bytesRead } = await fh.read(head, 0, SEGMENT_HEADER_SIZE, 0);
    const checked = checkSegmentHeader(head.subarray(0, bytesRead));
    const prev = sealed[sealed.length - 1];
    if (!checked.ok) {
      if (fileSize >= SEGMENT_HEADER_SIZE) {
        if (checked.refusal.outcome === 'unknownVersion') {
          throw new InvalidInputError('segment.unknownVersion', `${last.path}: ${checked.refusal.message}`, {
            hint: 'It was written by a newer Lifeboat; upgrade this host to read it.',
          });
        }
        throw new Restart('segment.corrupt', `segment ${last.seq}: ${checked.refusal.message}`);
      }
      // Stopped while creating it: no record can exist yet (§8 step 6).
      if (last.seq !== 1 && prev?.seq !== last.seq - 1) {
        throw new Restart('segment.corrupt', `segment ${last.seq} has a torn header and its predecessor is gone`);
      }
      await fh.close();
      const seg = await createSegment(o, last.generation, last.seq, prev?.segmentChecksum ?? 0, size);
      return { seg, sealed, truncatedBytes: fileSize };
    }
    const h = checked.value;
    if (h.diskId !== o.diskId || h.generation !== last.generation || h.seq !== last.seq || h.diskSize !== size) {
      throw new Restart('segment.corrupt', `segment ${last.seq}: its header names another disk, size, generation or sequence number`);
    }
    link(h);
    const result = await scanSegmentFile(fh);
    let truncatedBytes = 0;
    if (result.outcome === 'trailingData' || result.outcome === 'sealed') {
      throw new Restart('segment.corrupt', `segment ${last.seq}: ${result.refusal?.message ?? 'sealed segment not recognised as sealed'}`);
    }
    if (result.outcome !== 'end') {
      const marker = await findFlushMarker(fh, result.validLength, fileSize);
      if (marker !== undefined) {
        throw new Restart(
          'segment.corrupt',
          `segment ${last.seq}: ${result.refusal?.message ?? result.outcome} at byte ${result.validLength}, before a completed flush (marker at ${marker})`,
        );
      }
      await fh.truncate(result.validLength);
      await fh.datasync();
      truncatedBytes = fileSize - result.validLength;
    }
    const seg: CurrentSegment = {
      fh,
      path: last.path,
      generation: h.generation,
      seq: h.seq,
      createdAt: h.createdAt,
      previousChecksum: h.previousChecksum,
      position: result.validLength,
      recordCount: result.recordCount,
      writeCount: result.writeCount,
      dataBytes: result.dataBytes,
      running: result.checksum,
      unflushed: false,
    };
    if (seg.writeCount === 0) return { seg, sealed, truncatedBytes };
    // §8 step 7: the writes from before the stop become sealed segments.
    const info = await sealSegment(seg, o.diskId, o.clock.now());
    sealed.push(info);
    const next = await createSegment(o, h.generation, h.seq + 1, info.segmentChecksum, size);
    return { seg: next, sealed, truncatedBytes };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/**
 * The seal of a segment file read cheaply (header and last 32 bytes, §8 step
 * 4), or why it is not a sealed segment of this disk.
 */
async function readSealedInfo(o: Resolved, s: ListedSegment, size: number): Promise<SealedSegmentInfo | string> {
  const fh = await fs.open(s.path, 'r');
  try {
    const fileBytes = (await fh.stat()).size;
    if (fileBytes < SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE) return 'too short';
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
    await fh.read(head, 0, SEGMENT_HEADER_SIZE, 0);
    const checked = checkSegmentHeader(head);
    if (!checked.ok) return checked.refusal.message;
    const h = checked.value;
    if (h.diskId !== o.diskId || h.generation !== s.generation || h.seq !== s.seq || h.diskSize !== size) {
      return 'its header names another disk, size, generation or sequence number';
    }
    const tail = Buffer.alloc(RECORD_HEADER_SIZE);
    await fh.read(tail, 0, RECORD_HEADER_SIZE, fileBytes - RECORD_HEADER_SIZE);
    const rec = checkRecordHeader(tail, 0, { diskSize: size, expectedIndex: 0, position: fileBytes - RECORD_HEADER_SIZE });
    if (!rec.ok || rec.value.type !== 'seal') return 'it does not end with a seal';
    const seal = rec.value;
    if (fileBytes !== SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE * (seal.recordCount + 1) + seal.dataBytes) {
      return 'its size disagrees with its seal';
    }
    return {
      diskId: h.diskId,
      generation: h.generation,
      seq: h.seq,
      path: s.path,
      fileBytes,
      recordCount: seal.recordCount,
      dataBytes: seal.dataBytes,
      createdAt: h.createdAt,
      sealedAt: seal.sealedAt,
      segmentChecksum: seal.segmentChecksum,
      previousChecksum: h.previousChecksum,
    };
  } finally {
    await fh.close();
  }
}

/**
 * Position of the first valid flush marker in `[from, to)` of the file
 * (§8 step 6), or `undefined`.
 */
async function findFlushMarker(fh: fs.FileHandle, from: number, to: number): Promise<number | undefined> {
  const buf = Buffer.allocUnsafe(MiB);
  let pos = from;
  while (to - pos >= RECORD_HEADER_SIZE) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead < RECORD_HEADER_SIZE) return undefined;
    for (let i = 0; i + RECORD_HEADER_SIZE <= bytesRead; i++) {
      if (buf[i] === RecordType.flush && isFlushMarkerAt(buf, i, pos + i)) return pos + i;
    }
    // Markers straddling two reads are found by the next one.
    pos += bytesRead - RECORD_HEADER_SIZE + 1;
  }
  return undefined;
}

// --- segment files ---

/** Create segment `seq` with its header, durable (§7.3 step 4). Replaces a file of that name. */
async function createSegment(o: Resolved, generation: string, seq: number, previousChecksum: number, diskSize: number): Promise<CurrentSegment> {
  const file = path.join(o.logDir, formatSegmentName({ diskId: o.diskId, generation, seq }));
  const createdAt = o.clock.now();
  const header = encodeSegmentHeader({ diskId: o.diskId, generation, seq, diskSize, createdAt, previousChecksum });
  const fh = await fs.open(file, 'w+');
  try {
    const { bytesWritten } = await fh.write(header, 0, header.length, 0);
    if (bytesWritten !== header.length) throw new Error(`short write to ${file}`);
    await fh.datasync();
    await syncDirectory(o.logDir);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return {
    fh,
    path: file,
    generation,
    seq,
    createdAt,
    previousChecksum,
    position: header.length,
    recordCount: 0,
    writeCount: 0,
    dataBytes: 0,
    running: crc32(header),
    unflushed: false,
  };
}

/** Append the seal, `fdatasync`, close (§7.3 step 3). The caller has flushed. */
async function sealSegment(seg: CurrentSegment, diskId: string, sealedAt: number): Promise<SealedSegmentInfo> {
  const seal = encodeSeal({ recordCount: seg.recordCount, dataBytes: seg.dataBytes, sealedAt, segmentChecksum: seg.running });
  const { bytesWritten } = await seg.fh.write(seal, 0, seal.length, seg.position);
  if (bytesWritten !== seal.length) throw new Error(`short write to ${seg.path}`);
  await seg.fh.datasync();
  await seg.fh.close();
  return {
    diskId,
    generation: seg.generation,
    seq: seg.seq,
    path: seg.path,
    fileBytes: seg.position + seal.length,
    recordCount: seg.recordCount,
    dataBytes: seg.dataBytes,
    createdAt: seg.createdAt,
    sealedAt,
    segmentChecksum: seg.running,
    previousChecksum: seg.previousChecksum,
  };
}

/** Segment files of `diskId` in `dir` (any generation), by name. */
async function listSegments(dir: string, diskId: string): Promise<ListedSegment[]> {
  const out: ListedSegment[] = [];
  for (const name of await fs.readdir(dir)) {
    const parsed = parseSegmentName(name);
    if (parsed !== undefined && parsed.diskId === diskId) {
      out.push({ path: path.join(dir, name), generation: parsed.generation, seq: parsed.seq });
    }
  }
  return out;
}

// --- helpers ---

function resolveOptions(options: TrackedDiskOptions): Resolved {
  const invalid = (message: string): never => {
    throw new InvalidInputError('tracker.invalidOptions', message);
  };
  if (!isDiskId(options.diskId)) invalid(`disk id ${JSON.stringify(options.diskId)} is invalid: use 1 to 64 of A-Z a-z 0-9 _ -`);
  const extentSize = options.activityLogExtentSize ?? DEFAULT_EXTENT_SIZE;
  if (!Number.isSafeInteger(extentSize) || extentSize < MIN_EXTENT_SIZE || extentSize > MAX_EXTENT_SIZE || (extentSize & (extentSize - 1)) !== 0) {
    invalid(`activity-log extent size ${extentSize} is not a power of two ${MIN_EXTENT_SIZE} … ${MAX_EXTENT_SIZE}`);
  }
  const slots = options.activityLogSlots ?? DEFAULT_SLOTS;
  if (!Number.isInteger(slots) || slots < 1 || slots > MAX_ACTIVITY_LOG_SLOTS) {
    invalid(`activity-log slots ${slots} is not 1 … ${MAX_ACTIVITY_LOG_SLOTS}`);
  }
  const diskPath = path.resolve(options.diskPath);
  const logDir = path.resolve(options.logDir ?? path.dirname(diskPath));
  return {
    diskPath,
    diskId: options.diskId,
    logDir,
    clock: options.clock ?? systemClock,
    extentSize,
    slots,
    alFile: path.join(logDir, `${options.diskId}.al`),
  };
}

function geometryOf(o: Resolved, diskSize: number): ActivityLogGeometry {
  return { extentSize: o.extentSize, slots: o.slots, diskSize };
}

function register(alFile: string): void {
  if (openLogs.has(alFile)) {
    throw new InvalidInputError('tracker.alreadyOpen', `the tracking files ${alFile} are already open in this process`, {
      hint: 'Use the TrackedDisk that is open, or close it first.',
    });
  }
  openLogs.add(alFile);
}

async function openOrCreateDisk(diskPath: string, sizeBytes: number | undefined): Promise<fs.FileHandle> {
  try {
    const fh = await fs.open(diskPath, 'r+');
    const { size } = await fh.stat();
    if (sizeBytes !== undefined && size !== sizeBytes) {
      await fh.close();
      throw new InvalidInputError('tracker.sizeMismatch', `disk file ${diskPath} has ${size} bytes, not ${sizeBytes}`);
    }
    return fh;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (sizeBytes === undefined) {
    throw new InvalidInputError('tracker.noDisk', `disk file ${diskPath} does not exist and no size was given to create it`);
  }
  assertDiskSize(sizeBytes, diskPath);
  const fh = await fs.open(diskPath, 'wx+');
  try {
    await fh.truncate(sizeBytes);
    await fh.datasync();
    await syncDirectory(path.dirname(diskPath));
  } catch (e) {
    await fh.close();
    throw e;
  }
  return fh;
}

function assertDiskSize(size: number, diskPath: string): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % SECTOR_SIZE !== 0) {
    throw new InvalidInputError('tracker.invalidDiskSize', `disk ${diskPath}: size ${size} is not a positive multiple of ${SECTOR_SIZE}`);
  }
}

function newGenerationId(): string {
  return randomBytes(8).toString('hex');
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function unlinkIfExists(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** The error that stops the tracker (class comment). */
function stoppingError(e: unknown, diskId: string): LifeboatError {
  if (LifeboatError.isInstance(e)) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const message = `tracking of disk ${diskId} failed: ${e instanceof Error ? e.message : String(e)}`;
  const hint = 'Free space or fix the storage, then close and reopen the disk; the open recovers as after an unclean stop.';
  return code === 'ENOSPC'
    ? new RecoverableError('tracker.noSpace', message, { cause: e, hint })
    : new RecoverableError('tracker.ioFailed', message, { cause: e, hint });
}
