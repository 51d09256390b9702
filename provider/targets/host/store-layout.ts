/**
 * Names and paths of the replica store (docs/replica-format.md §2, §3). File
 * names are part of the format: each has a format function, a parse function
 * and a pattern, and name order is cycle order.
 */
import path from 'node:path';
import { InvalidInputError } from '../../errors';

/** Longest folder name a disk id may encode to (§3). */
export const MAX_DISK_NAME = 200;

const KEEP = /^[A-Za-z0-9_-]$/;

/**
 * The folder name of a disk id (§3). Throws `InvalidInputError`
 * (`replica.invalidDiskId`) for an empty id or one whose name is too long.
 */
export function diskNameOf(diskId: string): string {
  if (typeof diskId !== 'string' || diskId.length === 0) {
    throw new InvalidInputError('replica.invalidDiskId', 'A disk id must be a non-empty string', {
      where: { path: '/diskId' },
      hint: 'Pass the protected disk id, e.g. `vm1/disk0`.',
    });
  }
  let name = '';
  for (const ch of diskId) {
    if (KEEP.test(ch)) name += ch;
    else for (const b of Buffer.from(ch, 'utf8')) name += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (name.length > MAX_DISK_NAME) {
    throw new InvalidInputError('replica.invalidDiskId', `Disk id too long: its folder name has ${name.length} characters, at most ${MAX_DISK_NAME} are allowed`, {
      where: { path: '/diskId' },
      details: { diskId },
      hint: 'Use a shorter disk id (about 60 non-ASCII or 200 ASCII letters and digits at most).',
    });
  }
  return name;
}

/** The disk id of a folder name, or `undefined` if the name is not a disk folder (§3). */
export function diskIdOfName(name: string): string | undefined {
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(name)) return undefined;
  try {
    const id = decodeURIComponent(name);
    return diskNameOf(id) === name ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Pattern of undo file names (§2). */
export const UNDO_FILE_PATTERN = /^c-([0-9a-f]{16})\.undo$/;

/** Name of the undo file of a cycle (§2). */
export function undoFileName(cycle: number): string {
  return `c-${cycle.toString(16).padStart(16, '0')}.undo`;
}

/** Cycle number of an undo file name, or `undefined` if it is not one (§2). */
export function parseUndoFileName(name: string): number | undefined {
  const m = UNDO_FILE_PATTERN.exec(name);
  if (m === null) return undefined;
  const n = Number.parseInt(m[1]!, 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Id of the point taken after a cycle (§1). */
export function pointIdOf(cycle: number): string {
  return `p-${cycle.toString(16).padStart(16, '0')}`;
}

/** Paths of one disk's folder (§2). */
export class DiskPaths {
  constructor(readonly dir: string) {}

  get manifest(): string {
    return path.join(this.dir, 'manifest.json');
  }

  get manifestTmp(): string {
    return path.join(this.dir, 'manifest.json.tmp');
  }

  get replica(): string {
    return path.join(this.dir, 'replica.img');
  }

  get undoDir(): string {
    return path.join(this.dir, 'undo');
  }

  undo(cycle: number): string {
    return path.join(this.undoDir, undoFileName(cycle));
  }
}

/** Paths of the store (§2). */
export class StorePaths {
  constructor(readonly root: string) {}

  get disksDir(): string {
    return path.join(this.root, 'disks');
  }

  disk(diskId: string): DiskPaths {
    return new DiskPaths(path.join(this.disksDir, diskNameOf(diskId)));
  }

  /** A fresh staging (`.staging-…`) or deleting (`.deleting-…`) folder (§7.1, §7.7). */
  scratch(kind: 'staging' | 'deleting', random: string): string {
    return path.join(this.disksDir, `.${kind}-${random}`);
  }
}
