/**
 * What the CLI prints: tables for people, JSON for scripts (`--output
 * json`), progress bars when stdout is a terminal, and errors as "what,
 * where, what to do" on stderr. Pure formatting besides the `Output` sink,
 * so commands are tested by capturing lines.
 */

import { LifeboatError, describe } from '../errors';
import { formatBytes, formatDuration } from '../units';

/** Where a command writes. */
export interface Output {
  /** One line (or block) on stdout. */
  line(text: string): void;
  /** One line on stderr. */
  error(text: string): void;
  /** Stdout is a terminal: progress bars and redrawing are allowed. */
  readonly isTTY: boolean;
  /** Replace what the previous `redraw` printed (a terminal); else print. */
  redraw(text: string): void;
}

/** The process's stdout and stderr. */
export function processOutput(): Output {
  let lastLines = 0;
  const tty = process.stdout.isTTY === true;
  return {
    isTTY: tty,
    line: (t) => process.stdout.write(`${t}\n`),
    error: (t) => process.stderr.write(`${t}\n`),
    redraw: (t) => {
      if (tty && lastLines > 0) process.stdout.write(`\x1b[${lastLines}A\x1b[J`);
      process.stdout.write(`${t}\n`);
      lastLines = t.split('\n').length;
    },
  };
}

export type OutputFormat = 'table' | 'json';

/** A table with a header row, columns padded to the widest cell. Numbers-like columns may be right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], options: { readonly rightAlign?: readonly number[] } = {}): string {
  const widths = headers.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const fmt = (cells: readonly string[]): string => cells.map((c, i) => {
    const pad = ' '.repeat(Math.max(0, widths[i]! - visibleLength(c)));
    return options.rightAlign?.includes(i) === true ? pad + c : c + pad;
  }).join('  ').trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join('\n');
}

/** `[#####-----] 50%` of the given width. */
export function progressBar(percent: number, width = 20): string {
  const p = Math.max(0, Math.min(100, Number.isFinite(percent) ? percent : 0));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.floor(p)).padStart(3)}%`;
}

/** JSON for scripts: stable, indented. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** `3 min ago`, `in 20 s`, or `-` when unknown. */
export function ago(iso: string | undefined, now: number): string {
  if (iso === undefined) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '-';
  const d = now - t;
  return d >= 0 ? `${formatDuration(d)} ago` : `in ${formatDuration(-d)}`;
}

export function seconds(s: number | undefined): string {
  return s === undefined ? '-' : formatDuration(s * 1000);
}

export function bytes(n: number | undefined): string {
  return n === undefined ? '-' : formatBytes(n);
}

/** The first 8 characters of a uuid-like id after its prefix (`job-1a2b3c4d`). */
export function shortId(id: string): string {
  const m = /^([a-z]+-)([0-9a-f]{8})-[0-9a-f]{4}-/.exec(id);
  return m === null ? id : `${m[1]}${m[2]}`;
}

/**
 * An error for people: what happened, where (file, JSON path, field
 * problems) and what to do (the hint), one item per line.
 */
export function errorText(e: unknown): string {
  if (!LifeboatError.isInstance(e)) return `error: ${describe(e)}`;
  const lines = [`error: ${e.message} [${e.code}]`];
  const problems = (e.details as { problems?: { path: string; message: string; allowed?: unknown[]; expected?: string }[] }).problems;
  if (Array.isArray(problems)) {
    for (const p of problems) {
      const valid = p.allowed !== undefined ? ` (allowed: ${p.allowed.map((a) => JSON.stringify(a)).join(', ')})` : p.expected !== undefined ? ` (expected: ${p.expected})` : '';
      lines.push(`  at ${p.path === '' ? '(body)' : p.path}: ${p.message}${valid}`);
    }
  } else if (e.where !== undefined) {
    const w = e.where;
    const at = [w.file, w.line === undefined ? undefined : `${w.line}${w.column === undefined ? '' : `:${w.column}`}`].filter((x) => x !== undefined).join(':');
    lines.push(`  at ${[at === '' ? undefined : at, w.path].filter((x) => x !== undefined).join(' ')}`);
  }
  if (e.hint !== undefined) lines.push(`  hint: ${e.hint}`);
  return lines.join('\n');
}

function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}
