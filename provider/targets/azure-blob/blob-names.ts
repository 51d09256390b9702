/**
 * Names and metadata values of the container layout
 * (docs/azure-target.md §2): disk ids as blob-name-safe folders, point ids,
 * and strings as ASCII metadata values.
 */
import { InvalidInputError } from '../../errors';

/** Longest encoded disk id (blob names are limited to 1024 characters). */
const MAX_ENCODED_ID = 900;

function badId(diskId: string, why: string): InvalidInputError {
  return new InvalidInputError('replica.invalidDiskId', `Invalid disk id ${JSON.stringify(diskId)}: ${why}`, {
    where: { path: '/diskId' },
    hint: 'A disk id is a non-empty string whose encoded form fits in a blob name.',
  });
}

/** §2: bytes outside `[A-Za-z0-9_-]` as `~` + two lowercase hex digits. Throws `replica.invalidDiskId`. */
export function encodeDiskId(diskId: string): string {
  if (typeof diskId !== 'string' || diskId.length === 0) throw badId(String(diskId), 'empty');
  let out = '';
  for (const b of Buffer.from(diskId, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `~${b.toString(16).padStart(2, '0')}`;
  }
  if (out.length > MAX_ENCODED_ID) throw badId(diskId, `encoded form longer than ${MAX_ENCODED_ID} characters`);
  return out;
}

/** The disk id of an encoded name, or `undefined` if it is not one. */
export function decodeDiskId(name: string): string | undefined {
  if (!/^(?:[A-Za-z0-9_-]|~[0-9a-f]{2})+$/.test(name)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '~') {
      bytes.push(parseInt(name.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(name.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export const DISKS_PREFIX = 'disks/';
export const BASE_BLOB = 'replica.vhd';
export const INDEX_BLOB = 'index.sha256';
export const JOURNAL_BLOB = 'journal';
export const EXPORTS_PREFIX = 'exports/';

/** Blob names of one disk. */
export function diskBlobNames(diskId: string): { readonly base: string; readonly index: string; readonly journal: string } {
  const folder = `${DISKS_PREFIX}${encodeDiskId(diskId)}/`;
  return { base: `${folder}${BASE_BLOB}`, index: `${folder}${INDEX_BLOB}`, journal: `${folder}${JOURNAL_BLOB}` };
}

/** The disk id of a base blob's name, or `undefined`. */
export function diskIdOfBaseBlob(name: string): string | undefined {
  const m = /^disks\/([^/]+)\/replica\.vhd$/.exec(name);
  return m === null ? undefined : decodeDiskId(m[1]!);
}

/** Point id of a cycle number: `p-` + 16 lowercase hex digits. */
export function pointIdOf(cycle: number): string {
  return `p-${cycle.toString(16).padStart(16, '0')}`;
}

/** A string as an ASCII metadata value. */
export function metaEncode(s: string): string {
  return encodeURIComponent(s);
}

export function metaDecode(s: string): string {
  return decodeURIComponent(s);
}
