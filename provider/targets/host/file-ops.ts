/**
 * The file operations the replica store uses, behind an interface so tests can
 * inject faults (a crash at step N, lost unsynced writes) without touching the
 * store's logic. Every mutating operation of the store goes through here, so
 * the sequence of calls *is* the write order of docs/replica-format.md §7.
 *
 * Methods throw the system's errors unchanged; the store classifies them
 * (io-errors.ts).
 */
import fs from 'node:fs/promises';

/** How to open a file. */
export type OpenMode =
  /** Read only; the file must exist. */
  | 'read'
  /** Read and write; the file must exist. */
  | 'readWrite'
  /** Read and write; created if missing, truncated to 0 if present. */
  | 'create';

/** An open file. */
export interface FileHandleLike {
  /** Read up to `length` bytes at `position` into `buffer[offset…]`; returns the count (short at end of file). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Write all of `buffer[offset, offset + length)` at `position`. */
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<void>;
  /** Make the file's data durable (fsync). */
  sync(): Promise<void>;
  /** Set the file's length (sparse when growing). */
  truncate(length: number): Promise<void>;
  /** Current length in bytes. */
  size(): Promise<number>;
  /** Release the handle. Never throws for an already closed handle. */
  close(): Promise<void>;
}

export interface FileOps {
  open(path: string, mode: OpenMode): Promise<FileHandleLike>;
  /** Atomically replace `to` with `from`. */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file; no error if it does not exist. */
  unlink(path: string): Promise<void>;
  /** Create a directory and its parents; no error if it exists. */
  mkdir(path: string): Promise<void>;
  /** Names in a directory; empty if it does not exist. */
  readdir(path: string): Promise<string[]>;
  /** Remove a directory tree; no error if it does not exist. */
  removeTree(path: string): Promise<void>;
  /** Make a directory's entries durable (fsync of the directory). */
  syncDir(path: string): Promise<void>;
  /** Whether a file or directory exists. */
  exists(path: string): Promise<boolean>;
  /** Whole content of a small file. */
  readFile(path: string): Promise<Buffer>;
}

const FLAGS: Record<OpenMode, string> = { read: 'r', readWrite: 'r+', create: 'w+' };

class NodeFileHandle implements FileHandleLike {
  private closed = false;

  constructor(private readonly handle: fs.FileHandle) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buffer, offset + done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async write(buffer: Buffer, offset: number, length: number, position: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await this.handle.write(buffer, offset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/** The real file system (node:fs/promises). */
export const nodeFileOps: FileOps = {
  async open(path, mode) {
    return new NodeFileHandle(await fs.open(path, FLAGS[mode]));
  },
  rename: (from, to) => fs.rename(from, to),
  async unlink(path) {
    try {
      await fs.unlink(path);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
  },
  async mkdir(path) {
    await fs.mkdir(path, { recursive: true });
  },
  async readdir(path) {
    try {
      return await fs.readdir(path);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
  },
  removeTree: (path) => fs.rm(path, { recursive: true, force: true }),
  async syncDir(path) {
    const h = await fs.open(path, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  },
  async exists(path) {
    try {
      await fs.stat(path);
      return true;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false;
      throw e;
    }
  },
  readFile: (path) => fs.readFile(path),
};
