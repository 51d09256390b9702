/**
 * The JSON Schemas of schemas/ (draft 2020-12), loaded once and compiled with
 * ajv: the single source of truth for the API request bodies, which the
 * Pulumi provider's `check` and the YAML loader validate with too. The files
 * are read from the package's `schemas/` folder at run time (found by walking
 * up from this file, so it works from the sources and from `dist/`).
 */

import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { BugError } from '../errors';
import { problemsFromAjv, type FieldProblem } from './problems';

/** The request-body schemas, by file stem. */
export const SCHEMA_NAMES = [
  'vault',
  'site',
  'host-registration',
  'replication-policy',
  'network-mapping',
  'protected-item',
  'recovery-plan',
  'heartbeat',
  'command-update',
  'agent-report',
  'failover-request',
  'plan-failover-request',
  'job-ack-request',
  'reprotect-request',
] as const;

export type SchemaName = (typeof SCHEMA_NAMES)[number];

/** A JSON Schema document as read from disk. */
export type JsonSchema = Readonly<Record<string, unknown>>;

const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/**
 * The folder holding common.schema.json, searched upwards from `start`.
 * Throws `BugError('schemas.notFound')` if the package is incomplete.
 */
export function findSchemasDir(start: string = __dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'schemas');
    try {
      if (statSync(path.join(candidate, 'common.schema.json')).isFile()) return candidate;
    } catch {
      // not here; go up
    }
    if (path.dirname(dir) === dir) {
      throw new BugError('schemas.notFound', `no schemas/common.schema.json above ${start}`, { hint: 'reinstall the package: its schemas/ folder is missing' });
    }
  }
}

/** Compiled schemas with their documents. Immutable after construction. */
export class SchemaRegistry {
  private readonly validators = new Map<SchemaName, ValidateFunction>();
  /** Every document by file name (`site.schema.json`), including common.schema.json. */
  readonly documents: ReadonlyMap<string, JsonSchema>;

  private constructor(documents: Map<string, JsonSchema>) {
    this.documents = documents;
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false });
    ajv.addFormat('date-time', { type: 'string', validate: (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)) });
    ajv.addFormat('uri', { type: 'string', validate: (s: string) => URL.canParse(s) });
    for (const [file, doc] of documents) ajv.addSchema(doc as Record<string, unknown>, file);
    for (const name of SCHEMA_NAMES) {
      const v = ajv.getSchema(`${name}.schema.json`);
      if (v === undefined) throw new BugError('schemas.missing', `schemas/${name}.schema.json is missing`);
      this.validators.set(name, v);
    }
  }

  /**
   * Load and compile every `*.schema.json` of `dir`. Throws `BugError` if a
   * file is not valid JSON or not a valid schema (a packaging bug, not input).
   */
  static load(dir: string = findSchemasDir()): SchemaRegistry {
    const docs = new Map<string, JsonSchema>();
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.schema.json')).sort()) {
      try {
        docs.set(file, JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as JsonSchema);
      } catch (e) {
        throw new BugError('schemas.unreadable', `schemas/${file} is not valid JSON`, { cause: e });
      }
    }
    return new SchemaRegistry(docs);
  }

  /** The document of a schema. */
  document(name: SchemaName): JsonSchema {
    const doc = this.documents.get(`${name}.schema.json`);
    if (doc === undefined) throw new BugError('schemas.missing', `schemas/${name}.schema.json is missing`);
    return doc;
  }

  /** Problems of `value` against the named schema; empty when valid. Never throws for bad input. */
  validate(name: SchemaName, value: unknown): FieldProblem[] {
    const v = this.validators.get(name)!;
    return v(value) ? [] : problemsFromAjv(v.errors ?? []);
  }
}
