/**
 * The 512-byte footer of a fixed VHD (docs/azure-target.md §3): what makes a
 * page blob importable as an Azure managed disk. Pure codec, no I/O.
 */
import { ReplicaStateError } from '../../errors';
import { MiB } from '../../units';

export const VHD_FOOTER_BYTES = 512;
const COOKIE = 'conectix';
const DATA_OFFSET_NONE = 0xffffffffffffffffn;
const FIXED_DISK = 2;
/** 2000-01-01 00:00:00 UTC, the VHD epoch. */
const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);

export interface VhdFooter {
  /** Virtual size in bytes (original = current); a whole number of MiB for Azure. */
  readonly sizeBytes: number;
  /** Creation time, ms since the Unix epoch (stored in whole seconds since 2000). */
  readonly createdMs: number;
  /** 16 bytes. */
  readonly uniqueId: Buffer;
  readonly geometry: VhdGeometry;
}

export interface VhdGeometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** The virtual size Azure accepts for a disk of `sizeBytes`: rounded up to a whole MiB. */
export function vhdVirtualSize(sizeBytes: number): number {
  return Math.ceil(sizeBytes / MiB) * MiB;
}

/** CHS geometry of the VHD specification (appendix "CHS calculation"). */
export function vhdGeometry(sizeBytes: number): VhdGeometry {
  let total = Math.floor(sizeBytes / 512);
  if (total > 65535 * 16 * 255) total = 65535 * 16 * 255;
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.floor((cth + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

/** One's complement of the byte sum, the checksum field (64..67) taken as zero. */
export function vhdChecksum(footer: Buffer): number {
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_BYTES; i++) if (i < 64 || i >= 68) sum += footer[i]!;
  return ~sum >>> 0;
}

/** The footer bytes of a fixed VHD of `sizeBytes` (a whole number of MiB). */
export function encodeVhdFooter(sizeBytes: number, createdMs: number, uniqueId: Buffer): Buffer {
  const b = Buffer.alloc(VHD_FOOTER_BYTES);
  b.write(COOKIE, 0, 'ascii');
  b.writeUInt32BE(0x00000002, 8);
  b.writeUInt32BE(0x00010000, 12);
  b.writeBigUInt64BE(DATA_OFFSET_NONE, 16);
  b.writeUInt32BE(Math.max(0, Math.floor((createdMs - VHD_EPOCH_MS) / 1000)) >>> 0, 24);
  b.write('lfbt', 28, 'ascii');
  b.writeUInt32BE(0x00010000, 32);
  b.write('Wi2k', 36, 'ascii');
  b.writeBigUInt64BE(BigInt(sizeBytes), 40);
  b.writeBigUInt64BE(BigInt(sizeBytes), 48);
  const g = vhdGeometry(sizeBytes);
  b.writeUInt16BE(g.cylinders, 56);
  b.writeUInt8(g.heads, 58);
  b.writeUInt8(g.sectorsPerTrack, 59);
  b.writeUInt32BE(FIXED_DISK, 60);
  uniqueId.copy(b, 68, 0, 16);
  b.writeUInt32BE(vhdChecksum(b), 64);
  return b;
}

function corrupt(what: string): ReplicaStateError {
  return new ReplicaStateError('replica.corrupt', `Not a fixed VHD footer: ${what}`, {
    hint: 'The blob was not written by Lifeboat or was modified outside it; delete the disk (disable and re-enable protection) to replicate it again.',
  });
}

/**
 * Parse a fixed-VHD footer. Throws `ReplicaStateError` `replica.corrupt` for a
 * wrong length, cookie, data offset, disk type, checksum or sizes.
 */
export function decodeVhdFooter(b: Buffer): VhdFooter {
  if (b.length !== VHD_FOOTER_BYTES) throw corrupt(`${b.length} bytes`);
  if (b.toString('ascii', 0, 8) !== COOKIE) throw corrupt('cookie');
  if (b.readBigUInt64BE(16) !== DATA_OFFSET_NONE) throw corrupt('data offset (not a fixed disk)');
  if (b.readUInt32BE(60) !== FIXED_DISK) throw corrupt(`disk type ${b.readUInt32BE(60)}`);
  if (b.readUInt32BE(64) !== vhdChecksum(b)) throw corrupt('checksum');
  const original = b.readBigUInt64BE(40);
  const current = b.readBigUInt64BE(48);
  if (current > BigInt(Number.MAX_SAFE_INTEGER) || original !== current) throw corrupt('sizes');
  return {
    sizeBytes: Number(current),
    createdMs: VHD_EPOCH_MS + b.readUInt32BE(24) * 1000,
    uniqueId: Buffer.from(b.subarray(68, 84)),
    geometry: { cylinders: b.readUInt16BE(56), heads: b.readUInt8(58), sectorsPerTrack: b.readUInt8(59) },
  };
}
