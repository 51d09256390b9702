/**
 * Test vectors of the replication log format (docs/log-format.md), built
 * from the codecs with fixed inputs. `test/fixtures/format/` holds the
 * committed bytes; the tests check that the codecs still produce them and
 * classify each one as its README says.
 *
 * Regenerate (only when the format changes, with a new version, §10):
 *   node -r ts-node/register/transpile-only test/unit/format/vectors.ts
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  crc32,
  crc32Combine,
  encodeFlushMarker,
  encodeSeal,
  encodeSegmentHeader,
  encodeWriteRecordHeader,
  formatSegmentName,
  type SegmentHeader,
} from '../../../provider/format';

export const FIXTURE_DIR = path.join(__dirname, '..', '..', 'fixtures', 'format');
export const VECTOR_DISK_ID = 'vector-disk';
export const VECTOR_GENERATION = '0123456789abcdef';
export const VECTOR_DISK_SIZE = 1 << 20;
export const VECTOR_TIME = Date.UTC(2026, 0, 1);

/** Deterministic data bytes for vector writes. */
export function vectorData(length: number, salt: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + salt * 7 + 1) & 0xff;
  return b;
}

/** A write or a flush of a segment being built. */
export type VectorOp = { readonly kind: 'write'; readonly offset: number; readonly data: Buffer } | { readonly kind: 'flush' };

/** A segment built by the codecs: its bytes and its segment checksum (before any seal). */
export interface BuiltSegment {
  readonly bytes: Buffer;
  readonly checksum: number;
}

/**
 * Build a segment from ops with the format's codecs, sealed when `sealedAt`
 * is given. Mirrors what the tracker appends (§7).
 */
export function buildSegment(header: SegmentHeader, ops: readonly VectorOp[], sealedAt?: number): BuiltSegment {
  const parts: Buffer[] = [encodeSegmentHeader(header)];
  let position = parts[0]!.length;
  let running = crc32(parts[0]!);
  let index = 0;
  let dataBytes = 0;
  for (const op of ops) {
    if (op.kind === 'write') {
      const dataChecksum = crc32(op.data);
      const h = encodeWriteRecordHeader({ index, offset: op.offset, length: op.data.length, dataChecksum });
      running = crc32Combine(crc32(h, running), dataChecksum, op.data.length);
      parts.push(h, op.data);
      position += h.length + op.data.length;
      dataBytes += op.data.length;
    } else {
      const m = encodeFlushMarker({ index, position });
      running = crc32(m, running);
      parts.push(m);
      position += m.length;
    }
    index++;
  }
  if (sealedAt !== undefined) parts.push(encodeSeal({ recordCount: index, dataBytes, sealedAt, segmentChecksum: running }));
  return { bytes: Buffer.concat(parts), checksum: running };
}

export function vectorHeader(seq: number, previousChecksum: number): SegmentHeader {
  return {
    diskId: VECTOR_DISK_ID,
    generation: VECTOR_GENERATION,
    seq,
    diskSize: VECTOR_DISK_SIZE,
    createdAt: VECTOR_TIME + seq,
    previousChecksum,
  };
}

/** The writes of the sealed vector: aligned, unaligned, tiny, overlapping. */
export const SEALED_OPS: readonly VectorOp[] = [
  { kind: 'write', offset: 0, data: vectorData(4096, 1) },
  { kind: 'write', offset: 10_000, data: vectorData(100, 2) },
  { kind: 'write', offset: 4096 - 256, data: vectorData(512, 3) },
  { kind: 'flush' },
  { kind: 'write', offset: VECTOR_DISK_SIZE - 1, data: vectorData(1, 4) },
];

export const UNSEALED_OPS: readonly VectorOp[] = [
  { kind: 'write', offset: 65_536, data: vectorData(8192, 5) },
  { kind: 'flush' },
  { kind: 'write', offset: 3, data: vectorData(7, 6) },
];

/** Every vector file, by path relative to the fixture directory. */
export function buildVectors(): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const sealed = buildSegment(vectorHeader(1, 0), SEALED_OPS, VECTOR_TIME + 1000);
  out.set('sealed.hrl', sealed.bytes);
  const unsealed = buildSegment(vectorHeader(2, sealed.checksum), UNSEALED_OPS);
  out.set('unsealed.hrl', unsealed.bytes);

  // Record 1 (offset 10 000, 100 bytes): its data starts after the header,
  // record 0 (32 + 4096) and its own record header (32).
  const mismatch = Buffer.from(sealed.bytes);
  mismatch[128 + 32 + 4096 + 32 + 50] ^= 0x01;
  out.set('checksum-mismatch.hrl', mismatch);

  // Record 1's header checksum field flipped.
  const badRecordHeader = Buffer.from(sealed.bytes);
  badRecordHeader[128 + 32 + 4096 + 28] ^= 0x80;
  out.set('record-header-mismatch.hrl', badRecordHeader);

  // Cut in the middle of the data of the last write of the unsealed vector.
  out.set('torn.hrl', unsealed.bytes.subarray(0, unsealed.bytes.length - 3));
  out.set('torn-header.hrl', sealed.bytes.subarray(0, 60));
  out.set('trailing-data.hrl', Buffer.concat([sealed.bytes, Buffer.alloc(5)]));

  const unknownVersion = Buffer.from(sealed.bytes.subarray(0, 128));
  unknownVersion.writeUInt16LE(2, 8);
  unknownVersion.writeUInt32LE(crc32(unknownVersion.subarray(0, 124)), 124);
  out.set('unknown-version.hrl', Buffer.concat([unknownVersion, sealed.bytes.subarray(128)]));

  const badMagic = Buffer.from(sealed.bytes);
  badMagic.write('XX', 0, 'latin1');
  out.set('bad-magic.hrl', badMagic);

  // A chain with segment 2 missing: 1 and 3, both sealed.
  const third = buildSegment(vectorHeader(3, 0x1234_5678), UNSEALED_OPS, VECTOR_TIME + 3000);
  for (const [seq, seg] of [[1, sealed], [3, third]] as const) {
    const name = formatSegmentName({ diskId: VECTOR_DISK_ID, generation: VECTOR_GENERATION, seq });
    out.set(`gap/${name}`, seg.bytes);
  }
  // A valid chain of two: 1 and 2 (the unsealed vector, sealed).
  const second = buildSegment(vectorHeader(2, sealed.checksum), UNSEALED_OPS, VECTOR_TIME + 2000);
  for (const [seq, seg] of [[1, sealed], [2, second]] as const) {
    const name = formatSegmentName({ diskId: VECTOR_DISK_ID, generation: VECTOR_GENERATION, seq });
    out.set(`chain/${name}`, seg.bytes);
  }
  return out;
}

if (require.main === module) {
  for (const [rel, bytes] of buildVectors()) {
    const file = path.join(FIXTURE_DIR, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, bytes);
    console.log(`${rel}: ${bytes.length} bytes`);
  }
}
