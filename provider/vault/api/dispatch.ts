/**
 * One HTTP request through the route table: match, read the body (bounded),
 * authenticate, parse and validate the body, run the handler, write JSON.
 *
 * Authentication runs before the body is parsed or validated and before any
 * handler, so a request without valid credentials learns nothing about the
 * body's validity and changes nothing.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LifeboatError } from '../../errors';
import { tokenHash } from '../control/hosts';
import { invalidRequest, VaultError } from '../control/vault-error';
import { secretEquals } from '../control/vaults';
import { matchPath, type CompiledRoute, type Route, type VaultApp } from './route';

export interface DispatchOptions {
  readonly app: VaultApp;
  readonly routes: readonly CompiledRoute[];
  /** Aborted when the server closes (ends long-polls). */
  readonly serverSignal: AbortSignal;
  /** Largest body accepted, in bytes. */
  readonly maxBodyBytes: number;
  readonly baseUrl: () => string;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? '' : `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) }),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) tooLarge = true;
    else chunks.push(b);
  }
  if (tooLarge) throw new VaultError(413, 'request.tooLarge', `the body is larger than ${limit} bytes`);
  return Buffer.concat(chunks);
}

function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m === null ? '' : m[1];
}

function unauthorized(code: string, message: string, hint: string): VaultError {
  return new VaultError(401, code, message, { hint });
}

function hexEquals(a: string, b: string): boolean {
  const ba = createHash('sha256').update(a).digest();
  const bb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ba, bb);
}

function authenticate(route: Route, params: Readonly<Record<string, string>>, req: IncomingMessage, app: VaultApp): void {
  if (route.auth === 'none') return;
  const token = bearer(req);
  if (token === undefined || token === '') {
    throw unauthorized('auth.tokenMissing', 'this endpoint needs a bearer token (Authorization: Bearer …)',
      route.auth === 'admin' ? 'use the admin token from the vault\'s admin-token file'
        : route.auth === 'agent' ? 'use the agent token the host received when it registered'
          : 'use the vault registration key');
  }
  if (route.auth === 'admin') {
    if (!secretEquals(token, app.adminToken)) throw unauthorized('auth.tokenInvalid', 'the bearer token is not the admin token', 'use the admin token from the vault\'s admin-token file');
    return;
  }
  const vault = params.vault ?? '';
  if (route.auth === 'registrationKey') {
    const secrets = app.services.store.getVaultSecrets(vault);
    // Compare even when the vault is unknown, so the answer does not tell whether it exists.
    const ok = secretEquals(token, secrets?.registrationKey ?? '\u0000no vault') && secrets !== undefined;
    if (!ok) {
      throw unauthorized('auth.registrationKeyInvalid', `the registration key is not valid for vault '${vault}' (wrong, or rotated)`,
        'get the current key (GET /v1/vaults/{vault}/registrationKey, or the Pulumi Vault resource\'s registrationKey output) and register again');
    }
    return;
  }
  const stored = app.services.store.getAgentCredential(vault, params.host ?? '');
  if (stored === undefined || !hexEquals(tokenHash(token), stored)) {
    const isAdmin = secretEquals(token, app.adminToken);
    throw unauthorized(isAdmin ? 'auth.agentTokenRequired' : 'auth.agentTokenInvalid',
      isAdmin ? 'agent endpoints take the host\'s agent token, not the admin token' : `the token is not the agent token of host '${params.host ?? ''}'`,
      'register the host (again) with the vault registration key to get its agent token');
  }
}

function parseJson(raw: Buffer): unknown {
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new VaultError(400, 'request.malformedJson', `the body is not valid JSON: ${message}`, {
      details: [{ path: '', message, expected: 'a JSON document' }],
      hint: 'send Content-Type: application/json with a JSON object',
    });
  }
}

function errorResponse(e: unknown, app: VaultApp): { status: number; body: unknown; headers: Record<string, string> } {
  if (e instanceof VaultError) {
    return { status: e.status, body: e.body(), headers: e.status === 401 ? { 'www-authenticate': 'Bearer realm="lifeboat-vault"' } : {} };
  }
  if (LifeboatError.isInstance(e)) {
    const status = e.category === 'invalidInput' ? 400 : e.category === 'recoverable' ? 503 : e.category === 'bug' ? 500 : 409;
    if (status === 500) app.services.log('error', `request failed: ${e.stack ?? e.message}`);
    return {
      status,
      body: { error: { code: e.code, message: e.message, details: e.where?.path === undefined ? [] : [{ path: e.where.path, message: e.message }], ...(e.hint === undefined ? {} : { hint: e.hint }) } },
      headers: {},
    };
  }
  app.services.log('error', `request failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  return { status: 500, body: { error: { code: 'internal.error', message: 'the vault failed to handle the request', details: [], hint: 'see the vault log; this is a bug in Lifeboat' } }, headers: {} };
}

/** Handle one request. Never rejects: every failure becomes an error response. */
export async function dispatch(req: IncomingMessage, res: ServerResponse, options: DispatchOptions): Promise<void> {
  const { app } = options;
  const client = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) client.abort(new Error('client went away'));
  });
  const signal = AbortSignal.any([client.signal, options.serverSignal]);
  try {
    const url = new URL(req.url ?? '/', 'http://vault.invalid');
    const matches = matchPath(options.routes, url.pathname);
    const match = matches.find((m) => m.route.method === req.method);
    if (match === undefined) {
      req.resume();
      if (matches.length === 0) throw new VaultError(404, 'route.notFound', `no API path ${url.pathname}`, { hint: 'GET /openapi.json lists every path' });
      const allow = [...new Set(matches.map((m) => m.route.method))].join(', ');
      const e = new VaultError(405, 'route.methodNotAllowed', `${req.method ?? '?'} is not allowed on ${url.pathname}; allowed: ${allow}`);
      send(res, e.status, e.body(), { allow });
      return;
    }
    const { route, params } = match;
    const raw = await readBody(req, options.maxBodyBytes);
    authenticate(route, params, req, app);
    let body: unknown;
    if (route.body !== undefined) {
      if (raw.length === 0) {
        if (route.bodyOptional !== true) throw invalidRequest([{ path: '', message: 'a JSON body is required', expected: 'a JSON object' }]);
      } else {
        body = parseJson(raw);
        const problems = app.registry.validate(route.body, body);
        if (problems.length > 0) throw invalidRequest(problems);
      }
    }
    const result = await route.handle({ app, params, query: url.searchParams, body, headers: req.headers, signal, baseUrl: options.baseUrl() });
    send(res, result.status, result.body, result.headers);
  } catch (e) {
    if (signal.aborted && !(e instanceof VaultError)) {
      if (options.serverSignal.aborted) send(res, 503, { error: { code: 'vault.stopping', message: 'the vault is stopping', details: [], hint: 'retry when it is back' } });
      else res.destroy();
      return;
    }
    const r = errorResponse(e, app);
    send(res, r.status, r.body, r.headers);
  }
}
