/**
 * Loading a protection file (docs/protection-file.md): YAML text → JSON data
 * with positions → the schema of schemas/protection.schema.json (the vault's
 * own definitions) → names and references → the model. Every problem is a
 * value naming file, line, column and JSON path; nothing here throws for bad
 * input except `loadProtectionFile`, which throws one InvalidInputError
 * carrying them all.
 */

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../errors';
import { checkProtection } from './checks';
import { buildModel, PROTECTION_API_VERSION, type ProtectionDocument, type ProtectionModel } from './model';
import { compareProblems, formatProblems, type CodedProblem, type ProtectionProblem } from './problem';
import { defaultProtectionSchema, type ProtectionSchema } from './protection-schema';
import { readYaml } from './yaml-source';

/** Files above this size are refused before parsing. */
export const MAX_PROTECTION_FILE_BYTES = 4 * 1024 * 1024;

export interface ProtectionLoadOptions {
  /** The compiled schema to validate with. @default the package's schemas/ (loaded once) */
  readonly schema?: ProtectionSchema;
}

/** The outcome of reading a protection file: its problems, and the model when there are none. */
export interface ProtectionResult {
  /** In file order (line, column, path). Empty exactly when `model` is set. */
  readonly problems: readonly ProtectionProblem[];
  readonly model?: ProtectionModel;
}

/**
 * Parse and check the text of a protection file; `file` names it in
 * problems. Pure apart from loading the schemas once; never throws for bad
 * input (a missing or broken schemas/ folder is a `BugError`).
 *
 * Order: syntax errors stop everything (the structure may be misread); an
 * empty document or another `apiVersion` stops with that one problem;
 * otherwise schema and reference problems are reported together.
 */
export function parseProtection(text: string, file: string, options: ProtectionLoadOptions = {}): ProtectionResult {
  const schema = options.schema ?? defaultProtectionSchema();
  const source = readYaml(text);
  const place = (p: CodedProblem): ProtectionProblem => {
    const { atKey, showActual, ...rest } = p;
    const actual = showActual === true ? source.textAt(p.path) : undefined;
    return { ...rest, file, ...source.locate(p.path, atKey === true), ...(actual === undefined ? {} : { actual }) };
  };
  const finish = (problems: ProtectionProblem[]): ProtectionResult => ({ problems: problems.sort(compareProblems) });

  if (source.data === undefined && source.problems.length > 0) {
    return finish(source.problems.map((p) => ({ ...p, file })));
  }
  if (source.data === undefined) {
    return finish([{ code: 'protection.empty', file, line: 1, column: 1, path: '', message: `the file has no document; it starts with apiVersion: ${PROTECTION_API_VERSION}` }]);
  }
  const data = source.data;
  if (typeof data === 'object' && data !== null && !Array.isArray(data) && 'apiVersion' in data && data.apiVersion !== PROTECTION_API_VERSION) {
    return finish([place({
      code: 'protection.unsupportedVersion', path: '/apiVersion', showActual: true, allowed: [PROTECTION_API_VERSION],
      message: `this release reads apiVersion ${PROTECTION_API_VERSION} only`,
    })]);
  }

  const dataProblems: ProtectionProblem[] = source.problems.map((p) => ({ ...p, file }));
  const taken = new Set(dataProblems.map((p) => p.path));
  const describe = (path: string): string => `line ${source.locate(path).line}`;
  const found = [...withoutEchoes(schema.validate(data)), ...checkProtection(data, { describe })]
    // A value the YAML layer already refused (an infinite number) gets no second problem.
    .filter((p) => !taken.has(p.path))
    .map(place);
  const problems = [...dataProblems, ...found];
  if (problems.length > 0) return finish(problems);
  return { problems: [], model: buildModel(data as ProtectionDocument) };
}

/**
 * Without the problems that restate another at the same path with a
 * condition added ("must be an array when target is not 'azure'" next to
 * "must be an array"): the unconditional one says it all.
 */
function withoutEchoes(problems: readonly CodedProblem[]): CodedProblem[] {
  return problems.filter((p) => !problems.some((q) => q !== p && q.path === p.path && p.message.startsWith(`${q.message} when `)));
}

function unreadable(file: string, e: unknown): ProtectionResult {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : undefined;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : e instanceof Error ? e.message : String(e);
  return { problems: [{ code: 'protection.unreadable', file, path: '', message: `cannot read the file: ${why}` }] };
}

function tooLarge(file: string, size: number): ProtectionResult {
  return { problems: [{ code: 'protection.tooLarge', file, path: '', message: `the file is ${size} bytes; protection files are limited to ${MAX_PROTECTION_FILE_BYTES} bytes` }] };
}

function decode(file: string, bytes: Buffer, options: ProtectionLoadOptions): ProtectionResult {
  if (bytes.length > MAX_PROTECTION_FILE_BYTES) return tooLarge(file, bytes.length);
  return parseProtection(bytes.toString('utf8'), file, options);
}

/**
 * Read and check a protection file: `lifeboat validate FILE` prints
 * `formatProblems(result.problems)` and exits 1 when there are any. An
 * unreadable or oversized file is a problem too (code
 * `protection.unreadable`, `protection.tooLarge`), never an exception.
 */
export async function validateProtectionFile(path: string, options: ProtectionLoadOptions = {}): Promise<ProtectionResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    return unreadable(path, e);
  }
  return decode(path, bytes, options);
}

/** As `validateProtectionFile`, synchronously (for Pulumi programs written without `async`). */
export function validateProtectionFileSync(path: string, options: ProtectionLoadOptions = {}): ProtectionResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    return unreadable(path, e);
  }
  return decode(path, bytes, options);
}

/** The error for a file with problems: every problem formatted in the message, the first as `where`, all in `details.problems`. */
export function protectionFileError(path: string, problems: readonly ProtectionProblem[]): InvalidInputError {
  const first = problems[0];
  return new InvalidInputError(
    'protection.invalid',
    `${path}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${formatProblems(problems)}`,
    {
      hint: `fix each problem listed; \`lifeboat validate ${path}\` checks the file without deploying`,
      ...(first === undefined ? {} : {
        where: { file: first.file, path: first.path, ...(first.line === undefined ? {} : { line: first.line, column: first.column ?? 1 }) },
      }),
      details: { problems },
    },
  );
}

/**
 * The model of a protection file. Throws `InvalidInputError`
 * (`protection.invalid`) listing every problem if the file is unreadable or
 * invalid; nothing else for bad input. Reads only; idempotent.
 */
export async function loadProtectionFile(path: string, options: ProtectionLoadOptions = {}): Promise<ProtectionModel> {
  const result = await validateProtectionFile(path, options);
  if (result.model === undefined) throw protectionFileError(path, result.problems);
  return result.model;
}

/** As `loadProtectionFile`, synchronously. */
export function loadProtectionFileSync(path: string, options: ProtectionLoadOptions = {}): ProtectionModel {
  const result = validateProtectionFileSync(path, options);
  if (result.model === undefined) throw protectionFileError(path, result.problems);
  return result.model;
}
