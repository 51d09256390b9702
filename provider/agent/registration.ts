/**
 * Registration of the host with its vault, once (docs/agent.md §3): the
 * agent makes an EC P-256 key pair, proves possession by signing the
 * registration text, and receives its agent token, its certificate issued by
 * the vault CA and the CA certificate. Everything is persisted in the data
 * folder (secrets mode 0600) before the agent uses it, so a restarted agent
 * registers again only if its identity is missing or belongs to another
 * vault, host or site.
 */

import { generateKeyPairSync, sign } from 'node:crypto';
import { InvalidInputError } from '../errors';
import { type AgentPaths, ensureDataDir, readOptional, readSecretFile, writeFileAtomic } from './agent-files';
import { type Registration, type VaultChannel } from './vault-channel';

/** What the agent knows about itself once registered. */
export interface AgentIdentity {
  readonly vaultUrl: string;
  readonly vault: string;
  readonly host: string;
  readonly site: string;
  /** Changes when the host registers again. */
  readonly uid: string;
  readonly token: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly heartbeatIntervalSeconds: number;
  readonly commandLeaseSeconds: number;
  readonly registeredAt: string;
}

/** identity.json: the part of the identity that is not secret. */
interface IdentityFile {
  readonly version: 1;
  readonly vaultUrl: string;
  readonly vault: string;
  readonly host: string;
  readonly site: string;
  readonly uid: string;
  readonly heartbeatIntervalSeconds: number;
  readonly commandLeaseSeconds: number;
  readonly registeredAt: string;
}

export interface RegisterOptions {
  readonly paths: AgentPaths;
  readonly channel: VaultChannel;
  readonly host: string;
  readonly site: string;
  /** Reads the registration key, only when registering. */
  readonly registrationKey: () => Promise<string>;
  /** Addresses other agents reach this host at (certificate SANs). */
  readonly addresses: readonly string[];
  /** The replication port of a recovery-site host. @default none */
  readonly replicationPort?: number;
  readonly agentVersion: string;
}

/** The text the agent signs (docs/vault-api.md §8): names in lower case. */
export function registrationProofText(vault: string, host: string, site: string): string {
  return `lifeboat-register/v1\n${vault.toLowerCase()}\n${host.toLowerCase()}\n${site.toLowerCase()}`;
}

/** The persisted identity, if complete and of this vault, host and site; else `undefined`. */
export async function loadIdentity(paths: AgentPaths, expect: { readonly vault: string; readonly host: string; readonly site: string }): Promise<AgentIdentity | undefined> {
  const text = await readOptional(paths.identity);
  if (text === undefined) return undefined;
  let id: IdentityFile;
  try {
    id = JSON.parse(text) as IdentityFile;
  } catch {
    return undefined;
  }
  const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  if (id.version !== 1 || !same(id.vault, expect.vault) || !same(id.host, expect.host) || !same(id.site, expect.site)) return undefined;
  const token = await readSecretFile(paths.token);
  const keyPem = await readSecretFile(paths.key);
  const certPem = await readOptional(paths.cert);
  const caPem = await readOptional(paths.ca);
  if (token === undefined || keyPem === undefined || certPem === undefined || caPem === undefined) return undefined;
  return { ...id, token, keyPem, certPem, caPem };
}

/**
 * The agent's identity: the persisted one when it matches, else a new
 * registration. Throws what registration throws (a wrong key:
 * `auth.registrationKeyInvalid`; a missing site: `request.invalid` with
 * `where.path` `/site`); then nothing is written. If persisting fails after
 * the vault answered, the next start registers again (the vault then
 * replaces the token it issued).
 */
export async function ensureRegistered(o: RegisterOptions): Promise<AgentIdentity> {
  await ensureDataDir(o.paths);
  const existing = await loadIdentity(o.paths, { vault: o.channel.vault, host: o.host, site: o.site });
  if (existing !== undefined) return { ...existing, vaultUrl: o.channel.url };
  const key = (await o.registrationKey()).trim();
  if (key === '') {
    throw new InvalidInputError('agent.registrationKeyEmpty', 'the registration key file is empty', {
      hint: 'put the vault\'s registration key in the file (`GET /v1/vaults/{vault}/registrationKey` with the admin token)',
    });
  }
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const proof = sign('sha256', Buffer.from(registrationProofText(o.channel.vault, o.host, o.site), 'utf8'), pair.privateKey).toString('base64');
  const reg: Registration = await o.channel.register(key, {
    hostname: o.host,
    site: o.site,
    publicKey,
    proof,
    ...(o.addresses.length === 0 ? {} : { addresses: [...o.addresses] }),
    ...(o.replicationPort === undefined ? {} : { replicationPort: o.replicationPort }),
    agentVersion: o.agentVersion,
  });
  const identity: IdentityFile = {
    version: 1,
    vaultUrl: o.channel.url,
    vault: reg.vault,
    host: reg.hostId,
    site: o.site,
    uid: reg.uid,
    heartbeatIntervalSeconds: reg.heartbeatIntervalSeconds,
    commandLeaseSeconds: reg.commandLeaseSeconds,
    registeredAt: reg.serverTime,
  };
  // Secrets first, identity.json last: it is what marks the set complete.
  await writeFileAtomic(o.paths.key, keyPem, 0o600);
  await writeFileAtomic(o.paths.token, `${reg.agentToken}\n`, 0o600);
  await writeFileAtomic(o.paths.cert, reg.certificate, 0o644);
  await writeFileAtomic(o.paths.ca, reg.caCertificate, 0o644);
  await writeFileAtomic(o.paths.identity, `${JSON.stringify(identity, null, 2)}\n`, 0o644);
  return { ...identity, token: reg.agentToken, keyPem, certPem: reg.certificate, caPem: reg.caCertificate };
}
