/** Small pieces the route handlers share. */

import type { StoredObject } from '../../store/records';
import { requireVault } from '../../control/vaults';
import { VaultError } from '../../control/vault-error';
import type { ResponseDoc, RouteContext } from '../route';

/** `#/components/schemas/<name>` */
export function ref(name: string): Readonly<Record<string, unknown>> {
  return { $ref: `#/components/schemas/${name}` };
}

/** The common error responses of admin routes. */
export function errors(...codes: number[]): Record<string, ResponseDoc> {
  const text: Record<number, string> = {
    400: 'Invalid request: `details` lists each bad field with its JSON path and what would be valid.',
    401: 'Missing or wrong credentials; nothing was changed.',
    404: 'No such object.',
    409: 'Conflict: the object is in use, a job owns it, or a field cannot change.',
    412: 'If-Match did not match the current generation; nothing was changed.',
    413: 'The body is larger than the vault accepts.',
  };
  const out: Record<string, ResponseDoc> = {};
  for (const c of codes) out[String(c)] = { description: text[c] ?? 'Error', schema: ref('Error') };
  return out;
}

/** Check a name path parameter against the schema's name pattern. */
export function checkName(ctx: RouteContext, param: string): string {
  const value = ctx.params[param] ?? '';
  const common = ctx.app.registry.documents.get('common.schema.json') as { $defs: { name: { pattern: string; maxLength: number } } };
  const def = common.$defs.name;
  if (value.length > def.maxLength || !new RegExp(def.pattern).test(value)) {
    throw new VaultError(400, 'request.invalidName', `'${value}' is not a valid name`, {
      details: [{ path: `{${param}}`, message: 'is not a valid name', expected: `string of 1..${def.maxLength} characters matching ${def.pattern}` }],
    });
  }
  return value;
}

/** The vault of the request (404 if missing) and its display name. */
export function vaultOf(ctx: RouteContext): { readonly key: string; readonly name: string; readonly object: StoredObject } {
  const name = checkName(ctx, 'vault');
  const object = requireVault(ctx.app.services, name);
  return { key: object.vault, name: object.name, object };
}

/** `"<generation>"`, the ETag of an object. */
export function etag(o: StoredObject): string {
  return `"${o.generation}"`;
}

/** Refuse a write whose If-Match names another generation (412). */
export function checkIfMatch(ctx: RouteContext, current: StoredObject | undefined): void {
  const header = ctx.headers['if-match'];
  if (header === undefined) return;
  const wanted = String(header).trim();
  if (wanted === '*' && current !== undefined) return;
  if (current === undefined || wanted !== etag(current)) {
    throw new VaultError(412, 'object.generationMismatch', `If-Match ${wanted} does not match ${current === undefined ? 'a missing object' : `generation ${etag(current)}`}`, {
      hint: 'read the object again and retry with its current generation',
    });
  }
}

/** A number query parameter within bounds, or the default. 400 if malformed. */
export function numberParam(ctx: RouteContext, name: string, fallback: number, min: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new VaultError(400, 'request.invalidQuery', `query parameter ${name}=${raw} is out of range`, {
      details: [{ path: `?${name}`, message: `must be a number from ${min} to ${max}`, expected: `number ${min}..${max}` }],
    });
  }
  return n;
}
