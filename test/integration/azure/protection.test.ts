/**
 * Protection to Azure end to end (docs/azure-failover.md §3), across real
 * processes on loopback: `lifeboat lab up` (vault and agents) and a real
 * Azurite. An `azure` policy carries the storage account key; the primary
 * agent replicates a running lab VM straight into page blobs. After a
 * flushed shutdown and a later cycle, the blob at the latest point equals
 * the source byte for byte. The key never appears in an API answer; a wrong
 * key is refused at enabling with a non-recoverable, clear error.
 */

import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { type ProtectedItemStatus } from '../../../provider/client';
import { AzureBlobReplicaTarget } from '../../../provider/targets/azure-blob';
import { Azurite, AZURITE_ACCOUNT, AZURITE_KEY } from '../../support/azurite';
import { TestLab, waitFor } from '../lab/lab-harness';

const DISK = 4 * 1024 * 1024;
const CONTAINER = 'lab-replicas';

describe('azure: protection of a running lab VM to Azurite (vault + agents as processes)', function () {
  this.timeout(180_000);
  let lab: TestLab | undefined;
  let azurite: Azurite | undefined;

  before(async () => {
    azurite = await Azurite.start();
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '128', '--frequency-ms', '500']);
  });

  after(async () => {
    await lab?.down();
    await azurite?.dispose();
  });

  const policy = (key: string): Record<string, unknown> => ({
    target: 'azure',
    replicationFrequencySeconds: 30,
    recoveryPointRetentionHours: 1,
    azure: { storageAccount: AZURITE_ACCOUNT, container: CONTAINER, endpoint: azurite!.endpoint, accountKey: key },
    associations: [{ source: 'primary' }],
  });

  it('reaches Protected; the page blob at the latest point equals the source after a flushed shutdown; the key is never answered', async () => {
    const l = lab!;
    const put = await l.client.putObject('lab', 'replicationPolicies', 'to-azure', policy(AZURITE_KEY) as never);
    const created = await l.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'to-azure' });
    const job = await l.jobSucceeds(created.status.activeJob!.id);
    assert.deepEqual(job.steps.map((s) => [s.name, s.state]), [
      ['checkPrerequisites', 'Succeeded'], ['createReplica', 'Skipped'], ['enableReplication', 'Succeeded'],
      ['waitForStartTime', 'Skipped'], ['initialReplication', 'Succeeded'], ['finalizeProtection', 'Succeeded'],
    ]);
    const item = await l.client.getProtectedItem('lab', 'web');
    assert.equal(item.status.replicationState, 'Protected');
    assert.equal(item.status.targetHost, undefined);

    const reported = await waitFor('a report with recovery points', async () => {
      const s = (await l.client.getProtectedItem('lab', 'web')).status;
      const points = await l.client.recoveryPoints('lab', 'web');
      return s.rpoSeconds !== undefined && points.length >= 2 ? { s, points } : undefined;
    });
    assert.equal(reported.s.health, 'Normal');

    const off = await l.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'primary-1', '--lab-dir', l.dir]);
    assert.equal(off.code, 0, off.stderr);
    const shutAt = Date.now();
    const last = await waitFor('a cycle after the shutdown', async () => {
      const s: ProtectedItemStatus = (await l.client.getProtectedItem('lab', 'web')).status;
      return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > shutAt ? s : undefined;
    });
    assert.equal(last.replicationState, 'Protected');

    // The secret: never in the policy's answers, the job or its commands.
    const answers = JSON.stringify([put, await l.client.getObject('lab', 'replicationPolicies', 'to-azure'), await l.client.listObjects('lab', 'replicationPolicies'), job]);
    assert.ok(!answers.includes(AZURITE_KEY), 'the account key appears in an API answer');
    assert.match(answers, /"azureCredentials":\{"fingerprint":"[0-9a-f]{16}","set":true\}/);

    await l.down(false);
    const source = await l.sourceDisk('primary-1', 'web01');
    assert.ok(!source.equals(Buffer.alloc(DISK)), 'the guest wrote something');
    const target = await AzureBlobReplicaTarget.open({ connectionString: azurite!.connectionString, container: CONTAINER, createContainer: false });
    try {
      const disk = await target.openDisk({ diskId: `${item.uid}/disk0`, sizeBytes: DISK });
      const points = await disk.listPoints();
      const latest = points.at(-1)!;
      const view = await disk.openView(latest.id);
      const replica = await view.read(0, DISK);
      await view.close();
      await disk.close();
      assert.ok(replica.equals(source), `the blob differs from the source at byte ${firstDifference(replica, source)}`);
    } finally {
      await target.close();
    }
  });
});

describe('azure: a wrong storage account key', function () {
  this.timeout(120_000);
  let lab: TestLab | undefined;
  let azurite: Azurite | undefined;

  before(async () => {
    azurite = await Azurite.start();
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '64', '--frequency-ms', '500']);
  });

  after(async () => {
    await lab?.down();
    await azurite?.dispose();
  });

  it('fails enabling with azure.authenticationFailed (non-recoverable), naming the account and not the key; nothing is left protected', async () => {
    const l = lab!;
    const wrong = randomBytes(64).toString('base64');
    await l.client.putObject('lab', 'replicationPolicies', 'to-azure', {
      target: 'azure', azure: { storageAccount: AZURITE_ACCOUNT, container: CONTAINER, endpoint: azurite!.endpoint, accountKey: wrong }, associations: [{ source: 'primary' }],
    } as never);
    const created = await l.client.putProtectedItem('lab', 'db', { site: 'primary', vm: 'db01', policy: 'to-azure' });
    const job = await l.client.waitForJob('lab', created.status.activeJob!.id, { pollMs: 200, timeoutMs: 60_000 });
    assert.equal(job.state, 'Failed');
    const text = JSON.stringify(job);
    assert.ok(!text.includes(wrong), 'the key appears in the job');
    const err = job.errors.find((e) => e.code === 'azure.authenticationFailed');
    assert.ok(err !== undefined, `no azure.authenticationFailed in ${text}`);
    assert.equal(err.category, 'nonRecoverable');
    assert.match(err.message, new RegExp(AZURITE_ACCOUNT));
    const item = await l.client.getProtectedItem('lab', 'db');
    assert.equal(item.status.replicationState, 'NotProtected');
    assert.ok(!JSON.stringify(item).includes(wrong));
  });
});

function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}
