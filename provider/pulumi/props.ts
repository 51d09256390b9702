/**
 * Inputs and outputs as a dynamic provider receives them: plain JSON objects
 * (`Props`). The typed `XxxArgs` of each resource describe what a program
 * passes; these helpers read the resolved values without `any`.
 */

import { BugError } from '../errors';

/** A property bag as the engine passes it. */
export type Props = Readonly<Record<string, unknown>>;

/** Keys every Lifeboat resource takes besides its spec. */
export const CONTROL_KEYS = ['vault', 'name', 'adopt', 'implVersion'] as const;

/** The key the dynamic-provider machinery adds (the serialised provider). */
export const PROVIDER_KEY = '__provider';

/** A string member; throws `BugError('pulumi.badProps')` if absent (check rules it out). */
export function str(p: Props, key: string): string {
  const v = p[key];
  if (typeof v !== 'string') throw new BugError('pulumi.badProps', `the input ${key} is not a string (${JSON.stringify(v)})`);
  return v;
}

/** The members of `p` named by `keys` that are defined. */
export function pick(p: Props, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (p[k] !== undefined) out[k] = p[k];
  return out;
}

/** `p` without `__provider` and without undefined members. */
export function withoutProvider(p: Props): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (k !== PROVIDER_KEY && v !== undefined) out[k] = v;
  return out;
}
