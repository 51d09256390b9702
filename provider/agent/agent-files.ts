/**
 * The host agent's data folder (docs/agent.md §2) and how its files are
 * written: atomically (temp file, fsync, rename, fsync of the folder), and
 * secrets with mode 0600 in a folder of mode 0700. A secret file that group
 * or others may read is refused rather than used.
 *
 * ```
 * <data-dir>/                    mode 0700
 *   identity.json                vault, host, site, uid, intervals (not secret)
 *   agent-token                  the agent's bearer token          0600
 *   agent.key                    its private key (PEM, EC P-256)   0600
 *   agent.crt                    its certificate from the vault CA
 *   ca.crt                       the vault CA certificate: the only trust anchor for peers
 *   items/<itemUid>.json         one record per replication relationship (item-records.ts)
 *   items/<itemUid>/<disk>.replication.json   replication progress of a source disk
 *   commands/<id>.json           commands taken and not yet reported finished (command-journal.ts)
 *   replicas/                    the replica store (recovery role; docs/replica-format.md)
 *   lab/                         the lab hypervisor's VMs (docs/lab.md)
 *   control.sock                 the local control socket (control-server.ts)
 * ```
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../atomic-file';
import { NonRecoverableError } from '../errors';

export { writeFileAtomic };

/** Paths inside one agent data folder. All absolute. */
export interface AgentPaths {
  readonly root: string;
  readonly identity: string;
  readonly token: string;
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly itemsDir: string;
  readonly commandsDir: string;
  readonly replicasDir: string;
  readonly labDir: string;
  readonly controlSocket: string;
}

/** The layout of the data folder at `root`. Pure. */
export function agentPaths(root: string): AgentPaths {
  const r = path.resolve(root);
  return {
    root: r,
    identity: path.join(r, 'identity.json'),
    token: path.join(r, 'agent-token'),
    key: path.join(r, 'agent.key'),
    cert: path.join(r, 'agent.crt'),
    ca: path.join(r, 'ca.crt'),
    itemsDir: path.join(r, 'items'),
    commandsDir: path.join(r, 'commands'),
    replicasDir: path.join(r, 'replicas'),
    labDir: path.join(r, 'lab'),
    controlSocket: path.join(r, 'control.sock'),
  };
}

/** Create the data folder (mode 0700) and its items folder. Idempotent. */
export async function ensureDataDir(paths: AgentPaths): Promise<void> {
  await fs.mkdir(paths.root, { recursive: true, mode: 0o700 });
  await fs.chmod(paths.root, 0o700);
  await fs.mkdir(paths.itemsDir, { recursive: true, mode: 0o700 });
}

/**
 * Read a secret file; `undefined` if it does not exist. Throws
 * `NonRecoverableError` `agent.secretFileInsecure` if group or others may
 * read or write it (the secret may have leaked: the operator decides).
 */
export async function readSecretFile(file: string): Promise<string | undefined> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if ((st.mode & 0o077) !== 0) {
    throw new NonRecoverableError('agent.secretFileInsecure', `${file} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)})`, {
      where: { file },
      hint: `run \`chmod 600 ${file}\` if nobody else could have read it; otherwise register the host again with a fresh data folder`,
    });
  }
  return (await fs.readFile(file, 'utf8')).trim();
}

/** Read a file that may be missing. */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
