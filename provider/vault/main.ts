/**
 * Entry of `lifeboat vault serve`: start the vault, say where it listens and
 * where the admin token is (never the token itself), stop cleanly on SIGINT
 * or SIGTERM. Runnable directly: `node dist/provider/vault/main.js
 * --data-dir DIR [--host 127.0.0.1] [--port 0]`.
 */

import { describe, InvalidInputError } from '../errors';
import { createVaultServer, type VaultServer, type VaultServerOptions } from './server';

export interface VaultMainOptions {
  readonly dataDir: string;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** Where the start-up lines go. @default process.stdout */
  readonly out?: (line: string) => void;
  /** Stop on SIGINT/SIGTERM. @default true */
  readonly handleSignals?: boolean;
}

/**
 * Start the vault and print its endpoint and token file. Resolves with the
 * running server. Throws what `createVaultServer` throws.
 */
export async function runVault(options: VaultMainOptions): Promise<VaultServer> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const serverOptions: VaultServerOptions = {
    dataDir: options.dataDir,
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
  };
  const server = await createVaultServer(serverOptions);
  out(`vault listening on ${server.url}`);
  out(`admin token in ${server.adminTokenFile} (mode 0600); API description at ${server.url}/openapi.json`);
  if (options.handleSignals ?? true) {
    const stop = (): void => {
      out('vault stopping');
      void server.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  return server;
}

/** Parse `--data-dir DIR --host H --port N`. Throws InvalidInputError for anything else. */
export function parseVaultArgs(argv: readonly string[]): VaultMainOptions {
  let dataDir: string | undefined;
  let host: string | undefined;
  let port: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    const need = (): string => {
      if (value === undefined) throw new InvalidInputError('cli.missingValue', `${arg} needs a value`);
      i++;
      return value;
    };
    if (arg === '--data-dir') dataDir = need();
    else if (arg === '--host') host = need();
    else if (arg === '--port') {
      const v = need();
      port = Number(v);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidInputError('cli.badPort', `--port ${v} is not a port number`, { hint: 'use 0-65535 (0 picks a free port)' });
    } else throw new InvalidInputError('cli.unknownOption', `unknown option ${arg}`, { hint: 'options: --data-dir DIR, --host ADDRESS, --port N' });
  }
  if (dataDir === undefined) throw new InvalidInputError('cli.missingOption', '--data-dir is required', { hint: 'the folder that holds vault.db and admin-token' });
  return { dataDir, ...(host === undefined ? {} : { host }), ...(port === undefined ? {} : { port }) };
}

if (require.main === module) {
  try {
    void runVault(parseVaultArgs(process.argv.slice(2))).catch((e: unknown) => {
      process.stderr.write(`error: ${describe(e)}\n`);
      process.exit(1);
    });
  } catch (e) {
    process.stderr.write(`error: ${describe(e)}\n`);
    process.exit(2);
  }
}
