/**
 * A read-only view of a disk at a recovery point (docs/replica-format.md §9):
 * the head's bytes overlaid with the merged undo map of the cycles after the
 * point. Built from undo indexes only; reads are lazy.
 */
import { InvalidInputError, ReplicaStateError } from '../../errors';
import { type DiskView, type RecoveryPointInfo } from '../../replication/target';
import { type FileHandleLike } from './file-ops';
import { classifyIoError } from './io-errors';
import { fillGaps, firstEndingAfter, type MappedExtent } from './extent-map';
import { closeAll } from './rollback';
import { type UndoExtent } from './undo-log';

/** What building and keeping a view cost; for tests and measurements. */
export interface ViewStats {
  /** Undo index entries read to build the view (§9: proportional to extents changed since the point). */
  readonly extentsConsulted: number;
  /** Undo files the view reads. */
  readonly undoFiles: number;
  /** Extents in the merged map now. */
  readonly mappedExtents: number;
  /** Index entries added by cycles committed while the view was open. */
  readonly extentsIncorporated: number;
}

/** What a view needs from its disk. */
export interface ViewHost {
  /** Run under the disk's lock, after any pending recovery. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
  /** Fill `buf` with the head's bytes at `offset` (the replica, overlaid with an open cycle's undo). */
  readHead(buf: Buffer, offset: number): Promise<void>;
  /** Forget a closed view. */
  release(view: HostDiskView): void;
}

/**
 * A view of a host replica at one point. Stays the view of that point while
 * cycles commit and points are pruned; invalidated by a rollback, deleting or
 * closing the disk (then `read` throws `ReplicaStateError`
 * `replica.viewClosed`). Reads outside the disk throw `InvalidInputError`
 * (`replica.readOutOfRange`); I/O errors are classified.
 */
export class HostDiskView implements DiskView {
  private map: MappedExtent[];
  private readonly sources: FileHandleLike[];
  private closedReason: string | undefined;
  private incorporated = 0;
  private readonly built: number;

  constructor(
    private readonly host: ViewHost,
    readonly sizeBytes: number,
    readonly point: RecoveryPointInfo,
    /** Cycle number of the point. */
    readonly cycle: number,
    sources: FileHandleLike[],
    map: MappedExtent[],
    extentsConsulted: number,
  ) {
    this.sources = sources;
    this.map = map;
    this.built = extentsConsulted;
  }

  get stats(): ViewStats {
    return { extentsConsulted: this.built, undoFiles: this.sources.length, mappedExtents: this.map.length, extentsIncorporated: this.incorporated };
  }

  /**
   * The byte ranges where the view differs, or may differ, from the head:
   * the extents of every cycle committed after the point (sorted, disjoint).
   * Reprotect uses them as the blocks the old primary shipped after a
   * failover point (docs/failover.md §7). No I/O.
   */
  changedExtents(): readonly { readonly offset: number; readonly length: number }[] {
    return this.map.map((e) => ({ offset: e.start, length: e.end - e.start }));
  }

  /** Whether the view can still be read. */
  get usable(): boolean {
    return this.closedReason === undefined;
  }

  read(offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      return Promise.reject(
        new InvalidInputError('replica.readOutOfRange', `Read of ${length} bytes at ${offset} is outside the disk (${this.sizeBytes} bytes)`, {
          details: { offset, length, sizeBytes: this.sizeBytes },
          hint: 'Read within [0, sizeBytes).',
        }),
      );
    }
    return this.host.locked(async () => {
      this.assertUsable();
      const buf = Buffer.alloc(length);
      if (length === 0) return buf;
      try {
        await this.host.readHead(buf, offset);
        const end = offset + length;
        for (let i = firstEndingAfter(this.map, offset, (m) => m.end); i < this.map.length; i++) {
          const m = this.map[i]!;
          if (m.start >= end) break;
          const from = Math.max(m.start, offset);
          const to = Math.min(m.end, end);
          if (m.zero) buf.fill(0, from - offset, to - offset);
          else await readFully(this.sources[m.source]!, buf, from - offset, to - from, m.payloadPos + (from - m.start));
        }
      } catch (e) {
        throw classifyIoError(e, `read view of point ${this.point.id}`);
      }
      return buf;
    });
  }

  close(): Promise<void> {
    if (this.closedReason !== undefined) return Promise.resolve();
    this.host.release(this);
    return this.invalidate('the view was closed');
  }

  /**
   * Add a cycle committed after the view was built: its extents fill the
   * map's gaps (§9). The view takes ownership of `handle`. Called by the disk
   * under its lock.
   */
  incorporate(handle: FileHandleLike, extents: readonly UndoExtent[]): void {
    this.sources.push(handle);
    this.map = fillGaps(this.map, { source: this.sources.length - 1, extents });
    this.incorporated += extents.length;
  }

  /** Make the view unusable and release its files. Idempotent. */
  async invalidate(reason: string): Promise<void> {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.map = [];
    await closeAll(this.sources.splice(0));
  }

  private assertUsable(): void {
    if (this.closedReason !== undefined) {
      throw new ReplicaStateError('replica.viewClosed', `The view of point ${this.point.id} is no longer usable: ${this.closedReason}`, {
        details: { pointId: this.point.id },
        hint: 'Open a new view of the point, if it still exists.',
      });
    }
  }
}

async function readFully(h: FileHandleLike, buf: Buffer, at: number, length: number, position: number): Promise<void> {
  const n = await h.read(buf, at, length, position);
  if (n !== length) {
    throw new ReplicaStateError('replica.corrupt', 'An undo file is shorter than its index says', {
      details: { position, length },
      hint: 'Points older than the damaged cycle cannot be read; prune them or resynchronise the disk.',
    });
  }
}
