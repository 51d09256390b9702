/**
 * The oracle of lab tests (docs/lab.md §5): what a disk must hold after the
 * first `ops` operations of its workload stream, recomputed from the seed
 * alone, and a byte-exact comparison of a disk (a file, a replica, a
 * failed-over disk) against it. Memory is proportional to the number of
 * distinct extents written, never to the disk size.
 */

import { type ByteRange } from '../../format';
import { ExtentMap } from '../../replication/extent-map';
import { MiB } from '../../units';
import { type WorkloadOptions, takeWorkloadOps, workloadData, workloadOps } from './workload';

/** Something a verifier can read. `TrackedDisk`, `DiskView` and overlays are. */
export interface DiskReader {
  readonly sizeBytes: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export interface VerifyWorkloadOptions {
  /** The disk to check. */
  readonly disk: DiskReader;
  /** The disk's workload stream (`diskWorkloadOptions`). */
  readonly workload: WorkloadOptions;
  /** The first `ops` operations of the stream were applied (a guest journal's `nextOp` or `flushedOps`). */
  readonly ops: number;
  /** The disk before the stream's first operation. @default zeros (a new lab disk) */
  readonly base?: DiskReader;
  /** Bytes compared at a time. @default 1 MiB */
  readonly chunkBytes?: number;
  /** Stop collecting after this many mismatching ranges. @default 16 */
  readonly maxMismatches?: number;
}

export interface VerifyWorkloadResult {
  /** The disk equals the expected content byte for byte. */
  readonly ok: boolean;
  /** The first mismatching byte ranges, in order. */
  readonly mismatches: readonly ByteRange[];
  /** Writes among the operations. */
  readonly writes: number;
  /** Distinct bytes those writes cover. */
  readonly writtenBytes: number;
}

/** Which write last wrote each byte: the seed of its data and the byte's position in it. */
function lastWriters(workload: WorkloadOptions, ops: number): { map: ExtentMap<number>; writes: number } {
  const map = new ExtentMap<number>();
  let writes = 0;
  if (ops > 0) {
    let i = 0;
    for (const op of workloadOps(workload)) {
      if (op.kind === 'write') {
        map.add(op.offset, op.length, op.dataSeed, 0);
        writes++;
      }
      if (++i === ops) break;
    }
  }
  return { map, writes };
}

/**
 * The expected bytes `[offset, offset + length)` after the first `ops`
 * operations, over `base` (or zeros). Pure apart from reading `base`. For
 * small disks and tests; `verifyWorkloadDisk` streams instead.
 */
export async function expectedWorkloadBytes(workload: WorkloadOptions, ops: number, base?: DiskReader): Promise<Buffer> {
  const out = base === undefined ? Buffer.alloc(workload.diskSize) : await base.read(0, workload.diskSize);
  for (const op of takeWorkloadOps(workload, ops)) {
    if (op.kind === 'write') workloadData(op.dataSeed, op.length).copy(out, op.offset);
  }
  return out;
}

/**
 * Compare `disk` with the content the first `ops` operations of `workload`
 * give over `base`. Reads the whole disk once, in chunks. Throws what the
 * readers throw, and `RangeError` if the disk's size differs from the
 * workload's.
 */
export async function verifyWorkloadDisk(o: VerifyWorkloadOptions): Promise<VerifyWorkloadResult> {
  const size = o.workload.diskSize;
  if (o.disk.sizeBytes !== size || (o.base !== undefined && o.base.sizeBytes !== size)) {
    throw new RangeError(`disk of ${o.disk.sizeBytes} bytes (base ${o.base?.sizeBytes ?? 'zeros'}) does not match a workload of ${size} bytes`);
  }
  const chunk = o.chunkBytes ?? MiB;
  const maxMismatches = o.maxMismatches ?? 16;
  const { map, writes } = lastWriters(o.workload, o.ops);
  const extents = map.extents();
  let pending = extents.next();
  const mismatches: ByteRange[] = [];
  for (let at = 0; at < size && mismatches.length < maxMismatches; at += chunk) {
    const n = Math.min(chunk, size - at);
    const end = at + n;
    const expected = o.base === undefined ? Buffer.alloc(n) : await o.base.read(at, n);
    // Extents are in offset order and disjoint: those overlapping this chunk come next.
    while (!pending.done && pending.value.offset < end) {
      const e = pending.value;
      const from = Math.max(at, e.offset);
      const to = Math.min(end, e.offset + e.length);
      const position = e.position + (from - e.offset);
      workloadData(e.source, position + (to - from)).copy(expected, from - at, position);
      if (e.offset + e.length > end) break;
      pending = extents.next();
    }
    const actual = await o.disk.read(at, n);
    if (!actual.equals(expected)) collect(actual, expected, at, mismatches, maxMismatches);
  }
  return { ok: mismatches.length === 0, mismatches, writes, writtenBytes: map.coveredBytes };
}

/** Append the ranges where `a` and `b` differ (offsets shifted by `at`), merging with the last one. */
function collect(a: Buffer, b: Buffer, at: number, out: ByteRange[], max: number): void {
  let i = 0;
  while (i < a.length) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < a.length && a[j] !== b[j]) j++;
    const last = out[out.length - 1];
    if (last !== undefined && last.offset + last.length === at + i) {
      out[out.length - 1] = { offset: last.offset, length: last.length + (j - i) };
    } else {
      if (out.length >= max) return;
      out.push({ offset: at + i, length: j - i });
    }
    i = j;
  }
}
