/**
 * `diff` of every resource, written by hand over the keys that mean
 * something (never `__provider` or outputs the vault computes). Identifiers
 * compare case-insensitively, as the vault compares names; the other values
 * compare as canonical JSON (key order does not matter). A change of an
 * identity key replaces the resource; every other change is an update in
 * place.
 */

import type * as pulumi from '@pulumi/pulumi';
import { UNKNOWN_VALUE, containsUnknown } from './spec-check';

export interface DiffRules {
  /** Keys compared; anything else (outputs, `__provider`) is ignored. */
  readonly keys: readonly string[];
  /** Keys whose change replaces the resource. */
  readonly identity: readonly string[];
  /** Keys (or `key.sub`) holding identifiers, compared case-insensitively at any depth. */
  readonly identifiers: readonly string[];
}

/** JSON with sorted object keys; `undefined` members left out. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Lower-case every string in `v` (an identifier, or a structure of identifiers). */
function folded(v: unknown): unknown {
  if (typeof v === 'string') return v === UNKNOWN_VALUE ? v : v.toLowerCase();
  if (Array.isArray(v)) return v.map(folded);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, folded(x)]));
  return v;
}

/** `v` with the identifier members named by `paths` (relative to it) folded. */
function normalise(v: unknown, paths: readonly string[]): unknown {
  if (paths.includes('')) return folded(v);
  if (Array.isArray(v)) return v.map((x) => normalise(x, paths));
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const sub = paths.filter((p) => p === k || p.startsWith(`${k}.`)).map((p) => (p === k ? '' : p.slice(k.length + 1)));
    out[k] = sub.length === 0 ? x : normalise(x, sub);
  }
  return out;
}

/** The keys whose values differ under the rules, in `rules.keys` order. */
export function changedKeys(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>, rules: DiffRules): string[] {
  const o = normalise(olds, rules.identifiers) as Record<string, unknown>;
  const n = normalise(news, rules.identifiers) as Record<string, unknown>;
  return rules.keys.filter((k) => containsUnknown(n[k]) || canonicalJson(o[k]) !== canonicalJson(n[k]));
}

/** The DiffResult: replace on identity, update in place otherwise; same-name replacements delete first. */
export function diffByRules(olds: Readonly<Record<string, unknown>>, news: Readonly<Record<string, unknown>>, rules: DiffRules, extraReplaces: readonly string[] = []): pulumi.dynamic.DiffResult {
  const changed = changedKeys(olds, news, rules);
  const replaces = changed.filter((k) => rules.identity.includes(k));
  return {
    changes: changed.length > 0,
    replaces: replaces.length === 0 ? [] : [...replaces, ...extraReplaces],
    // Objects are addressed by name: a replacement under the same name must delete the old one first.
    deleteBeforeReplace: true,
  };
}
