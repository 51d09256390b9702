/**
 * The values of target.ts as they travel in RESPONSE JSON
 * (docs/replication-protocol.md §6), checked on arrival: a malformed value is
 * `remote.protocolError`, never passed on half-read.
 */

import { type MaterialisedDisk, type RecoveryPointInfo, type ReplicaDiskState } from '../../replication/target';
import { protocolError } from './remote-errors';

type Json = Readonly<Record<string, unknown>>;

function record(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw protocolError(`${what} is not an object`);
  return v as Json;
}

function field<T>(o: Json, key: string, type: 'string' | 'number' | 'boolean', what: string): T {
  const v = o[key];
  if (typeof v !== type) throw protocolError(`${what}.${key} is not a ${type}`);
  return v as T;
}

/** A `RecoveryPointInfo` from JSON, with exactly the contract's fields. */
export function parsePoint(v: unknown): RecoveryPointInfo {
  const o = record(v, 'point');
  const kind = o.kind;
  if (kind !== 'crashConsistent' && kind !== 'appConsistent') throw protocolError('point.kind is not a point kind');
  return {
    id: field<string>(o, 'id', 'string', 'point'),
    seq: field<number>(o, 'seq', 'number', 'point'),
    generation: field<string>(o, 'generation', 'string', 'point'),
    time: field<number>(o, 'time', 'number', 'point'),
    kind,
  };
}

/** A list of points from JSON. */
export function parsePoints(v: unknown): RecoveryPointInfo[] {
  if (!Array.isArray(v)) throw protocolError('points is not an array');
  return v.map(parsePoint);
}

/** A `ReplicaDiskState` from JSON (`generation: null` reads as undefined). */
export function parseState(v: unknown): ReplicaDiskState {
  const o = record(v, 'state');
  const g = o.generation;
  if (g !== null && g !== undefined && typeof g !== 'string') throw protocolError('state.generation is not a string');
  return {
    diskId: field<string>(o, 'diskId', 'string', 'state'),
    sizeBytes: field<number>(o, 'sizeBytes', 'number', 'state'),
    generation: typeof g === 'string' ? g : undefined,
    appliedSeq: field<number>(o, 'appliedSeq', 'number', 'state'),
    points: parsePoints(o.points),
  };
}

/** A `MaterialisedDisk` from JSON. */
export function parseMaterialised(v: unknown): MaterialisedDisk {
  const o = record(v, 'materialised');
  return { location: field<string>(o, 'location', 'string', 'materialised'), zeroCopy: field<boolean>(o, 'zeroCopy', 'boolean', 'materialised') };
}

/** A positive integer handle from a response. */
export function parseHandle(o: Json, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw protocolError(`${key} is not a handle`);
  return v;
}

/** A string array from JSON. */
export function parseStrings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw protocolError(`${what} is not a list of strings`);
  return v as string[];
}

/**
 * A number argument for REQUEST JSON (§6): JSON cannot carry ±Infinity or
 * NaN, so those travel as the strings `Infinity`, `-Infinity`, `NaN`.
 */
export function toWireNumber(n: number): number | string {
  return Number.isFinite(n) ? n : String(n);
}

/** The number an argument stands for; anything that is not one reads as NaN, for the backing target to refuse. */
export function fromWireNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  return Number.NaN;
}
