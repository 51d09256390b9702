/**
 * What a lab guest writes through (docs/lab.md §3): one interface over the
 * three kinds of disk a running lab VM can have — a tracked disk (the
 * replication tracker's `TrackedDisk`), a plain raw file (not protected),
 * and a copy-on-write overlay (test failover).
 */

import { writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { InvalidInputError } from '../../errors';
import { type TrackedDisk } from '../../replication/tracker';
import { MiB } from '../../units';
import { type CowOverlay } from './cow-overlay';
import { type WorkloadTarget } from './workload';

/** A disk as the guest sees it. */
export interface GuestDisk extends WorkloadTarget {
  readonly sizeBytes: number;
  /** Write `data` at `offset`; not durable until `flush`. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Make every completed write durable. */
  flush(): Promise<void>;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Release what the guest holds, without a flush. A tracked disk's tracker
   * stays open: the driver owns it, not the guest. Idempotent.
   */
  close(): Promise<void>;
}

/** Pieces up to this size are written synchronously (page cache; cheaper than the thread pool, as in the tracker). */
const SYNC_WRITE_LIMIT = MiB;

/** A raw disk file written directly: the disk of an unprotected VM. */
export class PlainDisk implements GuestDisk {
  private dirty = false;
  private closed = false;

  private constructor(
    private readonly fh: fs.FileHandle,
    readonly sizeBytes: number,
  ) {}

  /** Open an existing raw disk file for reading and writing. Lets `ENOENT` through. */
  static async open(file: string): Promise<PlainDisk> {
    const fh = await fs.open(file, 'r+');
    try {
      return new PlainDisk(fh, (await fh.stat()).size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.check(offset, data.length, 'write');
    let done = 0;
    while (done < data.length) {
      const n = data.length - done;
      const written = n <= SYNC_WRITE_LIMIT
        ? writeSync(this.fh.fd, data, done, n, offset + done)
        : (await this.fh.write(data, done, n, offset + done)).bytesWritten;
      if (written === 0) throw new Error('write made no progress');
      done += written;
    }
    this.dirty = true;
  }

  async flush(): Promise<void> {
    if (this.closed) throw closedError();
    if (!this.dirty) return;
    await this.fh.datasync();
    this.dirty = false;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length, 'read');
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(out, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private check(offset: number, length: number, what: string): void {
    if (this.closed) throw closedError();
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new InvalidInputError('hypervisor.outOfRange', `cannot ${what} ${length} bytes at ${offset}: the disk has ${this.sizeBytes} bytes`);
    }
  }
}

function closedError(): InvalidInputError {
  return new InvalidInputError('hypervisor.diskClosed', 'the guest disk is closed');
}

/** The guest's view of a tracked disk: every write passes the tracker; `close` leaves the tracker open. */
export function trackedGuestDisk(td: TrackedDisk): GuestDisk {
  return {
    sizeBytes: td.sizeBytes,
    write: (offset, data) => td.write(offset, data),
    flush: () => td.flush(),
    read: (offset, length) => td.read(offset, length),
    close: async () => undefined,
  };
}

/** The guest's view of an overlay disk; `close` closes the overlay and its base. */
export function overlayGuestDisk(overlay: CowOverlay): GuestDisk {
  return {
    sizeBytes: overlay.sizeBytes,
    write: (offset, data) => overlay.write(offset, data),
    flush: () => overlay.flush(),
    read: (offset, length) => overlay.read(offset, length),
    close: () => overlay.close(),
  };
}
