/**
 * A route of the vault API: method, path template, who may call it, the
 * schema of its body, what it answers (for the OpenAPI document) and the
 * handler. The route table is the single description of the API: the server
 * dispatches with it and the OpenAPI document is generated from it.
 */

import type { IncomingHttpHeaders } from 'node:http';
import type { JobEngine } from '../jobs/engine';
import type { VaultServices } from '../control/services';
import type { SchemaName, SchemaRegistry } from '../../validation/schemas';

/**
 * Who may call a route:
 * - `none`: anyone (only /healthz);
 * - `admin`: the admin bearer token;
 * - `agent`: the agent token of the host named by the `{host}` path parameter;
 * - `registrationKey`: the registration key of the `{vault}` path parameter.
 */
export type AuthKind = 'none' | 'admin' | 'agent' | 'registrationKey';

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** What the handlers share. */
export interface VaultApp {
  readonly services: VaultServices;
  readonly engine: JobEngine;
  readonly registry: SchemaRegistry;
  readonly adminToken: string;
  /** Version of the vault software. */
  readonly version: string;
}

export interface RouteContext {
  readonly app: VaultApp;
  /** Path parameters, decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed body, already valid against the route's schema (if it has one). */
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
  /** Aborted when the client disconnects or the server closes. */
  readonly signal: AbortSignal;
  /** The server's base URL (scheme, host, port), for documents that name it. */
  readonly baseUrl: string;
}

export interface RouteResult {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One response of a route, for the OpenAPI document. */
export interface ResponseDoc {
  readonly description: string;
  /** A JSON Schema (may `$ref` `#/components/schemas/...`). */
  readonly schema?: Readonly<Record<string, unknown>>;
}

export interface QueryDoc {
  readonly name: string;
  readonly description: string;
  readonly schema: Readonly<Record<string, unknown>>;
}

export interface Route {
  readonly method: Method;
  /** Template with `{name}` parameters, e.g. `/v1/vaults/{vault}/sites/{name}`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  /** @default none */
  readonly description?: string;
  readonly tags: readonly string[];
  readonly auth: AuthKind;
  /** Schema of the request body. @default no body */
  readonly body?: SchemaName;
  /** The body may be omitted (validated when present). @default false */
  readonly bodyOptional?: boolean;
  /** @default [] */
  readonly query?: readonly QueryDoc[];
  /** By status code. */
  readonly responses: Readonly<Record<string, ResponseDoc>>;
  handle(ctx: RouteContext): Promise<RouteResult> | RouteResult;
}

/** A route with its path compiled to a matcher. */
export interface CompiledRoute {
  readonly route: Route;
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

export function compileRoute(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.split('/').map((seg) => {
    const m = /^\{(\w+)\}$/.exec(seg);
    if (m === null) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    names.push(m[1]!);
    return '([^/]+)';
  }).join('/');
  return { route, pattern: new RegExp(`^${source}$`), names };
}

/** Routes whose path matches, with their parameters (percent-decoding failures make a route not match). */
export function matchPath(routes: readonly CompiledRoute[], path: string): { route: Route; params: Record<string, string> }[] {
  const out: { route: Route; params: Record<string, string> }[] = [];
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (m === null) continue;
    try {
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]!); });
      out.push({ route: r.route, params });
    } catch {
      // malformed escape: not this route
    }
  }
  return out;
}
