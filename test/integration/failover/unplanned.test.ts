/**
 * Unplanned failover with the primary agent killed (`kill -9`), to a chosen
 * point, then a change of point and commit; then the old primary comes back
 * and its VM stays fenced. Real processes on loopback.
 *
 * How the test knows the source at the chosen cut: it shuts the guest down
 * (flushed) and waits until the replica is in step after the shutdown, so
 * the latest point P1 then equals the source disk, which does not change
 * while the VM is off: the test reads it there. Then the VM runs again and
 * writes, newer points are cut, and the primary is killed mid-write. A
 * failover to `latest` runs from a newer point; changing the point to P1's
 * time must give exactly the bytes read at P1.
 */

import { strict as assert } from 'node:assert';
import { TestLab, waitFor } from '../lab/lab-harness';
import { MiB, failoverDisk, firstDifference, itemStatus, mapNetworks, protect, vmConfig } from './failover-harness';

const DISK = 4 * MiB;

describe('failover: unplanned failover with the primary killed, point change, commit, fencing (processes)', function () {
  this.timeout(300_000);
  let lab: TestLab;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '256', '--frequency-ms', '500']);
    await mapNetworks(lab);
  });

  after(async () => {
    await lab?.down();
  });

  it('fails over to the chosen cut byte for byte, commits, and keeps the returning primary\'s VM off', async () => {
    const uid = await protect(lab, 'web', 'web01');

    // P1: the replica in step with a source that no longer changes.
    const off = await lab.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.equal(off.code, 0, off.stderr);
    const shutAt = Date.now();
    await waitFor('the replica in step after the shutdown', async () => {
      const s = await itemStatus(lab, 'web');
      return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > shutAt ? true : undefined;
    }, 60_000, 100);
    const atCut = await lab.sourceDisk('primary-1', 'web01');
    assert.ok(!atCut.equals(Buffer.alloc(DISK)), 'the guest wrote before the cut');
    const p1 = (await lab.client.recoveryPoints('lab', 'web')).at(-1)!;

    // Newer writes and newer points, then the primary dies mid-write.
    const on = await lab.cli(['agent', 'vm', 'start', 'web01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.equal(on.code, 0, on.stderr);
    await waitFor('two points newer than P1', async () => {
      const points = await lab.client.recoveryPoints('lab', 'web');
      return points.filter((p) => Date.parse(p.time) > Date.parse(p1.time)).length >= 2 ? true : undefined;
    }, 60_000, 100);
    await lab.kill9('primary-1');

    const latest = await lab.cli(['failover', 'web', '--type', 'unplanned', '--point', 'latest']);
    assert.equal(latest.code, 0, `${latest.stdout}\n${latest.stderr}\n${await TestLab.logsOf(lab.dir)}`);
    let s = await itemStatus(lab, 'web');
    assert.equal(s.replicationState, 'FailedOver');
    assert.equal(s.activeLocation, 'recovery');
    assert.ok(Date.parse(s.failover!.point!.time) > Date.parse(p1.time), 'latest is newer than P1');
    const job = await lab.client.getJob('lab', s.lastJob!.id, { commands: true });
    assert.ok((job.commands ?? []).length > 0 && (job.commands ?? []).every((c) => c.host === 'recovery-1'), 'no command went to the dead primary');

    const change = await lab.cli(['failover', 'web', '--type', 'unplanned', '--point', p1.time]);
    assert.equal(change.code, 0, `${change.stdout}\n${change.stderr}`);
    s = await itemStatus(lab, 'web');
    assert.equal(s.replicationState, 'FailedOver');
    assert.equal(s.failover?.point?.id, p1.id, 'the newest point at or before the time');

    const c = await lab.cli(['commit', 'web']);
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
    assert.equal((await itemStatus(lab, 'web')).replicationState, 'FailoverCommitted');
    assert.deepEqual((await lab.client.recoveryPoints('lab', 'web')).map((p) => p.id), [p1.id], 'commit discards the other points');

    // The old primary returns: its other VM starts again, web01 stays fenced and off.
    await lab.upAgain();
    // vm.json still says Running after kill -9: ask the restarted agent itself.
    const live = await waitFor('db01 started again by the returning primary', async () => {
      const r = await lab.cli(['agent', 'status', '--host', 'primary-1', '--lab-dir', lab.dir, '--output', 'json']);
      if (r.code !== 0) return undefined;
      const vms = (JSON.parse(r.stdout) as { vms: { name: string; power: string }[] }).vms;
      return vms.find((v) => v.name === 'db01')?.power === 'Running' ? vms : undefined;
    }, 60_000, 200);
    assert.equal(live.find((v) => v.name === 'web01')?.power, 'Off', `the old source VM stays off\n${await TestLab.logsOf(lab.dir)}`);
    const web = await vmConfig(lab, 'primary-1', 'web01');
    assert.equal(web.power, 'Off');
    assert.ok(web.fence !== null, 'and is fenced');
    const start = await lab.cli(['agent', 'vm', 'start', 'web01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.notEqual(start.code, 0, 'starting it is refused');
    assert.equal((await itemStatus(lab, 'web')).replicationState, 'FailoverCommitted', 'the returning primary\'s reports do not move the item');

    await lab.down(false);
    const disk = await failoverDisk(lab, 'recovery-1', 'web01', uid, DISK);
    assert.equal(disk.pointId, p1.id);
    assert.equal(firstDifference(disk.bytes, atCut), -1, 'the failed-over disk equals the source at the chosen cut');
  });
});
