/**
 * The storage account goes away mid-protection (docs/azure-failover.md §3):
 * Azurite, a process of `lifeboat lab up --azure`, is stopped while a running
 * lab VM replicates into it. The agent reports recoverable errors
 * (`azure.network`, health Warning) and retries on the policy's schedule
 * (run with a 200 ms unit instead of a minute: `--retry-ms`); once Azurite
 * is back, replication converges with nothing lost: after a flushed
 * shutdown and a later cycle, the blob equals the source. Then the account's
 * key is rotated (Azurite restarted with another key): the key the vault holds
 * is refused, non-recoverably, and the item turns Critical with the hint to
 * update the key, and no key in it. A policy PUT with the new key alone
 * brings it back: the vault tells the source host to re-open the blobs.
 */

import { strict as assert } from 'node:assert';
import { AZURITE_ACCOUNT, AZURITE_DEV_KEY, azuriteEndpoint } from '../../../provider/cli/lab/lab-azure';
import { type ProtectedItemStatus } from '../../../provider/client';
import { AzureBlobReplicaTarget } from '../../../provider/targets/azure-blob';
import { randomBytes } from 'node:crypto';
import { lifeboat, TestLab, waitFor } from '../lab/lab-harness';

const DISK = 4 * 1024 * 1024;

describe('azure: Azurite stopped mid-protection (lab up --azure)', function () {
  this.timeout(180_000);
  let lab: TestLab | undefined;

  before(async () => {
    lab = await TestLab.up(['--azure', '--disk-mib', '4', '--rate-kib', '64', '--frequency-ms', '300', '--retry-ms', '200']);
  });

  after(async () => {
    await lab?.down();
  });

  it('reports recoverable errors while it is gone, retries, and converges to a blob equal to the source once it is back', async () => {
    const l = lab!;
    const created = await l.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-azure-policy' });
    await l.jobSucceeds(created.status.activeJob!.id);
    await waitFor('two recovery points', async () => ((await l.client.recoveryPoints('lab', 'web')).length >= 2 ? true : undefined));

    await l.stop('azurite');
    const failing = await waitFor('a report of the outage', async () => {
      const s: ProtectedItemStatus = (await l.client.getProtectedItem('lab', 'web')).status;
      return s.health === 'Warning' && JSON.stringify(s).includes('azure.network') ? s : undefined;
    });
    assert.equal(failing.replicationState, 'Protected');
    assert.doesNotMatch(JSON.stringify(failing), new RegExp(AZURITE_DEV_KEY.slice(0, 20).replace(/[+/]/g, '.')));

    await l.upAgain();
    const backAt = Date.now();
    await waitFor('replication to converge after Azurite is back', async () => {
      const s = (await l.client.getProtectedItem('lab', 'web')).status;
      return s.health === 'Normal' && s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > backAt ? true : undefined;
    }, 60_000);

    const off = await l.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'primary-1', '--lab-dir', l.dir]);
    assert.equal(off.code, 0, off.stderr);
    const shutAt = Date.now();
    await waitFor('a cycle after the shutdown', async () => {
      const s = (await l.client.getProtectedItem('lab', 'web')).status;
      return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > shutAt ? true : undefined;
    });
    const item = await l.client.getProtectedItem('lab', 'web');
    const source = await l.sourceDisk('primary-1', 'web01');
    const port = (l.state as unknown as { azurite: { port: number } }).azurite.port;
    const target = await AzureBlobReplicaTarget.open({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_DEV_KEY, endpoint: azuriteEndpoint(port), container: 'lab-replicas', createContainer: false });
    try {
      const disk = await target.openDisk({ diskId: `${item.uid}/disk0`, sizeBytes: DISK });
      const view = await disk.openView((await disk.listPoints()).at(-1)!.id);
      const replica = await view.read(0, DISK);
      await view.close();
      await disk.close();
      assert.ok(replica.equals(source), 'the blob differs from the source after the outage');
    } finally {
      await target.close();
    }
  });

  it('a key the account no longer accepts makes the item Critical with azure.authenticationFailed and a hint, never a key; a policy PUT with the new key alone brings it back', async () => {
    const l = lab!;
    await l.stop('azurite');
    const rotated = randomBytes(64).toString('base64');
    const up = await lifeboat(['lab', 'up', '--dir', l.dir], { env: { PATH: process.env.PATH, HOME: process.env.HOME, AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${rotated}` } });
    assert.equal(up.code, 0, up.stderr);
    const on = await l.cli(['agent', 'vm', 'start', 'web01', '--host', 'primary-1', '--lab-dir', l.dir]);
    assert.equal(on.code, 0, on.stderr);
    const critical = await waitFor('the item to turn Critical', async () => {
      const s = (await l.client.getProtectedItem('lab', 'web')).status;
      return s.health === 'Critical' ? s : undefined;
    }, 60_000);
    const text = JSON.stringify(critical);
    assert.match(text, /azure\.authenticationFailed/);
    // The operator's next step is in the hint (the account is named by the enable-time check; the cycle's message names the disk).
    assert.match(text, /rotated key must be updated/);
    assert.ok(!text.includes(AZURITE_DEV_KEY) && !text.includes(rotated), 'a key appears in the item status');

    // The operator gives the policy the new key, nothing else: the spec is the same, and nobody asks for a resync.
    const policy = await l.client.getObject('lab', 'replicationPolicies', 'lab-azure-policy');
    const spec = policy.spec as { azure: Record<string, unknown> };
    const fixedAt = Date.now();
    await l.client.putObject('lab', 'replicationPolicies', 'lab-azure-policy', { ...policy.spec, azure: { ...spec.azure, accountKey: rotated } } as never);
    await waitFor('Normal again with a point after the new key', async () => {
      const s = (await l.client.getProtectedItem('lab', 'web')).status;
      return s.health === 'Normal' && s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > fixedAt ? true : undefined;
    }, 60_000);
    // The policy PUT's job told the source host to re-open the blobs (docs/azure-failover.md §3).
    const last = (await l.client.getProtectedItem('lab', 'web')).status.lastJob;
    assert.deepEqual([last?.type, last?.state], ['protection.update', 'Succeeded']);
    const job = await l.client.getJob('lab', last!.id, { commands: true });
    assert.ok((job.commands ?? []).some((c) => c.type === 'replication.configure' && c.host === 'primary-1'), 'the source host was told');
    assert.ok(!JSON.stringify(job).includes(rotated), 'the key is not in the job');
    // A resync, the operator's older way, still works with the key in force.
    await l.jobSucceeds((await l.client.resyncProtectedItem('lab', 'web')).id, 60_000);
  });
});
