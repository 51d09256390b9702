/**
 * Little-endian 64-bit integers limited to JavaScript's exact range
 * (docs/log-format.md §1: a `u64` above 2^53 − 1 is invalid).
 */

const TWO_32 = 0x1_0000_0000;
/** High word limit: 2^53 − 1 has a high word of 2^21 − 1. */
const MAX_HIGH = 0x1f_ffff;

/**
 * Read a `u64` at `pos`. Returns `undefined` when the value exceeds
 * 2^53 − 1, so that callers classify it as invalid instead of rounding.
 */
export function readU64(buf: Uint8Array, pos: number): number | undefined {
  const lo = readU32(buf, pos);
  const hi = readU32(buf, pos + 4);
  return hi > MAX_HIGH ? undefined : hi * TWO_32 + lo;
}

/** Write a non-negative safe integer as a `u64` at `pos`. */
export function writeU64(buf: Uint8Array, pos: number, value: number): void {
  writeU32(buf, pos, value % TWO_32);
  writeU32(buf, pos + 4, Math.floor(value / TWO_32));
}

/** Read a `u32` at `pos`. */
export function readU32(buf: Uint8Array, pos: number): number {
  return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)) + buf[pos + 3] * 0x100_0000;
}

/** Write a `u32` at `pos`. */
export function writeU32(buf: Uint8Array, pos: number, value: number): void {
  buf[pos] = value & 0xff;
  buf[pos + 1] = (value >>> 8) & 0xff;
  buf[pos + 2] = (value >>> 16) & 0xff;
  buf[pos + 3] = (value >>> 24) & 0xff;
}

/** Read a `u16` at `pos`. */
export function readU16(buf: Uint8Array, pos: number): number {
  return buf[pos] | (buf[pos + 1] << 8);
}

/** Write a `u16` at `pos`. */
export function writeU16(buf: Uint8Array, pos: number, value: number): void {
  buf[pos] = value & 0xff;
  buf[pos + 1] = (value >>> 8) & 0xff;
}

/** True when every byte of `buf[from, to)` is zero. */
export function isZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}
