/**
 * The guest journal of a lab disk (docs/lab.md §5): where the disk's
 * workload stream stands, so that a restarted guest continues it and a test
 * can recompute what the disk must hold from the seed alone.
 *
 * The workload of a disk is one endless, deterministic stream of operations
 * (`workloadOps`); the journal keeps two indexes into it:
 * - `nextOp`: the operation handed to the guest and not known to be done.
 *   Written *before* the operation runs, so after any stop every operation
 *   before `nextOp` completed, and `nextOp` itself may have partly happened.
 *   Re-running it writes the same bytes at the same place, so a guest that
 *   resumes at `nextOp` leaves the disk exactly as the stream's first
 *   `nextOp + k` operations say.
 * - `flushedOps`: every write among the first `flushedOps` operations was
 *   acknowledged by a guest flush (or a flush of quiesce or shutdown).
 *   `flushedOps ≤ nextOp`.
 *
 * File (32 bytes, little-endian): `"LBGJ" || u16 version (1) || u16 0 ||
 * u64 nextOp || u64 flushedOps || u32 CRC-32 of bytes 0–23 || u32 0`.
 * Updated in place with one 32-byte `pwrite` per operation, without
 * `fsync`: it survives the death of the process (the lab's crash model); a
 * shutdown or quiesce `fsync`s it.
 */

import { writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { NonRecoverableError } from '../../errors';

/** Where a disk's workload stream stands. */
export interface GuestJournalState {
  /** Index of the first operation not known to be complete. */
  readonly nextOp: number;
  /** Every write among the operations before this index was flushed. */
  readonly flushedOps: number;
}

const SIZE = 32;
const MAGIC = Buffer.from('LBGJ', 'latin1');
const VERSION = 1;

function encode(s: GuestJournalState, into: Buffer): Buffer {
  into.fill(0);
  MAGIC.copy(into, 0);
  into.writeUInt16LE(VERSION, 4);
  into.writeBigUInt64LE(BigInt(s.nextOp), 8);
  into.writeBigUInt64LE(BigInt(s.flushedOps), 16);
  into.writeUInt32LE(crc32(into.subarray(0, 24)), 24);
  return into;
}

function decode(buf: Buffer, file: string): GuestJournalState {
  const bad = (why: string): never => {
    throw new NonRecoverableError('guestJournal.corrupt', `guest journal ${file} is unreadable: ${why}`, {
      where: { file },
      hint: 'The expected content of the disk can no longer be recomputed; delete the journal to start counting afresh (tests that rely on it must start over).',
    });
  };
  if (buf.length !== SIZE) bad(`${buf.length} bytes instead of ${SIZE}`);
  if (!buf.subarray(0, 4).equals(MAGIC)) bad('bad magic');
  if (buf.readUInt16LE(4) !== VERSION) bad(`version ${buf.readUInt16LE(4)} is not ${VERSION}`);
  if (buf.readUInt32LE(24) !== crc32(buf.subarray(0, 24))) bad('checksum mismatch');
  const nextOp = Number(buf.readBigUInt64LE(8));
  const flushedOps = Number(buf.readBigUInt64LE(16));
  if (flushedOps > nextOp) bad(`flushedOps ${flushedOps} is beyond nextOp ${nextOp}`);
  return { nextOp, flushedOps };
}

/**
 * Read a journal; a missing file reads as `{ nextOp: 0, flushedOps: 0 }`.
 * Throws `NonRecoverableError` `guestJournal.corrupt`.
 */
export async function readGuestJournal(file: string): Promise<GuestJournalState> {
  try {
    return decode(await fs.readFile(file), file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { nextOp: 0, flushedOps: 0 };
    throw e;
  }
}

/** An open guest journal; one per running disk. Not for concurrent writers. */
export class GuestJournal {
  private readonly buf = Buffer.alloc(SIZE);

  private constructor(
    private readonly fh: fs.FileHandle,
    private current: GuestJournalState,
  ) {}

  /**
   * Open (creating at 0/0 if missing) a journal. Throws `guestJournal.corrupt`;
   * on failure nothing stays open.
   */
  static async open(file: string): Promise<GuestJournal> {
    const state = await readGuestJournal(file);
    const fh = await fs.open(file, 'r+').catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      return fs.open(file, 'w+');
    });
    const j = new GuestJournal(fh, state);
    try {
      j.write(state);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return j;
  }

  get state(): GuestJournalState {
    return this.current;
  }

  /** Record that operation `index` is about to run. Synchronous, no fsync. */
  setNext(index: number): void {
    if (index !== this.current.nextOp) this.write({ nextOp: index, flushedOps: this.current.flushedOps });
  }

  /** Record that every write before operation `index` is flushed (`index ≤ nextOp`). Synchronous, no fsync. */
  setFlushed(index: number): void {
    const flushedOps = Math.min(index, this.current.nextOp);
    if (flushedOps > this.current.flushedOps) this.write({ nextOp: this.current.nextOp, flushedOps });
  }

  /** `fdatasync` the journal. */
  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  /** Close. Idempotent. */
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }

  private write(s: GuestJournalState): void {
    const n = writeSync(this.fh.fd, encode(s, this.buf), 0, SIZE, 0);
    if (n !== SIZE) throw new Error(`short write to the guest journal: ${n} of ${SIZE} bytes`);
    this.current = s;
  }
}
