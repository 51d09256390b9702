/**
 * Test failover to Azure (docs/azure-failover.md §4) across real processes
 * (`lifeboat lab up --azure`): while the source VM keeps writing and
 * replicating into the page blobs, the azure host opens them read-only
 * (docs/azure-target.md §8a), exports a chosen older point and runs
 * `<vm>-test` from it on the mapped test network. The oracle of the point:
 * the source disk read while the VM was off and the point was the latest
 * (azure-harness.ts `sourceAtCut`). Replication goes on untouched — a later
 * point equals the source at its cut — and `test-cleanup` leaves no VM, no
 * downloaded disk and no export.
 */

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { TestLab } from '../lab/lab-harness';
import { firstDifference, itemStatus, vmConfig, vmExists } from '../failover/failover-harness';
import { blobBytes, blobNames, blobPoint, pointsAfter, protectToAzure, sourceAtCut, startVm } from './azure-harness';

const DISK = 8 * 1024 * 1024;

describe('azure: test failover to Azure while the source keeps replicating (lab up --azure)', function () {
  this.timeout(180_000);
  let lab: TestLab | undefined;

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '8', '--rate-kib', '256', '--frequency-ms', '300']);
  });

  after(async () => {
    await lab?.down();
  });

  it('runs <vm>-test from the chosen point on the test network; replication keeps going; cleanup removes the VM, its disks and its export', async () => {
    const l = lab!;
    const uid = await protectToAzure(l, 'dr-test-vnet');

    // P1 and its oracle; then the source writes again and newer points follow.
    const p1 = await sourceAtCut(l, 'web', 'primary-1', 'web01');
    assert.ok(!p1.bytes.equals(Buffer.alloc(DISK)), 'the guest wrote before the cut');
    await startVm(l, 'primary-1', 'web01');
    await pointsAfter(l, 'web', p1.point.time, 2);

    const t = await l.cli(['failover', 'web', '--type', 'test', '--point', p1.point.time]);
    assert.equal(t.code, 0, `${t.stdout}\n${t.stderr}\n${await TestLab.logsOf(l.dir)}`);
    const s = await itemStatus(l, 'web');
    assert.equal(s.replicationState, 'Protected', 'a test failover does not change the replication state');
    const test = s.testFailover as unknown as { vm: string; host: string; point: { id: string }; azureVm: { nics: unknown[]; disks: { blobUrl: string }[]; test: boolean } };
    assert.equal(test.vm, 'web01-test');
    assert.equal(test.host, 'azure-1');
    assert.equal(test.point.id, p1.point.id, 'the newest point at or before the time');
    assert.equal(test.azureVm.test, true);
    assert.deepEqual(test.azureVm.nics, [{ name: 'nic0', network: 'dr-test-vnet', subnet: 'default' }]);
    assert.equal((s as unknown as { azureVm?: unknown }).azureVm, undefined, 'no failover record');
    const vm = await vmConfig(l, 'azure-1', 'web01-test');
    assert.deepEqual(vm.nics.map((n) => n.network), ['dr-test-vnet']);
    assert.equal(vm.testFailover, true);
    const exported = await blobBytes(l, test.azureVm.disks[0]!.blobUrl);
    assert.equal(firstDifference(exported.subarray(0, DISK), p1.bytes), -1, 'the test VM\'s disk differs from the source at the chosen cut');

    // The source kept replicating through all this: a later cut equals the source, and so does P1 still.
    await pointsAfter(l, 'web', new Date().toISOString(), 2);
    const p2 = await sourceAtCut(l, 'web', 'primary-1', 'web01');
    assert.ok(Date.parse(p2.point.time) > Date.parse(p1.point.time));
    const latest = await blobPoint(l, uid, DISK);
    assert.equal(latest.point.id, p2.point.id);
    assert.equal(firstDifference(latest.bytes, p2.bytes), -1, 'the blobs\' latest point differs from the source at its cut');
    assert.equal(firstDifference((await blobPoint(l, uid, DISK, p1.point.id)).bytes, p1.bytes), -1, 'P1 changed');
    assert.equal((await itemStatus(l, 'web')).health, 'Normal');

    const c = await l.cli(['test-cleanup', 'web']);
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
    assert.equal((await itemStatus(l, 'web')).testFailover, undefined);
    assert.equal(vmExists(l, 'azure-1', 'web01-test'), false, 'the test VM is gone');
    assert.equal(existsSync(path.join(l.dataDir('azure-1'), 'lab', 'azure-disks', 'web01-test')), false, 'its downloaded disks are gone');
    const names = await blobNames(l);
    assert.deepEqual(names.filter((n) => !n.startsWith(`disks/${uid}~2fdisk0/`)), [], 'only the replica\'s blobs are left (no export)');
    assert.equal((await itemStatus(l, 'web')).replicationState, 'Protected');
  });
});
