/**
 * Cancelling an uncommitted failover (docs/failover.md §3 `failover.cancel`)
 * across real processes: the primary agent is killed while its VM writes
 * (so the source holds writes no point has), an unplanned failover starts
 * the VM on the recovery host, the old primary returns with its VM fenced,
 * and `lifeboat cancel-failover` brings the workload back: the failover VM
 * is gone, the source VM is no longer fenced, and after the resync the
 * command starts, the replica equals the source disk byte for byte (the VM
 * stays off, so its disk is the oracle). To be sure the two differ before,
 * the test also changes one block of the stopped source disk behind the
 * tracker's back: the resync compares every block, so it must find it.
 */

import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { TestLab, waitFor } from '../lab/lab-harness';
import { firstDifference, itemStatus, protect, vmConfig, vmExists } from './failover-harness';

describe('failover: cancel an uncommitted failover after the primary returns (processes)', function () {
  this.timeout(300_000);
  let lab: TestLab;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '256', '--frequency-ms', '500']);
  });

  after(async () => {
    await lab?.down();
  });

  it('removes the failover VM, unfences the source, and the resync makes the replica equal to it', async () => {
    const uid = await protect(lab, 'web', 'web01');
    await lab.kill9('primary-1');
    const failover = await lab.cli(['failover', 'web', '--type', 'unplanned']);
    assert.equal(failover.code, 0, `${failover.stdout}\n${failover.stderr}`);
    assert.ok(vmExists(lab, 'recovery-1', 'web01'), 'the failover VM runs on the recovery host');

    // The old primary returns; its VM is fenced (the failover holds it) and off (it died with the agent).
    await lab.upAgain();
    await waitFor('primary-1 connected again', async () => ((await lab.client.listHosts('lab')).find((h) => h.name === 'primary-1')?.status.connectionState === 'Connected' ? true : undefined), 30_000, 200);
    await waitFor('web01 fenced by the returning primary', async () => ((await vmConfig(lab, 'primary-1', 'web01')).fence !== null ? true : undefined), 30_000, 200);

    // The source differs from every point the replica has (writes after the last cut, and for certain this
    // block written behind the tracker's back while the VM is off): only a resync can bring them in step.
    const file = path.join(lab.dataDir('primary-1'), 'lab', 'vms', 'web01', 'disk0.raw');
    const fh = await open(file, 'r+');
    try {
      await fh.write(randomBytes(4096), 0, 4096, 1024 * 1024);
    } finally {
      await fh.close();
    }
    const source = await lab.sourceDisk('primary-1', 'web01');
    const stale = await lab.replicaAtLatestPoint('recovery-1', uid, source.length);
    assert.notEqual(firstDifference(stale.bytes, source), -1, 'the source holds writes no point has');

    const cancel = await lab.cli(['cancel-failover', 'web']);
    assert.equal(cancel.code, 0, `${cancel.stdout}\n${cancel.stderr}\n${await TestLab.logsOf(lab.dir)}`);
    assert.match(cancel.stdout, /cancel the failover of web: job [\s\S]*resync of web: job /);

    const s = await itemStatus(lab, 'web');
    assert.deepEqual([s.replicationState, s.activeLocation, s.sourceHost, s.targetHost], ['Protected', 'primary', 'primary-1', 'recovery-1']);
    assert.equal(s.failover, undefined);
    assert.equal(vmExists(lab, 'recovery-1', 'web01'), false, 'the failover VM is removed');
    const web = await vmConfig(lab, 'primary-1', 'web01');
    assert.equal(web.fence, null, 'the source VM is no longer fenced');

    // The VM is off after the crash: its disk does not change, and the replica's latest point must equal it.
    assert.ok((await lab.sourceDisk('primary-1', 'web01')).equals(source), 'the source VM stayed off');
    await waitFor('the replica equal to the source', async () => {
      const r = await lab.replicaAtLatestPoint('recovery-1', uid, source.length);
      return firstDifference(r.bytes, source) === -1 ? true : undefined;
    }, 60_000, 250);

    const again = await lab.cli(['cancel-failover', 'web']);
    assert.notEqual(again.code, 0);
    assert.match(`${again.stdout}${again.stderr}`, /only a FailedOver item \(not yet committed\) can have its failover cancelled/);
  });
});
