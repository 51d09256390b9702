/**
 * The points manifest, the commit record of a disk (docs/replica-format.md
 * §4): its fields, codec, and the atomic replace that commits a cycle, a prune
 * or a rollback (I6).
 */
import { type PointKind, type RecoveryPointInfo } from '../../replication/target';
import { classifyIoError } from './io-errors';
import { type FileOps } from './file-ops';
import { ReplicaStateError } from '../../errors';
import { type DiskPaths } from './store-layout';

/** §4 `format` */
export const MANIFEST_FORMAT = 'lifeboat-replica';
/** §11 */
export const MANIFEST_VERSION = 1;

/** A retained point and the cycle after which it was taken. */
export interface ManifestPoint extends RecoveryPointInfo {
  readonly cycle: number;
}

/** A retained undo file. */
export interface ManifestUndo {
  readonly cycle: number;
  /** Number of extents in its index. */
  readonly extents: number;
  /** File size. */
  readonly bytes: number;
}

/** A rollback in progress (§7.6). */
export interface PendingRollback {
  readonly toCycle: number;
  /** Undo files to apply, ascending. */
  readonly cycles: readonly number[];
}

/** Content of `manifest.json` (§4). */
export interface PointsManifest {
  readonly diskId: string;
  readonly sizeBytes: number;
  readonly generation: string | undefined;
  readonly appliedSeq: number;
  readonly headCycle: number;
  readonly nextCycle: number;
  /** Ascending cycle. */
  readonly points: readonly ManifestPoint[];
  /** Ascending cycle. */
  readonly undo: readonly ManifestUndo[];
  readonly rollback: PendingRollback | undefined;
}

/** The manifest of a disk just created (§7.1). */
export function initialManifest(diskId: string, sizeBytes: number): PointsManifest {
  return { diskId, sizeBytes, generation: undefined, appliedSeq: 0, headCycle: 0, nextCycle: 1, points: [], undo: [], rollback: undefined };
}

/** JSON bytes of a manifest (§4). */
export function encodeManifest(m: PointsManifest): Buffer {
  const doc = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    diskId: m.diskId,
    sizeBytes: m.sizeBytes,
    generation: m.generation ?? null,
    appliedSeq: m.appliedSeq,
    headCycle: m.headCycle,
    nextCycle: m.nextCycle,
    points: m.points.map((p) => ({ id: p.id, cycle: p.cycle, seq: p.seq, generation: p.generation, time: p.time, kind: p.kind })),
    undo: m.undo.map((u) => ({ cycle: u.cycle, extents: u.extents, bytes: u.bytes })),
    rollback: m.rollback === undefined ? null : { toCycle: m.rollback.toCycle, cycles: [...m.rollback.cycles] },
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
}

class Bad extends Error {}

function obj(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad(`${at} is not an object`);
  return v as Record<string, unknown>;
}

function count(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Bad(`${at} is not a non-negative integer`);
  return v;
}

function str(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new Bad(`${at} is not a string`);
  return v;
}

function arr(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw new Bad(`${at} is not an array`);
  return v;
}

function ascending(cycles: readonly number[], at: string): void {
  for (let i = 1; i < cycles.length; i++) if (!(cycles[i]! > cycles[i - 1]!)) throw new Bad(`${at} is not in ascending cycle order`);
}

/**
 * Parse and check `manifest.json`. Throws `ReplicaStateError`:
 * `replica.formatVersion` for another format version, `replica.corrupt` for
 * anything malformed.
 */
export function parseManifest(bytes: Buffer, file: string): PointsManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw corruptManifest(file, 'not JSON', e);
  }
  try {
    const o = obj(raw, '/');
    if (o.format !== MANIFEST_FORMAT) throw new Bad('/format is not "lifeboat-replica"');
    if (o.version !== MANIFEST_VERSION) {
      throw new ReplicaStateError('replica.formatVersion', `Manifest ${file} has format version ${String(o.version)}; this agent reads version ${MANIFEST_VERSION}`, {
        details: { file, version: o.version },
        hint: 'Upgrade the agent on this host to the version that wrote the store.',
      });
    }
    const generation = o.generation === null ? undefined : str(o.generation, '/generation');
    const points = arr(o.points, '/points').map((v, i): ManifestPoint => {
      const p = obj(v, `/points/${i}`);
      const kind = p.kind;
      if (kind !== 'crashConsistent' && kind !== 'appConsistent') throw new Bad(`/points/${i}/kind is not a point kind`);
      if (typeof p.time !== 'number' || !Number.isFinite(p.time)) throw new Bad(`/points/${i}/time is not a number`);
      return {
        id: str(p.id, `/points/${i}/id`),
        cycle: count(p.cycle, `/points/${i}/cycle`),
        seq: count(p.seq, `/points/${i}/seq`),
        generation: str(p.generation, `/points/${i}/generation`),
        time: p.time,
        kind: kind satisfies PointKind,
      };
    });
    const undo = arr(o.undo, '/undo').map((v, i): ManifestUndo => {
      const u = obj(v, `/undo/${i}`);
      return { cycle: count(u.cycle, `/undo/${i}/cycle`), extents: count(u.extents, `/undo/${i}/extents`), bytes: count(u.bytes, `/undo/${i}/bytes`) };
    });
    let rollback: PendingRollback | undefined;
    if (o.rollback !== null) {
      const r = obj(o.rollback, '/rollback');
      rollback = { toCycle: count(r.toCycle, '/rollback/toCycle'), cycles: arr(r.cycles, '/rollback/cycles').map((c, i) => count(c, `/rollback/cycles/${i}`)) };
      ascending(rollback.cycles, '/rollback/cycles');
    }
    const m: PointsManifest = {
      diskId: str(o.diskId, '/diskId'),
      sizeBytes: count(o.sizeBytes, '/sizeBytes'),
      generation,
      appliedSeq: count(o.appliedSeq, '/appliedSeq'),
      headCycle: count(o.headCycle, '/headCycle'),
      nextCycle: count(o.nextCycle, '/nextCycle'),
      points,
      undo,
      rollback,
    };
    ascending(points.map((p) => p.cycle), '/points');
    ascending(undo.map((u) => u.cycle), '/undo');
    if (!(m.nextCycle > m.headCycle)) throw new Bad('/nextCycle is not above /headCycle');
    for (const c of [...points.map((p) => p.cycle), ...undo.map((u) => u.cycle)]) {
      if (!(c < m.nextCycle)) throw new Bad(`cycle ${c} is not below /nextCycle`);
    }
    if (points.some((p) => p.cycle > m.headCycle)) throw new Bad('a point is above /headCycle');
    return m;
  } catch (e) {
    if (e instanceof Bad) throw corruptManifest(file, e.message);
    throw e;
  }
}

function corruptManifest(file: string, what: string, cause?: unknown): ReplicaStateError {
  return new ReplicaStateError('replica.corrupt', `Manifest ${file} is damaged: ${what}`, {
    cause,
    details: { file },
    hint: 'The replica of this disk cannot be trusted. Delete the disk (disable and re-enable protection) to replicate it again.',
  });
}

/**
 * Replace the manifest atomically (§4, I6): write the temporary file, fsync,
 * rename over `manifest.json`, fsync the folder. `afterRename` runs as soon as
 * the rename succeeded, the commit point, even if the folder fsync then
 * fails. If this throws before the rename, the previous manifest is intact
 * (a leftover temporary file is deleted on open). Errors are classified
 * (io-errors.ts).
 */
export async function writeManifest(ops: FileOps, paths: DiskPaths, m: PointsManifest, afterRename: () => void = () => {}): Promise<void> {
  const bytes = encodeManifest(m);
  try {
    const h = await ops.open(paths.manifestTmp, 'create');
    try {
      await h.write(bytes, 0, bytes.length, 0);
      await h.sync();
    } finally {
      await h.close();
    }
    await ops.rename(paths.manifestTmp, paths.manifest);
  } catch (e) {
    throw classifyIoError(e, `write ${paths.manifest}`);
  }
  afterRename();
  try {
    await ops.syncDir(paths.dir);
  } catch (e) {
    throw classifyIoError(e, `sync ${paths.dir}`);
  }
}

/** Read and parse the manifest (errors classified; see `parseManifest`). */
export async function readManifest(ops: FileOps, paths: DiskPaths): Promise<PointsManifest> {
  let bytes: Buffer;
  try {
    bytes = await ops.readFile(paths.manifest);
  } catch (e) {
    throw classifyIoError(e, `read ${paths.manifest}`);
  }
  return parseManifest(bytes, paths.manifest);
}
