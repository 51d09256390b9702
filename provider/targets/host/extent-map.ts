/**
 * Interval structures of docs/replica-format.md §9: the coverage of an open
 * cycle's undo file (which bytes it already saved, I3) and the merged extent
 * map of a view (for each byte, the undo of the earliest cycle after the point
 * wins). Pure: no I/O.
 */
import { type UndoExtent } from './undo-log';

/** A piece of a merged map: bytes `[start, end)` come from `source` at `payloadPos`, or are zero. */
export interface MappedExtent {
  readonly start: number;
  readonly end: number;
  /** Index of the undo file (the caller's numbering). */
  readonly source: number;
  readonly zero: boolean;
  /** File position of byte `start`; meaningless for zero extents. */
  readonly payloadPos: number;
}

/** One undo file's extents, as an input of `mergeEarliestWins`. */
export interface UndoLayer {
  readonly source: number;
  readonly extents: readonly UndoExtent[];
}

/** Index of the first element whose end is above `offset` (elements sorted and disjoint). */
export function firstEndingAfter<T>(items: readonly T[], offset: number, endOf: (t: T) => number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (endOf(items[mid]!) <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const extentEnd = (e: UndoExtent): number => e.offset + e.length;

/**
 * The extents an open cycle's undo file already holds, sorted and disjoint
 * (I3). Memory is proportional to the number of extents, not their bytes.
 */
export class CoverageSet {
  private readonly items: UndoExtent[] = [];

  /** Saved extents in offset order. */
  get extents(): readonly UndoExtent[] {
    return this.items;
  }

  /** Parts of `[offset, end)` not yet saved, in order. */
  gaps(offset: number, end: number): Array<readonly [number, number]> {
    const out: Array<readonly [number, number]> = [];
    let pos = offset;
    for (let i = firstEndingAfter(this.items, offset, extentEnd); i < this.items.length && pos < end; i++) {
      const e = this.items[i]!;
      if (e.offset >= end) break;
      if (e.offset > pos) out.push([pos, e.offset]);
      pos = Math.max(pos, extentEnd(e));
    }
    if (pos < end) out.push([pos, end]);
    return out;
  }

  /** Add an extent that overlaps none already present. */
  add(e: UndoExtent): void {
    const i = firstEndingAfter(this.items, e.offset, extentEnd);
    const next = this.items[i];
    if (next !== undefined && next.offset < extentEnd(e)) throw new RangeError('coverage overlap');
    if (i === this.items.length) this.items.push(e);
    else this.items.splice(i, 0, e);
  }

  /** Remove an extent previously added (same offset). */
  remove(e: UndoExtent): void {
    const i = firstEndingAfter(this.items, e.offset, extentEnd);
    if (this.items[i]?.offset === e.offset) this.items.splice(i, 1);
  }

  /** Saved extents that intersect `[offset, end)`, in order. */
  *overlapping(offset: number, end: number): Generator<UndoExtent> {
    for (let i = firstEndingAfter(this.items, offset, extentEnd); i < this.items.length; i++) {
      const e = this.items[i]!;
      if (e.offset >= end) return;
      yield e;
    }
  }
}

interface Active {
  readonly rank: number;
  readonly end: number;
  readonly start: number;
  readonly source: number;
  readonly zero: boolean;
  readonly payloadPos: number;
}

/** Min-heap on rank. */
class RankHeap {
  private readonly a: Active[] = [];

  get size(): number {
    return this.a.length;
  }

  peek(): Active | undefined {
    return this.a[0];
  }

  push(x: Active): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.rank <= a[i]!.rank) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): void {
    const a = this.a;
    const last = a.pop()!;
    if (a.length === 0) return;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.rank < a[m]!.rank) m = l;
      if (r < a.length && a[r]!.rank < a[m]!.rank) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

function pushMerged(out: MappedExtent[], x: MappedExtent): void {
  const prev = out[out.length - 1];
  if (
    prev !== undefined &&
    prev.end === x.start &&
    prev.source === x.source &&
    prev.zero === x.zero &&
    (x.zero || prev.payloadPos + (prev.end - prev.start) === x.payloadPos)
  ) {
    out[out.length - 1] = { ...prev, end: x.end };
  } else {
    out.push(x);
  }
}

/**
 * Merge undo layers into one sorted, disjoint map where, for every byte, the
 * layer listed first wins (§9: pass layers in ascending cycle order). The
 * extents of one layer must be disjoint. O(E log E) for E extents.
 */
export function mergeEarliestWins(layers: readonly UndoLayer[]): MappedExtent[] {
  const all: Active[] = [];
  layers.forEach((layer, rank) => {
    for (const e of layer.extents) {
      all.push({ rank, start: e.offset, end: e.offset + e.length, source: layer.source, zero: e.zero, payloadPos: e.payloadPos });
    }
  });
  all.sort((x, y) => x.start - y.start);
  const out: MappedExtent[] = [];
  const heap = new RankHeap();
  let i = 0;
  let pos = 0;
  while (i < all.length || heap.size > 0) {
    if (heap.size === 0) pos = Math.max(pos, all[i]!.start);
    while (i < all.length && all[i]!.start <= pos) heap.push(all[i++]!);
    while (heap.size > 0 && heap.peek()!.end <= pos) heap.pop();
    const top = heap.peek();
    if (top === undefined) continue;
    const next = Math.min(top.end, i < all.length ? all[i]!.start : Number.POSITIVE_INFINITY);
    pushMerged(out, { start: pos, end: next, source: top.source, zero: top.zero, payloadPos: top.payloadPos + (pos - top.start) });
    pos = next;
  }
  return out;
}

/**
 * Add a newer layer to a merged map where the map has nothing (§9: a cycle
 * committed while a view is open never wins against older undo). O(n + m).
 */
export function fillGaps(map: readonly MappedExtent[], layer: UndoLayer): MappedExtent[] {
  const out: MappedExtent[] = [];
  const newer = [...layer.extents].sort((a, b) => a.offset - b.offset);
  let j = 0;
  for (const e of newer) {
    let pos = e.offset;
    const end = e.offset + e.length;
    while (pos < end) {
      while (j < map.length && map[j]!.end <= pos) pushMerged(out, map[j++]!);
      const m = map[j];
      if (m !== undefined && m.start <= pos) {
        pos = m.end;
        continue;
      }
      const gapEnd = Math.min(end, m === undefined ? end : m.start);
      pushMerged(out, { start: pos, end: gapEnd, source: layer.source, zero: e.zero, payloadPos: e.payloadPos + (pos - e.offset) });
      pos = gapEnd;
    }
  }
  while (j < map.length) pushMerged(out, map[j++]!);
  return out;
}
