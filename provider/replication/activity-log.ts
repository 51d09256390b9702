/**
 * The activity log of a tracked disk (docs/log-format.md §9): the extents
 * where writes may be in flight, made durable before the first write into an
 * extent (I3) and released only after a flush (I4), so that after an unclean
 * stop only those extents are suspect. DRBD's activity log, with a two-page
 * file instead of a ring of transactions.
 *
 * Used by `TrackedDisk` only, under its lock: not safe for concurrent calls.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { syncDirectory } from '../atomic-file';
import { InvalidInputError } from '../errors';
import {
  ACTIVITY_LOG_PAGE_SIZE,
  type ActivityLogPage,
  type ActivityLogState,
  type ByteRange,
  coalesceRanges,
  decodeActivityLogFile,
  encodeActivityLogFile,
  encodeActivityLogPage,
  type Refusal,
} from '../format';

/** Geometry and identity of an activity log. */
export interface ActivityLogGeometry {
  /** Extent size, a power of two 4 KiB … 1 GiB. */
  readonly extentSize: number;
  /** Slots, 1 … 503. */
  readonly slots: number;
  readonly diskSize: number;
}

/** What reading an activity-log file found (§9.5). */
export type ActivityLogReading =
  /** No file. */
  | { readonly kind: 'missing' }
  /** The file exists but no page, or the suspect section, is valid: every extent is suspect. */
  | { readonly kind: 'lost'; readonly reasons: readonly Refusal[] }
  | {
      readonly kind: 'found';
      /** The newer valid page. */
      readonly page: ActivityLogPage;
      /** The suspect section. */
      readonly suspects: readonly ByteRange[];
      /** `suspects` ∪ (if running) the page's extents, clipped and coalesced (§9.5). */
      readonly suspectsOnOpen: readonly ByteRange[];
    };

/**
 * Read the activity log at `file` (§9.5). Throws `InvalidInputError`
 * (`activityLog.unknownVersion`) if a page has a version this code does not
 * know; I/O errors other than a missing file propagate. Changes nothing.
 */
export async function readActivityLog(file: string): Promise<ActivityLogReading> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw e;
  }
  const content = decodeActivityLogFile(bytes);
  if (content.page === undefined && content.refusals.some((r) => r.outcome === 'unknownVersion')) {
    throw new InvalidInputError('activityLog.unknownVersion', `${file}: activity log of an unknown format version`, {
      hint: 'It was written by a newer Lifeboat; upgrade this host to read it.',
    });
  }
  if (content.page === undefined || content.suspects === undefined) return { kind: 'lost', reasons: content.refusals };
  const page = content.page;
  const running = page.state === 'running' ? page.extents.map((e) => extentRange(e, page.extentSize)) : [];
  return {
    kind: 'found',
    page,
    suspects: content.suspects,
    suspectsOnOpen: coalesceRanges([...content.suspects, ...running], page.diskSize),
  };
}

/** The byte range of extent `n`, not clipped. */
function extentRange(n: number, extentSize: number): ByteRange {
  return { offset: n * extentSize, length: extentSize };
}

interface Entry {
  /** Written since the last flush: may not leave the log (I4). */
  dirty: boolean;
}

/**
 * An open activity log. Create one with `ActivityLog.replace`, which writes
 * a whole new file atomically; then `activate` extents before writing into
 * them, `markAllClean` after each flush, and `close(clean)`.
 */
export class ActivityLog {
  /** Active extents in least-recently-used order (Map order: oldest first). */
  private readonly active = new Map<number, Entry>();
  private transaction: number;
  /** Index (0 or 1) of the page holding the older transaction: the next to write. */
  private nextPage: 0 | 1 = 0;
  private generationId: string;
  private suspectRanges: readonly ByteRange[];

  private constructor(
    private readonly file: string,
    private fh: fs.FileHandle | undefined,
    readonly geometry: ActivityLogGeometry,
    generation: string,
    transaction: number,
    suspects: readonly ByteRange[],
  ) {
    this.generationId = generation;
    this.transaction = transaction;
    this.suspectRanges = suspects;
  }

  /**
   * Replace the file at `file` by a new one (§9.4: temporary file,
   * `fdatasync`, rename, directory `fsync`) in state running with no active
   * extents, the given suspects and generation, and transaction numbers
   * after `lastTransaction`. If it fails, the old file is intact (a leftover
   * temporary file is removed on the next open). Throws `InvalidInputError`
   * (`activityLog.invalid`) for an invalid geometry.
   */
  static async replace(
    file: string,
    geometry: ActivityLogGeometry,
    generation: string,
    suspects: readonly ByteRange[],
    lastTransaction = 0,
  ): Promise<ActivityLog> {
    const log = new ActivityLog(file, undefined, geometry, generation, lastTransaction, suspects);
    await log.rewrite();
    return log;
  }

  /** The current generation, as recorded. */
  get generation(): string {
    return this.generationId;
  }

  /** Suspect ranges recorded in the file (§9.4). */
  get suspects(): readonly ByteRange[] {
    return this.suspectRanges;
  }

  /** Number of active extents. */
  get activeCount(): number {
    return this.active.size;
  }

  /** The active extents, least recently used first. */
  activeExtents(): number[] {
    return [...this.active.keys()];
  }

  /**
   * True if every extent `first … last` is active; marks them most recently
   * used. Costs no I/O: the write path's fast check.
   */
  touch(first: number, last: number): boolean {
    for (let e = first; e <= last; e++) if (!this.active.has(e)) return false;
    for (let e = first; e <= last; e++) {
      const entry = this.active.get(e)!;
      this.active.delete(e);
      this.active.set(e, entry);
    }
    return true;
  }

  /**
   * Make extents `first … last` active and durable (§9.3), evicting the least
   * recently used clean extents when slots run out; if too few are clean,
   * calls `flush` first (which must make every write durable and then call
   * `markAllClean`). At most `slots` extents at once. If it fails, the file
   * holds either the previous state or the new one, both safe (§9.3).
   */
  async activate(first: number, last: number, flush: () => Promise<void>): Promise<void> {
    const count = last - first + 1;
    if (count > this.geometry.slots) {
      throw new InvalidInputError('activityLog.tooManyExtents', `${count} extents do not fit ${this.geometry.slots} slots`);
    }
    if (this.touch(first, last)) return;
    const isNeeded = (e: number): boolean => e >= first && e <= last;
    let missing = 0;
    for (let e = first; e <= last; e++) if (!this.active.has(e)) missing++;
    const excess = this.active.size + missing - this.geometry.slots;
    if (excess > 0) {
      let victims = this.cleanVictims(excess, isNeeded);
      if (victims.length < excess) {
        await flush();
        victims = this.cleanVictims(excess, isNeeded);
      }
      for (const v of victims) this.active.delete(v);
    }
    for (let e = first; e <= last; e++) {
      const entry = this.active.get(e) ?? { dirty: false };
      this.active.delete(e);
      this.active.set(e, entry);
    }
    await this.writePage('running');
  }

  /** Mark extents `first … last` as written since the last flush (they may not be evicted). */
  markDirty(first: number, last: number): void {
    for (let e = first; e <= last; e++) {
      const entry = this.active.get(e);
      if (entry !== undefined) entry.dirty = true;
    }
  }

  /** After a flush made every write durable: every extent may be evicted (I4). */
  markAllClean(): void {
    for (const entry of this.active.values()) entry.dirty = false;
  }

  /** Record a new generation (§7.4 step 3), durable. */
  async setGeneration(generation: string): Promise<void> {
    const previous = this.generationId;
    this.generationId = generation;
    try {
      await this.writePage('running');
    } catch (e) {
      this.generationId = previous;
      throw e;
    }
  }

  /** Replace the suspect ranges (§9.4), durable. If it fails, the old ones stay. */
  async setSuspects(ranges: readonly ByteRange[]): Promise<void> {
    const previous = this.suspectRanges;
    this.suspectRanges = coalesceRanges(ranges, this.geometry.diskSize);
    try {
      await this.rewrite();
    } catch (e) {
      this.suspectRanges = previous;
      throw e;
    }
  }

  /**
   * Close the file. With `clean` (every write flushed, §7.6) first write a
   * page in state clean with no extents, durable; without, leave the file as
   * it is, so the next open sees an unclean stop. Idempotent.
   */
  async close(clean: boolean): Promise<void> {
    if (this.fh === undefined) return;
    try {
      if (clean) {
        this.active.clear();
        await this.writePage('clean');
      }
    } finally {
      const fh = this.fh;
      this.fh = undefined;
      await fh.close();
    }
  }

  private cleanVictims(count: number, isNeeded: (e: number) => boolean): number[] {
    const out: number[] = [];
    for (const [e, entry] of this.active) {
      if (out.length === count) break;
      if (!entry.dirty && !isNeeded(e)) out.push(e);
    }
    return out;
  }

  private page(state: ActivityLogState, transaction: number): ActivityLogPage {
    return {
      slotCount: this.geometry.slots,
      transaction,
      extentSize: this.geometry.extentSize,
      diskSize: this.geometry.diskSize,
      generation: this.generationId,
      state,
      extents: state === 'clean' ? [] : [...this.active.keys()],
    };
  }

  /** Write the older page with the next transaction number, `fdatasync` (§9.3). */
  private async writePage(state: ActivityLogState): Promise<void> {
    const fh = this.fh;
    if (fh === undefined) throw new InvalidInputError('activityLog.closed', 'the activity log is closed');
    const bytes = encodeActivityLogPage(this.page(state, this.transaction + 1));
    const { bytesWritten } = await fh.write(bytes, 0, bytes.length, this.nextPage * ACTIVITY_LOG_PAGE_SIZE);
    if (bytesWritten !== bytes.length) throw new Error(`short write to ${this.file}`);
    await fh.datasync();
    this.transaction++;
    this.nextPage = this.nextPage === 0 ? 1 : 0;
  }

  /** Replace the whole file (§9.4); afterwards page 1 is the newer one. */
  private async rewrite(): Promise<void> {
    const first = this.transaction + 1;
    const bytes = encodeActivityLogFile(this.page('running', first), this.suspectRanges);
    const tmp = `${this.file}.tmp`;
    const out = await fs.open(tmp, 'w');
    try {
      await out.writeFile(bytes);
      await out.datasync();
    } finally {
      await out.close();
    }
    await fs.rename(tmp, this.file);
    await syncDirectory(path.dirname(this.file));
    const old = this.fh;
    this.fh = await fs.open(this.file, 'r+');
    await old?.close();
    this.transaction = first + 1;
    this.nextPage = 0;
  }
}
