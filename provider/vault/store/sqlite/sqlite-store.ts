/**
 * The vault store on SQLite through node:sqlite (built into Node 24: no
 * native module to build or ship, and synchronous calls that make every
 * read-modify-write trivially atomic within the single vault process).
 *
 * One file, WAL journal (readers never block the writer, a crash loses no
 * committed transaction), foreign keys on, versioned migrations (a database
 * written by newer code is refused). The file holds secrets (registration
 * keys, CA private keys) and is created with mode 0600.
 *
 * Every method is synchronous and atomic: it either commits entirely or
 * throws and changes nothing. `transaction(fn)` groups several calls.
 */

import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { BugError, NonRecoverableError } from '../../../errors';
import { isState } from '../../../states';
import { canonicalJson } from '../canonical-json';
import type {
  CommandRecord, CommandState, JobRecord, JsonObject, ObjectKind, ObjectRef, RecoveryPointRecord, StoredObject, VaultSecrets,
} from '../records';
import { LATEST_VERSION, MIGRATIONS } from './migrations';

type Row = Record<string, unknown>;

/** Lower-case key of a name: names compare case-insensitively. */
export function keyOf(name: string): string {
  return name.toLowerCase();
}

function str(row: Row, col: string): string {
  const v = row[col];
  if (typeof v !== 'string') throw new BugError('store.corruptRow', `column ${col} is not text`);
  return v;
}

function num(row: Row, col: string): number {
  const v = row[col];
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'number') throw new BugError('store.corruptRow', `column ${col} is not a number`);
  return v;
}

function optNum(row: Row, col: string): number | undefined {
  return row[col] === null || row[col] === undefined ? undefined : num(row, col);
}

function optStr(row: Row, col: string): string | undefined {
  return row[col] === null || row[col] === undefined ? undefined : str(row, col);
}

function json<T>(text: string): T {
  return JSON.parse(text) as T;
}

export interface SqliteStoreOptions {
  /** Path of the database file; created (mode 0600) if missing. `:memory:` for a throw-away store. */
  readonly path: string;
}

/** Result of `putObject`. */
export interface PutResult {
  readonly object: StoredObject;
  /** The object did not exist before. */
  readonly created: boolean;
  /** The spec differed and the generation was bumped (always true when created). */
  readonly changed: boolean;
}

/** Filter of `listJobs`. */
export interface JobFilter {
  readonly target?: ObjectRef;
  readonly states?: readonly string[];
  readonly type?: string;
  /** @default 100 */
  readonly limit?: number;
}

export class SqliteStore {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private depth = 0;

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  /**
   * Open (creating if needed) and migrate. Throws
   * `NonRecoverableError('store.tooNew')` if the database was written by a
   * newer schema version; the file is left untouched then.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    if (options.path !== ':memory:') closeSync(openSync(options.path, 'a', 0o600));
    const db = new DatabaseSync(options.path, { enableForeignKeyConstraints: true, timeout: 5000 });
    const store = new SqliteStore(db);
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      store.migrate();
    } catch (e) {
      db.close();
      throw e;
    }
    return store;
  }

  /** The schema version of the open database. */
  get schemaVersion(): number {
    const row = this.stmt('SELECT MAX(version) AS v FROM schema_migrations').get() as Row;
    return row.v === null ? 0 : num(row, 'v');
  }

  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    const current = this.schemaVersion;
    if (current > LATEST_VERSION) {
      throw new NonRecoverableError('store.tooNew', `the vault database has schema version ${current}; this vault knows up to ${LATEST_VERSION}`, {
        hint: 'run the Lifeboat release that wrote this database (or newer), or restore a backup made by this release',
        details: { databaseVersion: current, codeVersion: LATEST_VERSION },
      });
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      this.transaction(() => {
        for (const sql of m.statements) this.db.exec(sql);
        this.stmt('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      });
    }
  }

  /** Close the database. Idempotent. */
  close(): void {
    if (this.db.isOpen) this.db.close();
    this.statements.clear();
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Run `fn` in one transaction: all of it commits or, if it throws, none.
   * Nested calls join the outer transaction. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T): T {
    if (this.depth > 0) {
      this.depth++;
      try {
        return fn();
      } finally {
        this.depth--;
      }
    }
    this.db.exec('BEGIN IMMEDIATE');
    this.depth = 1;
    try {
      const out = fn();
      if (out instanceof Promise) throw new BugError('store.asyncTransaction', 'a transaction body must be synchronous');
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.depth = 0;
    }
  }

  // Objects ---------------------------------------------------------------

  private toObject(row: Row): StoredObject {
    return {
      vault: str(row, 'vault'),
      kind: str(row, 'kind') as ObjectKind,
      name: str(row, 'name'),
      uid: str(row, 'uid'),
      generation: num(row, 'generation'),
      spec: json<JsonObject>(str(row, 'spec')),
      status: json<JsonObject>(str(row, 'status')),
      createdAt: num(row, 'created_at'),
      updatedAt: num(row, 'updated_at'),
    };
  }

  getObject(vault: string, kind: ObjectKind, name: string): StoredObject | undefined {
    const row = this.stmt('SELECT * FROM objects WHERE vault = ? AND kind = ? AND key = ?').get(keyOf(vault), kind, keyOf(name)) as Row | undefined;
    return row === undefined ? undefined : this.toObject(row);
  }

  /** Objects of a kind in a vault, by key. For kind `vault`, pass `vault = undefined` to list every vault. */
  listObjects(vault: string | undefined, kind: ObjectKind): StoredObject[] {
    const rows = vault === undefined
      ? this.stmt('SELECT * FROM objects WHERE kind = ? ORDER BY key').all(kind)
      : this.stmt('SELECT * FROM objects WHERE vault = ? AND kind = ? ORDER BY key').all(keyOf(vault), kind);
    return (rows as Row[]).map((r) => this.toObject(r));
  }

  /**
   * Create or update an object and replace its outgoing references. The same
   * spec again changes nothing (no generation bump, `changed: false`).
   * `initialStatus` is used only when creating.
   */
  putObject(vault: string, kind: ObjectKind, name: string, spec: JsonObject, refs: readonly ObjectRef[], now: number, initialStatus: JsonObject = {}): PutResult {
    return this.transaction(() => {
      const existing = this.getObject(vault, kind, name);
      const specText = canonicalJson(spec);
      if (existing !== undefined && canonicalJson(existing.spec) === specText) {
        return { object: existing, created: false, changed: false };
      }
      if (existing === undefined) {
        this.stmt(`INSERT INTO objects (vault, kind, key, name, uid, generation, spec, status, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`).run(keyOf(vault), kind, keyOf(name), name, randomUUID(), specText, canonicalJson(initialStatus), now, now);
      } else {
        this.stmt('UPDATE objects SET spec = ?, generation = generation + 1, updated_at = ? WHERE vault = ? AND kind = ? AND key = ?')
          .run(specText, now, keyOf(vault), kind, keyOf(name));
      }
      this.stmt('DELETE FROM refs WHERE vault = ? AND from_kind = ? AND from_key = ?').run(keyOf(vault), kind, keyOf(name));
      for (const r of refs) {
        this.stmt('INSERT OR IGNORE INTO refs (vault, from_kind, from_key, to_kind, to_key) VALUES (?, ?, ?, ?, ?)')
          .run(keyOf(vault), kind, keyOf(name), r.kind, keyOf(r.name));
      }
      return { object: this.getObject(vault, kind, name)!, created: existing === undefined, changed: true };
    });
  }

  /**
   * Replace an object's status with `update(old)`; no generation bump.
   * Returns the new object, or `undefined` if it does not exist.
   */
  updateStatus(vault: string, kind: ObjectKind, name: string, update: (status: JsonObject) => JsonObject, now: number): StoredObject | undefined {
    return this.transaction(() => {
      const existing = this.getObject(vault, kind, name);
      if (existing === undefined) return undefined;
      const next = canonicalJson(update(existing.status));
      if (next === canonicalJson(existing.status)) return existing;
      this.stmt('UPDATE objects SET status = ?, updated_at = ? WHERE vault = ? AND kind = ? AND key = ?')
        .run(next, now, keyOf(vault), kind, keyOf(name));
      return this.getObject(vault, kind, name);
    });
  }

  /** Remove an object, its outgoing references and its recovery points. Returns false if it did not exist. */
  deleteObject(vault: string, kind: ObjectKind, name: string): boolean {
    return this.transaction(() => {
      const r = this.stmt('DELETE FROM objects WHERE vault = ? AND kind = ? AND key = ?').run(keyOf(vault), kind, keyOf(name));
      this.stmt('DELETE FROM refs WHERE vault = ? AND from_kind = ? AND from_key = ?').run(keyOf(vault), kind, keyOf(name));
      if (kind === 'protectedItem') this.stmt('DELETE FROM recovery_points WHERE vault = ? AND item_key = ?').run(keyOf(vault), keyOf(name));
      if (kind === 'host') this.stmt('DELETE FROM agent_credentials WHERE vault = ? AND host_key = ?').run(keyOf(vault), keyOf(name));
      return Number(r.changes) > 0;
    });
  }

  /** Objects that refer to the given one (who keeps it "in use"), by kind then name. */
  referrers(vault: string, kind: ObjectKind, name: string): ObjectRef[] {
    const rows = this.stmt(`SELECT o.kind AS kind, o.name AS name FROM refs r
      JOIN objects o ON o.vault = r.vault AND o.kind = r.from_kind AND o.key = r.from_key
      WHERE r.vault = ? AND r.to_kind = ? AND r.to_key = ? ORDER BY o.kind, o.key`).all(keyOf(vault), kind, keyOf(name)) as Row[];
    return rows.map((r) => ({ kind: str(r, 'kind') as ObjectKind, name: str(r, 'name') }));
  }

  /** Number of objects of any kind in a vault, the vault itself excluded. */
  countVaultContents(vault: string): number {
    const row = this.stmt("SELECT COUNT(*) AS n FROM objects WHERE vault = ? AND kind <> 'vault'").get(keyOf(vault)) as Row;
    return num(row, 'n');
  }

  // Vault secrets ------------------------------------------------------------

  getVaultSecrets(vault: string): VaultSecrets | undefined {
    const row = this.stmt('SELECT * FROM vault_secrets WHERE vault = ?').get(keyOf(vault)) as Row | undefined;
    if (row === undefined) return undefined;
    return {
      registrationKey: str(row, 'registration_key'),
      registrationKeyRotatedAt: num(row, 'registration_key_rotated_at'),
      caPrivateKeyPem: str(row, 'ca_private_key_pem'),
      caCertificatePem: str(row, 'ca_certificate_pem'),
    };
  }

  /** Create or replace a vault's secrets. */
  putVaultSecrets(vault: string, s: VaultSecrets): void {
    this.stmt(`INSERT INTO vault_secrets (vault, registration_key, registration_key_rotated_at, ca_private_key_pem, ca_certificate_pem)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT (vault) DO UPDATE SET registration_key = excluded.registration_key,
      registration_key_rotated_at = excluded.registration_key_rotated_at, ca_private_key_pem = excluded.ca_private_key_pem,
      ca_certificate_pem = excluded.ca_certificate_pem`)
      .run(keyOf(vault), s.registrationKey, s.registrationKeyRotatedAt, s.caPrivateKeyPem, s.caCertificatePem);
  }

  deleteVaultSecrets(vault: string): void {
    this.stmt('DELETE FROM vault_secrets WHERE vault = ?').run(keyOf(vault));
  }

  // Agent credentials -----------------------------------------------------------

  /** Record the SHA-256 (hex) of a host's agent token, replacing any previous one. */
  putAgentCredential(vault: string, host: string, tokenSha256: string, now: number): void {
    this.stmt(`INSERT INTO agent_credentials (vault, host_key, token_sha256, issued_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (vault, host_key) DO UPDATE SET token_sha256 = excluded.token_sha256, issued_at = excluded.issued_at`)
      .run(keyOf(vault), keyOf(host), tokenSha256, now);
  }

  getAgentCredential(vault: string, host: string): string | undefined {
    const row = this.stmt('SELECT token_sha256 FROM agent_credentials WHERE vault = ? AND host_key = ?').get(keyOf(vault), keyOf(host)) as Row | undefined;
    return row === undefined ? undefined : str(row, 'token_sha256');
  }

  // Jobs -----------------------------------------------------------------------

  private toJob(row: Row): JobRecord {
    const state = str(row, 'state');
    if (!isState('job', state)) throw new BugError('store.corruptRow', `job ${str(row, 'id')} has unknown state ${state}`);
    return { ...json<Omit<JobRecord, 'state'>>(str(row, 'body')), state };
  }

  /** Insert a new job. Throws if the id exists. */
  insertJob(job: JobRecord): void {
    this.stmt(`INSERT INTO jobs (id, vault, type, target_kind, target_key, state, body, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(job.id, job.vault, job.type, job.target.kind, keyOf(job.target.name), job.state,
      JSON.stringify(job), job.createdAt, job.updatedAt);
  }

  /** Replace a job's record (same id). Throws `BugError` if the job does not exist. */
  updateJob(job: JobRecord): void {
    const r = this.stmt('UPDATE jobs SET state = ?, body = ?, updated_at = ? WHERE id = ?').run(job.state, JSON.stringify(job), job.updatedAt, job.id);
    if (Number(r.changes) === 0) throw new BugError('store.jobMissing', `job ${job.id} does not exist`);
  }

  getJob(id: string): JobRecord | undefined {
    const row = this.stmt('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : this.toJob(row);
  }

  /** Jobs of a vault, newest first. */
  listJobs(vault: string, filter: JobFilter = {}): JobRecord[] {
    const where = ['vault = ?'];
    const params: SQLInputValue[] = [keyOf(vault)];
    if (filter.target !== undefined) {
      where.push('target_kind = ? AND target_key = ?');
      params.push(filter.target.kind, keyOf(filter.target.name));
    }
    if (filter.type !== undefined) {
      where.push('type = ?');
      params.push(filter.type);
    }
    if (filter.states !== undefined && filter.states.length > 0) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
      params.push(...filter.states);
    }
    params.push(filter.limit ?? 100);
    const rows = this.db.prepare(`SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`).all(...params) as Row[];
    return rows.map((r) => this.toJob(r));
  }

  /** Every job in one of `states`, oldest first, across vaults (the engine resumes them at start). */
  jobsInStates(states: readonly string[]): JobRecord[] {
    const rows = this.db.prepare(`SELECT * FROM jobs WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY seq`).all(...states) as Row[];
    return rows.map((r) => this.toJob(r));
  }

  // Commands --------------------------------------------------------------------

  private toCommand(row: Row): CommandRecord {
    const jobId = optStr(row, 'job_id');
    const message = optStr(row, 'message');
    const result = optStr(row, 'result');
    const error = optStr(row, 'error');
    const lease = optNum(row, 'lease_expires_at');
    return {
      id: str(row, 'id'),
      vault: str(row, 'vault'),
      host: str(row, 'host_key'),
      ...(jobId === undefined ? {} : { jobId }),
      type: str(row, 'type'),
      payload: json<JsonObject>(str(row, 'payload')),
      state: str(row, 'state') as CommandState,
      progress: num(row, 'progress'),
      ...(message === undefined ? {} : { message }),
      ...(result === undefined ? {} : { result: json<JsonObject>(result) }),
      ...(error === undefined ? {} : { error: json<JsonObject>(error) }),
      deliveries: num(row, 'deliveries'),
      ...(lease === undefined ? {} : { leaseExpiresAt: lease }),
      createdAt: num(row, 'created_at'),
      updatedAt: num(row, 'updated_at'),
    };
  }

  insertCommand(c: CommandRecord): void {
    this.stmt(`INSERT INTO commands (id, vault, host_key, job_id, type, payload, state, progress, message, result, error, deliveries,
      lease_expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(c.id, c.vault, keyOf(c.host), c.jobId ?? null, c.type, JSON.stringify(c.payload), c.state, c.progress, c.message ?? null,
        c.result === undefined ? null : JSON.stringify(c.result), c.error === undefined ? null : JSON.stringify(c.error), c.deliveries,
        c.leaseExpiresAt ?? null, c.createdAt, c.updatedAt);
  }

  /** Replace a command's mutable fields. */
  updateCommand(c: CommandRecord): void {
    this.stmt(`UPDATE commands SET state = ?, progress = ?, message = ?, result = ?, error = ?, deliveries = ?, lease_expires_at = ?,
      updated_at = ? WHERE id = ?`).run(c.state, c.progress, c.message ?? null, c.result === undefined ? null : JSON.stringify(c.result),
      c.error === undefined ? null : JSON.stringify(c.error), c.deliveries, c.leaseExpiresAt ?? null, c.updatedAt, c.id);
  }

  getCommand(id: string): CommandRecord | undefined {
    const row = this.stmt('SELECT * FROM commands WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : this.toCommand(row);
  }

  /** Commands of a host in the given states, oldest first. */
  commandsOfHost(vault: string, host: string, states: readonly CommandState[]): CommandRecord[] {
    const rows = this.db.prepare(`SELECT * FROM commands WHERE vault = ? AND host_key = ? AND state IN (${states.map(() => '?').join(', ')}) ORDER BY seq`)
      .all(keyOf(vault), keyOf(host), ...states) as Row[];
    return rows.map((r) => this.toCommand(r));
  }

  commandsOfJob(jobId: string): CommandRecord[] {
    return (this.stmt('SELECT * FROM commands WHERE job_id = ? ORDER BY seq').all(jobId) as Row[]).map((r) => this.toCommand(r));
  }

  // Recovery points ----------------------------------------------------------------

  /** Replace the recovery points of an item. */
  replaceRecoveryPoints(vault: string, item: string, points: readonly RecoveryPointRecord[]): void {
    this.transaction(() => {
      this.stmt('DELETE FROM recovery_points WHERE vault = ? AND item_key = ?').run(keyOf(vault), keyOf(item));
      for (const p of points) {
        this.stmt('INSERT OR REPLACE INTO recovery_points (vault, item_key, id, time, kind) VALUES (?, ?, ?, ?, ?)')
          .run(keyOf(vault), keyOf(item), p.id, p.time, p.kind);
      }
    });
  }

  /** Recovery points of an item, oldest first. */
  recoveryPoints(vault: string, item: string): RecoveryPointRecord[] {
    const rows = this.stmt('SELECT id, time, kind FROM recovery_points WHERE vault = ? AND item_key = ? ORDER BY time, id').all(keyOf(vault), keyOf(item)) as Row[];
    return rows.map((r) => ({ id: str(r, 'id'), time: num(r, 'time'), kind: str(r, 'kind') as RecoveryPointRecord['kind'] }));
  }
}
