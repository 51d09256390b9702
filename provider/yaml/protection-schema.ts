/**
 * schemas/protection.schema.json compiled with ajv exactly as the vault
 * compiles its request schemas (provider/validation/schemas.ts: same files,
 * same options, same formats), so that a protection file and an API body are
 * judged by the same definitions. Problems get a stable code from the rule
 * that failed.
 */

import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { BugError } from '../errors';
import { findSchemasDir, problemsFromAjv, SchemaRegistry, type FieldProblem } from '../validation';
import type { CodedProblem } from './problem';

/** File name (and `$id`) of the protection file's schema in schemas/. */
export const PROTECTION_SCHEMA_FILE = 'protection.schema.json';

// The vault's date-time rule (provider/validation/schemas.ts): RFC 3339 with a zone, and a real date.
const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** Schema problem codes by the wording of provider/validation/problems.ts, first match wins. */
const CODES: readonly (readonly [RegExp, string])[] = [
  [/^is required\b/, 'schema.required'],
  [/^unknown property\b/, 'schema.unknownProperty'],
  [/^must be one of\b/, 'schema.enum'],
  [/^must be [<>]=? /, 'schema.range'],
  [/^must be an? (string|number|integer|boolean|object|array|null)\b/, 'schema.type'],
  [/^must be an? /, 'schema.format'],
  [/^must be /, 'schema.const'],
  [/^does not have the expected form\b|^must NOT have (more|fewer) than \d+ characters/, 'schema.pattern'],
  [/^duplicates item\b/, 'schema.duplicateItem'],
  [/^must have at (least|most) /, 'schema.itemCount'],
  [/^is not allowed here\b/, 'schema.notAllowed'],
  [/^must (have|match) exactly one of\b/, 'schema.oneOf'],
];

/** Problems about a value itself, whose text is worth showing (not about a list's length or a missing key). */
const VALUE_CODES = new Set(['schema.type', 'schema.enum', 'schema.range', 'schema.const', 'schema.format', 'schema.pattern', 'schema.invalid']);

/** The stable code of a schema problem. */
export function schemaCode(p: FieldProblem): string {
  for (const [re, code] of CODES) if (re.test(p.message)) return code;
  return 'schema.invalid';
}

/** The protection file's schema, compiled. Immutable; `validate` is pure. */
export class ProtectionSchema {
  private constructor(
    private readonly validator: ValidateFunction,
    /** The registry of the same folder (API request bodies). */
    readonly registry: SchemaRegistry,
  ) {}

  /**
   * Load schemas/ (every `*.schema.json`, as the vault does) and compile the
   * protection schema. Throws `BugError('schemas.*')` if the folder is
   * incomplete or a schema is not valid: a packaging bug, not bad input.
   */
  static load(dir: string = findSchemasDir()): ProtectionSchema {
    const registry = SchemaRegistry.load(dir);
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false });
    ajv.addFormat('date-time', { type: 'string', validate: (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)) });
    ajv.addFormat('uri', { type: 'string', validate: (s: string) => URL.canParse(s) });
    for (const [file, doc] of registry.documents) ajv.addSchema(doc as Record<string, unknown>, file);
    const validator = ajv.getSchema(PROTECTION_SCHEMA_FILE);
    if (validator === undefined) throw new BugError('schemas.missing', `schemas/${PROTECTION_SCHEMA_FILE} is missing`, { hint: 'reinstall the package: its schemas/ folder is incomplete' });
    return new ProtectionSchema(validator, registry);
  }

  /** Problems of a document (JSON data); empty when it has the protection file's shape. Never throws. */
  validate(data: unknown): CodedProblem[] {
    if (this.validator(data)) return [];
    return problemsFromAjv(this.validator.errors ?? []).map((p) => {
      const code = schemaCode(p);
      return { ...p, code, atKey: code === 'schema.unknownProperty', showActual: VALUE_CODES.has(code) };
    });
  }
}

let shared: ProtectionSchema | undefined;

/** The schema of the package's own schemas/ folder, loaded once. Throws as `ProtectionSchema.load`. */
export function defaultProtectionSchema(): ProtectionSchema {
  shared ??= ProtectionSchema.load();
  return shared;
}
