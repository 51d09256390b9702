/**
 * What every CLI command gets, and argument parsing on `node:util`'s
 * `parseArgs` with the CLI's usage errors (exit code 2).
 */

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './exit-codes';
import { type Output, type OutputFormat } from './output';

/** The world of one command run. */
export interface CliContext {
  readonly out: Output;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Aborted on Ctrl-C (SIGINT). */
  readonly signal: AbortSignal;
}

/** A command: parses its own arguments, returns the exit code. */
export type Command = (args: readonly string[], ctx: CliContext) => Promise<number>;

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parse `args` with `options`; positionals are allowed up to `maxPositionals`.
 * Throws `UsageError` naming the bad option and the command's usage line.
 */
export function parse<O extends Options>(args: readonly string[], options: O, usage: string, maxPositionals = 0): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...args], options, allowPositionals: maxPositionals > 0, strict: true });
    if (r.positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${r.positionals[maxPositionals]}`, `usage: ${usage}`);
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(e instanceof Error ? e.message.replace(/\. To specify.*$/s, '') : String(e), `usage: ${usage}`);
  }
}

/** `--output table|json`. */
export const OUTPUT_OPTION = { output: { type: 'string', short: 'o' } } as const;

export function outputFormat(values: Readonly<Record<string, unknown>>): OutputFormat {
  const v = values.output;
  if (v === undefined || v === 'table') return 'table';
  if (v === 'json') return 'json';
  throw new UsageError(`--output ${String(v)} is not a format`, 'use --output table (the default) or --output json');
}

/** A whole number within bounds, from an option value. */
export function intOption(values: Readonly<Record<string, unknown>>, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} ${String(v)} is not a whole number between ${min} and ${max}`);
  return n;
}

/** A required string option. */
export function requiredOption(values: Readonly<Record<string, unknown>>, name: string, usage: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`, `usage: ${usage}`);
  return v;
}
