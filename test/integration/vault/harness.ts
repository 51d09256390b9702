/**
 * A real vault on loopback for the integration tests, an HTTP helper, and a
 * scripted agent that registers, heartbeats, long-polls and reports through
 * the public API exactly as the host agent will.
 */

import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { readFileSync } from 'node:fs';
import { createVaultServer, type VaultServer, type VaultServerOptions } from '../../../provider/vault/server';

export interface Problem {
  readonly path: string;
  readonly message: string;
  readonly allowed?: unknown[];
  readonly expected?: string;
}

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly hint?: string;
    readonly details: Problem[];
    readonly usedBy?: { kind: string; name: string }[];
    readonly job?: string;
  };
}

export interface ObjectBody {
  readonly kind: string;
  readonly vault: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly spec: Record<string, unknown>;
  readonly status: Record<string, unknown> & {
    replicationState?: string;
    health?: string;
    connectionState?: string;
    issues?: { code: string; severity: string; message: string }[];
    activeJob?: { id: string; type: string };
    lastJob?: { id: string; type: string; state: string };
    sourceHost?: string;
    targetHost?: string;
    initialReplicationPercent?: number;
    rpoSeconds?: number;
  };
}

export interface JobBody {
  readonly id: string;
  readonly type: string;
  readonly state: string;
  readonly progress: number;
  readonly message?: string;
  readonly target: { kind: string; name: string };
  readonly steps: { name: string; state: string; progress: number; message?: string; attempts: number }[];
  readonly errors: { code: string; category: string; message: string; hint?: string; step?: string }[];
  readonly retry?: { step: string; failures: number; nextAttemptAt: string };
  readonly stuck?: { reason: string; hint: string };
}

export interface CommandBody {
  readonly id: string;
  readonly type: string;
  readonly jobId?: string;
  readonly payload: Record<string, unknown>;
  readonly deliveries: number;
}

export interface RegistrationBody {
  readonly hostId: string;
  readonly uid: string;
  readonly agentToken: string;
  readonly certificate: string;
  readonly caCertificate: string;
  readonly heartbeatIntervalSeconds: number;
}

export interface Response<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export interface CallOptions {
  /** Bearer token; `null` sends none. @default the admin token */
  readonly token?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  /** Send this text as the body instead of JSON. */
  readonly raw?: string;
}

export class Harness {
  server: VaultServer;
  readonly dir: string;
  readonly token: string;
  private readonly options: Omit<VaultServerOptions, 'dataDir'>;

  private constructor(server: VaultServer, dir: string, options: Omit<VaultServerOptions, 'dataDir'>) {
    this.server = server;
    this.dir = dir;
    this.options = options;
    this.token = readFileSync(server.adminTokenFile, 'utf8').trim();
  }

  /** A new vault in a fresh temporary folder. */
  static async start(options: Omit<VaultServerOptions, 'dataDir'> = {}): Promise<Harness> {
    const dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-vault-'));
    const quiet = { log: () => undefined, ...options };
    return new Harness(await createVaultServer({ dataDir: dir, ...quiet }), dir, quiet);
  }

  get url(): string {
    return this.server.url;
  }

  /** Close and start again on the same folder (a vault restart). */
  async restart(options: Omit<VaultServerOptions, 'dataDir'> = this.options): Promise<void> {
    await this.server.close();
    this.server = await createVaultServer({ dataDir: this.dir, log: () => undefined, ...options });
  }

  async close(): Promise<void> {
    await this.server.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  async api<T = unknown>(method: string, urlPath: string, body?: unknown, options: CallOptions = {}): Promise<Response<T>> {
    const token = options.token === undefined ? this.token : options.token;
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const text = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    if (text !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.url}${urlPath}`, { method, headers, ...(text === undefined ? {} : { body: text }) });
    const raw = await res.text();
    return { status: res.status, body: (raw === '' ? undefined : JSON.parse(raw)) as T, headers: res.headers };
  }

  /**
   * Every row of every table of the vault database, read through a separate
   * read-only connection: what "nothing changed" is checked against.
   */
  databaseSnapshot(): string {
    const db = new DatabaseSync(this.server.databasePath, { readOnly: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
      return JSON.stringify(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).all()]));
    } finally {
      db.close();
    }
  }

  /** Create a vault with two Hyper-V sites and a secondary-site policy hq → dr. */
  async seedTopology(vault = 'contoso', policy: Record<string, unknown> = {}, settings: Record<string, unknown> = {}): Promise<void> {
    await this.ok('PUT', `/v1/vaults/${vault}`, settings);
    await this.ok('PUT', `/v1/vaults/${vault}/sites/hq`, { kind: 'hyperv-site' });
    await this.ok('PUT', `/v1/vaults/${vault}/sites/dr`, { kind: 'hyperv-site' });
    await this.ok('PUT', `/v1/vaults/${vault}/replicationPolicies/gold`, { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }], ...policy });
  }

  /** A call that must succeed (2xx); returns the body. */
  async ok<T = unknown>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const r = await this.api<T>(method, urlPath, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${urlPath} → ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async registrationKey(vault = 'contoso'): Promise<string> {
    return (await this.ok<{ registrationKey: string }>('GET', `/v1/vaults/${vault}/registrationKey`)).registrationKey;
  }
}

/** The text an agent signs at registration (docs/vault-api.md). */
export function proofText(vault: string, host: string, site: string): string {
  return `lifeboat-register/v1\n${vault.toLowerCase()}\n${host.toLowerCase()}\n${site.toLowerCase()}`;
}

/** An agent driven step by step by a test, through the public API only. */
export class ScriptedAgent {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  token = '';
  registration: RegistrationBody | undefined;

  constructor(readonly h: Harness, readonly vault: string, readonly name: string, readonly site: string) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.publicKey = pair.publicKey;
    this.privateKey = pair.privateKey;
  }

  get privateKeyPem(): string {
    return this.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** The registration body, signed. */
  request(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      hostname: this.name,
      site: this.site,
      publicKey: this.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      proof: sign('sha256', Buffer.from(proofText(this.vault, this.name, this.site)), this.privateKey).toString('base64'),
      addresses: ['127.0.0.1'],
      agentVersion: '0.1.0-test',
      ...extra,
    };
  }

  async register(key: string, extra: Record<string, unknown> = {}): Promise<Response<RegistrationBody & ErrorBody>> {
    const r = await this.h.api<RegistrationBody & ErrorBody>('POST', `/v1/vaults/${this.vault}/registrations`, this.request(extra), { token: key });
    if (r.status === 201) {
      this.registration = r.body;
      this.token = r.body.agentToken;
    }
    return r;
  }

  private base(): string {
    return `/v1/vaults/${this.vault}/hosts/${this.name}`;
  }

  async heartbeat(body: Record<string, unknown> = {}): Promise<Response<Record<string, unknown>>> {
    return this.h.api('POST', `${this.base()}/heartbeat`, body, { token: this.token });
  }

  /** Heartbeat with one running VM (disks of `sizes` bytes) and/or replica room and an endpoint. */
  async announce(options: { vms?: { name: string; sizes: number[] }[]; freeBytes?: number; port?: number }): Promise<void> {
    const r = await this.heartbeat({
      inventory: { vms: (options.vms ?? []).map((v) => ({ name: v.name, powerState: 'Running', disks: v.sizes.map((s, i) => ({ id: `disk-${i}`, sizeBytes: s })) })) },
      ...(options.freeBytes === undefined ? {} : { storage: { freeBytes: options.freeBytes } }),
      ...(options.port === undefined ? {} : { replicationEndpoint: { address: '127.0.0.1', port: options.port } }),
    });
    if (r.status !== 200) throw new Error(`heartbeat → ${r.status}: ${JSON.stringify(r.body)}`);
  }

  async poll(wait = 0): Promise<CommandBody[]> {
    const r = await this.h.api<{ commands: CommandBody[] }>('GET', `${this.base()}/commands?wait=${wait}`, undefined, { token: this.token });
    if (r.status !== 200) throw new Error(`poll → ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body.commands;
  }

  /** The next command: a long-poll that returns as soon as the vault queues one. */
  async next(type?: string): Promise<CommandBody> {
    for (;;) {
      const cmds = await this.poll(30);
      if (cmds.length > 0) {
        const c = cmds[0]!;
        if (type !== undefined && c.type !== type) throw new Error(`expected a ${type} command, got ${c.type}`);
        return c;
      }
    }
  }

  async report(id: string, update: Record<string, unknown>): Promise<Response<{ cancelRequested?: boolean } & ErrorBody>> {
    return this.h.api('POST', `${this.base()}/commands/${id}`, update, { token: this.token });
  }

  async succeed(c: CommandBody, result: Record<string, unknown> = {}): Promise<void> {
    const r = await this.report(c.id, { state: 'Succeeded', result });
    if (r.status !== 200) throw new Error(`report → ${r.status}: ${JSON.stringify(r.body)}`);
  }

  async reportItems(items: Record<string, unknown>[]): Promise<Response<{ accepted: string[]; refused: { item: string; code: string }[] }>> {
    return this.h.api('POST', `${this.base()}/reports`, { items }, { token: this.token });
  }
}
