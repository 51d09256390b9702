import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '../../../../provider/clock';
import { LifeboatError } from '../../../../provider/errors';
import { isFlushMarkerAt, RECORD_HEADER_SIZE } from '../../../../provider/format';
import { type VmInfo, VmStateError } from '../../../../provider/hypervisor/hypervisor';
import { type OverlayBase } from '../../../../provider/hypervisor/lab/cow-overlay';
import { LabHypervisor, type LabHypervisorOptions } from '../../../../provider/hypervisor/lab/lab-hypervisor';
import { type LabWorkloadSpec } from '../../../../provider/hypervisor/lab/vm-config';
import { type DiskReader, verifyWorkloadDisk } from '../../../../provider/hypervisor/lab/workload-verifier';

const KiB = 1024;
const MiB = 1024 * KiB;

const WORKLOAD: LabWorkloadSpec = { seed: 7, bytesPerSecond: 512 * KiB, flushEvery: 6, minWriteBytes: 512, maxWriteBytes: 32 * KiB, alignment: 512 };

function fileReader(file: string): DiskReader {
  const bytes = fs.readFileSync(file);
  return { sizeBytes: bytes.length, read: async (o, n) => bytes.subarray(o, o + n) };
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function rejectsWith(p: Promise<unknown>, code: string, category?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(LifeboatError.isInstance(e), `not a LifeboatError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (category !== undefined) assert.equal(e.category, category);
    return true;
  });
}

function segments(dir: string, diskId: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith(`${diskId}.`) && f.endsWith('.hrl')).sort();
}

describe('hypervisor/lab/lab-hypervisor', function () {
  this.timeout(60_000);
  let tmp: string;
  let root: string;
  let clock: ManualClock;
  const open: LabHypervisor[] = [];

  async function openLab(extra: Partial<LabHypervisorOptions> = {}): Promise<LabHypervisor> {
    const hv = await LabHypervisor.open({ labRoot: root, clock, ...extra });
    open.push(hv);
    return hv;
  }

  /**
   * Advance the clock until the disk's guest has handed out `ops` operations.
   * The guest also waits for real I/O (fsync), which the clock does not
   * drive: when no timer is pending, let the event loop run instead. The
   * deadline only bounds a hung test; nothing asserts on elapsed time.
   */
  async function waitFor(condition: () => Promise<boolean>, what: () => Promise<string>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (await condition()) return;
      if (clock.pendingTimers > 0) await clock.advance(50);
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.fail(await what());
  }

  async function runUntil(hv: LabHypervisor, vm: string, diskId: string, ops: number): Promise<void> {
    await waitFor(
      async () => (await hv.diskStatus(vm, diskId)).journal.nextOp >= ops,
      async () => `the guest of ${vm}/${diskId} did not reach ${ops} operations: ${JSON.stringify(await hv.get(vm))} ${JSON.stringify(await hv.diskStatus(vm, diskId))}`,
    );
  }

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-hv-'));
    root = path.join(tmp, 'lab');
    clock = new ManualClock();
  });
  afterEach(async () => {
    for (const hv of open.splice(0)) await hv.close().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('create, list, get, delete', () => {
    it('creates a VM as a folder with vm.json and sparse raw disks, lists and gets it, and keeps it across a reopen', async () => {
      const hv = await openLab();
      const vm = await hv.create({
        name: 'web1',
        disks: [{ id: 'disk0', sizeBytes: 4 * MiB }, { id: 'disk1', sizeBytes: 1 * MiB }],
        nics: [{ name: 'nic0', network: 'prod' }, { name: 'nic1' }],
        tags: { owner: 'tests' },
      });
      assert.equal(vm.name, 'web1');
      assert.match(vm.id, /^[0-9a-f-]{36}$/);
      assert.equal(vm.power, 'Off');
      assert.equal(vm.fence, undefined);
      assert.equal(vm.quiesced, false);
      assert.equal(vm.testFailover, false);
      assert.deepEqual(vm.nics, [{ name: 'nic0', network: 'prod' }, { name: 'nic1', network: undefined }]);
      assert.deepEqual(vm.tags, { owner: 'tests' });
      const dir = path.join(fs.realpathSync(root), 'vms', 'web1');
      assert.deepEqual(vm.disks.map((d) => [d.id, d.path, d.sizeBytes, d.tracked]), [
        ['disk0', path.join(dir, 'disk0.raw'), 4 * MiB, false],
        ['disk1', path.join(dir, 'disk1.raw'), 1 * MiB, false],
      ]);
      for (const d of vm.disks) {
        const st = fs.statSync(d.path);
        assert.equal(st.size, d.sizeBytes);
        assert.ok(st.blocks * 512 < 64 * KiB, 'disk files are sparse');
      }
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'vm.json'), 'utf8'));
      assert.equal(json.version, 1);
      assert.equal(json.power, 'Off');
      assert.equal(json.disks[0].file, 'vms/web1/disk0.raw');
      assert.equal(json.generation, vm.generation);

      await hv.create({ name: 'app1', disks: [{ id: 'd', sizeBytes: 512 }] });
      assert.deepEqual((await hv.list()).map((v) => v.name), ['app1', 'web1']);
      assert.deepEqual(await hv.get('web1'), vm);

      // The same request again returns the VM; a different one under the name is refused.
      assert.equal((await hv.create({ name: 'web1', disks: [{ id: 'disk0', sizeBytes: 4 * MiB }, { id: 'disk1', sizeBytes: 1 * MiB }], nics: [{ name: 'nic0', network: 'prod' }, { name: 'nic1' }] })).id, vm.id);
      await rejectsWith(hv.create({ name: 'web1', disks: [{ id: 'disk0', sizeBytes: 8 * MiB }] }), 'hypervisor.vmExists', 'nonRecoverable');

      await hv.close();
      const again = await openLab();
      assert.deepEqual(await again.get('web1'), vm);
      assert.deepEqual(again.openReport.interrupted, []);
    });

    it('refuses unknown VMs with hypervisor.vmNotFound, and deletes idempotently', async () => {
      const hv = await openLab();
      await rejectsWith(hv.get('nope'), 'hypervisor.vmNotFound', 'nonRecoverable');
      await rejectsWith(hv.start('nope'), 'hypervisor.vmNotFound', 'nonRecoverable');
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }] });
      await hv.enableTracking('v', 'd0');
      const dir = path.join(root, 'vms', 'v');
      assert.ok(fs.existsSync(path.join(dir, 'd0.al')));
      assert.equal(await hv.delete('v'), true);
      assert.ok(!fs.existsSync(dir));
      assert.deepEqual(fs.readdirSync(path.join(root, 'vms')), []);
      assert.equal(await hv.delete('v'), false);
      await rejectsWith(hv.get('v'), 'hypervisor.vmNotFound');
      // The name is free again, for a new VM with a new id.
      const v2 = await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }] });
      assert.equal(v2.disks[0]!.tracked, false);
    });

    it('refuses names and paths that leave the lab root (path traversal)', async () => {
      const hv = await openLab();
      for (const name of ['../x', 'a/b', '..', '.hidden', '', 'a\\b', 'x'.repeat(65)]) {
        await rejectsWith(hv.create({ name, disks: [{ id: 'd', sizeBytes: 512 }] }), 'hypervisor.invalidName', 'invalidInput');
        await rejectsWith(hv.get(name), 'hypervisor.invalidName');
      }
      await rejectsWith(hv.create({ name: 'v', disks: [{ id: '../d', sizeBytes: 512 }] }), 'hypervisor.invalidDiskId');
      await rejectsWith(hv.create({ name: 'v', disks: [{ id: 'd', sizeBytes: 1000 }] }), 'hypervisor.invalidDiskSize');
      // A workload that cannot run on a disk is refused when the VM is made, not when the guest first writes.
      await rejectsWith(hv.create({ name: 'v', disks: [{ id: 'd', sizeBytes: 512 }], workload: { seed: 1 } }), 'hypervisor.invalidWorkload', 'invalidInput');
      await rejectsWith(hv.create({ name: 'v', disks: [{ id: 'd', sizeBytes: 4096 }], workload: { seed: 1.5 } }), 'hypervisor.invalidWorkload');
      await rejectsWith(hv.create({ name: 'v', disks: [{ id: 'd', sizeBytes: 4096 }], workload: { seed: 1, bytesPerSecond: 0 } }), 'hypervisor.invalidWorkload');
      const outside = path.join(tmp, 'outside.raw');
      fs.writeFileSync(outside, Buffer.alloc(4096));
      fs.symlinkSync(outside, path.join(root, 'link.raw'));
      for (const location of [outside, path.join(root, '..', 'outside.raw'), path.join(root, 'link.raw'), '/etc/passwd', root]) {
        await rejectsWith(hv.createFromDisks({ name: 'f', disks: [{ id: 'd', location }] }), 'hypervisor.pathOutsideLab', 'invalidInput');
        await rejectsWith(hv.createFromDisks({ name: 'f', disks: [{ id: 'd', location, overlay: true }] }), 'hypervisor.pathOutsideLab');
      }
      assert.deepEqual(await hv.list(), []);
      assert.deepEqual(fs.readdirSync(path.join(root, 'vms')), [], 'a refused create leaves nothing');
    });

    it('does not load a vm.json that points outside the lab, and keeps its name taken', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd', sizeBytes: 512 }] });
      await hv.close();
      const file = path.join(root, 'vms', 'v', 'vm.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      json.disks[0].file = '../../outside.raw';
      fs.writeFileSync(file, JSON.stringify(json));
      const again = await openLab();
      assert.deepEqual(await again.list(), []);
      assert.deepEqual(again.openReport.unreadable.map((u) => u.name), ['v']);
      await rejectsWith(again.get('v'), 'hypervisor.vmConfigCorrupt', 'nonRecoverable');
      await rejectsWith(again.create({ name: 'v', disks: [{ id: 'd', sizeBytes: 512 }] }), 'hypervisor.vmExists');
    });

    it('removes leftovers of creates and deletes cut short', async () => {
      fs.mkdirSync(path.join(root, 'vms', '.creating-v-1'), { recursive: true });
      fs.mkdirSync(path.join(root, 'vms', '.deleting-w-2', 'sub'), { recursive: true });
      const hv = await openLab();
      assert.equal(hv.openReport.removedLeftovers, 2);
      assert.deepEqual(fs.readdirSync(path.join(root, 'vms')), []);
    });

    it('lets one driver at a time use a lab root', async () => {
      const hv = await openLab();
      await rejectsWith(LabHypervisor.open({ labRoot: root, clock }), 'hypervisor.labInUse');
      await hv.close();
      await rejectsWith(hv.list(), 'hypervisor.closed');
      await openLab();
    });
  });

  describe('power lifecycle', () => {
    type Setup = 'Off' | 'OffFenced' | 'Running' | 'RunningQuiesced';
    type Op = 'start' | 'shutdown' | 'turnOff' | 'quiesce' | 'delete' | 'fence' | 'unfence';
    // Outcome per (state, operation): the resulting power state (and fence), or the refusal code.
    const table: Record<Setup, Record<Op, string>> = {
      Off: { start: 'Running', shutdown: 'Off', turnOff: 'Off', quiesce: 'hypervisor.notRunning', delete: 'deleted', fence: 'Off+fenced', unfence: 'Off' },
      OffFenced: { start: 'hypervisor.fenced', shutdown: 'Off+fenced', turnOff: 'Off+fenced', quiesce: 'hypervisor.notRunning', delete: 'deleted', fence: 'Off+fenced', unfence: 'Off' },
      Running: { start: 'Running', shutdown: 'Off', turnOff: 'Off', quiesce: 'Running+quiesced', delete: 'hypervisor.notOff', fence: 'Off+fenced', unfence: 'Running' },
      RunningQuiesced: { start: 'Running+quiesced', shutdown: 'Off', turnOff: 'Off', quiesce: 'Running+quiesced', delete: 'hypervisor.notOff', fence: 'Off+fenced', unfence: 'Running+quiesced' },
    };
    const describeVm = (v: VmInfo): string => `${v.power}${v.fence !== undefined ? '+fenced' : ''}${v.quiesced ? '+quiesced' : ''}`;

    for (const setup of Object.keys(table) as Setup[]) {
      for (const op of Object.keys(table[setup]) as Op[]) {
        const expected = table[setup][op];
        it(`${setup}: ${op} → ${expected}`, async () => {
          const hv = await openLab();
          await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
          if (setup === 'OffFenced') await hv.fence('v', 'old primary returned');
          if (setup.startsWith('Running')) await hv.start('v');
          if (setup === 'RunningQuiesced') await hv.quiesce('v');
          const before = await hv.get('v');
          const run = (): Promise<unknown> => {
            switch (op) {
              case 'start': return hv.start('v');
              case 'shutdown': return hv.shutdown('v');
              case 'turnOff': return hv.shutdown('v', { turnOff: true });
              case 'quiesce': return hv.quiesce('v');
              case 'delete': return hv.delete('v');
              case 'fence': return hv.fence('v', 'test');
              case 'unfence': return hv.unfence('v', 'test');
            }
          };
          if (expected.startsWith('hypervisor.')) {
            await assert.rejects(run(), (e: unknown) => e instanceof VmStateError && e.code === expected && e.category === 'nonRecoverable');
            const after = await hv.get('v');
            assert.equal(describeVm(after), describeVm(before), 'a refusal changes nothing');
            assert.equal(after.generation, before.generation);
          } else if (expected === 'deleted') {
            assert.equal(await run(), true);
            await rejectsWith(hv.get('v'), 'hypervisor.vmNotFound');
          } else {
            await run();
            const after = await hv.get('v');
            assert.equal(describeVm(after), expected);
            // The file says the same as memory.
            const json = JSON.parse(fs.readFileSync(path.join(root, 'vms', 'v', 'vm.json'), 'utf8'));
            assert.equal(json.power, after.power);
            assert.equal(json.generation, after.generation);
            assert.equal(json.fence !== null, after.fence !== undefined);
          }
        });
      }
    }

    it('operations on one VM run one at a time in call order', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      const seen: string[] = [];
      const record = (what: string) => (v: VmInfo | unknown): void => {
        seen.push(`${what}:${typeof v === 'object' && v !== null && 'power' in v ? (v as VmInfo).power : String(v)}`);
      };
      await Promise.all([
        hv.start('v').then(record('start')),
        hv.shutdown('v').then(record('shutdown')),
        hv.start('v').then(record('start')),
        hv.delete('v').then(record('delete'), (e: unknown) => record('delete')((e as LifeboatError).code)),
        hv.shutdown('v').then(record('shutdown')),
        hv.delete('v').then(record('delete')),
      ]);
      assert.deepEqual(seen, ['start:Running', 'shutdown:Off', 'start:Running', 'delete:hypervisor.notOff', 'shutdown:Off', 'delete:true']);
    });
  });

  describe('the guest writes through the tracker', () => {
    it('start → writes land in log segments → shutdown with flush → the disk equals the workload recomputed from its seed', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: 2 * MiB }, { id: 'd1', sizeBytes: MiB }], workload: WORKLOAD });
      const td = await hv.enableTracking('v', 'd0');
      assert.equal((await hv.get('v')).disks[0]!.tracked, true);
      assert.equal((await hv.get('v')).disks[1]!.tracked, false);
      const dir = path.join(root, 'vms', 'v');
      const logBefore = td.pendingLogBytes();
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 150);
      await runUntil(hv, 'v', 'd1', 150);
      assert.ok(td.pendingLogBytes() > logBefore + 100 * KiB, 'the guest wrote through the tracker');
      assert.equal(segments(dir, 'd1').length, 0, 'an unprotected disk has no log');
      const stopped = await hv.shutdown('v');
      assert.equal(stopped.power, 'Off');
      assert.equal(stopped.lastStop?.clean, true);
      for (const d of stopped.disks) {
        const st = await hv.diskStatus('v', d.id);
        assert.equal(st.journal.flushedOps, st.journal.nextOp, 'a shutdown flushes every completed write');
        assert.ok(st.stats.writes > 50);
        const r = await verifyWorkloadDisk({ disk: fileReader(d.path), workload: st.workload!, ops: st.journal.nextOp });
        assert.ok(r.ok, `${d.id}: ${JSON.stringify(r.mismatches)}`);
        assert.ok(r.writes > 50);
      }
      // The tracker stays open while the VM is off (the replication side ships the last writes).
      assert.equal(await hv.trackedDisk('v', 'd0'), td);
      const sealed = await td.seal();
      assert.ok(sealed !== undefined && sealed.dataBytes > 0);
      assert.ok(segments(dir, 'd0').length >= 2);
    });

    it('tracking survives a VM restart (same tracker) and a driver restart (clean stop reported)', async () => {
      let hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      const td = await hv.enableTracking('v', 'd0');
      const generation = td.generation;
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 40);
      await hv.shutdown('v');
      await hv.start('v');
      assert.equal(await hv.trackedDisk('v', 'd0'), td, 'a VM restart keeps the tracker');
      await runUntil(hv, 'v', 'd0', 80);
      await hv.close();
      assert.equal((await hv.close()), undefined, 'close is idempotent');
      hv = await openLab();
      const vm = await hv.get('v');
      assert.equal(vm.power, 'Off');
      assert.equal(vm.lastStop?.clean, true);
      const again = await hv.trackedDisk('v', 'd0');
      assert.notEqual(again, td);
      assert.equal(again.recovery.uncleanStop, false);
      assert.equal(again.generation, generation, 'the log continues: no new generation');
      assert.ok(again.sealedSegments().length > 0, 'the writes before the restart are still to ship');
      // And the guest continues its stream where it stopped.
      const st = await hv.diskStatus('v', 'd0');
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', st.journal.nextOp + 30);
      await hv.shutdown('v');
      const end = await hv.diskStatus('v', 'd0');
      const r = await verifyWorkloadDisk({ disk: fileReader(vm.disks[0]!.path), workload: end.workload!, ops: end.journal.nextOp });
      assert.ok(r.ok);
    });

    it('after the driver is killed, the next start reports an unclean stop, and the guest resumes so that the disk still equals the workload', async function () {
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'crash-child.ts'), root, '300'], {
        cwd: path.join(__dirname, '..', '..', '..', '..'),
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('ready')) resolve();
        });
        void exited.then((c) => reject(new Error(`child exited (${String(c)}) before it was ready: ${stderr}`)));
      });
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');

      const hv = await openLab();
      assert.deepEqual(hv.openReport.interrupted, ['vm1']);
      const vm = await hv.get('vm1');
      assert.equal(vm.power, 'Off');
      assert.equal(vm.lastStop?.clean, false);
      const before = await hv.diskStatus('vm1', 'd0');
      assert.ok(before.journal.nextOp >= 300);
      await hv.start('vm1');
      const td = await hv.trackedDisk('vm1', 'd0');
      assert.equal(td.recovery.uncleanStop, true, 'the tracker saw the kill');
      await runUntil(hv, 'vm1', 'd0', before.journal.nextOp + 20);
      await hv.shutdown('vm1');
      const st = await hv.diskStatus('vm1', 'd0');
      const r = await verifyWorkloadDisk({ disk: fileReader(vm.disks[0]!.path), workload: st.workload!, ops: st.journal.nextOp });
      assert.ok(r.ok, JSON.stringify(r.mismatches));
    });

    it('enabling and disabling tracking while the guest runs switches its writes without losing any', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      const dir = path.join(root, 'vms', 'v');
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 30);
      const td = await hv.enableTracking('v', 'd0');
      assert.equal(await hv.enableTracking('v', 'd0'), td, 'idempotent');
      const logAtEnable = td.pendingLogBytes();
      await runUntil(hv, 'v', 'd0', (await hv.diskStatus('v', 'd0')).journal.nextOp + 40);
      assert.ok(td.pendingLogBytes() > logAtEnable, 'writes after enabling pass the tracker');
      await hv.disableTracking('v', 'd0');
      await hv.disableTracking('v', 'd0');
      assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.hrl') || f.endsWith('.al')).length, 0, 'tracking files removed');
      await rejectsWith(hv.trackedDisk('v', 'd0'), 'hypervisor.diskNotTracked');
      await runUntil(hv, 'v', 'd0', (await hv.diskStatus('v', 'd0')).journal.nextOp + 40);
      const vm = await hv.shutdown('v');
      assert.equal(vm.disks[0]!.tracked, false);
      const st = await hv.diskStatus('v', 'd0');
      assert.ok((await verifyWorkloadDisk({ disk: fileReader(vm.disks[0]!.path), workload: st.workload!, ops: st.journal.nextOp })).ok);
    });

    it('a guest whose disk fails is powered off without a flush, and the failed tracker is reopened on next use', async () => {
      const stopped: string[] = [];
      const hv = await openLab({ onGuestStopped: (vm, disk, e) => stopped.push(`${vm}/${disk}:${(e as LifeboatError).code}`) });
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      const td = await hv.enableTracking('v', 'd0');
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 10);
      // Fault: the tracker goes away under the guest.
      await td.close();
      await waitFor(async () => (await hv.get('v')).power === 'Off', async () => 'the guest did not stop');
      const vm = await hv.get('v');
      assert.equal(vm.power, 'Off');
      assert.equal(vm.lastStop?.clean, false);
      assert.match(vm.lastStop!.reason, /tracker\.closed/);
      assert.deepEqual(stopped, ['v/d0:tracker.closed']);
      const fresh = await hv.trackedDisk('v', 'd0');
      assert.notEqual(fresh, td);
      await hv.start('v');
      assert.equal((await hv.get('v')).power, 'Running');
    });

    it('reopenTracking replaces the tracker under a running guest', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      const td = await hv.enableTracking('v', 'd0');
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 20);
      const next = await hv.reopenTracking('v', 'd0');
      assert.notEqual(next, td);
      assert.equal(await hv.trackedDisk('v', 'd0'), next);
      const log = next.pendingLogBytes();
      await runUntil(hv, 'v', 'd0', (await hv.diskStatus('v', 'd0')).journal.nextOp + 20);
      assert.ok(next.pendingLogBytes() > log);
      const vm = await hv.shutdown('v');
      const st = await hv.diskStatus('v', 'd0');
      assert.ok((await verifyWorkloadDisk({ disk: fileReader(vm.disks[0]!.path), workload: st.workload!, ops: st.journal.nextOp })).ok);
    });
  });

  describe('quiesce', () => {
    it('pauses every write until every resume, after flushing them', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }, { id: 'd1', sizeBytes: MiB }], workload: WORKLOAD });
      const td = await hv.enableTracking('v', 'd0');
      const dir = path.join(root, 'vms', 'v');
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 30);
      const resume1 = await hv.quiesce('v');
      const resume2 = await hv.quiesce('v');
      assert.equal((await hv.get('v')).quiesced, true);
      const snapshot = async (): Promise<string> => JSON.stringify([
        (await hv.diskStatus('v', 'd0')).journal, (await hv.diskStatus('v', 'd1')).journal, td.pendingLogBytes(),
        sha(path.join(dir, 'd0.raw')), sha(path.join(dir, 'd1.raw')),
      ]);
      for (const id of ['d0', 'd1']) {
        const st = await hv.diskStatus('v', id);
        assert.equal(st.journal.flushedOps, st.journal.nextOp, `${id}: every completed write is flushed`);
      }
      // The tracker's log ends with a flush marker: the flush reached the log.
      const current = segments(dir, 'd0').at(-1)!;
      const bytes = fs.readFileSync(path.join(dir, current));
      assert.ok(isFlushMarkerAt(bytes, bytes.length - RECORD_HEADER_SIZE, bytes.length - RECORD_HEADER_SIZE));
      const frozen = await snapshot();
      await clock.advance(5000);
      assert.equal(await snapshot(), frozen, 'no write while quiesced');
      await resume1();
      await resume1();
      await clock.advance(5000);
      assert.equal(await snapshot(), frozen, 'still quiesced: the second quiesce was not resumed');
      assert.equal((await hv.get('v')).quiesced, true);
      await resume2();
      assert.equal((await hv.get('v')).quiesced, false);
      await runUntil(hv, 'v', 'd0', JSON.parse(frozen)[0].nextOp + 20);
      assert.notEqual(await snapshot(), frozen);
    });

    it('a shutdown ends the quiesce; its old resume function does nothing to the next run', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 10);
      const resume = await hv.quiesce('v');
      await hv.shutdown('v');
      await hv.start('v');
      const q = await hv.quiesce('v');
      await resume();
      assert.equal((await hv.get('v')).quiesced, true, 'the stale resume did not end the new quiesce');
      await q();
      assert.equal((await hv.get('v')).quiesced, false);
    });
  });

  describe('fencing', () => {
    it('a fenced VM stays off across driver restarts, even with startInterrupted, until unfenced', async () => {
      let hv = await openLab();
      await hv.create({ name: 'old', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      await hv.create({ name: 'other', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      await hv.start('old');
      await hv.start('other');
      const fenced = await hv.fence('old', 'failed over to site B');
      assert.equal(fenced.power, 'Off');
      assert.equal(fenced.fence?.reason, 'failed over to site B');
      assert.equal(fenced.lastStop?.clean, true);
      assert.match(fenced.lastStop!.reason, /fenced/);
      await rejectsWith(hv.start('old'), 'hypervisor.fenced', 'nonRecoverable');
      assert.equal((await hv.fence('old', 'again')).fence?.reason, 'failed over to site B', 'first reason kept');
      await hv.close();
      hv = await openLab({ startInterrupted: true });
      assert.deepEqual(hv.openReport.restarted, ['other']);
      assert.equal((await hv.get('old')).power, 'Off');
      assert.equal((await hv.get('other')).power, 'Running');
      await rejectsWith(hv.start('old'), 'hypervisor.fenced');
      await rejectsWith(hv.fence('old', ' '), 'hypervisor.noReason');
      const unfenced = await hv.unfence('old', 'reprotected');
      assert.equal(unfenced.fence, undefined);
      assert.equal(unfenced.power, 'Off');
      assert.equal((await hv.start('old')).power, 'Running');
    });
  });

  describe('create from disks (failover)', () => {
    it('runs a VM on a given disk file with its NICs on the given networks, and leaves the file when deleted', async () => {
      const hv = await openLab();
      const store = path.join(root, 'replica');
      fs.mkdirSync(store);
      const disk = path.join(store, 'd0.raw');
      const content = randomBytes(MiB);
      fs.writeFileSync(disk, content);
      const vm = await hv.createFromDisks({
        name: 'web1-failover',
        disks: [{ id: 'd0', location: disk }],
        nics: [{ name: 'nic0', network: 'recovery-net' }],
        tags: { 'lifeboat.failover.origin': 'site-a/web1' },
        workload: WORKLOAD,
      });
      assert.equal(vm.disks[0]!.path, fs.realpathSync(disk));
      assert.equal(vm.disks[0]!.overlay, undefined);
      assert.deepEqual(vm.nics, [{ name: 'nic0', network: 'recovery-net' }]);
      assert.equal(vm.tags['lifeboat.failover.origin'], 'site-a/web1');
      // Retrying the same request returns the same VM; another VM may not write the same file.
      assert.equal((await hv.createFromDisks({ name: 'web1-failover', disks: [{ id: 'd0', location: disk }], nics: [{ name: 'nic0', network: 'recovery-net' }] })).id, vm.id);
      await rejectsWith(hv.createFromDisks({ name: 'web1-failover', disks: [{ id: 'd0', location: disk }] }), 'hypervisor.vmExists');
      await rejectsWith(hv.createFromDisks({ name: 'second', disks: [{ id: 'd0', location: disk }] }), 'hypervisor.diskInUse');
      await rejectsWith(hv.createFromDisks({ name: 'second', disks: [{ id: 'd0', location: disk, overlay: true }] }), 'hypervisor.diskInUse');
      await rejectsWith(hv.createFromDisks({ name: 'second', disks: [{ id: 'd0', location: path.join(store, 'missing.raw') }] }), 'hypervisor.diskNotFound', 'invalidInput');
      await rejectsWith(hv.createFromDisks({ name: 'second', disks: [] }), 'hypervisor.noDisks');

      await hv.attachNetwork('web1-failover', 'nic0', 'prod');
      assert.deepEqual((await hv.get('web1-failover')).nics, [{ name: 'nic0', network: 'prod' }]);
      const g = (await hv.get('web1-failover')).generation;
      await hv.attachNetwork('web1-failover', 'nic0', 'prod');
      assert.equal((await hv.get('web1-failover')).generation, g, 'attaching to the same network changes nothing');
      await rejectsWith(hv.attachNetwork('web1-failover', 'nic9', 'prod'), 'hypervisor.nicNotFound', 'invalidInput');
      await rejectsWith(hv.attachNetwork('web1-failover', 'nic0', 'bad/net'), 'hypervisor.invalidNetwork');

      // Reverse replication tracks the given file; its log lives in the VM's folder.
      const td = await hv.enableTracking('web1-failover', 'd0');
      assert.equal(td.logDir, path.join(fs.realpathSync(root), 'vms', 'web1-failover'));
      await hv.start('web1-failover');
      await runUntil(hv, 'web1-failover', 'd0', 30);
      await hv.shutdown('web1-failover');
      const st = await hv.diskStatus('web1-failover', 'd0');
      const r = await verifyWorkloadDisk({ disk: fileReader(disk), base: { sizeBytes: MiB, read: async (o, n) => content.subarray(o, o + n) }, workload: st.workload!, ops: st.journal.nextOp });
      assert.ok(r.ok, 'the VM wrote the given file itself');
      assert.equal(await hv.delete('web1-failover'), true);
      assert.ok(fs.existsSync(disk), 'a given disk file is not deleted with the VM');
      assert.deepEqual(fs.readdirSync(store), ['d0.raw'], 'nothing of the VM is left next to the disk');
    });

    it('a test-failover VM runs on a copy-on-write overlay: the base never changes, reads are base plus overlay writes', async () => {
      const hv = await openLab();
      const base = path.join(root, 'replica', 'd0.raw');
      fs.mkdirSync(path.dirname(base));
      const content = randomBytes(MiB);
      fs.writeFileSync(base, content);
      const baseHash = sha(base);
      const vm = await hv.createFromDisks({
        name: 'web1-test',
        disks: [{ id: 'd0', location: base, overlay: true }],
        nics: [{ name: 'nic0', network: 'test-net' }],
        testFailover: true,
        workload: WORKLOAD,
      });
      assert.equal(vm.testFailover, true);
      assert.equal(vm.disks[0]!.overlay?.base, fs.realpathSync(base));
      assert.ok(vm.disks[0]!.path.endsWith('d0.cow'));
      await rejectsWith(hv.enableTracking('web1-test', 'd0'), 'hypervisor.overlayNotTrackable');
      // Two test VMs may read the same base.
      await hv.createFromDisks({ name: 'web1-test2', disks: [{ id: 'd0', location: base, overlay: true }] });
      // A VM writing the base is refused while overlays read it.
      await rejectsWith(hv.createFromDisks({ name: 'writer', disks: [{ id: 'd0', location: base }] }), 'hypervisor.diskInUse');
      await hv.start('web1-test');
      await runUntil(hv, 'web1-test', 'd0', 60);
      await hv.shutdown('web1-test');
      assert.equal(sha(base), baseHash, 'the base was not modified');
      const st = await hv.diskStatus('web1-test', 'd0');
      // Read back through the overlay (as the guest would): base plus the guest's writes.
      const { CowOverlay, openFileBase } = await import('../../../../provider/hypervisor/lab/cow-overlay');
      const ov = await CowOverlay.open(vm.disks[0]!.path, await openFileBase(base));
      try {
        const r = await verifyWorkloadDisk({ disk: ov, base: { sizeBytes: MiB, read: async (o, n) => content.subarray(o, o + n) }, workload: st.workload!, ops: st.journal.nextOp });
        assert.ok(r.ok, JSON.stringify(r.mismatches));
      } finally {
        await ov.close();
      }
      assert.equal(await hv.delete('web1-test'), true);
      assert.equal(await hv.delete('web1-test2'), true);
      assert.equal(sha(base), baseHash);
      assert.deepEqual(fs.readdirSync(path.join(root, 'vms')), []);
    });

    it('an overlay over a resolver location (a point-in-time view) is reopened through the resolver at every start', async () => {
      const content = randomBytes(256 * KiB);
      let opened = 0;
      const resolveLocation = async (location: string): Promise<OverlayBase> => {
        assert.equal(location, 'view:web1/d0/p-0000000000000003');
        opened++;
        return { sizeBytes: content.length, read: async (o, n) => Buffer.from(content.subarray(o, o + n)), close: async () => undefined };
      };
      const plain = await openLab();
      await rejectsWith(plain.createFromDisks({ name: 't', disks: [{ id: 'd0', location: 'view:web1/d0/p-0000000000000003', overlay: true }] }), 'hypervisor.noResolver');
      await rejectsWith(plain.createFromDisks({ name: 't', disks: [{ id: 'd0', location: 'view:x' }] }), 'hypervisor.notAFile');
      await plain.close();
      const hv = await openLab({ resolveLocation });
      const vm = await hv.createFromDisks({ name: 't', disks: [{ id: 'd0', location: 'view:web1/d0/p-0000000000000003', overlay: true }], testFailover: true, workload: WORKLOAD });
      assert.equal(vm.disks[0]!.sizeBytes, content.length);
      assert.equal(vm.disks[0]!.overlay?.base, 'view:web1/d0/p-0000000000000003');
      await hv.start('t');
      await runUntil(hv, 't', 'd0', 20);
      await hv.shutdown('t');
      await hv.start('t');
      await hv.shutdown('t');
      assert.equal(opened, 3, 'once to learn the size, once per start');
    });
  });

  describe('driver restart', () => {
    it('close remembers running VMs; startInterrupted brings them back and their guests continue', async () => {
      let hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: MiB }], workload: WORKLOAD });
      await hv.start('v');
      await runUntil(hv, 'v', 'd0', 25);
      await hv.close();
      const json = JSON.parse(fs.readFileSync(path.join(root, 'vms', 'v', 'vm.json'), 'utf8'));
      assert.equal(json.power, 'Off');
      assert.equal(json.resumeOnOpen, true);
      const stopped = (await (async () => {
        const peek = await openLab();
        const s = await peek.diskStatus('v', 'd0');
        assert.equal((await peek.get('v')).power, 'Off', 'without startInterrupted the VM stays off');
        await peek.close();
        return s;
      })());
      hv = await openLab({ startInterrupted: true });
      assert.deepEqual(hv.openReport.restarted, ['v']);
      assert.equal((await hv.get('v')).power, 'Running');
      await runUntil(hv, 'v', 'd0', stopped.journal.nextOp + 20);
      const vm = await hv.shutdown('v');
      const st = await hv.diskStatus('v', 'd0');
      assert.ok((await verifyWorkloadDisk({ disk: fileReader(vm.disks[0]!.path), workload: st.workload!, ops: st.journal.nextOp })).ok);
    });
  });

  describe('tags', () => {
    it('merges and removes tags', async () => {
      const hv = await openLab();
      await hv.create({ name: 'v', disks: [{ id: 'd0', sizeBytes: 512 }], tags: { a: '1', b: '2' } });
      const v = await hv.setTags('v', { b: undefined, c: '3' });
      assert.deepEqual(v.tags, { a: '1', c: '3' });
      await rejectsWith(hv.setTags('v', { '': 'x' }), 'hypervisor.invalidTag');
    });
  });
});
