import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from '../../../../provider/errors';
import { GuestJournal, readGuestJournal } from '../../../../provider/hypervisor/lab/guest-journal';

describe('hypervisor/lab/guest-journal', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-journal-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('starts at 0/0, records progress in place, and reads back after a reopen', async () => {
    const file = path.join(tmp, 'd.guest');
    assert.deepEqual(await readGuestJournal(file), { nextOp: 0, flushedOps: 0 });
    const j = await GuestJournal.open(file);
    assert.equal(fs.statSync(file).size, 32);
    j.setNext(10);
    j.setFlushed(7);
    assert.deepEqual(await readGuestJournal(file), { nextOp: 10, flushedOps: 7 });
    // Flushed never passes nextOp nor goes back.
    j.setFlushed(50);
    assert.deepEqual(j.state, { nextOp: 10, flushedOps: 10 });
    j.setFlushed(3);
    assert.deepEqual(j.state, { nextOp: 10, flushedOps: 10 });
    j.setNext(2 ** 40);
    await j.sync();
    await j.close();
    const again = await GuestJournal.open(file);
    assert.deepEqual(again.state, { nextOp: 2 ** 40, flushedOps: 10 });
    await again.close();
    assert.equal(fs.statSync(file).size, 32);
  });

  it('refuses a damaged journal instead of starting over', async () => {
    const file = path.join(tmp, 'd.guest');
    const j = await GuestJournal.open(file);
    j.setNext(5);
    await j.close();
    const bytes = fs.readFileSync(file);
    bytes[9] = bytes[9]! ^ 1;
    fs.writeFileSync(file, bytes);
    await assert.rejects(readGuestJournal(file), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'guestJournal.corrupt');
    await assert.rejects(GuestJournal.open(file), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'guestJournal.corrupt');
    fs.writeFileSync(file, Buffer.alloc(10));
    await assert.rejects(readGuestJournal(file), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'guestJournal.corrupt');
  });
});
