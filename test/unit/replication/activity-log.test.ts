import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from '../../../provider/errors';
import { ActivityLog, type ActivityLogReading, readActivityLog } from '../../../provider/replication/activity-log';

const geometry = { extentSize: 4096, slots: 3, diskSize: 10 * 4096 - 512 };
const GEN = '00000000000000a1';

function found(r: ActivityLogReading): Extract<ActivityLogReading, { kind: 'found' }> {
  assert.equal(r.kind, 'found');
  return r as Extract<ActivityLogReading, { kind: 'found' }>;
}

describe('replication/activity-log', () => {
  let tmp: string;
  let file: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-al-'));
    file = path.join(tmp, 'd.al');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('replace writes a running log with the suspects; reading reports them (§9.4, §9.5)', async () => {
    const al = await ActivityLog.replace(file, geometry, GEN, [{ offset: 100, length: 50 }], 41);
    const r = found(await readActivityLog(file));
    assert.equal(r.page.state, 'running');
    assert.equal(r.page.generation, GEN);
    assert.ok(r.page.transaction > 41);
    assert.deepEqual(r.page.extents, []);
    assert.deepEqual(r.suspects, [{ offset: 100, length: 50 }]);
    assert.deepEqual(r.suspectsOnOpen, [{ offset: 100, length: 50 }]);
    assert.equal(fs.existsSync(`${file}.tmp`), false);
    await al.close(false);
  });

  it('activates extents durably and evicts the least recently used clean one', async () => {
    const al = await ActivityLog.replace(file, geometry, GEN, []);
    let flushes = 0;
    const flush = async (): Promise<void> => {
      flushes++;
      al.markAllClean();
    };
    assert.equal(al.touch(0, 0), false);
    await al.activate(0, 1, flush);
    assert.deepEqual(found(await readActivityLog(file)).page.extents, [0, 1]);
    assert.equal(al.touch(0, 1), true);
    al.markDirty(0, 1);
    await al.activate(5, 5, flush); // a free slot: no eviction, no flush
    assert.equal(flushes, 0);
    al.markDirty(5, 5);
    assert.equal(al.touch(0, 0), true); // order now 1, 5, 0 (least recent first)
    await al.activate(7, 7, flush); // all dirty: flush, then evict 1
    assert.equal(flushes, 1);
    assert.deepEqual(al.activeExtents(), [5, 0, 7]);
    assert.deepEqual([...found(await readActivityLog(file)).page.extents].sort(), [0, 5, 7]);
    al.markDirty(7, 7);
    await al.activate(9, 9, flush); // 5 and 0 are clean: evict 5 without flushing
    assert.equal(flushes, 1);
    assert.deepEqual(al.activeExtents(), [0, 7, 9]);
    await assert.rejects(al.activate(0, 3, flush), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'activityLog.tooManyExtents');
    await al.close(false);
    // Not closed cleanly: every active extent is suspect on the next open (the last one clipped to the disk).
    assert.deepEqual(found(await readActivityLog(file)).suspectsOnOpen, [
      { offset: 0, length: 4096 },
      { offset: 7 * 4096, length: 4096 },
      { offset: 9 * 4096, length: 4096 - 512 },
    ]);
  });

  it('a torn page write leaves the previous state (§9.3)', async () => {
    const al = await ActivityLog.replace(file, geometry, GEN, []);
    const noFlush = async (): Promise<void> => assert.fail('no flush expected');
    await al.activate(2, 2, noFlush);
    const before = fs.readFileSync(file);
    await al.activate(4, 4, noFlush);
    const after = fs.readFileSync(file);
    // The update went to one page; tearing it (half old, half new) reverts to the other.
    const page = before.subarray(0, 4096).equals(after.subarray(0, 4096)) ? 1 : 0;
    const torn = Buffer.from(after);
    before.copy(torn, page * 4096 + 70, page * 4096 + 70, page * 4096 + 4096);
    fs.writeFileSync(file, torn);
    assert.deepEqual(found(await readActivityLog(file)).page.extents, [2]);
    await al.close(false);
  });

  it('records the generation, replaces suspects and closes clean', async () => {
    const al = await ActivityLog.replace(file, geometry, GEN, [{ offset: 0, length: 10 }]);
    await al.activate(1, 1, async () => undefined);
    await al.setGeneration('00000000000000b2');
    assert.equal(found(await readActivityLog(file)).page.generation, '00000000000000b2');
    await al.setSuspects([
      { offset: 50, length: 10 },
      { offset: 55, length: 10 },
    ]);
    assert.deepEqual(al.suspects, [{ offset: 50, length: 15 }]);
    let r = found(await readActivityLog(file));
    assert.deepEqual(r.suspects, [{ offset: 50, length: 15 }]);
    assert.deepEqual(r.page.extents, [1]); // the replacement keeps the active extents
    await al.close(true);
    await al.close(true);
    r = found(await readActivityLog(file));
    assert.equal(r.page.state, 'clean');
    assert.deepEqual(r.page.extents, []);
    assert.deepEqual(r.suspectsOnOpen, [{ offset: 50, length: 15 }]);
  });

  it('reads a missing file as missing, garbage as lost, another version as an error', async () => {
    assert.deepEqual(await readActivityLog(file), { kind: 'missing' });
    fs.writeFileSync(file, Buffer.alloc(10_000, 3));
    assert.equal((await readActivityLog(file)).kind, 'lost');
    const al = await ActivityLog.replace(file, geometry, GEN, []);
    await al.close(true);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 1; // the suspect section
    fs.writeFileSync(file, bytes);
    assert.equal((await readActivityLog(file)).kind, 'lost');
    bytes.writeUInt16LE(7, 8);
    bytes.writeUInt16LE(7, 4096 + 8);
    fs.writeFileSync(file, bytes);
    await assert.rejects(readActivityLog(file), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'activityLog.unknownVersion');
  });
});
