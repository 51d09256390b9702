/**
 * The agent's local control socket (docs/agent.md §8): HTTP/JSON over a UNIX
 * socket in the data folder (mode 0600, so only the agent's user reaches
 * it), for the operator on the host and for tests. It never listens on the
 * network.
 *
 * | request | answer |
 * |---|---|
 * | `GET /status` | the agent's status (`AgentStatus`) |
 * | `GET /vms` | the hypervisor's VMs |
 * | `POST /vms/{name}/start` | starts the VM; the VM |
 * | `POST /vms/{name}/shutdown` body `{turnOff?: boolean}` | shuts it down (guest flush unless `turnOff`); the VM |
 *
 * Errors answer `{error: {code, category, message, hint}}` with 400 (invalid
 * input), 404 (`hypervisor.vmNotFound`, unknown path), 409 (the VM's state
 * refuses it) or 500.
 */

import * as fs from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { LifeboatError, categoryOf } from '../errors';
import { type Hypervisor } from '../hypervisor/hypervisor';

export interface ControlServerOptions {
  /** Path of the socket; a stale file is replaced. */
  readonly socketPath: string;
  readonly hypervisor: Hypervisor;
  /** The agent's status document. */
  readonly status: () => Promise<unknown>;
  /** The VMs changed (tell the vault at once). Must not throw. */
  readonly onVmChange: () => void;
}

/** Longest UNIX socket path Linux accepts (`sun_path` is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

/** The running control socket. */
export class ControlServer {
  private constructor(private readonly server: Server, readonly socketPath: string) {}

  /**
   * Listen on the socket (mode 0600). Throws `InvalidInputError`-like
   * `agent.socketPathTooLong` when the path cannot be a socket, or the
   * listen error.
   */
  static async start(o: ControlServerOptions): Promise<ControlServer> {
    if (Buffer.byteLength(o.socketPath) > MAX_SOCKET_PATH) {
      throw new LifeboatError('agent.socketPathTooLong', 'invalidInput', `the control socket path ${o.socketPath} is longer than ${MAX_SOCKET_PATH} bytes`, {
        hint: 'use a shorter --data-dir',
      });
    }
    await fs.rm(o.socketPath, { force: true });
    const server = createServer((req, res) => {
      void handle(o, req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await fs.chmod(o.socketPath, 0o600);
    return new ControlServer(server, o.socketPath);
  }

  /** Stop listening and remove the socket. Idempotent. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await fs.rm(this.socketPath, { force: true });
  }
}

async function handle(o: ControlServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
    const body = await readBody(req);
    if (req.method === 'GET' && url.pathname === '/status') return send(res, 200, await o.status());
    if (req.method === 'GET' && url.pathname === '/vms') return send(res, 200, { items: await o.hypervisor.list() });
    if (req.method === 'POST' && parts.length === 3 && parts[0] === 'vms') {
      const name = parts[1]!;
      if (parts[2] === 'start') {
        const vm = await o.hypervisor.start(name);
        o.onVmChange();
        return send(res, 200, vm);
      }
      if (parts[2] === 'shutdown') {
        const turnOff = typeof body === 'object' && body !== null && (body as { turnOff?: unknown }).turnOff === true;
        const vm = await o.hypervisor.shutdown(name, { turnOff, reason: turnOff ? 'turned off through the agent control socket' : 'shut down through the agent control socket' });
        o.onVmChange();
        return send(res, 200, vm);
      }
    }
    return send(res, 404, { error: { code: 'route.notFound', category: 'invalidInput', message: `no ${req.method ?? ''} ${url.pathname} here`, hint: 'GET /status, GET /vms, POST /vms/{name}/start, POST /vms/{name}/shutdown' } });
  } catch (e) {
    const json = LifeboatError.isInstance(e) ? e.toJSON() : { code: 'agent.internalError', category: 'bug', message: e instanceof Error ? e.message : String(e) };
    const code = LifeboatError.isInstance(e) ? e.code : '';
    const status = code === 'hypervisor.vmNotFound' ? 404 : categoryOf(e) === 'invalidInput' ? 400 : categoryOf(e) === 'nonRecoverable' ? 409 : 500;
    send(res, status, { error: json });
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) throw new LifeboatError('request.tooLarge', 'invalidInput', 'control request body over 64 KiB');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new LifeboatError('request.malformedJson', 'invalidInput', 'the request body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
