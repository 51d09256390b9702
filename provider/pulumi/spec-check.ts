/**
 * `check` of every resource: the spec part of the inputs validated with the
 * vault API's own schemas (provider/validation) before any call, values not
 * yet known in a preview left out. Failures name the property as Pulumi
 * shows it (`associations[0].target`) and say what would be valid.
 */

import type * as pulumi from '@pulumi/pulumi';
import { SchemaRegistry, type FieldProblem, type SchemaName } from '../validation';

/** The value the Pulumi runtime puts for an input not known during a preview. */
export const UNKNOWN_VALUE = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';

let registry: SchemaRegistry | undefined;

/** The schemas of schemas/, compiled once per process. */
export function schemas(): SchemaRegistry {
  registry ??= SchemaRegistry.load();
  return registry;
}

/** True if `v` holds a value unknown during a preview, at any depth. */
export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN_VALUE) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (typeof v === 'object' && v !== null) return Object.values(v).some(containsUnknown);
  return false;
}

/** `/associations/0/target` → `associations[0].target`; `''` → the given root. */
export function propertyOfPointer(pointer: string, root = ''): string {
  if (pointer === '') return root;
  let out = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** The sentence of a field problem with what would be valid. */
export function problemReason(p: FieldProblem): string {
  const allowed = p.allowed === undefined ? '' : `; valid: ${p.allowed.map((a) => JSON.stringify(a)).join(', ')}`;
  const expected = p.expected === undefined ? '' : `; expected ${p.expected}`;
  return `${p.message}${allowed}${expected}`;
}

/**
 * Failures of `body` against a schema. Top-level members whose value is (or
 * holds) an unknown are validated once known: they are left out, and so are
 * problems about them (a `required` problem names the member in its text).
 * `prefix` is prepended to property names (`spec.` or nothing).
 */
export function checkBody(schema: SchemaName, body: Readonly<Record<string, unknown>>, prefix = ''): pulumi.dynamic.CheckFailure[] {
  const known: Record<string, unknown> = {};
  const unknown = new Set<string>();
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue;
    if (containsUnknown(v)) unknown.add(k);
    else known[k] = v;
  }
  return schemas().validate(schema, known)
    .filter((p) => ![...unknown].some((k) => p.path === `/${k}` || p.path.startsWith(`/${k}/`) || (p.path === '' && p.message.includes(`'${k}'`))))
    .map((p) => ({ property: propertyOfPointer(p.path, prefix === '' ? '' : prefix.replace(/\.$/, '')) || '(inputs)', reason: problemReason(p) }));
}

/** A failure if `value` is not a valid object name (common.schema.json#/$defs/name), e.g. the `vault` input. */
export function checkName(property: string, value: unknown): pulumi.dynamic.CheckFailure[] {
  if (value === undefined) return [{ property, reason: `${property} is required: the name of a Lifeboat object` }];
  if (containsUnknown(value)) return [];
  // The vault schema's `name` is the shared name definition.
  return schemas().validate('vault', { name: value }).map((p) => ({ property, reason: problemReason(p) }));
}
