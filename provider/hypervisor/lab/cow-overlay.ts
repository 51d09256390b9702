/**
 * Copy-on-write overlay disks for test failover (DESIGN.md §5, docs/lab.md
 * §4): the guest reads a block from the overlay file once the block was
 * written there, from the base otherwise; writes go to the overlay only.
 * The base is never written (it is opened read-only), and creating an
 * overlay writes one header and reads nothing of the base, so its cost does
 * not depend on the disk size.
 *
 * File layout (little-endian), `<disk>.cow`:
 *
 *     header (4096 bytes) || bitmap (⌈blocks / 8⌉ bytes, padded to 4096) || data
 *
 *     header = "LBCOWOV1" || u32 version (1) || u32 blockSize || u64 diskSize
 *              || u64 bitmapOffset || u64 dataOffset || u32 CRC-32 of bytes 0–39
 *
 * Block `i` (bytes `[i·blockSize, (i+1)·blockSize)` of the disk) lives at
 * `dataOffset + i·blockSize`; bit `i` of the bitmap (byte `i >> 3`, bit
 * `i & 7`, least significant first) says it does. docs/lab.md §4. The file is sparse: only
 * written blocks take space.
 *
 * Write order: a block's data is written before its bit, so a stop of the
 * process never exposes a bit without its data. The lab models process
 * crashes; after a power loss without a flush, a block may read as zeros
 * (test-failover VMs are disposable).
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { InvalidInputError, NonRecoverableError } from '../../errors';
import { syncDirectory } from '../../atomic-file';
import { KiB } from '../../units';

/** A read-only disk an overlay reads unwritten blocks from. */
export interface OverlayBase {
  /** Virtual size in bytes. */
  readonly sizeBytes: number;
  /** `length` bytes at `offset` (within the disk). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Release it. Idempotent. */
  close(): Promise<void>;
}

export interface CreateOverlayOptions {
  /** The overlay file to create; must not exist. */
  readonly file: string;
  /** The base's size in bytes: a positive multiple of 512. */
  readonly sizeBytes: number;
  /** Copy-on-write unit: a power of two, 4 KiB … 4 MiB. @default 64 KiB */
  readonly blockSize?: number;
}

const HEADER_SIZE = 4096;
const MAGIC = Buffer.from('LBCOWOV1', 'latin1');
const VERSION = 1;
const DEFAULT_BLOCK_SIZE = 64 * KiB;

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Geometry of an overlay file. */
interface Geometry {
  readonly blockSize: number;
  readonly diskSize: number;
  readonly blocks: number;
  readonly bitmapOffset: number;
  readonly bitmapBytes: number;
  readonly dataOffset: number;
}

function geometry(diskSize: number, blockSize: number): Geometry {
  const blocks = Math.ceil(diskSize / blockSize);
  const bitmapBytes = Math.ceil(blocks / 8);
  return { blockSize, diskSize, blocks, bitmapOffset: HEADER_SIZE, bitmapBytes, dataOffset: roundUp(HEADER_SIZE + bitmapBytes, 4096) };
}

function encodeHeader(g: Geometry): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(VERSION, 8);
  h.writeUInt32LE(g.blockSize, 12);
  h.writeBigUInt64LE(BigInt(g.diskSize), 16);
  h.writeBigUInt64LE(BigInt(g.bitmapOffset), 24);
  h.writeBigUInt64LE(BigInt(g.dataOffset), 32);
  h.writeUInt32LE(crc32(h.subarray(0, 40)), 40);
  return h;
}

function decodeHeader(h: Buffer, file: string): Geometry {
  const bad = (why: string): never => {
    throw new NonRecoverableError('overlay.corrupt', `overlay ${file} is unreadable: ${why}`, {
      where: { file },
      hint: 'Delete the test-failover VM and run the test failover again.',
    });
  };
  if (h.length < 44 || !h.subarray(0, 8).equals(MAGIC)) bad('bad magic');
  const version = h.readUInt32LE(8);
  if (version !== VERSION) {
    throw new NonRecoverableError('overlay.unknownVersion', `overlay ${file} has version ${version}; this Lifeboat reads version ${VERSION}`, {
      where: { file },
      hint: 'A newer Lifeboat wrote it: upgrade this host agent.',
    });
  }
  if (h.readUInt32LE(40) !== crc32(h.subarray(0, 40))) bad('header checksum mismatch');
  const g = geometry(Number(h.readBigUInt64LE(16)), h.readUInt32LE(12));
  if (g.bitmapOffset !== Number(h.readBigUInt64LE(24)) || g.dataOffset !== Number(h.readBigUInt64LE(32))) bad('inconsistent geometry');
  return g;
}

function checkGeometry(sizeBytes: number, blockSize: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % 512 !== 0) {
    throw new InvalidInputError('overlay.invalidSize', `overlay size ${sizeBytes} is not a positive multiple of 512`);
  }
  if (!Number.isSafeInteger(blockSize) || blockSize < 4 * KiB || blockSize > 4096 * KiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new InvalidInputError('overlay.invalidBlockSize', `overlay block size ${blockSize} is not a power of two 4 KiB … 4 MiB`);
  }
}

/**
 * An open overlay disk. Writes run one at a time in call order; `read` is
 * not ordered with them and sees every write that completed before it was
 * called.
 */
export class CowOverlay {
  private tail: Promise<unknown> = Promise.resolve();
  private dirty = false;
  private closed = false;

  private constructor(
    private readonly fh: fs.FileHandle,
    private readonly g: Geometry,
    private readonly bitmap: Buffer,
    private readonly base: OverlayBase,
  ) {}

  /**
   * Create an empty overlay file: header only, the rest sparse; reads
   * nothing of any base. Throws `InvalidInputError` `overlay.invalidSize`,
   * `overlay.invalidBlockSize`, and `EEXIST` if the file exists. If it
   * fails, the file may remain partly written; `open` refuses it and a
   * retry must delete it first.
   */
  static async create(options: CreateOverlayOptions): Promise<void> {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkGeometry(options.sizeBytes, blockSize);
    const g = geometry(options.sizeBytes, blockSize);
    const fh = await fs.open(options.file, 'wx');
    try {
      await fh.write(encodeHeader(g), 0, HEADER_SIZE, 0);
      await fh.truncate(g.dataOffset + g.blocks * g.blockSize);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await syncDirectory(path.dirname(options.file));
  }

  /**
   * Open an overlay over `base`, which it then owns (closed with it). Reads
   * the header and the bitmap, never the base. Throws `NonRecoverableError`
   * `overlay.corrupt`, `overlay.unknownVersion`, `overlay.baseMismatch` (the
   * base's size differs). If it fails, the base is closed.
   */
  static async open(file: string, base: OverlayBase): Promise<CowOverlay> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(file, 'r+');
      const head = Buffer.alloc(HEADER_SIZE);
      const { bytesRead } = await fh.read(head, 0, HEADER_SIZE, 0);
      const g = decodeHeader(head.subarray(0, bytesRead), file);
      if (base.sizeBytes !== g.diskSize) {
        throw new NonRecoverableError('overlay.baseMismatch', `overlay ${file} is for a disk of ${g.diskSize} bytes but its base has ${base.sizeBytes}`, {
          where: { file },
          hint: 'The base changed under the overlay; delete the test-failover VM and run it again.',
        });
      }
      const bitmap = Buffer.alloc(g.bitmapBytes);
      await readFully(fh, bitmap, g.bitmapOffset);
      return new CowOverlay(fh, g, bitmap, base);
    } catch (e) {
      await fh?.close();
      await base.close();
      throw e;
    }
  }

  get sizeBytes(): number {
    return this.g.diskSize;
  }

  get blockSize(): number {
    return this.g.blockSize;
  }

  /** Blocks written to the overlay so far. No I/O. */
  writtenBlocks(): number {
    let n = 0;
    for (const byte of this.bitmap) {
      let b = byte;
      while (b !== 0) {
        b &= b - 1;
        n++;
      }
    }
    return n;
  }

  /**
   * The byte ranges the overlay holds (its written blocks, merged into runs,
   * the last clipped to the disk size), in order: every block the guest
   * wrote since the overlay was made (reprotect's record of the failover
   * VM's writes, docs/failover.md §7). No I/O.
   */
  writtenExtents(): { readonly offset: number; readonly length: number }[] {
    const out: { offset: number; length: number }[] = [];
    const bs = this.g.blockSize;
    for (let b = 0; b < this.g.blocks; b++) {
      if (!this.isSet(b)) continue;
      const offset = b * bs;
      const length = Math.min(bs, this.g.diskSize - offset);
      const last = out[out.length - 1];
      if (last !== undefined && last.offset + last.length === offset) last.length += length;
      else out.push({ offset, length });
    }
    return out;
  }

  /** `length` bytes at `offset`. Throws `InvalidInputError` `overlay.outOfRange`, `overlay.closed`. */
  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length, 'read');
    this.assertOpen();
    const out = Buffer.alloc(length);
    const bs = this.g.blockSize;
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const inOverlay = this.isSet(Math.floor(at / bs));
      // Extend the run while blocks keep the same state.
      let runEnd = Math.min(end, (Math.floor(at / bs) + 1) * bs);
      while (runEnd < end && this.isSet(Math.floor(runEnd / bs)) === inOverlay) runEnd = Math.min(end, runEnd + bs);
      if (inOverlay) {
        await readFully(this.fh, out.subarray(at - offset, runEnd - offset), this.g.dataOffset + at);
      } else {
        const part = await this.base.read(at, runEnd - at);
        part.copy(out, at - offset);
      }
      at = runEnd;
    }
    return out;
  }

  /**
   * Write `data` at `offset` into the overlay: a block not yet in the overlay
   * and only partly covered is first copied from the base. Not durable
   * until `flush`. Throws `InvalidInputError` `overlay.outOfRange`,
   * `overlay.closed`.
   */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.length, 'write');
    this.assertOpen();
    if (data.length === 0) return;
    const run = this.tail.then(() => this.writeLocked(offset, data));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Make every completed write durable (`fdatasync`). Idempotent. */
  async flush(): Promise<void> {
    this.assertOpen();
    const run = this.tail.then(async () => {
      if (!this.dirty) return;
      await this.fh.datasync();
      this.dirty = false;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Close the overlay and its base, after queued writes. Does not flush. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.fh.close().catch(() => undefined);
    await this.base.close();
  }

  private async writeLocked(offset: number, data: Uint8Array): Promise<void> {
    const bs = this.g.blockSize;
    const end = offset + data.length;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    const newBits: number[] = [];
    let direct = offset;
    // Only the first and the last block can be partly covered.
    if (!this.isSet(first) && (offset % bs !== 0 || end < this.blockEnd(first))) {
      const blockEnd = Math.min(end, this.blockEnd(first));
      await this.copyOnWrite(first, offset, data.subarray(0, blockEnd - offset));
      newBits.push(first);
      direct = blockEnd;
    }
    let directEnd = end;
    if (last > first && !this.isSet(last) && end < this.blockEnd(last)) {
      directEnd = last * bs;
      await this.copyOnWrite(last, directEnd, data.subarray(directEnd - offset));
      newBits.push(last);
    }
    if (direct < directEnd) {
      await writeFully(this.fh, data.subarray(direct - offset, directEnd - offset), this.g.dataOffset + direct);
      for (let b = Math.floor(direct / bs); b <= Math.floor((directEnd - 1) / bs); b++) if (!this.isSet(b)) newBits.push(b);
    }
    this.dirty = true;
    if (newBits.length === 0) return;
    // Data first, then the bits that point at it.
    let lo = Infinity;
    let hi = -1;
    for (const b of newBits) {
      this.bitmap[b >> 3]! |= 1 << (b & 7);
      lo = Math.min(lo, b >> 3);
      hi = Math.max(hi, b >> 3);
    }
    await writeFully(this.fh, this.bitmap.subarray(lo, hi + 1), this.g.bitmapOffset + lo);
  }

  /** Write block `block` into the overlay: its base bytes with `data` at disk offset `at` laid over them. */
  private async copyOnWrite(block: number, at: number, data: Uint8Array): Promise<void> {
    const start = block * this.g.blockSize;
    const blockBytes = await this.base.read(start, this.blockEnd(block) - start);
    blockBytes.set(data, at - start);
    await writeFully(this.fh, blockBytes, this.g.dataOffset + start);
  }

  /** End of block `b`, clipped to the disk. */
  private blockEnd(b: number): number {
    return Math.min(this.g.diskSize, (b + 1) * this.g.blockSize);
  }

  private isSet(b: number): boolean {
    return (this.bitmap[b >> 3]! & (1 << (b & 7))) !== 0;
  }

  private checkRange(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.g.diskSize) {
      throw new InvalidInputError('overlay.outOfRange', `cannot ${what} ${length} bytes at ${offset}: the disk has ${this.g.diskSize} bytes`);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidInputError('overlay.closed', 'the overlay disk is closed');
  }
}

/**
 * A raw disk file as a read-only overlay base: opened `r`, so nothing
 * written through this object can reach it.
 */
export async function openFileBase(file: string): Promise<OverlayBase> {
  const fh = await fs.open(file, 'r');
  let sizeBytes: number;
  try {
    sizeBytes = (await fh.stat()).size;
  } catch (e) {
    await fh.close();
    throw e;
  }
  let closed = false;
  return {
    sizeBytes,
    async read(offset, length) {
      const out = Buffer.alloc(length);
      await readFully(fh, out, offset);
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/** Fill `buf` from `position`; bytes past the end of the file read as zeros. */
async function readFully(fh: fs.FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done);
      return;
    }
    done += bytesRead;
  }
}

async function writeFully(fh: fs.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}
