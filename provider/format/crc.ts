/**
 * CRC-32 of docs/log-format.md §4: zlib's CRC (`node:zlib` `crc32`), plus
 * `crc32Combine`, so a running checksum over header and data never reads the
 * data twice.
 */

import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before
 * it) when given. Pure.
 */
export function crc32(data: Uint8Array, initial = 0): number {
  return zlibCrc32(data, initial) >>> 0;
}

const POLY = 0xedb88320;

/** a · b modulo the CRC polynomial, in zlib's reflected representation. */
function multModP(a: number, b: number): number {
  let m = 0x8000_0000;
  let p = 0;
  let bb = b >>> 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= bb;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    bb = (bb & 1) !== 0 ? (bb >>> 1) ^ POLY : bb >>> 1;
  }
  return p >>> 0;
}

/** x^(2^n) modulo the polynomial, n = 0 … 63. */
const X2N: number[] = (() => {
  const table: number[] = [];
  let p = 0x4000_0000; // x^1
  for (let n = 0; n < 64; n++) {
    table.push(p);
    p = multModP(p, p);
  }
  return table;
})();

/** x^(n · 2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x8000_0000; // x^0
  let rest = n;
  let bit = k;
  while (rest > 0) {
    if (rest % 2 === 1) p = multModP(X2N[bit & 63], p);
    rest = Math.floor(rest / 2);
    bit++;
  }
  return p;
}

/**
 * CRC-32 of `A || B` from `crcA = crc32(A)`, `crcB = crc32(B)` and the length
 * of B, in O(log lengthB) time. Pure; `lengthB` may be up to 2^53 − 1.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB === 0) return crcA >>> 0;
  return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}
