/**
 * How the operator commands find the vault (docs/operations.md §3): the URL
 * and the admin token file from flags, else from the environment
 * (`LIFEBOAT_VAULT_URL`, `LIFEBOAT_TOKEN_FILE`, `LIFEBOAT_VAULT`), else from
 * the lab's state file (`--lab-dir`, default `.lab` in the current folder).
 * The vault name defaults to the only vault on the server.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { VaultClient } from '../client';
import { UsageError } from './exit-codes';
import { DEFAULT_LAB_DIR, readLabState } from './lab/lab-state';

/** The connection flags every operator command accepts. */
export interface ConnectionFlags {
  /** `--vault URL`. */
  readonly vault?: string;
  /** `--token-file FILE`. */
  readonly tokenFile?: string;
  /** `--vault-name NAME`. */
  readonly vaultName?: string;
  /** `--lab-dir DIR`. */
  readonly labDir?: string;
}

export interface Connection {
  readonly client: VaultClient;
  readonly url: string;
  /** The vault object the command works on. */
  readonly vault: string;
  /** Where the URL came from, for messages. */
  readonly from: 'flag' | 'environment' | 'lab';
}

/** Options of `parseArgs` for the connection flags. */
export const CONNECTION_OPTIONS = {
  vault: { type: 'string' },
  'token-file': { type: 'string' },
  'vault-name': { type: 'string' },
  'lab-dir': { type: 'string' },
} as const;

/** The flags out of parsed values. */
export function connectionFlags(values: Readonly<Record<string, unknown>>): ConnectionFlags {
  const s = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const vault = s('vault');
  const tokenFile = s('token-file');
  const vaultName = s('vault-name');
  const labDir = s('lab-dir');
  return {
    ...(vault === undefined ? {} : { vault }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(vaultName === undefined ? {} : { vaultName }),
    ...(labDir === undefined ? {} : { labDir }),
  };
}

/**
 * Resolve the vault and read the token. Throws `UsageError` when nothing
 * names a vault, `cli.noToken` (exit 5) when no token file is known or it is
 * unreadable or accessible to others, and the client's errors when the
 * vault name must be looked up.
 */
export async function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<Connection> {
  const lab = await readLabState(path.resolve(cwd, flags.labDir ?? DEFAULT_LAB_DIR)).catch(() => undefined);
  let url: string | undefined;
  let from: Connection['from'] = 'flag';
  if (flags.vault !== undefined) url = flags.vault;
  else if (env.LIFEBOAT_VAULT_URL !== undefined && env.LIFEBOAT_VAULT_URL !== '') {
    url = env.LIFEBOAT_VAULT_URL;
    from = 'environment';
  } else if (lab !== undefined) {
    url = lab.vaultUrl;
    from = 'lab';
  }
  if (url === undefined) {
    throw new UsageError('no vault to talk to', 'pass --vault URL and --token-file FILE, set LIFEBOAT_VAULT_URL and LIFEBOAT_TOKEN_FILE, or run `lifeboat lab up` here');
  }
  const tokenFile = flags.tokenFile ?? nonEmpty(env.LIFEBOAT_TOKEN_FILE) ?? lab?.adminTokenFile;
  if (tokenFile === undefined) {
    throw new LifeboatError('cli.noToken', 'nonRecoverable', `no admin token for ${url}`, {
      hint: 'pass --token-file FILE or set LIFEBOAT_TOKEN_FILE (the vault writes admin-token in its data folder)',
    });
  }
  const token = await readTokenFile(tokenFile);
  const client = new VaultClient({ url, token });
  const vault = flags.vaultName ?? nonEmpty(env.LIFEBOAT_VAULT) ?? (from === 'lab' ? lab?.vaultName : undefined) ?? (await onlyVault(client, url));
  return { client, url, vault, from };
}

/** Read a token file, refusing one that group or others may read. */
export async function readTokenFile(file: string): Promise<string> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    throw new LifeboatError('cli.noToken', 'nonRecoverable', `cannot read the token file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      where: { file },
      hint: 'check the path; the vault writes its admin token to admin-token in its data folder',
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new LifeboatError('cli.noToken', 'nonRecoverable', `the token file ${file} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)})`, {
      where: { file },
      hint: `run \`chmod 600 ${file}\`; if others may have read it, rotate the token`,
    });
  }
  return (await fs.readFile(file, 'utf8')).trim();
}

async function onlyVault(client: VaultClient, url: string): Promise<string> {
  const vaults = await client.listVaults();
  if (vaults.length === 1) return vaults[0]!.name;
  throw new UsageError(
    vaults.length === 0 ? `the vault server at ${url} has no vault yet` : `the vault server at ${url} has ${vaults.length} vaults: ${vaults.map((v) => v.name).join(', ')}`,
    vaults.length === 0 ? 'create one (PUT /v1/vaults/NAME, or a Pulumi Vault resource)' : 'choose one with --vault-name NAME or LIFEBOAT_VAULT',
  );
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
