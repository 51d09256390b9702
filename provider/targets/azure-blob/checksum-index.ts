/**
 * The block checksum index of one disk (docs/azure-target.md §9): SHA-256 of
 * every 64 KiB block in a page blob beside the replica, so a resync compares
 * digests without reading the replica. An entry of 32 zero bytes stands for
 * an all-zero block, so a fresh (all-zero) index blob describes a fresh disk.
 */
import { createHash } from 'node:crypto';
import { type PageBlobClient } from '@azure/storage-blob';
import { DEFAULT_RESYNC_BLOCK_SIZE, DIGEST_BYTES } from '../../replication/resync-plan';
import { azureCall, isNotFound } from './azure-errors';

/** Block size of the index: the core's default resync block. */
export const INDEX_BLOCK_SIZE = DEFAULT_RESYNC_BLOCK_SIZE;
const ZERO_ENTRY = Buffer.alloc(DIGEST_BYTES);
const PAGE = 512;
const INDEX_FORMAT = '1';

function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** SHA-256 of `n` zero bytes, memoised per length. */
const zeroDigests = new Map<number, Buffer>();
export function zeroDigest(n: number): Buffer {
  let d = zeroDigests.get(n);
  if (d === undefined) {
    d = createHash('sha256').update(Buffer.alloc(n)).digest();
    zeroDigests.set(n, d);
  }
  return d;
}

/** The index entry of a block's bytes: its digest, or zeros for an all-zero block. */
export function entryOf(block: Buffer): Buffer {
  return isZero(block) ? ZERO_ENTRY : createHash('sha256').update(block).digest();
}

export function isZero(b: Buffer): boolean {
  for (let at = 0; at < b.length; at += 4096) {
    const part = b.subarray(at, Math.min(b.length, at + 4096));
    if (!part.equals(ZERO_PAGE.subarray(0, part.length))) return false;
  }
  return true;
}
const ZERO_PAGE = Buffer.alloc(4096);

/**
 * One disk's index blob. Knows nothing of the replica: the disk tells it
 * which cycle it describes (`patch`, `rebuildFrom`) and asks whether it is
 * valid for the head (`validFor`).
 */
export class ChecksumIndex {
  readonly blocks: number;
  private readonly blobBytes: number;
  /** Cycle the index describes, as last read or written; `undefined` = unknown (read it), `null` = stale/missing. */
  private knownCycle: number | null | undefined;

  constructor(private readonly blob: PageBlobClient, private readonly instance: string, private readonly sizeBytes: number) {
    this.blocks = Math.ceil(sizeBytes / INDEX_BLOCK_SIZE);
    this.blobBytes = roundUp(this.blocks * DIGEST_BYTES, PAGE);
  }

  /** Length of block `i`. */
  blockLength(i: number): number {
    return Math.min(INDEX_BLOCK_SIZE, this.sizeBytes - i * INDEX_BLOCK_SIZE);
  }

  /** Digest of block `i` from its entry. */
  private digestOf(i: number, entry: Buffer): Buffer {
    return entry.equals(ZERO_ENTRY) ? zeroDigest(this.blockLength(i)) : Buffer.from(entry);
  }

  private metadata(cycle: number): Record<string, string> {
    return { lbformat: INDEX_FORMAT, lbinstance: this.instance, lbsize: String(this.sizeBytes), lbblocksize: String(INDEX_BLOCK_SIZE), lbcycle: String(cycle) };
  }

  /**
   * Create a fresh index describing an all-zero disk at cycle 0 (a new
   * disk). Overwrites any index blob of the same name.
   */
  async createEmpty(): Promise<void> {
    await azureCall('create the checksum index', () => this.blob.create(this.blobBytes, { metadata: this.metadata(0) }));
    this.knownCycle = 0;
  }

  /** §9 staleness rule: valid iff format, instance, size and block size match and it describes `headCycle`. */
  async validFor(headCycle: number): Promise<boolean> {
    if (this.knownCycle === undefined) {
      try {
        const p = await this.blob.getProperties();
        const m = p.metadata ?? {};
        const ok = m.lbformat === INDEX_FORMAT && m.lbinstance === this.instance && m.lbsize === String(this.sizeBytes)
          && m.lbblocksize === String(INDEX_BLOCK_SIZE) && p.contentLength === this.blobBytes && /^\d+$/.test(m.lbcycle ?? '');
        this.knownCycle = ok ? Number(m.lbcycle) : null;
      } catch (e) {
        if (!isNotFound(e)) return azureCall('read the checksum index', () => Promise.reject(e));
        this.knownCycle = null;
      }
    }
    return this.knownCycle === headCycle;
  }

  /** Forget what is known: the next `validFor` reads the blob's metadata. */
  forget(): void {
    this.knownCycle = undefined;
  }

  /** Digests of blocks `[first, first + count)`. The caller checked `validFor`. */
  async read(first: number, count: number): Promise<Buffer[]> {
    if (count === 0) return [];
    const from = first * DIGEST_BYTES;
    const to = (first + count) * DIGEST_BYTES;
    const start = Math.floor(from / PAGE) * PAGE;
    const buf = await azureCall('read the checksum index', () => this.blob.downloadToBuffer(start, roundUp(to, PAGE) - start));
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const at = from - start + i * DIGEST_BYTES;
      out.push(this.digestOf(first + i, buf.subarray(at, at + DIGEST_BYTES)));
    }
    return out;
  }

  /**
   * Apply the entries of one committed cycle and record that the index now
   * describes `cycle`. The caller checked `validFor` of the previous head.
   * A failure part-way leaves the index stale (its cycle is still the old
   * one), never wrong-and-valid.
   */
  async patch(entries: ReadonlyMap<number, Buffer>, cycle: number): Promise<void> {
    this.knownCycle = null;
    const pages = [...new Set([...entries.keys()].map((b) => Math.floor((b * DIGEST_BYTES) / PAGE)))].sort((a, b) => a - b);
    // Runs of consecutive index pages: one read and one write each.
    const runs: Array<[number, number]> = [];
    for (const p of pages) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[1] === p && last[1] - last[0] < 8192) last[1] = p + 1;
      else runs.push([p, p + 1]);
    }
    for (const [a, b] of runs) {
      const buf = await azureCall('read the checksum index', () => this.blob.downloadToBuffer(a * PAGE, (b - a) * PAGE));
      const perPage = PAGE / DIGEST_BYTES;
      for (let block = a * perPage; block < b * perPage; block++) {
        const e = entries.get(block);
        if (e !== undefined) e.copy(buf, (block - a * perPage) * DIGEST_BYTES);
      }
      await azureCall('write the checksum index', () => this.blob.uploadPages(buf, a * PAGE, buf.length));
    }
    await azureCall('write the checksum index', () => this.blob.setMetadata(this.metadata(cycle)));
    this.knownCycle = cycle;
  }

  /**
   * Rebuild from the head's bytes: `readSpan(offset, length)` returns them.
   * The blob is recreated first (so a crash leaves it stale, cycle -1), then
   * filled, then marked with `cycle`.
   */
  async rebuildFrom(cycle: number, readSpan: (offset: number, length: number) => Promise<Buffer>, spanBytes: number): Promise<void> {
    this.knownCycle = null;
    await azureCall('recreate the checksum index', () => this.blob.create(this.blobBytes, { metadata: { ...this.metadata(0), lbcycle: 'rebuilding' } }));
    const span = Math.max(INDEX_BLOCK_SIZE, Math.floor(spanBytes / INDEX_BLOCK_SIZE) * INDEX_BLOCK_SIZE);
    for (let at = 0; at < this.sizeBytes; at += span) {
      const data = await readSpan(at, Math.min(span, this.sizeBytes - at));
      const firstBlock = at / INDEX_BLOCK_SIZE;
      const entries: Buffer[] = [];
      for (let o = 0; o < data.length; o += INDEX_BLOCK_SIZE) entries.push(entryOf(data.subarray(o, Math.min(data.length, o + INDEX_BLOCK_SIZE))));
      if (entries.every((e) => e === ZERO_ENTRY)) continue;
      const bytes = Buffer.concat(entries);
      const start = firstBlock * DIGEST_BYTES;
      // Spans are multiples of 16 blocks (64 KiB × 16 = 1 MiB): their entries start on an index page.
      const padded = Buffer.alloc(roundUp(bytes.length, PAGE));
      bytes.copy(padded);
      await azureCall('write the checksum index', () => this.blob.uploadPages(padded, start, padded.length));
    }
    await azureCall('write the checksum index', () => this.blob.setMetadata(this.metadata(cycle)));
    this.knownCycle = cycle;
  }
}
