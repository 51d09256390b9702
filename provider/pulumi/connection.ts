/**
 * How a Lifeboat dynamic provider finds the vault, read at every call (never
 * captured in the serialised provider, never written to state):
 *
 * 1. URL: stack config `lifeboat:vaultUrl`, else `LIFEBOAT_VAULT_URL`.
 * 2. Token: stack config `lifeboat:token` (set it with `--secret`), else
 *    `lifeboat:tokenFile`, else `LIFEBOAT_TOKEN`, else `LIFEBOAT_TOKEN_FILE`.
 *
 * Stack config reaches the provider process through the dynamic provider's
 * `configure` hook (SDK 3.259 passes the whole stack config, secrets
 * decrypted); the environment is the engine's.
 */

import { readFileSync, statSync } from 'node:fs';
import { VaultClient } from '../client';
import { LifeboatError } from '../errors';

/** Where settings come from: the environment and the stack config (`ns:key`). */
export interface ConnectionSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly config: (key: string) => string | undefined;
}

export interface ResolvedConnection {
  readonly client: VaultClient;
  readonly url: string;
  /** e.g. `stack config lifeboat:vaultUrl`, for messages. */
  readonly urlFrom: string;
  readonly tokenFrom: string;
}

export interface ConnectionOptions {
  /** Limit of each API call, ms. @default 30000 */
  readonly timeoutMs?: number;
}

const NO_URL_HINT = 'set the stack config `pulumi config set lifeboat:vaultUrl http://HOST:PORT` or the environment variable LIFEBOAT_VAULT_URL';
const NO_TOKEN_HINT = 'set `pulumi config set --secret lifeboat:token lba_…` or `lifeboat:tokenFile PATH`, or the environment variable LIFEBOAT_TOKEN or LIFEBOAT_TOKEN_FILE (the vault writes admin-token in its data folder)';

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * The client for the current call. Reads a token file if one is named.
 * Throws `LifeboatError` `pulumi.noConnection` (nonRecoverable) naming what
 * to set when the URL or token is missing, the URL is not http(s), or the
 * token file is unreadable or accessible to group or others. Makes no call.
 */
export function resolveConnection(sources: ConnectionSources, options: ConnectionOptions = {}): ResolvedConnection {
  const fromConfig = nonEmpty(sources.config('lifeboat:vaultUrl'));
  const url = fromConfig ?? nonEmpty(sources.env.LIFEBOAT_VAULT_URL);
  if (url === undefined) throw new LifeboatError('pulumi.noConnection', 'nonRecoverable', 'no vault URL for the Lifeboat provider', { hint: NO_URL_HINT });
  const urlFrom = fromConfig !== undefined ? 'stack config lifeboat:vaultUrl' : 'environment LIFEBOAT_VAULT_URL';
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) {
    throw new LifeboatError('pulumi.noConnection', 'nonRecoverable', `the vault URL from ${urlFrom} is not an http(s) URL: ${url}`, { hint: NO_URL_HINT });
  }
  let token: string | undefined;
  let tokenFrom = '';
  const candidates: readonly [string, () => string | undefined][] = [
    ['stack config lifeboat:token', () => nonEmpty(sources.config('lifeboat:token'))],
    ['stack config lifeboat:tokenFile', () => fileToken(nonEmpty(sources.config('lifeboat:tokenFile')), 'lifeboat:tokenFile')],
    ['environment LIFEBOAT_TOKEN', () => nonEmpty(sources.env.LIFEBOAT_TOKEN)],
    ['environment LIFEBOAT_TOKEN_FILE', () => fileToken(nonEmpty(sources.env.LIFEBOAT_TOKEN_FILE), 'LIFEBOAT_TOKEN_FILE')],
  ];
  for (const [from, read] of candidates) {
    token = read();
    if (token !== undefined) {
      tokenFrom = from;
      break;
    }
  }
  if (token === undefined) throw new LifeboatError('pulumi.noConnection', 'nonRecoverable', `no admin token for the vault at ${url}`, { hint: NO_TOKEN_HINT });
  return { client: new VaultClient({ url, token, timeoutMs: options.timeoutMs ?? 30_000 }), url, urlFrom, tokenFrom };
}

function fileToken(file: string | undefined, setting: string): string | undefined {
  if (file === undefined) return undefined;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    throw new LifeboatError('pulumi.noConnection', 'nonRecoverable', `cannot read the token file ${file} named by ${setting}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      hint: 'check the path; the vault writes its admin token to admin-token in its data folder',
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new LifeboatError('pulumi.noConnection', 'nonRecoverable', `the token file ${file} named by ${setting} is accessible to group or others (mode ${(mode & 0o777).toString(8)})`, {
      hint: `run \`chmod 600 ${file}\`; if others may have read it, rotate the token`,
    });
  }
  return nonEmpty(readFileSync(file, 'utf8'));
}
