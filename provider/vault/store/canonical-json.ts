/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members
 * dropped. Two documents that mean the same have the same text, which is how
 * an idempotent PUT recognises "nothing changed".
 */

import type { Json, JsonObject } from './records';

/** The canonical form of a parsed JSON value (drops `undefined`, sorts keys recursively). */
export function canonicalize(value: unknown): Json {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonicalize(v)));
  if (typeof value === 'object') {
    const out: JsonObject = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonicalize(v);
    }
    return out;
  }
  return null;
}

/** Canonical JSON text of a value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalize(value));
}
