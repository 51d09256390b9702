/**
 * Turns ajv's errors into field problems people can act on: the JSON Pointer
 * of each bad value, a sentence saying what is wrong, and what would be valid
 * (`allowed` values when they can be listed, `expected` otherwise).
 *
 * Conditional rules (`if`/`then`/`else`, `dependentSchemas`) are explained by
 * their condition ("must be <= 3 when recoveryPointRetentionHours is 3"), and
 * the noise ajv reports around them (the failing `if`, the branches of a
 * `oneOf`) is folded into one problem.
 */

import type { ErrorObject } from 'ajv';

/** One bad field. */
export interface FieldProblem {
  /** JSON Pointer (RFC 6901) of the offending value in the document; `''` is the whole document. */
  readonly path: string;
  /** What is wrong, for people. */
  readonly message: string;
  /** The valid values, when they can be listed (enums, property names, existing object names). */
  readonly allowed?: readonly unknown[];
  /** What a valid value looks like when it cannot be listed: `integer 0..12`, `string matching ^…$`. */
  readonly expected?: string;
}

type Schema = Record<string, unknown>;

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pointerEscape(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function show(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
}

/** `when target is 'azure'`: a condition of the form properties/{p: const|enum}, as text. */
function conditionText(ifSchema: unknown, negate: boolean): string | undefined {
  if (!isSchema(ifSchema) || !isSchema(ifSchema.properties)) return undefined;
  const parts: string[] = [];
  for (const [p, s] of Object.entries(ifSchema.properties)) {
    if (!isSchema(s)) return undefined;
    if ('const' in s) parts.push(`${p} is ${negate ? 'not ' : ''}${show(s.const)}`);
    else if (Array.isArray(s.enum)) parts.push(`${p} is ${negate ? 'not ' : ''}one of ${s.enum.map(show).join(', ')}`);
    else return undefined;
  }
  return parts.length === 0 ? undefined : `when ${parts.join(negate ? ' or ' : ' and ')}`;
}

function rangeText(s: Schema): string | undefined {
  const type = s.type === 'integer' ? 'integer' : 'number';
  const lo = typeof s.minimum === 'number' ? `${s.minimum}` : typeof s.exclusiveMinimum === 'number' ? `>${s.exclusiveMinimum}` : undefined;
  const hi = typeof s.maximum === 'number' ? `${s.maximum}` : typeof s.exclusiveMaximum === 'number' ? `<${s.exclusiveMaximum}` : undefined;
  if (lo === undefined && hi === undefined) return undefined;
  if (lo !== undefined && hi !== undefined && !lo.startsWith('>') && !hi.startsWith('<')) return `${type} ${lo}..${hi}`;
  return [type, lo === undefined ? undefined : lo.startsWith('>') ? lo : `>=${lo}`, hi === undefined ? undefined : hi.startsWith('<') ? hi : `<=${hi}`]
    .filter((x) => x !== undefined).join(' ');
}

function stringText(s: Schema): string {
  const parts = ['string'];
  if (typeof s.minLength === 'number' || typeof s.maxLength === 'number') parts.push(`of ${s.minLength ?? 0}..${s.maxLength ?? '∞'} characters`);
  if (typeof s.pattern === 'string') parts.push(`matching ${s.pattern}`);
  return parts.join(' ');
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

/** One problem for one ajv error; `undefined` for errors that only echo others. */
function problemOf(e: ErrorObject): FieldProblem | undefined {
  const parent = isSchema(e.parentSchema) ? e.parentSchema : {};
  const params = e.params as Record<string, unknown>;
  const describe = typeof parent.description === 'string' ? parent.description : undefined;
  switch (e.keyword) {
    case 'if':
      return undefined;
    case 'required': {
      const missing = String(params.missingProperty);
      return { path: `${e.instancePath}/${pointerEscape(missing)}`, message: 'is required' };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const allowed = isSchema(parent.properties) ? Object.keys(parent.properties).sort() : undefined;
      return {
        path: `${e.instancePath}/${pointerEscape(extra)}`,
        message: `unknown property '${extra}'`,
        ...(allowed === undefined ? {} : { allowed }),
      };
    }
    case 'enum': {
      const allowed = Array.isArray(params.allowedValues) ? params.allowedValues : [];
      return { path: e.instancePath, message: `must be one of ${allowed.map(show).join(', ')}`, allowed };
    }
    case 'const':
      return { path: e.instancePath, message: `must be ${show(params.allowedValue)}`, allowed: [params.allowedValue] };
    case 'type': {
      const t = Array.isArray(params.type) ? params.type.join(' or ') : String(params.type);
      return { path: e.instancePath, message: `must be ${article(t)}`, expected: t };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const range = rangeText(parent);
      return { path: e.instancePath, message: `must be ${String(params.comparison)} ${String(params.limit)}`, ...(range === undefined ? {} : { expected: range }) };
    }
    case 'pattern':
    case 'minLength':
    case 'maxLength':
      return {
        path: e.instancePath,
        message: e.keyword === 'pattern' ? `does not have the expected form${describe === undefined ? '' : `: ${describe}`}` : `${e.message ?? 'has the wrong length'}`,
        expected: stringText(parent),
      };
    case 'format':
      return { path: e.instancePath, message: `must be ${article(String(params.format))}${describe === undefined ? '' : `: ${describe}`}`, expected: String(params.format) };
    case 'uniqueItems':
    {
      const [first, second] = [Number(params.i), Number(params.j)].sort((a, b) => a - b);
      return { path: `${e.instancePath}/${second}`, message: `duplicates item ${first}; items must be unique` };
    }
    case 'minItems':
    case 'maxItems':
      return { path: e.instancePath, message: e.keyword === 'minItems' ? `must have at least ${String(params.limit)} item(s)` : `must have at most ${String(params.limit)} item(s)` };
    case 'false schema':
      return { path: e.instancePath, message: 'is not allowed here' };
    case 'oneOf': {
      const branches = Array.isArray(e.schema) ? e.schema : [];
      const names = branches.map((b) => (isSchema(b) && Array.isArray(b.required) && Object.keys(b).length === 1 && b.required.length === 1 ? String(b.required[0]) : undefined));
      if (names.every((n) => n !== undefined) && names.length > 0) {
        return { path: e.instancePath, message: `must have exactly one of ${names.map(show).join(', ')}`, allowed: names };
      }
      return { path: e.instancePath, message: 'must match exactly one of the alternatives' };
    }
    default:
      return { path: e.instancePath, message: e.message ?? `fails ${e.keyword}` };
  }
}

/**
 * Field problems for a failed validation. Pass the errors of a validator
 * compiled with `allErrors: true, verbose: true`. Sorted by path; one problem
 * per (path, message).
 */
export function problemsFromAjv(errors: readonly ErrorObject[]): FieldProblem[] {
  // Conditions of the if/then/else and dependentSchemas that failed, by schema path prefix.
  const conditions = new Map<string, string>();
  const folded: string[] = [];
  for (const e of errors) {
    const parent = isSchema(e.parentSchema) ? e.parentSchema : {};
    if (e.keyword === 'if') {
      const base = e.schemaPath.slice(0, -'/if'.length);
      const failing = (e.params as Record<string, unknown>).failingKeyword;
      const text = conditionText(parent.if, failing === 'else');
      if (text !== undefined) conditions.set(`${base}/${String(failing)}/`, text);
    }
    if (e.keyword === 'oneOf') folded.push(`${e.schemaPath}/`);
  }
  for (const e of errors) {
    const m = /^(.*\/dependentSchemas\/)([^/]+)\//.exec(e.schemaPath);
    if (m !== null) conditions.set(`${m[1]}${m[2]}/`, `when ${m[2]} is set`);
  }
  const seen = new Set<string>();
  const out: FieldProblem[] = [];
  for (const e of errors) {
    if (folded.some((prefix) => e.schemaPath.startsWith(prefix))) continue;
    const p = problemOf(e);
    if (p === undefined) continue;
    let condition: string | undefined;
    for (const [prefix, text] of conditions) if (e.schemaPath.startsWith(prefix)) condition = text;
    const problem = condition === undefined ? p : { ...p, message: `${p.message} ${condition}` };
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(problem);
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
