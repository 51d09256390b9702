/**
 * Errors as the Pulumi engine shows them. The engine prints only an error's
 * message, so the code, the hint and the vault's field problems go into it.
 * An error with an `id` (ResourceInitError) tells the engine the object
 * exists: it records the resource with that id and these outputs as partial
 * state, and the next `up` updates it instead of creating it again
 * (DESIGN.md §6).
 */

import { LifeboatError, type LifeboatErrorOptions } from '../errors';
import { VaultApiError } from '../client';

/** The object exists but is not ready: carries the resource id and outputs so far. */
export class ResourceInitError extends LifeboatError {
  readonly id: string;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly reasons: readonly string[];

  constructor(code: string, message: string, id: string, properties: Readonly<Record<string, unknown>>, options: LifeboatErrorOptions = {}) {
    super(code, 'recoverable', message, options);
    this.id = id;
    this.properties = properties;
    this.reasons = [message];
  }
}

/** The text of any error for the engine: `message [code]`, field problems, hint. */
export function engineMessage(e: unknown): string {
  if (e instanceof VaultApiError) {
    const problems = e.problems.map((p) => `\n  ${p.path === '' ? '(body)' : p.path}: ${p.message}${p.allowed === undefined ? '' : ` (allowed: ${p.allowed.map((a) => JSON.stringify(a)).join(', ')})`}${p.expected === undefined ? '' : ` (expected: ${p.expected})`}`).join('');
    return `${e.message} [${e.code}]${problems}${e.hint === undefined ? '' : `\n  hint: ${e.hint}`}`;
  }
  if (LifeboatError.isInstance(e)) return `${e.message} [${e.code}]${e.hint === undefined ? '' : `\n  hint: ${e.hint}`}`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * The error to throw to the engine: a plain Error with the full text, and
 * for a ResourceInitError its `id`, `properties` and `reasons` (the fields
 * the dynamic-provider host packs into ErrorResourceInitFailed).
 */
export function engineError(e: unknown): Error {
  const out = new Error(engineMessage(e), { cause: e });
  if (e instanceof ResourceInitError) return Object.assign(out, { id: e.id, properties: { ...e.properties }, reasons: [engineMessage(e)] });
  return out;
}
