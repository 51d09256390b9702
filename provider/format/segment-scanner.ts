/**
 * The incremental segment scanner (docs/log-format.md §3.6): fed the bytes of
 * a segment in chunks of any size, it verifies the header and every record
 * (record, data and segment checksums, indices, ranges, the seal) and reports
 * the valid records, where the valid prefix ends and why it stopped. It keeps
 * no data: memory is constant whatever the segment size. Pure (no I/O).
 */

import { crc32, crc32Combine } from './crc';
import { MAX_RECORDS_PER_SEGMENT, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE } from './layout';
import { type Refusal, type ScanOutcome } from './outcome';
import { checkSegmentHeader, type SegmentHeader } from './segment-header';
import { checkRecordHeader, type Seal } from './segment-record';

/** A verified write record or flush marker, located in the file. */
export interface ScannedRecord {
  readonly type: 'write' | 'flush';
  /** Record index within the segment. */
  readonly index: number;
  /** File position of the record header. */
  readonly position: number;
  /** Disk offset of the data; 0 for a flush marker. */
  readonly offset: number;
  /** Data bytes; 0 for a flush marker. */
  readonly length: number;
  /** File position of the data (`position + 32`). */
  readonly dataPosition: number;
  /** CRC-32 of the data; 0 for a flush marker. */
  readonly dataChecksum: number;
}

/** The verdict of a whole scan. */
export interface ScanResult {
  /** How the scan ended (§3.6); `sealed` and `end` are clean. */
  readonly outcome: ScanOutcome;
  /** Why it was refused, for any other outcome. */
  readonly refusal: Refusal | undefined;
  /** The header, when it was valid. */
  readonly header: SegmentHeader | undefined;
  /** End of the valid prefix (§1): bytes to keep when truncating a torn tail. */
  readonly validLength: number;
  /** Valid records, writes and flush markers. */
  readonly recordCount: number;
  /** Valid write records. */
  readonly writeCount: number;
  /** Sum of the lengths of the valid write records. */
  readonly dataBytes: number;
  /**
   * CRC-32 of the valid prefix, without the seal if there is one (for a sealed
   * segment this is its segment checksum, §4).
   */
  readonly checksum: number;
  /** The seal, for outcome `sealed` (and `trailingData`). */
  readonly seal: Seal | undefined;
}

type State = 'header' | 'recordHeader' | 'data' | 'afterSeal' | 'stopped';

/**
 * Scans one segment incrementally. Feed it with `push` in file order, then
 * call `finish`. Not reusable across segments.
 */
export class SegmentScanner {
  private state: State = 'header';
  private pos = 0;
  private readonly pending = Buffer.alloc(SEGMENT_HEADER_SIZE);
  private pendingLength = 0;
  private header: SegmentHeader | undefined;
  private refusal: Refusal | undefined;
  private seal: Seal | undefined;
  private running = 0;
  private validLength = 0;
  private validChecksum = 0;
  private recordCount = 0;
  private writeCount = 0;
  private dataBytes = 0;
  // The write record whose data is being read.
  private current: ScannedRecord | undefined;
  private dataRemaining = 0;
  private dataCrc = 0;

  /** The header once verified, else `undefined`. */
  get segmentHeader(): SegmentHeader | undefined {
    return this.header;
  }

  /** True once the outcome is decided whatever bytes follow (a refusal). */
  get stopped(): boolean {
    return this.state === 'stopped';
  }

  /** File position of the next byte `push` expects. */
  get position(): number {
    return this.state === 'recordHeader' ? this.pos + this.pendingLength : this.pos;
  }

  /**
   * Consume the next bytes of the segment. Returns the records completed and
   * verified within them (a write only once its data checksum matched), in
   * order. After a refusal further bytes are ignored. Does not keep `chunk`.
   */
  push(chunk: Uint8Array): ScannedRecord[] {
    const out: ScannedRecord[] = [];
    let i = 0;
    while (i < chunk.length && this.state !== 'stopped') {
      switch (this.state) {
        case 'header': {
          const take = Math.min(SEGMENT_HEADER_SIZE - this.pendingLength, chunk.length - i);
          this.pending.set(chunk.subarray(i, i + take), this.pendingLength);
          this.pendingLength += take;
          i += take;
          this.pos += take;
          if (this.pendingLength === SEGMENT_HEADER_SIZE) this.acceptHeader(this.pending);
          break;
        }
        case 'recordHeader': {
          if (this.pendingLength === 0 && chunk.length - i >= RECORD_HEADER_SIZE) {
            this.acceptRecordHeader(chunk, i, out);
            i += RECORD_HEADER_SIZE;
          } else {
            const take = Math.min(RECORD_HEADER_SIZE - this.pendingLength, chunk.length - i);
            this.pending.set(chunk.subarray(i, i + take), this.pendingLength);
            this.pendingLength += take;
            i += take;
            if (this.pendingLength === RECORD_HEADER_SIZE) {
              this.pendingLength = 0;
              this.acceptRecordHeader(this.pending, 0, out);
            }
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.dataRemaining, chunk.length - i);
          this.dataCrc = crc32(chunk.subarray(i, i + take), this.dataCrc);
          this.dataRemaining -= take;
          i += take;
          this.pos += take;
          if (this.dataRemaining === 0) this.acceptData(out);
          break;
        }
        case 'afterSeal':
          this.stop({ outcome: 'trailingData', at: this.pos, message: 'bytes follow the seal' });
          break;
      }
    }
    return out;
  }

  /** The verdict, once every byte has been pushed. */
  finish(): ScanResult {
    let outcome: ScanOutcome;
    switch (this.state) {
      case 'stopped':
        outcome = this.refusal!.outcome;
        break;
      case 'afterSeal':
        outcome = 'sealed';
        break;
      case 'header': {
        const checked = checkSegmentHeader(this.pending.subarray(0, this.pendingLength));
        this.refusal = checked.ok
          ? { outcome: 'tornTail', at: 0, message: 'segment header cut short' }
          : checked.refusal;
        outcome = this.refusal.outcome;
        break;
      }
      case 'recordHeader':
        if (this.pendingLength === 0) {
          outcome = 'end';
        } else {
          this.refusal = { outcome: 'tornTail', at: this.pos, message: `record header cut short after ${this.pendingLength} bytes` };
          outcome = 'tornTail';
        }
        break;
      case 'data':
        this.refusal = {
          outcome: 'tornTail',
          at: this.current!.position,
          message: `record ${this.current!.index} cut short: ${this.dataRemaining} data bytes missing`,
        };
        outcome = 'tornTail';
        break;
    }
    return {
      outcome,
      refusal: outcome === 'sealed' || outcome === 'end' ? undefined : this.refusal,
      header: this.header,
      validLength: this.validLength,
      recordCount: this.recordCount,
      writeCount: this.writeCount,
      dataBytes: this.dataBytes,
      checksum: this.validChecksum,
      seal: this.seal,
    };
  }

  private acceptHeader(bytes: Buffer): void {
    const checked = checkSegmentHeader(bytes);
    if (!checked.ok) {
      this.stop(checked.refusal);
      return;
    }
    this.header = checked.value;
    this.pendingLength = 0;
    this.running = crc32(bytes);
    this.validLength = SEGMENT_HEADER_SIZE;
    this.validChecksum = this.running;
    this.state = 'recordHeader';
  }

  private acceptRecordHeader(bytes: Uint8Array, at: number, out: ScannedRecord[]): void {
    const position = this.pos;
    const checked = checkRecordHeader(bytes, at, {
      diskSize: this.header!.diskSize,
      expectedIndex: this.recordCount,
      position,
    });
    if (!checked.ok) {
      this.stop(checked.refusal);
      return;
    }
    const rec = checked.value;
    this.pos += RECORD_HEADER_SIZE;
    if (rec.type === 'seal') {
      if (rec.recordCount !== this.recordCount || rec.dataBytes !== this.dataBytes) {
        this.stop({
          outcome: 'invalidRecord',
          at: position,
          message: `seal counts ${rec.recordCount} records / ${rec.dataBytes} bytes, found ${this.recordCount} / ${this.dataBytes}`,
        });
      } else if (rec.segmentChecksum !== this.running) {
        this.stop({ outcome: 'checksumMismatch', at: position, message: 'segment checksum in the seal does not match' });
      } else {
        this.seal = rec;
        this.validLength = this.pos;
        this.state = 'afterSeal';
      }
      return;
    }
    if (this.recordCount >= MAX_RECORDS_PER_SEGMENT) {
      this.stop({ outcome: 'invalidRecord', at: position, message: 'too many records in one segment' });
      return;
    }
    this.running = crc32(bytes.subarray(at, at + RECORD_HEADER_SIZE), this.running);
    if (rec.type === 'flush') {
      this.recordCount++;
      this.markValid();
      out.push({ type: 'flush', index: rec.index, position, offset: 0, length: 0, dataPosition: this.pos, dataChecksum: 0 });
      return;
    }
    this.current = {
      type: 'write',
      index: rec.index,
      position,
      offset: rec.offset,
      length: rec.length,
      dataPosition: this.pos,
      dataChecksum: rec.dataChecksum,
    };
    this.dataRemaining = rec.length;
    this.dataCrc = 0;
    this.state = 'data';
  }

  private acceptData(out: ScannedRecord[]): void {
    const rec = this.current!;
    if (this.dataCrc !== rec.dataChecksum) {
      this.stop({ outcome: 'checksumMismatch', at: rec.position, message: `data checksum mismatch in record ${rec.index}` });
      return;
    }
    this.running = crc32Combine(this.running, this.dataCrc, rec.length);
    this.recordCount++;
    this.writeCount++;
    this.dataBytes += rec.length;
    this.current = undefined;
    this.state = 'recordHeader';
    this.markValid();
    out.push(rec);
  }

  private markValid(): void {
    this.validLength = this.pos;
    this.validChecksum = this.running;
  }

  private stop(refusal: Refusal): void {
    this.refusal = refusal;
    this.state = 'stopped';
  }
}

/** A whole-buffer scan: the verdict and every valid record. Pure. */
export function scanSegment(bytes: Uint8Array): ScanResult & { readonly records: readonly ScannedRecord[] } {
  const scanner = new SegmentScanner();
  const records = scanner.push(bytes);
  return { ...scanner.finish(), records };
}
