/**
 * Writing undo data back into the replica: the rollback of an uncommitted
 * cycle (docs/replica-format.md §8 step 3, also used by abort, §7.4) and the
 * rollback of committed cycles to an older point (§7.6 step 2). Both write
 * absolute old bytes, so repeating them after a crash gives the same replica.
 */
import { MiB } from '../../units';
import { type FileHandleLike, type FileOps } from './file-ops';
import { errnoOf } from './io-errors';
import { mergeEarliestWins, type MappedExtent, type UndoLayer } from './extent-map';
import { ReplicaStateError } from '../../errors';
import { decodeUndoHeader, MAX_UNDO_HEADER_BYTES, readUndoIndex, scanUndoRecords, UNDO_VERSION } from './undo-log';

const CHUNK = 1 * MiB;
const ZEROS = Buffer.alloc(CHUNK);

async function writeZeros(replica: FileHandleLike, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length; done += CHUNK) {
    const n = Math.min(CHUNK, length - done);
    await replica.write(ZEROS, 0, n, offset + done);
  }
}

/**
 * Roll back the uncommitted cycle whose undo file is `file` (§8 step 3): write
 * every valid record back, fsync the replica, delete the file, fsync its
 * folder. A file with a torn header is deleted without touching the replica
 * (I2). Idempotent; a missing file is a no-op. Returns the records applied.
 * Throws `ReplicaStateError` for an undo file of another version or disk;
 * I/O errors unclassified.
 */
export async function rollBackUncommitted(
  ops: FileOps,
  replica: FileHandleLike,
  file: string,
  dir: string,
  expect: { cycle: number; diskSize: number },
): Promise<number> {
  if (!(await ops.exists(file))) return 0;
  const h = await ops.open(file, 'read');
  let applied = 0;
  try {
    const first = Buffer.alloc(MAX_UNDO_HEADER_BYTES);
    const n = await h.read(first, 0, first.length, 0);
    const d = decodeUndoHeader(first.subarray(0, n));
    if (d.ok) {
      if (d.header.cycle !== expect.cycle || d.header.diskSize !== expect.diskSize) {
        throw new ReplicaStateError('replica.corrupt', `Undo file ${file} belongs to another cycle or disk`, {
          details: { file, cycle: d.header.cycle, diskSize: d.header.diskSize },
          hint: 'The replica of this disk cannot be trusted; resynchronise it.',
        });
      }
      applied = await scanUndoRecords(h, d.length, expect.diskSize, async (offset, length, data) => {
        if (data === undefined) await writeZeros(replica, offset, length);
        else await replica.write(data, 0, length, offset);
      });
      if (applied > 0) await replica.sync();
    } else if (d.reason === 'version') {
      throw new ReplicaStateError('replica.formatVersion', `Undo file ${file} has format version ${d.version}; this agent reads version ${UNDO_VERSION}`, {
        details: { file, version: d.version },
        hint: 'Upgrade the agent on this host to the version that wrote the store.',
      });
    }
  } finally {
    await h.close();
  }
  await ops.unlink(file);
  await ops.syncDir(dir);
  return applied;
}

/** Undo files opened for reading, with their extents. Close with `closeAll`. */
export interface OpenedUndo {
  readonly handles: FileHandleLike[];
  readonly layers: UndoLayer[];
  /** Index entries read. */
  readonly extentsConsulted: number;
}

/**
 * Open sealed undo files (ascending cycle) and read their indexes (§9).
 * Throws `ReplicaStateError` (`replica.undoMissing`, `replica.corrupt`);
 * other I/O errors unclassified. Nothing stays open on failure.
 */
export async function openUndoFiles(ops: FileOps, files: ReadonlyArray<{ cycle: number; file: string }>, diskSize: number): Promise<OpenedUndo> {
  const handles: FileHandleLike[] = [];
  const layers: UndoLayer[] = [];
  let extentsConsulted = 0;
  try {
    for (const { cycle, file } of files) {
      let h: FileHandleLike;
      try {
        h = await ops.open(file, 'read');
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') {
          throw new ReplicaStateError('replica.undoMissing', `Undo file ${file} of cycle ${cycle} is missing`, {
            cause: e,
            details: { file, cycle },
            hint: 'Points taken before this cycle cannot be rebuilt; prune them. The latest point is unaffected.',
          });
        }
        throw e;
      }
      handles.push(h);
      const extents = await readUndoIndex(h, file, { cycle, diskSize });
      extentsConsulted += extents.length;
      layers.push({ source: handles.length - 1, extents });
    }
  } catch (e) {
    await closeAll(handles);
    throw e;
  }
  return { handles, layers, extentsConsulted };
}

/** Close handles, ignoring errors (they are read-only). */
export async function closeAll(handles: readonly FileHandleLike[]): Promise<void> {
  await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
}

/** Write the old bytes of a merged map into the replica (no fsync). */
export async function writeMappedExtents(replica: FileHandleLike, map: readonly MappedExtent[], sources: readonly FileHandleLike[]): Promise<void> {
  const buf = Buffer.alloc(CHUNK);
  for (const m of map) {
    const length = m.end - m.start;
    if (m.zero) {
      await writeZeros(replica, m.start, length);
      continue;
    }
    for (let done = 0; done < length; done += CHUNK) {
      const n = Math.min(CHUNK, length - done);
      const got = await sources[m.source]!.read(buf, 0, n, m.payloadPos + done);
      if (got !== n) {
        throw new ReplicaStateError('replica.corrupt', 'An undo file is shorter than its index says', {
          details: { start: m.start, length },
          hint: 'The replica of this disk cannot be trusted; resynchronise it.',
        });
      }
      await replica.write(buf, 0, n, m.start + done);
    }
  }
}

/**
 * Roll the replica back over committed cycles (§7.6 step 2): merge their undo
 * files, earliest wins, write the result, fsync. Cost: the extents of those
 * files. Idempotent. Returns the index entries consulted.
 */
export async function rollBackCommitted(ops: FileOps, replica: FileHandleLike, files: ReadonlyArray<{ cycle: number; file: string }>, diskSize: number): Promise<number> {
  const opened = await openUndoFiles(ops, files, diskSize);
  try {
    await writeMappedExtents(replica, mergeEarliestWins(opened.layers), opened.handles);
    await replica.sync();
  } finally {
    await closeAll(opened.handles);
  }
  return opened.extentsConsulted;
}
