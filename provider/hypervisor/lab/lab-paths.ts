/**
 * The lab's folder layout (docs/lab.md §1) and the checks that keep every
 * file the lab touches inside its lab root: names that cannot escape a
 * directory, and paths resolved through symbolic links before they are
 * compared with the root.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidInputError } from '../../errors';
import { isDiskId } from '../../format';

/** Names of VMs and NICs: a letter or digit, then up to 63 of `A-Z a-z 0-9 . _ -`. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Network names: printable, no slash or backslash, 1–128 characters, not padded. */
const NETWORK_PATTERN = /^[^\s/\\\p{Cc}](?:[^/\\\p{Cc}]{0,126}[^\s/\\\p{Cc}])?$/u;
/** `scheme:rest`, for locations a resolver opens. */
const SCHEME_PATTERN = /^[a-z][a-z0-9+.-]*:/;

/** Paths of a lab. All absolute. */
export interface LabLayout {
  readonly root: string;
  /** `<root>/vms`: one directory per VM. */
  readonly vmsDir: string;
  /** `<root>/lab.lock`: the pid of the process that drives the lab. */
  readonly lockFile: string;
}

/**
 * The layout of the lab at `root`, resolved to an absolute path. Pure; give
 * it the real path (`realPath`) so that containment checks compare like
 * with like.
 */
export function labLayout(root: string): LabLayout {
  const r = path.resolve(root);
  return { root: r, vmsDir: path.join(r, 'vms'), lockFile: path.join(r, 'lab.lock') };
}

/** `<root>/vms/<name>`. The name must have been checked. */
export function vmDir(layout: LabLayout, name: string): string {
  return path.join(layout.vmsDir, name);
}

/** The files of one disk inside its VM directory (docs/lab.md §1). Pure. */
export function diskFiles(dir: string, diskId: string): { readonly raw: string; readonly overlay: string; readonly journal: string } {
  return {
    raw: path.join(dir, `${diskId}.raw`),
    overlay: path.join(dir, `${diskId}.cow`),
    journal: path.join(dir, `${diskId}.guest`),
  };
}

/**
 * Check a VM or NIC name. Throws `InvalidInputError` `hypervisor.invalidName`
 * (with `where.path` = `jsonPath`) for anything that could name another
 * directory (`..`, `/`, `\`), a hidden file, or is empty or too long.
 */
export function checkName(name: unknown, jsonPath: string, what = 'VM name'): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new InvalidInputError('hypervisor.invalidName', `${what} ${JSON.stringify(name)} is invalid: use a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -`, {
      where: { path: jsonPath },
    });
  }
  return name;
}

/** Check a disk id (the tracker's rule). Throws `InvalidInputError` `hypervisor.invalidDiskId`. */
export function checkDiskId(id: unknown, jsonPath: string): string {
  if (typeof id !== 'string' || !isDiskId(id)) {
    throw new InvalidInputError('hypervisor.invalidDiskId', `disk id ${JSON.stringify(id)} is invalid: use 1 to 64 of A-Z a-z 0-9 _ -`, {
      where: { path: jsonPath },
    });
  }
  return id;
}

/** Check a network name. Throws `InvalidInputError` `hypervisor.invalidNetwork`. */
export function checkNetwork(network: unknown, jsonPath: string): string {
  if (typeof network !== 'string' || !NETWORK_PATTERN.test(network)) {
    throw new InvalidInputError(
      'hypervisor.invalidNetwork',
      `network name ${JSON.stringify(network)} is invalid: use 1 to 128 printable characters without / or \\, not starting or ending with a space`,
      { where: { path: jsonPath } },
    );
  }
  return network;
}

/** True when `location` is `scheme:rest` (opened by a resolver), not a path. Pure. */
export function isResolverLocation(location: string): boolean {
  return SCHEME_PATTERN.test(location) && !path.isAbsolute(location);
}

/**
 * The real absolute path of `p` (absolute, or relative to the lab root),
 * after following symbolic links of every part that exists, when it lies
 * strictly inside the lab root. Throws `InvalidInputError`
 * `hypervisor.pathOutsideLab` otherwise (`..`, a link out of the lab, an
 * absolute path elsewhere). Does not require `p` to exist.
 */
export async function resolveInsideLab(layout: LabLayout, p: string, jsonPath: string): Promise<string> {
  if (typeof p !== 'string' || p === '' || p.includes('\0')) {
    throw new InvalidInputError('hypervisor.pathOutsideLab', `path ${JSON.stringify(p)} is not a path inside the lab root ${layout.root}`, {
      where: { path: jsonPath },
    });
  }
  const real = await realPath(path.resolve(layout.root, p));
  const rel = path.relative(layout.root, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new InvalidInputError('hypervisor.pathOutsideLab', `path ${p} is outside the lab root ${layout.root}`, {
      where: { path: jsonPath },
      hint: 'The lab hypervisor works only on files inside its lab root; put the disk there (e.g. the replica store of a recovery host).',
    });
  }
  return real;
}

/** A path inside the lab relative to its root, with `/` separators, as vm.json stores it. Pure. */
export function labRelative(layout: LabLayout, real: string): string {
  return path.relative(layout.root, real).split(path.sep).join('/');
}

/** `realpath` of the longest existing prefix of `p`, with the rest appended. */
export async function realPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fs.realpath(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const parent = path.dirname(abs);
    if (parent === abs) return abs;
    return path.join(await realPath(parent), path.basename(abs));
  }
}
