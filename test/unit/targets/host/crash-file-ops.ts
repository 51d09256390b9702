/**
 * A `FileOps` that models a machine crash for the store's tests: it counts the
 * mutating steps (create, write, sync, truncate, rename, unlink, mkdir, rmdir,
 * directory sync), throws at step N and fails every later call, like a
 * process that stopped there. `revertUnsynced()` then undoes every file write
 * not covered by a later fsync of that file, which is what a power loss may
 * cost. It can also fail one step with an errno, without crashing.
 *
 * It keeps durability itself, so it does not call the real fsync: the tests
 * check the store's write order, not the kernel's. Directory entries are
 * modelled as durable at once (creates, renames and unlinks are not reverted).
 */
import fs from 'node:fs/promises';
import { type FileHandleLike, type FileOps, nodeFileOps, type OpenMode } from '../../../../provider/targets/host/file-ops';

/** The simulated crash. */
export class CrashError extends Error {}

interface Undo {
  readonly pos: number;
  readonly old: Buffer;
  readonly oldSize: number;
}

export interface CrashFileOpsOptions {
  /** Crash at this step (1-based). @default never */
  readonly crashAt?: number;
  /** Fail this step with this errno (one shot, no crash). @default never */
  readonly failAt?: { readonly step: number; readonly errno: string };
}

export class CrashFileOps implements FileOps {
  steps = 0;
  crashed = false;
  /** What each step was, for failure messages. */
  readonly log: string[] = [];
  private readonly journals = new Map<string, Undo[]>();

  constructor(private readonly options: CrashFileOpsOptions = {}) {}

  /** Count a mutating step; crash or fail if it is the chosen one. */
  step(what: string): void {
    this.assertAlive();
    this.steps++;
    this.log.push(what);
    if (this.steps === this.options.crashAt) {
      this.crashed = true;
      throw new CrashError(`simulated crash at step ${this.steps}: ${what}`);
    }
    if (this.steps === this.options.failAt?.step) {
      throw Object.assign(new Error(`${this.options.failAt.errno}: injected at step ${this.steps} (${what})`), { code: this.options.failAt.errno });
    }
  }

  assertAlive(): void {
    if (this.crashed) throw new CrashError('the process crashed earlier');
  }

  /** Undo every write not made durable by a later fsync of its file (newest first). */
  async revertUnsynced(): Promise<void> {
    for (const [file, undos] of this.journals) {
      const h = await fs.open(file, 'r+').catch(() => undefined);
      if (h === undefined) continue;
      try {
        for (const u of [...undos].reverse()) {
          if (u.old.length > 0) await h.write(u.old, 0, u.old.length, u.pos);
          await h.truncate(u.oldSize);
        }
      } finally {
        await h.close();
      }
    }
    this.journals.clear();
  }

  record(file: string, u: Undo): void {
    const j = this.journals.get(file) ?? [];
    j.push(u);
    this.journals.set(file, j);
  }

  synced(file: string): void {
    this.journals.delete(file);
  }

  async open(path: string, mode: OpenMode): Promise<FileHandleLike> {
    if (mode === 'create') {
      this.step(`create ${path}`);
      const before = await fs.readFile(path).catch(() => undefined);
      const h = await nodeFileOps.open(path, mode);
      this.record(path, { pos: 0, old: before ?? Buffer.alloc(0), oldSize: before?.length ?? 0 });
      return new CrashHandle(this, path, h);
    }
    this.assertAlive();
    return new CrashHandle(this, path, await nodeFileOps.open(path, mode));
  }

  async rename(from: string, to: string): Promise<void> {
    this.step(`rename ${from} -> ${to}`);
    await nodeFileOps.rename(from, to);
    for (const [file, j] of [...this.journals]) {
      if (file === to || file.startsWith(`${to}/`)) this.journals.delete(file);
      if (file === from || file.startsWith(`${from}/`)) {
        this.journals.delete(file);
        this.journals.set(to + file.slice(from.length), j);
      }
    }
  }

  async unlink(path: string): Promise<void> {
    this.step(`unlink ${path}`);
    await nodeFileOps.unlink(path);
    this.journals.delete(path);
  }

  async mkdir(path: string): Promise<void> {
    this.step(`mkdir ${path}`);
    await nodeFileOps.mkdir(path);
  }

  async readdir(path: string): Promise<string[]> {
    this.assertAlive();
    return nodeFileOps.readdir(path);
  }

  async removeTree(path: string): Promise<void> {
    this.step(`rmtree ${path}`);
    await nodeFileOps.removeTree(path);
    for (const file of [...this.journals.keys()]) if (file.startsWith(`${path}/`)) this.journals.delete(file);
  }

  async syncDir(path: string): Promise<void> {
    this.step(`syncdir ${path}`);
  }

  async exists(path: string): Promise<boolean> {
    this.assertAlive();
    return nodeFileOps.exists(path);
  }

  async readFile(path: string): Promise<Buffer> {
    this.assertAlive();
    return nodeFileOps.readFile(path);
  }
}

class CrashHandle implements FileHandleLike {
  constructor(
    private readonly ops: CrashFileOps,
    private readonly path: string,
    private readonly h: FileHandleLike,
  ) {}

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    this.ops.assertAlive();
    return this.h.read(buffer, offset, length, position);
  }

  async write(buffer: Buffer, offset: number, length: number, position: number): Promise<void> {
    this.ops.step(`write ${this.path} @${position}+${length}`);
    const size = await this.h.size();
    const keep = Math.max(0, Math.min(length, size - position));
    const old = Buffer.alloc(keep);
    if (keep > 0) await this.h.read(old, 0, keep, position);
    this.ops.record(this.path, { pos: position, old, oldSize: size });
    await this.h.write(buffer, offset, length, position);
  }

  async sync(): Promise<void> {
    this.ops.step(`sync ${this.path}`);
    this.ops.synced(this.path);
  }

  async truncate(length: number): Promise<void> {
    this.ops.step(`truncate ${this.path} ${length}`);
    const size = await this.h.size();
    const keep = Math.max(0, size - length);
    const old = Buffer.alloc(keep);
    if (keep > 0) await this.h.read(old, 0, keep, length);
    this.ops.record(this.path, { pos: length, old, oldSize: size });
    await this.h.truncate(length);
  }

  size(): Promise<number> {
    this.ops.assertAlive();
    return this.h.size();
  }

  close(): Promise<void> {
    return this.h.close();
  }
}
