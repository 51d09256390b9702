import { strict as assert } from 'node:assert';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { LifeboatError } from '../../../../../provider/errors';
import { LATEST_VERSION, MIGRATIONS } from '../../../../../provider/vault/store/sqlite/migrations';
import { SqliteStore } from '../../../../../provider/vault/store/sqlite/sqlite-store';
import type { JobRecord } from '../../../../../provider/vault/store/records';

describe('vault/store/sqlite/sqlite-store', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-store-'));
    file = path.join(dir, 'vault.db');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates one file (mode 0600) in WAL mode with every migration recorded', async () => {
    const store = SqliteStore.open({ path: file });
    assert.equal(store.schemaVersion, LATEST_VERSION);
    store.close();
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const db = new DatabaseSync(file, { readOnly: true });
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as { version: number; name: string }[];
    assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
    db.close();
  });

  it('reopens without migrating again, and refuses a database from a newer release', () => {
    SqliteStore.open({ path: file }).close();
    SqliteStore.open({ path: file }).close();
    const db = new DatabaseSync(file);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(LATEST_VERSION + 1, 'from the future', 0);
    db.close();
    assert.throws(() => SqliteStore.open({ path: file }), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'store.tooNew' && e.category === 'nonRecoverable');
    const check = new DatabaseSync(file, { readOnly: true });
    assert.equal((check.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v, LATEST_VERSION + 1, 'left untouched');
    check.close();
  });

  it('puts objects idempotently: the same spec keeps the generation, a change bumps it', () => {
    const store = SqliteStore.open({ path: file });
    const a = store.putObject('v', 'site', 'HQ', { kind: 'hyperv-site', hosts: ['a'] }, [], 1000);
    assert.deepEqual([a.created, a.changed, a.object.generation], [true, true, 1]);
    // Same content, other key order, other name case: nothing changes.
    const b = store.putObject('V', 'site', 'hq', { hosts: ['a'], kind: 'hyperv-site' }, [], 2000);
    assert.deepEqual([b.created, b.changed, b.object.generation, b.object.updatedAt, b.object.name], [false, false, 1, 1000, 'HQ']);
    const c = store.putObject('v', 'site', 'hq', { kind: 'hyperv-site', hosts: ['a', 'b'] }, [], 3000);
    assert.deepEqual([c.created, c.changed, c.object.generation, c.object.updatedAt], [false, true, 2, 3000]);
    assert.equal(c.object.uid, a.object.uid);
    // Status changes do not bump the generation.
    const d = store.updateStatus('v', 'site', 'hq', (s) => ({ ...s, seen: true }), 4000)!;
    assert.equal(d.generation, 2);
    assert.deepEqual(d.status, { seen: true });
    store.close();
  });

  it('keeps references and answers who uses an object', () => {
    const store = SqliteStore.open({ path: file });
    store.putObject('v', 'site', 'hq', { kind: 'hyperv-site' }, [], 1);
    store.putObject('v', 'replicationPolicy', 'gold', { target: 'secondary-site' }, [{ kind: 'site', name: 'HQ' }], 1);
    store.putObject('v', 'protectedItem', 'web01', { policy: 'gold' }, [{ kind: 'replicationPolicy', name: 'gold' }, { kind: 'site', name: 'hq' }], 1);
    assert.deepEqual(store.referrers('v', 'site', 'hq'), [{ kind: 'protectedItem', name: 'web01' }, { kind: 'replicationPolicy', name: 'gold' }]);
    // A PUT replaces the outgoing references.
    store.putObject('v', 'protectedItem', 'web01', { policy: 'gold', x: 1 }, [{ kind: 'replicationPolicy', name: 'gold' }], 2);
    assert.deepEqual(store.referrers('v', 'site', 'hq'), [{ kind: 'replicationPolicy', name: 'gold' }]);
    store.deleteObject('v', 'protectedItem', 'web01');
    assert.deepEqual(store.referrers('v', 'replicationPolicy', 'gold'), []);
    // Other vaults are separate.
    assert.deepEqual(store.referrers('w', 'site', 'hq'), []);
    store.close();
  });

  it('rolls back every write of a failed transaction, and survives a reopen after commit', () => {
    const store = SqliteStore.open({ path: file });
    assert.throws(() => store.transaction(() => {
      store.putObject('v', 'site', 'a', { kind: 'hyperv-site' }, [], 1);
      store.putObject('v', 'site', 'b', { kind: 'hyperv-site' }, [], 1);
      throw new Error('boom');
    }), /boom/);
    assert.deepEqual(store.listObjects('v', 'site'), []);
    store.transaction(() => {
      store.putObject('v', 'site', 'a', { kind: 'hyperv-site' }, [], 1);
      store.putVaultSecrets('v', { registrationKey: 'k', registrationKeyRotatedAt: 1, caPrivateKeyPem: 'p', caCertificatePem: 'c' });
    });
    store.close();
    const again = SqliteStore.open({ path: file });
    assert.equal(again.listObjects('v', 'site').length, 1);
    assert.equal(again.getVaultSecrets('V')?.registrationKey, 'k');
    again.close();
  });

  it('stores jobs and commands and finds them by state, target and host', () => {
    const store = SqliteStore.open({ path: file });
    const job: JobRecord = {
      id: 'job-1', vault: 'v', type: 'protection.enable', target: { kind: 'protectedItem', name: 'Web01' }, state: 'NotStarted',
      createdAt: 1, updatedAt: 1, progress: 0, steps: [{ name: 's', title: 'S', state: 'NotStarted', progress: 0, attempts: 0 }],
      errors: [], input: {}, data: {}, cancelRequested: false,
    };
    store.insertJob(job);
    store.insertJob({ ...job, id: 'job-2', state: 'Succeeded', target: { kind: 'protectedItem', name: 'db01' } });
    assert.deepEqual(store.jobsInStates(['NotStarted', 'InProgress']).map((j) => j.id), ['job-1']);
    assert.deepEqual(store.listJobs('v', { target: { kind: 'protectedItem', name: 'web01' } }).map((j) => j.id), ['job-1']);
    assert.deepEqual(store.listJobs('v').map((j) => j.id), ['job-2', 'job-1'], 'newest first');
    store.updateJob({ ...job, state: 'InProgress', data: { k: 'x' }, updatedAt: 5 });
    assert.equal(store.getJob('job-1')?.state, 'InProgress');
    assert.deepEqual(store.getJob('job-1')?.data, { k: 'x' });
    store.insertCommand({ id: 'c1', vault: 'v', host: 'HV01', jobId: 'job-1', type: 't', payload: { a: 1 }, state: 'Pending', progress: 0, deliveries: 0, createdAt: 1, updatedAt: 1 });
    assert.deepEqual(store.commandsOfHost('v', 'hv01', ['Pending']).map((c) => c.id), ['c1']);
    assert.deepEqual(store.commandsOfJob('job-1')[0]?.payload, { a: 1 });
    store.close();
  });
});
