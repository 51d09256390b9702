/**
 * The activity-log file codec (docs/log-format.md §9): two pages, the newer
 * valid one being the state, and a suspect section. Pure.
 */

import { InvalidInputError } from '../errors';
import { crc32 } from './crc';
import {
  ACTIVITY_LOG_MAGIC,
  ACTIVITY_LOG_PAGE_HEADER_SIZE,
  ACTIVITY_LOG_PAGE_SIZE,
  FORMAT_VERSION,
  MAX_ACTIVITY_LOG_SLOTS,
  MAX_EXTENT_SIZE,
  MIN_EXTENT_SIZE,
  SUSPECT_MAGIC,
} from './layout';
import { type Checked, type Refusal } from './outcome';
import { generationFromBytes, generationToBytes } from './segment-name';
import { isZero, readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './u64';

/** A byte range of the disk, `[offset, offset + length)`. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** State of the tracker when a page was written (§9.2). */
export type ActivityLogState =
  /** Writes may be in flight: the page's extents may differ between disk and log. */
  | 'running'
  /** Stopped cleanly: nothing in flight, no extents. */
  | 'clean';

/** One activity-log page (§9.2). */
export interface ActivityLogPage {
  /** Slots of the page, 1 … 503. */
  readonly slotCount: number;
  /** Transaction number, ≥ 1; the newer valid page wins. */
  readonly transaction: number;
  /** Extent size, a power of two 4 KiB … 1 GiB. */
  readonly extentSize: number;
  readonly diskSize: number;
  /** 16 lowercase hex digits. */
  readonly generation: string;
  readonly state: ActivityLogState;
  /** Extent numbers in the slots; at most `slotCount`, none when `clean`. */
  readonly extents: readonly number[];
}

/** What `decodeActivityLogFile` found (§9.5). */
export interface ActivityLogFileContent {
  /** The newer valid page, or `undefined` if neither page is valid. */
  readonly page: ActivityLogPage | undefined;
  /** Which page that was (0 or 1). */
  readonly pageIndex: 0 | 1 | undefined;
  /** The suspect ranges, or `undefined` if the section is invalid. */
  readonly suspects: readonly ByteRange[] | undefined;
  /** Why a page or the section was refused, for diagnostics. */
  readonly refusals: readonly Refusal[];
}

const STATE_CODES: Record<ActivityLogState, number> = { running: 1, clean: 2 };

/**
 * One 4096-byte page (§9.2). Pure. Throws `InvalidInputError`
 * (`activityLog.invalid`) if a field is out of range.
 */
export function encodeActivityLogPage(page: ActivityLogPage): Buffer {
  const problem = pageProblem(page);
  if (problem !== undefined) throw new InvalidInputError('activityLog.invalid', problem);
  const b = Buffer.alloc(ACTIVITY_LOG_PAGE_SIZE);
  ACTIVITY_LOG_MAGIC.copy(b, 0);
  writeU16(b, 8, FORMAT_VERSION);
  writeU32(b, 12, page.slotCount);
  writeU64(b, 16, page.transaction);
  writeU64(b, 24, page.extentSize);
  writeU64(b, 32, page.diskSize);
  generationToBytes(page.generation).copy(b, 40);
  writeU32(b, 48, STATE_CODES[page.state]);
  page.extents.forEach((e, i) => writeU64(b, ACTIVITY_LOG_PAGE_HEADER_SIZE + 8 * i, e + 1));
  const end = ACTIVITY_LOG_PAGE_HEADER_SIZE + 8 * page.slotCount;
  writeU32(b, end, crc32(b.subarray(0, end)));
  return b;
}

/** Check one page (§9.5: magic, version, checksum, then fields). Pure; never throws. */
export function checkActivityLogPage(bytes: Uint8Array, at = 0): Checked<ActivityLogPage> {
  const refuse = (outcome: Refusal['outcome'], message: string): Checked<ActivityLogPage> => ({
    ok: false,
    refusal: { outcome, at, message },
  });
  if (bytes.length < ACTIVITY_LOG_PAGE_SIZE) return refuse('tornTail', 'activity-log page cut short');
  if (!ACTIVITY_LOG_MAGIC.equals(bytes.subarray(0, 8))) return refuse('badMagic', 'not an activity-log page (bad magic)');
  const version = readU16(bytes, 8);
  if (version !== FORMAT_VERSION) {
    return refuse('unknownVersion', `activity-log format version ${version} is not supported (this code reads version ${FORMAT_VERSION})`);
  }
  const slotCount = readU32(bytes, 12);
  if (slotCount < 1 || slotCount > MAX_ACTIVITY_LOG_SLOTS) return refuse('invalidHeader', `slot count ${slotCount} is out of range`);
  const end = ACTIVITY_LOG_PAGE_HEADER_SIZE + 8 * slotCount;
  if (readU32(bytes, end) !== crc32(bytes.subarray(0, end))) return refuse('checksumMismatch', 'activity-log page checksum mismatch');
  const transaction = readU64(bytes, 16);
  const extentSize = readU64(bytes, 24);
  const diskSize = readU64(bytes, 32);
  const stateCode = readU32(bytes, 48);
  const state = (Object.keys(STATE_CODES) as ActivityLogState[]).find((s) => STATE_CODES[s] === stateCode);
  if (transaction === undefined || extentSize === undefined || diskSize === undefined || state === undefined) {
    return refuse('invalidHeader', 'activity-log page field out of range');
  }
  if (!isZero(bytes, 10, 12) || !isZero(bytes, 52, 64)) return refuse('invalidHeader', 'reserved activity-log bytes are not zero');
  const extents: number[] = [];
  for (let i = 0; i < slotCount; i++) {
    const v = readU64(bytes, ACTIVITY_LOG_PAGE_HEADER_SIZE + 8 * i);
    if (v === undefined) return refuse('invalidHeader', `slot ${i} out of range`);
    if (v !== 0) extents.push(v - 1);
  }
  const page: ActivityLogPage = {
    slotCount,
    transaction,
    extentSize,
    diskSize,
    generation: generationFromBytes(bytes.subarray(40, 48)),
    state,
    extents,
  };
  const problem = pageProblem(page);
  return problem === undefined ? { ok: true, value: page } : refuse('invalidHeader', problem);
}

/** The suspect section (§9.4). Pure. Throws `InvalidInputError` (`activityLog.invalid`) for bad ranges. */
export function encodeSuspectSection(ranges: readonly ByteRange[], diskSize: number): Buffer {
  const problem = rangesProblem(ranges, diskSize);
  if (problem !== undefined) throw new InvalidInputError('activityLog.invalid', problem);
  const b = Buffer.alloc(16 + 16 * ranges.length + 4);
  SUSPECT_MAGIC.copy(b, 0);
  writeU32(b, 8, ranges.length);
  ranges.forEach((r, i) => {
    writeU64(b, 16 + 16 * i, r.offset);
    writeU64(b, 24 + 16 * i, r.length);
  });
  const end = 16 + 16 * ranges.length;
  writeU32(b, end, crc32(b.subarray(0, end)));
  return b;
}

/** Check a suspect section that fills `bytes` exactly (§9.4). Pure; never throws. */
export function checkSuspectSection(bytes: Uint8Array, diskSize: number, at = 0): Checked<readonly ByteRange[]> {
  const refuse = (outcome: Refusal['outcome'], message: string): Checked<readonly ByteRange[]> => ({
    ok: false,
    refusal: { outcome, at, message },
  });
  if (bytes.length < 20) return refuse('tornTail', 'suspect section cut short');
  if (!SUSPECT_MAGIC.equals(bytes.subarray(0, 8))) return refuse('badMagic', 'not a suspect section (bad magic)');
  const count = readU32(bytes, 8);
  const end = 16 + 16 * count;
  if (bytes.length !== end + 4) return refuse('tornTail', `suspect section of ${count} ranges has ${bytes.length} bytes`);
  if (readU32(bytes, end) !== crc32(bytes.subarray(0, end))) return refuse('checksumMismatch', 'suspect section checksum mismatch');
  if (!isZero(bytes, 12, 16)) return refuse('invalidHeader', 'reserved suspect-section bytes are not zero');
  const ranges: ByteRange[] = [];
  for (let i = 0; i < count; i++) {
    const offset = readU64(bytes, 16 + 16 * i);
    const length = readU64(bytes, 24 + 16 * i);
    if (offset === undefined || length === undefined) return refuse('invalidRecord', `suspect range ${i} out of range`);
    ranges.push({ offset, length });
  }
  const problem = rangesProblem(ranges, diskSize);
  return problem === undefined ? { ok: true, value: ranges } : refuse('invalidRecord', problem);
}

/**
 * A whole activity-log file (§9.1): both pages, `page` with transaction
 * numbers `page.transaction` (page 0) and `page.transaction + 1` (page 1),
 * then the suspect section. Pure. Throws `InvalidInputError`
 * (`activityLog.invalid`).
 */
export function encodeActivityLogFile(page: ActivityLogPage, suspects: readonly ByteRange[]): Buffer {
  return Buffer.concat([
    encodeActivityLogPage(page),
    encodeActivityLogPage({ ...page, transaction: page.transaction + 1 }),
    encodeSuspectSection(suspects, page.diskSize),
  ]);
}

/**
 * Decode a whole activity-log file (§9.5): the newer valid page and the
 * suspect section. Pure; never throws: missing parts are `undefined`, with
 * the reasons in `refusals` (an `unknownVersion` refusal there means the file
 * must be refused, not treated as lost).
 */
export function decodeActivityLogFile(bytes: Uint8Array): ActivityLogFileContent {
  const refusals: Refusal[] = [];
  let page: ActivityLogPage | undefined;
  let pageIndex: 0 | 1 | undefined;
  for (const index of [0, 1] as const) {
    const at = index * ACTIVITY_LOG_PAGE_SIZE;
    const checked = checkActivityLogPage(bytes.subarray(at, at + ACTIVITY_LOG_PAGE_SIZE), at);
    if (!checked.ok) {
      refusals.push(checked.refusal);
    } else if (page === undefined || checked.value.transaction > page.transaction) {
      page = checked.value;
      pageIndex = index;
    }
  }
  let suspects: readonly ByteRange[] | undefined;
  if (page !== undefined) {
    const at = 2 * ACTIVITY_LOG_PAGE_SIZE;
    const checked = checkSuspectSection(bytes.subarray(at), page.diskSize, at);
    if (checked.ok) suspects = checked.value;
    else refusals.push(checked.refusal);
  }
  return { page, pageIndex, suspects, refusals };
}

/**
 * Sorted, coalesced ranges covering exactly the union of `ranges`, clipped
 * to `[0, limit)`; empty ranges vanish. Pure.
 */
export function coalesceRanges(ranges: Iterable<ByteRange>, limit = Number.MAX_SAFE_INTEGER): ByteRange[] {
  const sorted = [...ranges]
    .map((r) => ({ offset: Math.max(0, r.offset), end: Math.min(limit, r.offset + r.length) }))
    .filter((r) => r.end > r.offset)
    .sort((a, b) => a.offset - b.offset);
  const out: { offset: number; end: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.offset <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out.map((r) => ({ offset: r.offset, length: r.end - r.offset }));
}

function pageProblem(p: ActivityLogPage): string | undefined {
  if (!Number.isInteger(p.slotCount) || p.slotCount < 1 || p.slotCount > MAX_ACTIVITY_LOG_SLOTS) {
    return `slot count ${p.slotCount} is not 1 … ${MAX_ACTIVITY_LOG_SLOTS}`;
  }
  if (!Number.isSafeInteger(p.transaction) || p.transaction < 1) return `transaction number ${p.transaction} is invalid`;
  if (!isPowerOfTwo(p.extentSize) || p.extentSize < MIN_EXTENT_SIZE || p.extentSize > MAX_EXTENT_SIZE) {
    return `extent size ${p.extentSize} is not a power of two ${MIN_EXTENT_SIZE} … ${MAX_EXTENT_SIZE}`;
  }
  if (!Number.isSafeInteger(p.diskSize) || p.diskSize <= 0) return `disk size ${p.diskSize} is invalid`;
  if (p.extents.length > p.slotCount) return `${p.extents.length} extents do not fit ${p.slotCount} slots`;
  if (p.state === 'clean' && p.extents.length > 0) return 'a clean page holds no extents';
  const extentCount = Math.ceil(p.diskSize / p.extentSize);
  const seen = new Set<number>();
  for (const e of p.extents) {
    if (!Number.isInteger(e) || e < 0 || e >= extentCount) return `extent ${e} is outside the disk`;
    if (seen.has(e)) return `extent ${e} appears twice`;
    seen.add(e);
  }
  return undefined;
}

function rangesProblem(ranges: readonly ByteRange[], diskSize: number): string | undefined {
  let end = -1;
  for (const r of ranges) {
    if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length < 1) {
      return `suspect range ${r.offset}+${r.length} is invalid`;
    }
    if (r.offset + r.length > diskSize) return `suspect range ${r.offset}+${r.length} ends beyond the disk`;
    if (r.offset <= end) return 'suspect ranges are not sorted, disjoint and non-adjacent';
    end = r.offset + r.length;
  }
  return undefined;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}
