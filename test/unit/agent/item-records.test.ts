import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  disksOf, hostTargetOf, itemDir, loadRecords, policyOf, removeRecord, replicaDiskId, saveRecord, type SourceRecord, str,
} from '../../../provider/agent/item-records';
import { LifeboatError } from '../../../provider/errors';

const policy = {
  target: 'secondary-site', replicationFrequencySeconds: 30, recoveryPointRetentionHours: 1, appConsistentSnapshotFrequencyHours: 0,
  initialReplication: { method: 'online' }, compression: false, deleteReplicaOnDisable: false,
  resync: { automatic: true, window: { start: '18:30', end: '07:30' } }, offHours: { start: '18:00', end: '07:00' },
} as const;

function invalid(path: string): (e: unknown) => boolean {
  return (e: unknown) => LifeboatError.isInstance(e) && e.code === 'agent.badPayload' && e.where?.path === path;
}

describe('agent/item-records', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-records-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('saves, lists and removes records by role; removing a source record removes its folder', async () => {
    const src: SourceRecord = {
      version: 1, role: 'source', item: 'web', itemUid: '0b0e6f3c-1111-4222-8333-944455556666', vm: 'web01', disks: [{ id: 'disk0', sizeBytes: 4096 }],
      policy, createdAt: '2026-01-01T00:00:00.000Z', target: { kind: 'host', host: 'dr1', address: '127.0.0.1', port: 4000, serverName: 'dr1' }, timeZone: 'UTC', started: false,
    };
    await saveRecord(dir, src);
    await saveRecord(dir, { ...src, role: 'replica', sourceHost: 'hq1', targetVm: {}, networkMappings: [] } as never);
    await mkdir(itemDir(dir, src.itemUid));
    await saveRecord(dir, { ...src, started: true });
    const all = await loadRecords(dir);
    assert.deepEqual(all.map((r) => r.role).sort(), ['replica', 'source']);
    assert.equal((all.find((r) => r.role === 'source') as SourceRecord).started, true);
    await removeRecord(dir, 'source', src.itemUid);
    await removeRecord(dir, 'source', src.itemUid);
    assert.deepEqual((await loadRecords(dir)).map((r) => r.role), ['replica']);
    assert.deepEqual(await readdir(dir), [`${src.itemUid}.replica.json`]);
    assert.equal(replicaDiskId(src.itemUid, 'disk0'), `${src.itemUid}/disk0`);
  });

  it('refuses a corrupt record, naming the file', async () => {
    await writeFile(path.join(dir, 'u.source.json'), '{"version": 7}');
    await assert.rejects(loadRecords(dir), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'agent.recordCorrupt' && e.where?.file === path.join(dir, 'u.source.json'));
    assert.deepEqual(await loadRecords(path.join(dir, 'missing')), []);
  });

  it('checks command payloads and names the bad field', () => {
    assert.throws(() => str({ item: '' }, 'item'), invalid('/item'));
    assert.throws(() => disksOf({ disks: [] }), invalid('/disks'));
    assert.throws(() => disksOf({ disks: [{ id: 'd', sizeBytes: -1 }] }), invalid('/disks/0/sizeBytes'));
    assert.deepEqual(disksOf({ disks: [{ id: 'd', sizeBytes: 512 }] }), [{ id: 'd', sizeBytes: 512 }]);
    assert.throws(() => policyOf({ policy: { recoveryPointRetentionHours: 1 } }), invalid('/policy/replicationFrequencySeconds'));
    assert.throws(() => hostTargetOf({ target: { kind: 'host', host: 'dr1', address: '127.0.0.1', port: 70000 } }), invalid('/target/port'));
    assert.deepEqual(hostTargetOf({ target: { kind: 'azure', storageAccount: 'x' } }), { kind: 'azure', storageAccount: 'x', container: 'lifeboat-replicas' });
    assert.throws(() => hostTargetOf({ target: { kind: 'azure' } }), invalid('/target/storageAccount'));
    assert.deepEqual(hostTargetOf({ target: { kind: 'tape' } }), { kind: 'tape' });
    assert.deepEqual(hostTargetOf({ target: { kind: 'host', host: 'dr1', address: '10.0.0.5', port: 45001, serverName: null } }),
      { kind: 'host', host: 'dr1', address: '10.0.0.5', port: 45001, serverName: 'dr1' });
    assert.throws(() => itemDir(dir, '../escape'), invalid('/itemUid'));
  });
});
