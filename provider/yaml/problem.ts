/**
 * Problems of a protection file as values: where (file, line, column, JSON
 * path), what is wrong, what would be valid, under a stable code. The loader
 * never throws for bad input; it returns these, and `formatProblems` prints
 * them for people (docs/protection-file.md §7 lists the codes).
 */

import type { FieldProblem } from '../validation';

/** One problem of a protection file. */
export interface ProtectionProblem extends FieldProblem {
  /** Stable dotted code, e.g. `schema.enum`, `protection.unknownReference`, `yaml.duplicateKey`. */
  readonly code: string;
  /** The file as the caller named it. */
  readonly file: string;
  /** 1-based line; absent for problems of the whole file (unreadable, too large). */
  readonly line?: number;
  /** 1-based column, counted in characters (a tab is one). */
  readonly column?: number;
  /** The offending value as written in the file (`60`, `"abc"`), or `a mapping` / `a sequence`. */
  readonly actual?: string;
  /** For syntax errors: the offending line of the file. */
  readonly sourceLine?: string;
}

/** A problem before it is placed in the file: the code and the field problem. */
export interface CodedProblem extends FieldProblem {
  readonly code: string;
  /** Point at the property's key rather than its value (unknown and duplicate keys). @default false */
  readonly atKey?: boolean;
  /** Show the value as written next to the message. @default false */
  readonly showActual?: boolean;
}

export interface FormatProblemsOptions {
  /** Append each problem's code in brackets. @default false */
  readonly codes?: boolean;
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The caret line under `line` for a 1-based `column`, keeping the line's tabs so that it aligns. */
function caret(line: string, column: number): string {
  const prefix = line.slice(0, Math.max(0, column - 1)).replace(/[^\t]/g, ' ');
  return `${prefix}^`;
}

/**
 * One problem for people:
 * `protection.yaml:12:5: /policies/0/replicationFrequencySeconds: must be one of 30, 300, 900 (got 60)`,
 * followed, for syntax errors, by the offending line and a caret under the
 * column. Pure; never throws.
 */
export function formatProblem(p: ProtectionProblem, options: FormatProblemsOptions = {}): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  const extras: string[] = [];
  if (p.actual !== undefined) extras.push(`got ${p.actual}`);
  const listed = p.allowed !== undefined && p.allowed.length > 0 && !p.message.includes('one of');
  if (listed) extras.push(`${p.code === 'protection.unknownReference' ? 'known' : 'allowed'}: ${p.allowed!.map(show).join(', ')}`);
  else if (p.expected !== undefined && !p.message.includes(p.expected)) extras.push(`expected ${p.expected}`);
  if (p.code === 'protection.unknownReference' && p.allowed !== undefined && p.allowed.length === 0) extras.push('none declared');
  let text = `${where}: ${p.path === '' ? '' : `${p.path}: `}${p.message}${extras.length === 0 ? '' : ` (${extras.join('; ')})`}`;
  if (options.codes === true) text += ` [${p.code}]`;
  if (p.sourceLine !== undefined && p.line !== undefined) {
    const gutter = String(p.line);
    text += `\n  ${gutter} | ${p.sourceLine}\n  ${' '.repeat(gutter.length)} | ${caret(p.sourceLine, p.column ?? 1)}`;
  }
  return text;
}

/** Every problem, one per line (syntax errors with their source line), in the order given. Pure. */
export function formatProblems(problems: readonly ProtectionProblem[], options: FormatProblemsOptions = {}): string {
  return problems.map((p) => formatProblem(p, options)).join('\n');
}

/** Orders problems as they appear in the file: line, column, then path and message. */
export function compareProblems(a: ProtectionProblem, b: ProtectionProblem): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)
    || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
}
