/**
 * Coalescing of log records for shipping (DESIGN.md §3.3,
 * docs/log-format.md I8): given write records in log order, the final set of
 * non-overlapping extents where only the latest bytes of overlapping writes
 * survive, each pointing at where those bytes live (a segment file and a
 * position), so the shipper reads every surviving byte exactly once and
 * nothing else.
 *
 * Memory is proportional to the number of extents in the map, never to the
 * bytes; an insertion costs O(log n + k + B), k the extents it overwrites and
 * B a chunk size.
 */

import { LifeboatError, ResyncRequiredError } from '../errors';
import { assertChain } from '../format';
import { SegmentReader, type SegmentReaderOptions, type SegmentRecordRef } from './segment-reader';

/** One extent of the map: disk bytes `[offset, offset + length)` and where they are. */
export interface MappedExtent<S> {
  readonly offset: number;
  readonly length: number;
  /** Where the bytes live (the caller's tag, e.g. a segment reader). */
  readonly source: S;
  /** Position of the first byte within the source (e.g. a file position). */
  readonly position: number;
}

interface Entry<S> {
  start: number;
  end: number;
  source: S;
  position: number;
}

/** Entries per chunk before it splits in two. */
const CHUNK = 512;

/**
 * The latest source of every byte written so far. `add` records a write
 * that supersedes every earlier one where they overlap. Not safe for
 * concurrent use (there is nothing asynchronous in it).
 */
export class ExtentMap<S> {
  // Entries sorted by start, non-overlapping, split into chunks of at most
  // 2 · CHUNK so that an insertion moves few array slots.
  private chunks: Entry<S>[][] = [];
  private count = 0;
  private bytes = 0;

  /** Number of extents. */
  get size(): number {
    return this.count;
  }

  /** Bytes covered by the extents. */
  get coveredBytes(): number {
    return this.bytes;
  }

  /**
   * Record that `length` bytes at disk `offset` now come from `source` at
   * `position` (later calls win). A zero-length write is ignored. Throws
   * `RangeError` for a negative or non-integer offset or length.
   */
  add(offset: number, length: number, source: S, position: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`invalid extent ${offset}+${length}`);
    }
    if (length === 0) return;
    const a = offset;
    const b = offset + length;
    const fresh: Entry<S> = { start: a, end: b, source, position };
    let [ci, i] = this.locate(a);
    // An entry starting before `a` keeps its head; if it also ends after `b`, its tail too.
    if (ci < this.chunks.length) {
      const chunk = this.chunks[ci]!;
      const e = chunk[i]!;
      if (e.start < a) {
        if (e.end > b) {
          const tail: Entry<S> = { start: b, end: e.end, source: e.source, position: e.position + (b - e.start) };
          e.end = a;
          // `fresh` takes exactly its own length out of `e`: covered bytes are unchanged.
          chunk.splice(i + 1, 0, fresh, tail);
          this.count += 2;
          this.split(ci);
          return;
        }
        this.bytes -= e.end - a;
        e.end = a;
        i++;
        if (i === chunk.length) {
          ci++;
          i = 0;
        }
      }
    }
    // Entries inside [a, b) disappear.
    while (ci < this.chunks.length) {
      const chunk = this.chunks[ci]!;
      let j = i;
      while (j < chunk.length && chunk[j]!.end <= b) {
        this.bytes -= chunk[j]!.end - chunk[j]!.start;
        j++;
      }
      if (j > i) {
        chunk.splice(i, j - i);
        this.count -= j - i;
      }
      if (i < chunk.length) break;
      if (chunk.length === 0) this.chunks.splice(ci, 1);
      else ci++;
      i = 0;
    }
    // An entry reaching past `b` loses its head.
    if (ci < this.chunks.length) {
      const e = this.chunks[ci]![i]!;
      if (e.start < b) {
        this.bytes -= b - e.start;
        e.position += b - e.start;
        e.start = b;
      }
    }
    if (ci === this.chunks.length) {
      if (ci === 0) this.chunks.push([]);
      else ci--;
      i = this.chunks[ci]!.length;
    }
    this.chunks[ci]!.splice(i, 0, fresh);
    this.count++;
    this.bytes += length;
    this.split(ci);
  }

  /** The extents in offset order. */
  *extents(): IterableIterator<MappedExtent<S>> {
    for (const chunk of this.chunks) {
      for (const e of chunk) yield { offset: e.start, length: e.end - e.start, source: e.source, position: e.position };
    }
  }

  /** (chunk, index) of the first entry ending after `x`; (chunks.length, 0) if none. */
  private locate(x: number): [number, number] {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.chunks[mid]!;
      if (c[c.length - 1]!.end > x) hi = mid;
      else lo = mid + 1;
    }
    if (lo === this.chunks.length) return [lo, 0];
    const c = this.chunks[lo]!;
    let l = 0;
    let h = c.length - 1;
    while (l < h) {
      const mid = (l + h) >>> 1;
      if (c[mid]!.end > x) h = mid;
      else l = mid + 1;
    }
    return [lo, l];
  }

  private split(ci: number): void {
    const chunk = this.chunks[ci]!;
    if (chunk.length <= 2 * CHUNK) return;
    this.chunks.splice(ci + 1, 0, chunk.splice(CHUNK));
  }
}

/** A sealed segment to coalesce: its file and what it must be. */
export interface SegmentToCoalesce {
  readonly path: string;
  readonly seq: number;
}

/** Coalesced segments, ready to ship; `close()` when done. */
export interface CoalescedSegments {
  /** Extents in offset order; `read` each to get its bytes. */
  readonly extents: readonly MappedExtent<SegmentReader>[];
  /** Bytes of the extents (what will be shipped, before compression). */
  readonly bytes: number;
  /** Bytes of write data in the segments (before coalescing). */
  readonly dataBytes: number;
  /** The bytes of one extent, from its segment file. */
  read(extent: MappedExtent<SegmentReader>): Promise<Buffer>;
  /** Close the segment files. Idempotent. */
  close(): Promise<void>;
}

export interface CoalesceOptions {
  /** Disk id every segment must name. */
  readonly diskId: string;
  /** Generation every segment must belong to. */
  readonly generation: string;
  /** Disk size every segment must name. @default not checked */
  readonly diskSize?: number;
}

/**
 * Open a sealed segment of this tracker's own chain. An unknown format
 * version there is not a newer Lifeboat's file but damage to the header
 * (bytes 8–9), so it means resync like any other corruption (§8.1).
 */
async function openForShipping(file: string, options: SegmentReaderOptions): Promise<SegmentReader> {
  try {
    return await SegmentReader.open(file, options);
  } catch (e) {
    if (LifeboatError.isInstance(e) && e.code === 'segment.unknownVersion') {
      throw new ResyncRequiredError('segment.corrupt', `${file}: the header of a sealed segment is damaged (${e.message})`, {
        cause: e,
        hint: 'A segment of the replication log is corrupt; the item needs a resynchronisation.',
      });
    }
    throw e;
  }
}

/**
 * Verify sealed segments (every byte, §8.1), check that they form a chain
 * (§5) in the given order, and coalesce their write records (I8). Nothing
 * is returned until every segment verified, so a caller never ships part of
 * a corrupt log. Throws `ResyncRequiredError` (`segment.*`, `chain.*`) if a
 * segment is missing, corrupt, not sealed or out of chain; leaves no file
 * open on failure.
 */
export async function coalesceSegments(segments: readonly SegmentToCoalesce[], options: CoalesceOptions): Promise<CoalescedSegments> {
  const readers: SegmentReader[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(readers.map((r) => r.close()));
  };
  try {
    const map = new ExtentMap<SegmentReader>();
    const links = [];
    let dataBytes = 0;
    for (const s of segments) {
      const reader = await openForShipping(s.path, {
        expect: { diskId: options.diskId, generation: options.generation, seq: s.seq, diskSize: options.diskSize },
      });
      readers.push(reader);
      const it = reader.records();
      let next: IteratorResult<SegmentRecordRef, unknown>;
      while ((next = await it.next()).done !== true) {
        const r = next.value;
        map.add(r.offset, r.length, reader, r.dataPosition);
        dataBytes += r.length;
      }
      const summary = reader.summary;
      if (summary === undefined) throw new ResyncRequiredError('segment.notSealed', `${s.path}: verification did not complete`);
      links.push({ header: reader.header, segmentChecksum: summary.seal.segmentChecksum });
    }
    assertChain(links);
    return {
      extents: [...map.extents()],
      bytes: map.coveredBytes,
      dataBytes,
      read: (e) => e.source.read(e.position, e.length),
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
