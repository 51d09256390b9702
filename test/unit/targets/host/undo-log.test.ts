import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { nodeFileOps } from '../../../../provider/targets/host/file-ops';
import {
  decodeUndoHeader,
  encodeUndoHeader,
  encodeUndoRecord,
  readUndoIndex,
  RECORD_HEADER_BYTES,
  scanUndoRecords,
  TRAILER_BYTES,
  UndoFileAppender,
  type UndoExtent,
  type UndoHeader,
} from '../../../../provider/targets/host/undo-log';
import { rejectsWith } from '../conformance';

const HEADER: UndoHeader = { cycle: 42, diskSize: 1 << 20, seq: 7, time: 1_767_225_600_000.5, point: 'appConsistent', generation: 'gén-1' };

describe('targets/host/undo-log (docs/replica-format.md §5)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-undo-'));
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function writeSample(file: string): Promise<UndoExtent[]> {
    const a = new UndoFileAppender(nodeFileOps, file, dir, HEADER);
    const extents: UndoExtent[] = [];
    const data = Buffer.from('old bytes!');
    let pos = a.nextPosition;
    const r1 = encodeUndoRecord(4096, data.length, data);
    extents.push({ offset: 4096, length: data.length, zero: false, payloadPos: pos + RECORD_HEADER_BYTES });
    pos += r1.length;
    const r2 = encodeUndoRecord(0, 512, undefined);
    extents.push({ offset: 0, length: 512, zero: true, payloadPos: 0 });
    await a.appendDurably([r1, r2]);
    await a.seal(extents);
    await a.close();
    return extents;
  }

  it('round-trips the header and detects torn headers and other versions', () => {
    const h = encodeUndoHeader(HEADER);
    const d = decodeUndoHeader(Buffer.concat([h, Buffer.from('trailing')]));
    assert.deepEqual(d, { ok: true, header: HEADER, length: h.length });
    assert.deepEqual(decodeUndoHeader(h.subarray(0, h.length - 1)), { ok: false, reason: 'torn' });
    const flipped = Buffer.from(h);
    flipped[20]! ^= 1;
    assert.deepEqual(decodeUndoHeader(flipped), { ok: false, reason: 'torn' });
    const v2 = Buffer.from(h);
    v2.writeUInt32LE(2, 8);
    v2.writeUInt32LE(crc32(v2.subarray(0, v2.length - 4)), v2.length - 4);
    assert.deepEqual(decodeUndoHeader(v2), { ok: false, reason: 'version', version: 2 });
  });

  it('reads back the index of a sealed file', async () => {
    const file = path.join(dir, 'c.undo');
    const extents = await writeSample(file);
    const h = await nodeFileOps.open(file, 'read');
    assert.deepEqual(await readUndoIndex(h, file, { cycle: 42, diskSize: 1 << 20 }), extents);
    await rejectsWith(readUndoIndex(h, file, { cycle: 43, diskSize: 1 << 20 }), 'nonRecoverable', 'replica.corrupt');
    await h.close();
  });

  it('refuses an unsealed or damaged index', async () => {
    const file = path.join(dir, 'c.undo');
    await writeSample(file);
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 1));
    let h = await nodeFileOps.open(file, 'read');
    await rejectsWith(readUndoIndex(h, file, { cycle: 42, diskSize: 1 << 20 }), 'nonRecoverable', 'replica.corrupt');
    await h.close();
    const bad = Buffer.from(bytes);
    bad[bytes.length - TRAILER_BYTES - 3]! ^= 0xff;
    await fs.writeFile(file, bad);
    h = await nodeFileOps.open(file, 'read');
    await rejectsWith(readUndoIndex(h, file, { cycle: 42, diskSize: 1 << 20 }), 'nonRecoverable', 'replica.corrupt');
    await h.close();
  });

  it('scans records up to the index, and stops at a torn or corrupt record', async () => {
    const file = path.join(dir, 'c.undo');
    await writeSample(file);
    const headerLength = encodeUndoHeader(HEADER).length;
    const scan = async (): Promise<Array<[number, number, string | undefined]>> => {
      const h = await nodeFileOps.open(file, 'read');
      const seen: Array<[number, number, string | undefined]> = [];
      await scanUndoRecords(h, headerLength, 1 << 20, async (o, l, d) => {
        seen.push([o, l, d?.toString()]);
      });
      await h.close();
      return seen;
    };
    assert.deepEqual(await scan(), [[4096, 10, 'old bytes!'], [0, 512, undefined]]);
    const bytes = await fs.readFile(file);
    // Torn in the middle of the first payload: nothing is valid.
    await fs.writeFile(file, bytes.subarray(0, headerLength + RECORD_HEADER_BYTES + 4));
    assert.deepEqual(await scan(), []);
    // A flipped payload byte of the first record fails its CRC.
    const bad = Buffer.from(bytes);
    bad[headerLength + RECORD_HEADER_BYTES + 2]! ^= 1;
    await fs.writeFile(file, bad);
    assert.deepEqual(await scan(), []);
    // The second record torn: the first survives.
    await fs.writeFile(file, bytes.subarray(0, headerLength + RECORD_HEADER_BYTES + 10 + 7));
    assert.deepEqual(await scan(), [[4096, 10, 'old bytes!']]);
  });
});
