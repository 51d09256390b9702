/**
 * Unplanned failover to Azure with the primary gone (docs/azure-failover.md
 * §4), across real processes (`lifeboat lab up --azure`): the primary agent
 * is killed with SIGKILL while its VM writes (a cycle may be half in the
 * page blobs, its journal left behind), and the failover goes to a point
 * older than the latest, chosen by time; then the point is changed to
 * another older one and committed (the blobs roll back to it).
 *
 * The oracle of each chosen point: the source disk read while its VM was
 * off and that point was the latest (azure-harness.ts `sourceAtCut`).
 */

import { strict as assert } from 'node:assert';
import { TestLab } from '../lab/lab-harness';
import { firstDifference, itemStatus } from '../failover/failover-harness';
import { blobBytes, blobPoint, pointsAfter, protectToAzure, sourceAtCut, startVm } from './azure-harness';

const DISK = 8 * 1024 * 1024;

interface AzureVmRecord {
  readonly host: string;
  readonly disks: readonly { readonly blobUrl: string }[];
  readonly commitRolledBack?: boolean;
}

describe('azure: unplanned failover to Azure with the primary killed, to points in the past (lab up --azure)', function () {
  this.timeout(180_000);
  let lab: TestLab | undefined;

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '8', '--rate-kib', '256', '--frequency-ms', '300']);
  });

  after(async () => {
    await lab?.down();
  });

  it('fails over to an older point byte for byte, changes it, and commits it as the blobs\' only point', async () => {
    const l = lab!;
    const uid = await protectToAzure(l);

    // Two cuts with their oracles, newer points after each, then the primary dies mid-write.
    const p1 = await sourceAtCut(l, 'web', 'primary-1', 'web01');
    await startVm(l, 'primary-1', 'web01');
    await pointsAfter(l, 'web', p1.point.time, 2);
    const p2 = await sourceAtCut(l, 'web', 'primary-1', 'web01');
    assert.ok(!p2.bytes.equals(p1.bytes), 'the guest wrote between the cuts');
    await startVm(l, 'primary-1', 'web01');
    await pointsAfter(l, 'web', p2.point.time, 2);
    await l.kill9('primary-1');

    const f = await l.cli(['failover', 'web', '--type', 'unplanned', '--point', p1.point.time]);
    assert.equal(f.code, 0, `${f.stdout}\n${f.stderr}\n${await TestLab.logsOf(l.dir)}`);
    let s = await itemStatus(l, 'web');
    assert.equal(s.replicationState, 'FailedOver');
    assert.equal(s.activeLocation, 'recovery');
    assert.equal(s.failover?.point?.id, p1.point.id, 'the newest point at or before the time');
    const job = await l.client.getJob('lab', s.lastJob!.id, { commands: true });
    assert.ok((job.commands ?? []).length > 0 && (job.commands ?? []).every((c) => c.host === 'azure-1'), 'no command went to the dead primary');
    let azureVm = (s as unknown as { azureVm: AzureVmRecord }).azureVm;
    assert.equal(firstDifference((await blobBytes(l, azureVm.disks[0]!.blobUrl)).subarray(0, DISK), p1.bytes), -1, 'the export differs from the source at P1');

    // Another point, still older than the latest: the VM is replaced, its export is P2.
    const change = await l.cli(['failover', 'web', '--type', 'unplanned', '--point', p2.point.time]);
    assert.equal(change.code, 0, `${change.stdout}\n${change.stderr}`);
    s = await itemStatus(l, 'web');
    assert.equal(s.failover?.point?.id, p2.point.id);
    azureVm = (s as unknown as { azureVm: AzureVmRecord }).azureVm;
    assert.equal(firstDifference((await blobBytes(l, azureVm.disks[0]!.blobUrl)).subarray(0, DISK), p2.bytes), -1, 'the export differs from the source at P2');

    // Commit: the blobs roll back to P2 (the killed primary's unfinished cycle is undone first) and keep only it.
    const c = await l.cli(['commit', 'web']);
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}\n${await TestLab.logsOf(l.dir)}`);
    s = await itemStatus(l, 'web');
    assert.equal(s.replicationState, 'FailoverCommitted');
    assert.equal((s as unknown as { azureVm: AzureVmRecord }).azureVm.commitRolledBack, true);
    assert.deepEqual((await l.client.recoveryPoints('lab', 'web')).map((p) => p.id), [p2.point.id], 'commit discards the other points');
    const head = await blobPoint(l, uid, DISK);
    assert.deepEqual(head.points.map((p) => p.id), [p2.point.id]);
    assert.equal(firstDifference(head.bytes, p2.bytes), -1, 'the committed point differs from the source at P2');
  });
});
