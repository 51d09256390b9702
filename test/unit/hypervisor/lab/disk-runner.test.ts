import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../../../provider/clock';
import { DiskRunner, diskWorkloadOptions, workloadOpsFrom } from '../../../../provider/hypervisor/lab/disk-runner';
import { PlainDisk } from '../../../../provider/hypervisor/lab/guest-disk';
import { GuestJournal } from '../../../../provider/hypervisor/lab/guest-journal';
import { takeWorkloadOps, type WorkloadOptions } from '../../../../provider/hypervisor/lab/workload';
import { verifyWorkloadDisk } from '../../../../provider/hypervisor/lab/workload-verifier';

const KiB = 1024;

describe('hypervisor/lab/disk-runner', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-runner-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('gives each disk of a VM its own stream, the VM seed mixed with the disk id', () => {
    const a = diskWorkloadOptions({ seed: 1, bytesPerSecond: 5, pattern: 'sequential' }, 'disk0', 4096);
    const b = diskWorkloadOptions({ seed: 1 }, 'disk1', 4096);
    assert.notEqual(a.seed, b.seed);
    assert.equal(a.pattern, 'sequential');
    assert.equal(a.diskSize, 4096);
    assert.ok(!('bytesPerSecond' in a));
    assert.deepEqual(diskWorkloadOptions({ seed: 1 }, 'disk0', 4096).seed, a.seed);
  });

  it('workloadOpsFrom continues the same stream', () => {
    const o: WorkloadOptions = { seed: 3, diskSize: 1 << 20 };
    const all = takeWorkloadOps(o, 50);
    const it = workloadOpsFrom(o, 20);
    for (let i = 20; i < 50; i++) {
      const { index, op } = it.next().value;
      assert.equal(index, i);
      assert.deepEqual(op, all[i]);
    }
  });

  it('paused and resumed any number of times, the disk holds exactly the first nextOp operations (property)', async () => {
    let run = 0;
    let totalOps = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 6 }), fc.integer(), async (slices, seed) => {
        const dir = path.join(tmp, `r${run++}`);
        fs.mkdirSync(dir);
        const file = path.join(dir, 'd.raw');
        fs.writeFileSync(file, Buffer.alloc(256 * KiB));
        const clock = new ManualClock();
        const workload: WorkloadOptions = { seed, diskSize: 256 * KiB, minWriteBytes: 512, maxWriteBytes: 16 * KiB, alignment: 512, flushEvery: 4 };
        const disk = await PlainDisk.open(file);
        let journal = await GuestJournal.open(path.join(dir, 'd.guest'));
        const errors: unknown[] = [];
        const make = (): DiskRunner => new DiskRunner({ disk, journal, workload, bytesPerSecond: 64 * KiB, clock, onError: (e) => errors.push(e) });
        let runner = make();
        for (const ms of slices) {
          runner.start();
          await clock.advance(ms);
          await runner.pause();
          assert.ok(!runner.active);
          await runner.flush();
          assert.equal(journal.state.flushedOps, journal.state.nextOp);
          // A new runner (as after a restart of the VM) continues from the journal.
          await journal.close();
          journal = await GuestJournal.open(path.join(dir, 'd.guest'));
          runner = make();
        }
        assert.deepEqual(errors, []);
        await disk.close();
        await journal.close();
        const bytes = fs.readFileSync(file);
        const r = await verifyWorkloadDisk({
          disk: { sizeBytes: bytes.length, read: async (o, n) => bytes.subarray(o, o + n) },
          workload,
          ops: journal.state.nextOp,
        });
        assert.ok(r.ok, `mismatches ${JSON.stringify(r.mismatches)} after ${journal.state.nextOp} ops`);
        totalOps += journal.state.nextOp;
      }),
      { seed: 31337, numRuns: 25 },
    );
    // The runs did work: the property is not vacuous.
    assert.ok(totalOps > 200, `only ${totalOps} operations in all runs`);
  });

  it('reports an I/O error of the disk once and stops', async () => {
    const file = path.join(tmp, 'd.raw');
    fs.writeFileSync(file, Buffer.alloc(64 * KiB));
    const disk = await PlainDisk.open(file);
    const journal = await GuestJournal.open(path.join(tmp, 'd.guest'));
    await disk.close(); // every write now fails
    const errors: unknown[] = [];
    const runner = new DiskRunner({ disk, journal, workload: { seed: 1, diskSize: 64 * KiB }, bytesPerSecond: 1e9, clock: new ManualClock(), onError: (e) => errors.push(e) });
    runner.start();
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(errors.length, 1);
    assert.ok(!runner.active);
    assert.equal(journal.state.nextOp, 0, 'the failed operation is still the next one');
    await journal.close();
  });
});
