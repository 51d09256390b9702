/**
 * The subset of ASN.1 DER (ITU-T X.690 §10) that X.509 certificates need:
 * encoders for the universal types a certificate uses, context-specific tags,
 * and a reader that walks tag-length-value triples. Pure functions, no I/O.
 *
 * Byte order is big-endian throughout (X.690 §8.3, §8.1.3). Only definite
 * lengths are produced or accepted (DER forbids the indefinite form).
 */

import { BugError, InvalidInputError } from '../../errors';

/** Universal tags used by X.509 (X.680 §8.6). */
export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** The length octets of a definite-length encoding (X.690 §8.1.3): short form below 128, else long form. */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new BugError('der.badLength', `cannot encode length ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One tag-length-value triple. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: readonly Buffer[]): Buffer {
  return tlv(Tag.sequence, Buffer.concat(items));
}

/** A SET OF: DER orders the elements by their encodings (X.690 §11.6). */
export function setOf(...items: readonly Buffer[]): Buffer {
  return tlv(Tag.set, Buffer.concat([...items].sort(Buffer.compare)));
}

/**
 * An INTEGER from a non-negative bigint or an unsigned big-endian magnitude:
 * minimal two's-complement octets, with a leading zero octet when the high bit
 * would otherwise make it negative (X.690 §8.3.2).
 */
export function integer(value: bigint | Buffer): Buffer {
  let bytes: Buffer;
  if (typeof value === 'bigint') {
    if (value < 0n) throw new BugError('der.negativeInteger', 'only non-negative integers are encoded');
    const hex = value.toString(16);
    bytes = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
  } else {
    bytes = value;
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let body = bytes.subarray(start);
  if (body.length === 0) body = Buffer.from([0]);
  if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(Tag.integer, body);
}

export function boolean(value: boolean): Buffer {
  return tlv(Tag.boolean, Buffer.from([value ? 0xff : 0x00]));
}

export function nullValue(): Buffer {
  return tlv(Tag.null, Buffer.alloc(0));
}

/** An OBJECT IDENTIFIER from dotted decimal, e.g. `2.5.4.3` (X.690 §8.19). */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => {
    if (!/^\d+$/.test(p)) throw new BugError('der.badOid', `not an OID: ${dotted}`);
    return BigInt(p);
  });
  if (parts.length < 2 || parts[0]! > 2n || (parts[0]! < 2n && parts[1]! > 39n)) {
    throw new BugError('der.badOid', `not an OID: ${dotted}`);
  }
  const arcs = [parts[0]! * 40n + parts[1]!, ...parts.slice(2)];
  const out: number[] = [];
  for (const arc of arcs) {
    const group: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) group.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...group);
  }
  return tlv(Tag.oid, Buffer.from(out));
}

/** A BIT STRING whose content is whole octets plus `unusedBits` (0-7) padding bits in the last octet. */
export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  if (unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new BugError('der.badBitString', `invalid unused bit count ${unusedBits}`);
  }
  return tlv(Tag.bitString, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A named BIT STRING (e.g. KeyUsage) with the given bit numbers set, bit 0
 * being the most significant bit of the first octet. DER drops trailing zero
 * bits (X.690 §11.2.2), so the encoding is as short as the highest set bit.
 */
export function namedBitString(bits: readonly number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0), 0);
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8);
  return bitString(bytes, 7 - (highest % 8));
}

export function octetString(bytes: Buffer): Buffer {
  return tlv(Tag.octetString, bytes);
}

export function utf8String(s: string): Buffer {
  return tlv(Tag.utf8String, Buffer.from(s, 'utf8'));
}

/** An IA5String (ASCII); used by dNSName in subjectAltName. */
export function ia5String(s: string): Buffer {
  if ([...s].some((ch) => ch.charCodeAt(0) > 0x7f)) throw new InvalidInputError('der.notAscii', `'${s}' is not ASCII`);
  return tlv(Tag.ia5String, Buffer.from(s, 'ascii'));
}

function digits(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * A certificate validity time (RFC 5280 §4.1.2.5): UTCTime `YYMMDDHHMMSSZ`
 * for years 1950-2049, GeneralizedTime `YYYYMMDDHHMMSSZ` otherwise. Whole
 * seconds; milliseconds are dropped.
 */
export function time(ms: number): Buffer {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const rest = `${digits(d.getUTCMonth() + 1, 2)}${digits(d.getUTCDate(), 2)}${digits(d.getUTCHours(), 2)}`
    + `${digits(d.getUTCMinutes(), 2)}${digits(d.getUTCSeconds(), 2)}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.utcTime, Buffer.from(`${digits(y % 100, 2)}${rest}`, 'ascii'));
  return tlv(Tag.generalizedTime, Buffer.from(`${digits(y, 4)}${rest}`, 'ascii'));
}

/** `[n] EXPLICIT`: a constructed context-specific tag wrapping a whole encoding. */
export function explicit(tagNumber: number, inner: Buffer): Buffer {
  return tlv(0xa0 | tagNumber, inner);
}

/** `[n] IMPLICIT` of a primitive type: the content with a context-specific primitive tag. */
export function implicitPrimitive(tagNumber: number, content: Buffer): Buffer {
  return tlv(0x80 | tagNumber, content);
}

/** One element read back: its tag, its content and where the next element starts. */
export interface DerElement {
  readonly tag: number;
  readonly content: Buffer;
  /** The whole encoding (tag, length and content). */
  readonly encoded: Buffer;
  /** Offset just past this element in the buffer it was read from. */
  readonly end: number;
}

/**
 * Read the element at `offset`. Throws `InvalidInputError('der.malformed')`
 * for truncated input, indefinite or non-minimal lengths, or multi-byte tags
 * (X.509 uses none).
 */
export function readElement(buf: Buffer, offset = 0): DerElement {
  const fail = (why: string): never => {
    throw new InvalidInputError('der.malformed', `malformed DER at offset ${offset}: ${why}`);
  };
  if (offset + 2 > buf.length) fail('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('multi-byte tags are not supported');
  let length = buf[offset + 1]!;
  let pos = offset + 2;
  if (length === 0x80) fail('indefinite length');
  if (length > 0x80) {
    const n = length & 0x7f;
    if (n > 6 || pos + n > buf.length) fail('length too long');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos + i]!;
    if (length < 0x80 || buf[pos] === 0) fail('non-minimal length');
    pos += n;
  }
  if (pos + length > buf.length) fail('truncated content');
  return { tag, content: buf.subarray(pos, pos + length), encoded: buf.subarray(offset, pos + length), end: pos + length };
}

/** The elements inside a constructed element's content, in order. */
export function readChildren(content: Buffer): DerElement[] {
  const out: DerElement[] = [];
  for (let off = 0; off < content.length;) {
    const el = readElement(content, off);
    out.push(el);
    off = el.end;
  }
  return out;
}

/** Dotted decimal of an OBJECT IDENTIFIER's content octets. */
export function decodeOid(content: Buffer): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const byte of content) {
    v = (v << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (arcs.length === 0) throw new InvalidInputError('der.malformed', 'empty OBJECT IDENTIFIER');
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}
