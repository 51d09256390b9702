/**
 * Versioned migrations of the vault database. Each migration is numbered;
 * `schema_migrations` records which ran and when. A migration runs in one
 * transaction with its record, so a crash leaves the database either before
 * or after it. Migrations are append-only: a released one is never edited.
 */

/** One step of the database schema. */
export interface Migration {
  /** 1, 2, 3, …; contiguous. */
  readonly version: number;
  /** What it does, recorded with it. */
  readonly name: string;
  /** SQL statements, run in order. */
  readonly statements: readonly string[];
}

/** Every migration, in order. The database's version is the highest applied. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'objects, references, vault secrets, agent credentials, jobs, commands, recovery points',
    statements: [
      // Every object of DESIGN.md §4 but jobs: addressed by (vault, kind, key), key = lower-case name.
      `CREATE TABLE objects (
        vault TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        uid TEXT NOT NULL UNIQUE,
        generation INTEGER NOT NULL,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (vault, kind, key)
      ) WITHOUT ROWID`,
      // Who refers to whom, rewritten with each PUT; answers "is it in use" for DELETE.
      `CREATE TABLE refs (
        vault TEXT NOT NULL,
        from_kind TEXT NOT NULL,
        from_key TEXT NOT NULL,
        to_kind TEXT NOT NULL,
        to_key TEXT NOT NULL,
        PRIMARY KEY (vault, from_kind, from_key, to_kind, to_key)
      ) WITHOUT ROWID`,
      'CREATE INDEX refs_to ON refs (vault, to_kind, to_key)',
      `CREATE TABLE vault_secrets (
        vault TEXT PRIMARY KEY,
        registration_key TEXT NOT NULL,
        registration_key_rotated_at INTEGER NOT NULL,
        ca_private_key_pem TEXT NOT NULL,
        ca_certificate_pem TEXT NOT NULL
      )`,
      `CREATE TABLE agent_credentials (
        vault TEXT NOT NULL,
        host_key TEXT NOT NULL,
        token_sha256 TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        PRIMARY KEY (vault, host_key)
      )`,
      `CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        vault TEXT NOT NULL,
        type TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        target_key TEXT NOT NULL,
        state TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`,
      'CREATE INDEX jobs_by_vault ON jobs (vault, seq)',
      'CREATE INDEX jobs_by_target ON jobs (vault, target_kind, target_key, seq)',
      'CREATE INDEX jobs_by_state ON jobs (state)',
      `CREATE TABLE commands (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        vault TEXT NOT NULL,
        host_key TEXT NOT NULL,
        job_id TEXT,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        progress REAL NOT NULL,
        message TEXT,
        result TEXT,
        error TEXT,
        deliveries INTEGER NOT NULL,
        lease_expires_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`,
      'CREATE INDEX commands_by_host ON commands (vault, host_key, state, seq)',
      'CREATE INDEX commands_by_job ON commands (job_id)',
      `CREATE TABLE recovery_points (
        vault TEXT NOT NULL,
        item_key TEXT NOT NULL,
        id TEXT NOT NULL,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        PRIMARY KEY (vault, item_key, id)
      ) WITHOUT ROWID`,
    ],
  },
];

/** The schema version this code writes. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
