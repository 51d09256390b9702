/**
 * Names of segment files and the identifiers in them (docs/log-format.md §1,
 * §2.1): `<diskId>.<generation>.<seq>.hrl`, fixed-width hex, so that name
 * order is log order.
 */

import { InvalidInputError } from '../errors';
import { GENERATION_ID_BYTES, MAX_DISK_ID_LENGTH } from './layout';

/** Pattern of a segment file name (§2.1); groups: disk id, generation, seq. */
export const SEGMENT_NAME_PATTERN = /^([A-Za-z0-9_-]{1,64})\.([0-9a-f]{16})\.([0-9a-f]{16})\.hrl$/;

const DISK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const GENERATION_PATTERN = /^[0-9a-f]{16}$/;

/** The parts of a segment file name. */
export interface SegmentName {
  readonly diskId: string;
  /** 16 lowercase hex digits. */
  readonly generation: string;
  /** 1 … 2^53 − 1. */
  readonly seq: number;
}

/** True for a valid disk id (§1): 1 to 64 of `A-Z a-z 0-9 _ -`. */
export function isDiskId(value: string): boolean {
  return DISK_ID_PATTERN.test(value);
}

/** True for a valid generation id spelling (§1): 16 lowercase hex digits. */
export function isGenerationId(value: string): boolean {
  return GENERATION_PATTERN.test(value);
}

/** True for a valid sequence number (§1): an integer 1 … 2^53 − 1. */
export function isSequenceNumber(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1;
}

/**
 * The file name of segment `seq` of `generation` of `diskId` (§2.1). Pure.
 * Throws `InvalidInputError` (`segment.invalidName`) if a part is invalid.
 */
export function formatSegmentName(name: SegmentName): string {
  assertDiskId(name.diskId);
  assertGenerationId(name.generation);
  if (!isSequenceNumber(name.seq)) {
    throw new InvalidInputError('segment.invalidName', `sequence number ${name.seq} is not an integer 1 … 2^53 − 1`);
  }
  return `${name.diskId}.${name.generation}.${name.seq.toString(16).padStart(16, '0')}.hrl`;
}

/**
 * The parts of a segment file name (a base name, no directory), or
 * `undefined` if `fileName` is not one (§2.1: such files are ignored). Pure.
 */
export function parseSegmentName(fileName: string): SegmentName | undefined {
  const m = SEGMENT_NAME_PATTERN.exec(fileName);
  if (m === null) return undefined;
  const seq = Number.parseInt(m[3], 16);
  if (!isSequenceNumber(seq)) return undefined;
  return { diskId: m[1], generation: m[2], seq };
}

/** Throws `InvalidInputError` (`segment.invalidDiskId`) unless `diskId` is valid (§1). */
export function assertDiskId(diskId: string): void {
  if (!isDiskId(diskId)) {
    throw new InvalidInputError(
      'segment.invalidDiskId',
      `disk id ${JSON.stringify(diskId)} is invalid: use 1 to ${MAX_DISK_ID_LENGTH} characters from A-Z a-z 0-9 _ -`,
    );
  }
}

/** Throws `InvalidInputError` (`segment.invalidGeneration`) unless `generation` is 16 lowercase hex digits. */
export function assertGenerationId(generation: string): void {
  if (!isGenerationId(generation)) {
    throw new InvalidInputError('segment.invalidGeneration', `generation ${JSON.stringify(generation)} is not 16 lowercase hex digits`);
  }
}

/** The 8 bytes of a generation id (§3.2: in the order of its hex spelling). */
export function generationToBytes(generation: string): Buffer {
  assertGenerationId(generation);
  return Buffer.from(generation, 'hex');
}

/** The hex spelling of 8 generation bytes. */
export function generationFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== GENERATION_ID_BYTES) {
    throw new InvalidInputError('segment.invalidGeneration', `a generation id has ${GENERATION_ID_BYTES} bytes, not ${bytes.length}`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}
