/**
 * Reading segment files (docs/log-format.md §3, §8.1): a streaming reader of
 * sealed segments for the shipper, which verifies the header, every record
 * and the seal without holding the segment in memory, and a non-throwing
 * whole-file scan for the tracker's recovery.
 *
 * A sealed segment that fails verification is corrupt: the reader raises
 * `ResyncRequiredError` and never patches it (§8.1).
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ResyncRequiredError } from '../errors';
import { MiB } from '../units';
import {
  crc32,
  parseSegmentName,
  refusalError,
  RECORD_HEADER_SIZE,
  type ScannedRecord,
  type ScanResult,
  type Seal,
  SEGMENT_HEADER_SIZE,
  type SegmentHeader,
  SegmentScanner,
  checkSegmentHeader,
} from '../format';

/** A verified write record of a sealed segment: where its data is. */
export interface SegmentRecordRef {
  /** Record index within the segment (flush markers count too). */
  readonly index: number;
  /** Disk offset of the write. */
  readonly offset: number;
  /** Bytes written. */
  readonly length: number;
  /** File position of the data. */
  readonly dataPosition: number;
  /** CRC-32 of the data. */
  readonly dataChecksum: number;
}

/** What the segment must be; any mismatch is `segment.identityMismatch`. */
export interface SegmentExpectation {
  /** @default not checked */
  readonly diskId?: string;
  /** @default not checked */
  readonly generation?: string;
  /** @default not checked */
  readonly seq?: number;
  /** @default not checked */
  readonly diskSize?: number;
}

export interface SegmentReaderOptions {
  /** Identity the header must have (besides agreeing with the file name). @default none */
  readonly expect?: SegmentExpectation;
  /** Bytes read per I/O while verifying. @default 1 MiB */
  readonly chunkBytes?: number;
}

/** What a complete verification found. */
export interface SegmentSummary {
  readonly header: SegmentHeader;
  readonly seal: Seal;
  /** Write records (flush markers excluded). */
  readonly writeCount: number;
  readonly fileBytes: number;
}

/**
 * A sealed segment opened for shipping. `records()` streams and verifies it;
 * `readData` / `read` fetch bytes. Close it when done. One consumer at a time
 * per reader; any number of readers may read the same file.
 */
export class SegmentReader {
  private completed: SegmentSummary | undefined;

  private constructor(
    /** The file. */
    readonly path: string,
    private fh: fs.FileHandle | undefined,
    /** The verified header. */
    readonly header: SegmentHeader,
    /** File size at open. */
    readonly fileBytes: number,
    private readonly chunkBytes: number,
  ) {}

  /**
   * Open a sealed segment and verify its header, its agreement with the file
   * name (if the name is a segment name, §2.1) and `options.expect`. Throws
   * `ResyncRequiredError` with code `segment.missing` (no file),
   * `segment.<outcome>` (bad header, §3.6), `segment.identityMismatch`;
   * `InvalidInputError` `segment.unknownVersion`. Leaves nothing open on
   * failure.
   */
  static async open(file: string, options: SegmentReaderOptions = {}): Promise<SegmentReader> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ResyncRequiredError('segment.missing', `segment ${file} is missing`, {
          cause: e,
          hint: 'A segment of the replication log was lost; the item needs a resynchronisation.',
        });
      }
      throw e;
    }
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
      const { bytesRead } = await fh.read(head, 0, SEGMENT_HEADER_SIZE, 0);
      const checked = checkSegmentHeader(head.subarray(0, bytesRead));
      if (!checked.ok) throw refusalError(checked.refusal, file);
      const header = checked.value;
      const named = parseSegmentName(path.basename(file));
      const expect = options.expect ?? {};
      const mismatch =
        (named !== undefined && (named.diskId !== header.diskId || named.generation !== header.generation || named.seq !== header.seq)) ||
        (expect.diskId !== undefined && expect.diskId !== header.diskId) ||
        (expect.generation !== undefined && expect.generation !== header.generation) ||
        (expect.seq !== undefined && expect.seq !== header.seq) ||
        (expect.diskSize !== undefined && expect.diskSize !== header.diskSize);
      if (mismatch) {
        throw new ResyncRequiredError(
          'segment.identityMismatch',
          `${file}: header names disk ${header.diskId}, generation ${header.generation}, segment ${header.seq}, which is not what was expected`,
          { hint: 'A segment file does not belong to this log; the item needs a resynchronisation.' },
        );
      }
      return new SegmentReader(file, fh, header, size, options.chunkBytes ?? MiB);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** The seal and counts, once `records()` or `verify()` ran to the end. */
  get summary(): SegmentSummary | undefined {
    return this.completed;
  }

  /**
   * The write records in file order, each yielded once its data checksum
   * matched. Throws `ResyncRequiredError` (`segment.<outcome>` of §3.6, or
   * `segment.notSealed`) at the first problem — possibly after yielding
   * records, and at the latest when the seal is checked at the end: a
   * consumer must not commit anything it built from the records until the
   * iteration completed. Memory: one chunk. May be run again.
   */
  async *records(): AsyncGenerator<SegmentRecordRef, SegmentSummary, undefined> {
    const fh = this.handle();
    const scanner = new SegmentScanner();
    const buf = Buffer.allocUnsafe(this.chunkBytes);
    let writeCount = 0;
    let position = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      for (const r of scanner.push(buf.subarray(0, bytesRead))) {
        if (r.type !== 'write') continue;
        writeCount++;
        yield toRef(r);
      }
      if (scanner.stopped) break;
    }
    const result = scanner.finish();
    if (result.outcome === 'end') {
      throw new ResyncRequiredError('segment.notSealed', `${this.path}: segment is not sealed`, {
        hint: 'Only sealed segments are shipped; a segment that should be sealed is not: the item needs a resynchronisation.',
      });
    }
    if (result.outcome !== 'sealed' || result.seal === undefined) throw refusalError(result.refusal!, this.path);
    this.completed = { header: this.header, seal: result.seal, writeCount, fileBytes: position };
    return this.completed;
  }

  /**
   * Verify the whole segment without keeping records. Throws as `records()`.
   */
  async verify(): Promise<SegmentSummary> {
    const it = this.records();
    for (;;) {
      const n = await it.next();
      if (n.done === true) return n.value;
    }
  }

  /**
   * The data of a record, checked against its data checksum. Throws
   * `ResyncRequiredError` (`segment.checksumMismatch`, `segment.tornTail`) if
   * the bytes on disk changed since they were verified.
   */
  async readData(ref: SegmentRecordRef): Promise<Buffer> {
    const data = await this.read(ref.dataPosition, ref.length);
    if (crc32(data) !== ref.dataChecksum) {
      throw new ResyncRequiredError('segment.checksumMismatch', `${this.path}: data of record ${ref.index} changed after verification`, {
        hint: 'A sealed segment changed on disk; the item needs a resynchronisation.',
      });
    }
    return data;
  }

  /**
   * `length` raw bytes at file `position` (a part of a record's data, as the
   * extent map hands out). Not re-verified: the bytes were verified by
   * `records()`, and sealed segments never change (I1). Throws
   * `ResyncRequiredError` (`segment.tornTail`) for a range outside the
   * records' area or a short read.
   */
  async read(position: number, length: number): Promise<Buffer> {
    const fh = this.handle();
    if (position < SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE || position + length > this.fileBytes - RECORD_HEADER_SIZE || length < 0) {
      throw new ResyncRequiredError('segment.tornTail', `${this.path}: ${length} bytes at ${position} are outside the segment's records`);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(out, done, length - done, position + done);
      if (bytesRead === 0) {
        throw new ResyncRequiredError('segment.tornTail', `${this.path}: segment shorter than when it was opened`);
      }
      done += bytesRead;
    }
    return out;
  }

  /** Close the file. Idempotent. */
  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  private handle(): fs.FileHandle {
    if (this.fh === undefined) throw new ResyncRequiredError('segment.closed', `${this.path}: reader is closed`);
    return this.fh;
  }
}

/** Options of `scanSegmentFile`. */
export interface ScanSegmentFileOptions {
  /** Bytes read per I/O. @default 1 MiB */
  readonly chunkBytes?: number;
  /** Called with every valid record (writes and flush markers), in order. @default none */
  readonly onRecord?: (record: ScannedRecord) => void;
}

/**
 * Scan a whole segment file through an open handle (§3.6) without throwing
 * for its content: the verdict, the valid prefix, the counts. Reads from
 * position 0 to the end of the file; I/O errors propagate. Changes nothing.
 */
export async function scanSegmentFile(fh: fs.FileHandle, options: ScanSegmentFileOptions = {}): Promise<ScanResult> {
  const scanner = new SegmentScanner();
  const buf = Buffer.allocUnsafe(options.chunkBytes ?? MiB);
  let position = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    const records = scanner.push(buf.subarray(0, bytesRead));
    if (options.onRecord !== undefined) for (const r of records) options.onRecord(r);
    if (scanner.stopped) break;
  }
  return scanner.finish();
}

function toRef(r: ScannedRecord): SegmentRecordRef {
  return { index: r.index, offset: r.offset, length: r.length, dataPosition: r.dataPosition, dataChecksum: r.dataChecksum };
}
