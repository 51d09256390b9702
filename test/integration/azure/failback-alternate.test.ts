/**
 * Failback from Azure to an alternate host, and to an original host whose
 * VM was deleted (docs/azure-failover.md §5), across real processes
 * (`lifeboat lab up --azure`). Neither host has a record of the failover
 * point there, so the host receives the whole disk from the blobs and the
 * resumed protection's first resync compares every block against them.
 *
 * The oracle: the Azure-side VM's disk after its flushed shutdown (the lab's
 * azure host runs the failed-over VM with a writing guest); the disk the
 * failback makes must equal it, and so must the blobs' point after the
 * protection resumed from the new source host. The VM a failback creates has
 * an idle guest, so its disk stays as the failback left it.
 */

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { TestLab, waitFor } from '../lab/lab-harness';
import { firstDifference, itemStatus, vmConfig, vmExists } from '../failover/failover-harness';
import { blobPoint, protectToAzure } from './azure-harness';

const DISK = 8 * 1024 * 1024;

interface Failback {
  readonly host: string;
  readonly created: boolean;
  readonly bytesReceived: number;
}

describe('azure: failback from Azure to an alternate host, and to a host whose VM was deleted (lab up --azure)', function () {
  this.timeout(240_000);
  let lab: TestLab | undefined;

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '8', '--rate-kib', '256', '--frequency-ms', '300']);
  });

  after(async () => {
    await lab?.down();
  });

  /** Planned failover to Azure and commit; then the Azure-side VM writes and is shut down with a flush: its disk is the oracle. */
  async function failOverAndRunInAzure(l: TestLab): Promise<Buffer> {
    await l.jobSucceeds((await l.client.failover('lab', 'web', { type: 'planned' } as never)).id, 120_000);
    await l.jobSucceeds((await l.client.commitFailover('lab', 'web')).id);
    const local = path.join(l.dataDir('azure-1'), 'lab', 'azure-disks', 'web01', 'disk0.raw');
    const start = await readFile(local);
    await waitFor('an Azure-side write', async () => (!(await readFile(local)).equals(start) ? true : undefined), 60_000, 200);
    const off = await l.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'azure-1', '--lab-dir', l.dir]);
    assert.equal(off.code, 0, off.stderr);
    return readFile(local);
  }

  /** The disk of web01 on `host`, its blobs' point after protection resumed from there, and the failback record. */
  async function afterFailback(l: TestLab, host: string, uid: string, since: number): Promise<{ disk: Buffer; blob: Buffer; failback: Failback }> {
    const s = await itemStatus(l, 'web');
    assert.equal(s.replicationState, 'Protected');
    assert.equal(s.activeLocation, 'primary');
    assert.equal(s.sourceHost, host, 'the failback host is the item\'s source host');
    await waitFor(`a cycle from ${host} after the failback`, async () => {
      const x = await itemStatus(l, 'web');
      return x.health === 'Normal' && x.lastReplicatedTime !== undefined && Date.parse(x.lastReplicatedTime) > since ? true : undefined;
    }, 60_000, 200);
    const vm = await vmConfig(l, host, 'web01');
    assert.equal(vm.power, 'Running');
    assert.deepEqual(vm.nics.map((n) => n.network), ['lab-net'], 'on the source network of the Azure mapping');
    const disk = await readFile(path.join(l.dataDir(host), 'lab', vm.disks[0]!.file));
    return { disk, blob: (await blobPoint(l, uid, DISK)).bytes, failback: (s as unknown as { failback: Failback }).failback };
  }

  it('creates the VM from the whole blob where it is missing, equal to the Azure-side disk, and resumes protection from there', async () => {
    const l = lab!;
    const uid = await protectToAzure(l);
    const oldRecord = path.join(l.dataDir('primary-1'), 'items', `${uid}.source.json`);
    assert.ok(existsSync(oldRecord), 'primary-1 replicates the item before the failover');

    // Round 1: back to primary-2, which never had the VM.
    const azure1 = await failOverAndRunInAzure(l);
    const wrongSite = await l.cli(['failback', 'web', '--host', 'recovery-1']);
    assert.notEqual(wrongSite.code, 0);
    assert.match(`${wrongSite.stdout}${wrongSite.stderr}`, /host recovery-1 is in site recovery, not in site primary of item 'web'/);
    assert.equal((await itemStatus(l, 'web')).replicationState, 'FailoverCommitted', 'a refused failback leaves the failover as it was');
    const t1 = Date.now();
    const fb = await l.cli(['failback', 'web', '--host', 'primary-2']);
    assert.equal(fb.code, 0, `${fb.stdout}${fb.stderr}\n${await TestLab.logsOf(l.dir)}`);
    assert.match(fb.stdout, /failback from Azure of web to primary-2: job /);
    const r1 = await afterFailback(l, 'primary-2', uid, t1);
    assert.equal(r1.failback.host, 'primary-2');
    assert.equal(r1.failback.created, true);
    assert.equal(firstDifference(r1.disk, azure1), -1, 'the disk on primary-2 differs from the Azure-side disk');
    assert.equal(firstDifference(r1.blob, azure1), -1, 'the blobs differ from it after protection resumed');
    const old = await vmConfig(l, 'primary-1', 'web01');
    assert.ok(old.fence !== null && old.power === 'Off', 'the old VM on primary-1 stays fenced and off');
    assert.equal(existsSync(oldRecord), false, 'primary-1 no longer holds a record of the item');
    assert.equal(vmExists(l, 'azure-1', 'web01'), false, 'the Azure-side VM is removed');

    // Round 2: fail over again from primary-2; its VM is deleted behind Lifeboat's back; failback re-creates it there.
    const azure2 = await failOverAndRunInAzure(l);
    const foreign = await l.cli(['failback', 'web', '--host', 'primary-1']);
    assert.notEqual(foreign.code, 0, 'primary-1 still has a VM web01 that is not this item\'s');
    assert.match(`${foreign.stdout}${foreign.stderr}`, /already has a VM web01 that is not item web's/);
    assert.equal((await itemStatus(l, 'web')).replicationState, 'FailoverCommitted');
    await l.stop('primary-2');
    const gone = await vmConfig(l, 'primary-2', 'web01');
    await rm(path.join(l.dataDir('primary-2'), 'lab', 'vms', 'web01'), { recursive: true, force: true });
    await rm(path.join(l.dataDir('primary-2'), 'lab', gone.disks[0]!.file), { force: true });
    await l.upAgain();
    await waitFor('primary-2 connected again', async () => ((await l.client.listHosts('lab')).find((h) => h.name === 'primary-2')?.status.connectionState === 'Connected' ? true : undefined), 30_000, 200);
    const t2 = Date.now();
    const fb2 = await l.cli(['failback', 'web']);
    assert.equal(fb2.code, 0, `${fb2.stdout}${fb2.stderr}\n${await TestLab.logsOf(l.dir)}`);
    const r2 = await afterFailback(l, 'primary-2', uid, t2);
    assert.equal(r2.failback.created, true);
    assert.equal(firstDifference(r2.disk, azure2), -1, 'the re-created disk differs from the Azure-side disk');
    assert.equal(firstDifference(r2.blob, azure2), -1, 'the blobs differ from it after protection resumed');
  });
});
