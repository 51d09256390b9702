/**
 * `lifeboat validate FILE [--output json]` (docs/operations.md §4): the
 * checks `loadProtection` runs on a protection file (provider/yaml: syntax,
 * the schema, names and references), without a vault and without Pulumi,
 * for editors and pre-merge jobs.
 *
 * Prints every problem as `file:line:col: /json/path: what is wrong (what
 * would be valid)`, a syntax error with its line and a caret, and exits 1;
 * a valid file prints one summary line and exits 0. Bad input never raises:
 * a missing file, a folder, a device or pipe, binary content, a file over
 * the size limit are problems of the file like any other. Reads only.
 */

import { isUtf8 } from 'node:buffer';
import { open, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { formatProblems, MAX_PROTECTION_FILE_BYTES, parseProtection, type ProtectionModel, type ProtectionProblem } from '../../yaml';
import { type Command, OUTPUT_OPTION, outputFormat, parse } from '../command';
import { EXIT, UsageError } from '../exit-codes';
import { json } from '../output';

const USAGE = 'lifeboat validate FILE [--output json]';

export const validate: Command = async (args, ctx) => {
  const { values, positionals } = parse(args, OUTPUT_OPTION, USAGE, 1);
  const format = outputFormat(values);
  const file = positionals[0];
  if (file === undefined || file === '') throw new UsageError('validate needs the protection file to check', `usage: ${USAGE}`);
  const { problems, model } = await check(file, path.resolve(ctx.cwd, file));
  if (format === 'json') {
    ctx.out.line(json({ file, valid: model !== undefined, problems, ...(model === undefined ? {} : { summary: counts(model) }) }));
  } else if (model === undefined) {
    ctx.out.line(formatProblems(problems));
    ctx.out.line(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  } else {
    ctx.out.line(`${file}: valid (vault '${model.vault.name}': ${describeCounts(counts(model))})`);
  }
  return model === undefined ? EXIT.failed : EXIT.ok;
};

/**
 * Read the file as the loader would, refusing first what the loader should
 * never be handed: something that is not a regular file (a FIFO would block
 * a read forever) and anything over the limit (read no further than it).
 */
async function check(file: string, absolute: string): Promise<{ problems: readonly ProtectionProblem[]; model?: ProtectionModel }> {
  const whole = (message: string, code = 'protection.unreadable'): { problems: ProtectionProblem[] } => ({ problems: [{ code, file, path: '', message }] });
  let size: number;
  try {
    const s = await stat(absolute);
    if (s.isDirectory()) return whole('cannot read the file: is a directory');
    if (!s.isFile()) return whole('cannot read the file: not a regular file (a device, socket or pipe)');
    size = s.size;
  } catch (e) {
    return whole(`cannot read the file: ${reason(e)}`);
  }
  if (size > MAX_PROTECTION_FILE_BYTES) {
    return whole(`the file is ${size} bytes; protection files are limited to ${MAX_PROTECTION_FILE_BYTES} bytes`, 'protection.tooLarge');
  }
  let bytes: Buffer;
  try {
    const handle = await open(absolute, 'r');
    try {
      // One byte over the limit tells a file that grew since stat.
      const buffer = Buffer.alloc(MAX_PROTECTION_FILE_BYTES + 1);
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      bytes = buffer.subarray(0, filled);
    } finally {
      await handle.close();
    }
  } catch (e) {
    return whole(`cannot read the file: ${reason(e)}`);
  }
  if (bytes.length > MAX_PROTECTION_FILE_BYTES) {
    return whole(`the file is over ${MAX_PROTECTION_FILE_BYTES} bytes; protection files are limited to ${MAX_PROTECTION_FILE_BYTES} bytes`, 'protection.tooLarge');
  }
  const text = bytes.toString('utf8');
  const binaryAt = bytes.indexOf(0) >= 0 ? text.indexOf('\u0000') : isUtf8(bytes) ? -1 : text.indexOf('\uFFFD');
  if (binaryAt >= 0) {
    const before = text.slice(0, binaryAt);
    return {
      problems: [{
        code: 'protection.binary', file, line: before.split('\n').length, column: binaryAt - before.lastIndexOf('\n'), path: '',
        message: 'the file is binary, not UTF-8 text (a NUL byte or an invalid UTF-8 sequence here)',
      }],
    };
  }
  return parseProtection(text, file);
}

function reason(e: unknown): string {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : undefined;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EISDIR': return 'is a directory';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'ENOTDIR': return 'a folder in its path is a file';
    case 'ELOOP': return 'too many symbolic links';
    default: return e instanceof Error ? e.message : String(e);
  }
}

interface Counts {
  readonly sites: number;
  readonly policies: number;
  readonly networkMappings: number;
  readonly protectedVms: number;
  readonly recoveryPlans: number;
}

function counts(m: ProtectionModel): Counts {
  return { sites: m.sites.length, policies: m.policies.length, networkMappings: m.mappings.length, protectedVms: m.protectedVms.length, recoveryPlans: m.plans.length };
}

function describeCounts(c: Counts): string {
  const n = (k: number, one: string, many: string): string => `${k} ${k === 1 ? one : many}`;
  return [
    n(c.sites, 'site', 'sites'), n(c.policies, 'policy', 'policies'), n(c.networkMappings, 'network mapping', 'network mappings'),
    n(c.protectedVms, 'protected VM', 'protected VMs'), n(c.recoveryPlans, 'recovery plan', 'recovery plans'),
  ].join(', ');
}
