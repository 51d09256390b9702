/**
 * `createVaultServer`: the vault process in one call — store, job engine,
 * heartbeat monitor, automatic resync scheduler and the HTTP API on loopback. Used by `lifeboat vault
 * serve` (through main.ts), by the lab and by tests.
 */

import { SecretBox } from './control/azure-credentials';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { systemClock, type Clock } from '../clock';
import { SECOND } from '../units';
import { loadOrCreateAdminToken } from './api/admin-token';
import { dispatch } from './api/dispatch';
import { compileRoute, type Route, type VaultApp } from './api/route';
import { agentRoutes, jobRoutes, objectRoutes, systemRoutes } from './api/routes';
import { HeartbeatMonitor } from './control/hosts';
import { Notifier } from './control/notifier';
import { ResyncScheduler } from './control/resync-scheduler';
import type { VaultLogger, VaultServices } from './control/services';
import { JobEngine } from './jobs/engine';
import { JOB_HANDLERS } from './jobs/job-types';
import { SqliteStore } from './store/sqlite/sqlite-store';
import { SchemaRegistry } from '../validation/schemas';

export interface VaultServerOptions {
  /** Folder of the vault's state: `vault.db` (SQLite) and `admin-token`. Created (mode 0700) if missing. */
  readonly dataDir: string;
  /** Address to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Admin token file. @default `<dataDir>/admin-token` */
  readonly adminTokenFile?: string;
  /** Source of uniform numbers for retry jitter. @default Math.random */
  readonly random?: () => number;
  /** A delivered command not acknowledged within this is delivered again. @default 60 s */
  readonly commandLeaseMs?: number;
  /** Longest long-poll. @default 60 s */
  readonly maxLongPollMs?: number;
  /** How often a job waiting on a command re-reads the store without a wake-up. @default 30 s */
  readonly recheckMs?: number;
  /** How often host heartbeats are checked. @default 5 s */
  readonly heartbeatCheckMs?: number;
  /** Largest request body. @default 1 MiB */
  readonly maxBodyBytes?: number;
  /** @default lines on stderr */
  readonly log?: VaultLogger;
}

export interface VaultServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly adminTokenFile: string;
  readonly databasePath: string;
  /**
   * Stop: no new requests, long-polls and running job steps are interrupted
   * without changing what is persisted (jobs resume at the next start), then
   * the database is closed. Idempotent.
   */
  close(): Promise<void>;
  /** Resolves when the job is not running in this process (finished, or stopped). For tests and tools. */
  jobSettled(id: string): Promise<void>;
}

async function packageVersion(): Promise<string> {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'lifeboat' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // keep looking
    }
    if (path.dirname(dir) === dir) return '0.0.0';
  }
}

const stderrLogger: VaultLogger = (level, message) => {
  process.stderr.write(`[vault] ${new Date().toISOString()} ${level}: ${message}\n`);
};

/**
 * Open (or create) the vault in `dataDir` and serve its API. The admin
 * token is created at the first start (mode 0600). Jobs that were running
 * when the vault last stopped resume. Throws `NonRecoverableError` if the
 * database is newer than this code or the token file is insecure; nothing is
 * listening then.
 */
export async function createVaultServer(options: VaultServerOptions): Promise<VaultServer> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const adminTokenFile = options.adminTokenFile ?? path.join(options.dataDir, 'admin-token');
  const databasePath = path.join(options.dataDir, 'vault.db');
  const adminToken = await loadOrCreateAdminToken(adminTokenFile);
  const registry = SchemaRegistry.load();
  const store = SqliteStore.open({ path: databasePath });
  const clock = options.clock ?? systemClock;
  const services: VaultServices = {
    store,
    clock,
    notifier: new Notifier(),
    random: options.random ?? Math.random,
    timings: {
      commandLeaseMs: options.commandLeaseMs ?? 60 * SECOND,
      maxLongPollMs: options.maxLongPollMs ?? 60 * SECOND,
      recheckMs: options.recheckMs ?? 30 * SECOND,
    },
    log: options.log ?? stderrLogger,
    secrets: SecretBox.open(options.dataDir),
  };
  const engine = new JobEngine({ services, handlers: JOB_HANDLERS });
  const app: VaultApp = { services, engine, registry, adminToken, version: await packageVersion() };
  const routes: Route[] = [];
  routes.push(...systemRoutes(() => routes), ...objectRoutes(), ...jobRoutes(), ...agentRoutes());
  const compiled = routes.map(compileRoute);
  const stopping = new AbortController();
  let url = '';
  const server: Server = createServer((req, res) => {
    void dispatch(req, res, { app, routes: compiled, serverSignal: stopping.signal, maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024, baseUrl: () => url });
  });
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    store.close();
    throw e;
  }
  const address = server.address() as AddressInfo;
  url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const monitor = new HeartbeatMonitor({ services, ...(options.heartbeatCheckMs === undefined ? {} : { checkEveryMs: options.heartbeatCheckMs }) });
  const resyncs = new ResyncScheduler({ services, jobs: engine });
  monitor.start();
  resyncs.start();
  engine.start();
  let closing: Promise<void> | undefined;
  return {
    url,
    adminTokenFile,
    databasePath,
    jobSettled: (id) => engine.settled(id),
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        stopping.abort(new Error('the vault is stopping'));
        monitor.stop();
        resyncs.stop();
        await engine.stop();
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        await closed;
        clearTimeout(force);
        store.close();
      })();
      return closing;
    },
  };
}
