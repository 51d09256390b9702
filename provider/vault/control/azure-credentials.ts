/**
 * The storage account secrets of `azure` policies (docs/azure-failover.md §2).
 *
 * A policy PUT may carry `azure.accountKey` or `azure.connectionString`. The
 * vault takes them out of the spec before it is stored (so no GET, job,
 * command or log ever holds them), seals them with AES-256-GCM under a key
 * kept in the vault's data folder (`secrets.key`, 32 random bytes, mode
 * 0600) and writes one file per policy (`azure-credentials/<vault>/<policy>.json`,
 * mode 0600). The policy's status shows only whether credentials are set and
 * a fingerprint (HMAC-SHA256 under the same key, 16 hex digits) so that a
 * rotation is visible. Agents fetch the credentials of the items they
 * replicate through an agent-only route and keep them in memory only.
 */

import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NonRecoverableError } from '../../errors';
import type { JsonObject } from '../store/records';

/** The secret part of an azure policy's storage settings. */
export interface AzureSecrets {
  readonly accountKey?: string;
  readonly connectionString?: string;
}

const FORMAT = 1;

/** Seals and opens secrets with a key in the vault's data folder. */
export class SecretBox {
  private constructor(private readonly dir: string, private readonly key: Buffer) {}

  /** Open the box of `dataDir`, creating its key at the first start. Throws if the key file is malformed. */
  static open(dataDir: string): SecretBox {
    const file = path.join(dataDir, 'secrets.key');
    let key: Buffer;
    try {
      key = fs.readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      key = randomBytes(32);
      // wx: two vaults starting on one folder never overwrite each other's key.
      fs.writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    }
    if (key.length !== 32) {
      throw new NonRecoverableError('vault.secretKeyCorrupt', `${file} is not a 32-byte key`, {
        hint: 'restore the file from the backup of the data folder; without it the stored storage credentials must be given again (PUT the policies)',
      });
    }
    return new SecretBox(dataDir, key);
  }

  /** Non-reversible fingerprint of secrets, for display and change detection. */
  fingerprint(s: AzureSecrets): string {
    return createHmac('sha256', this.key).update(JSON.stringify([s.accountKey ?? null, s.connectionString ?? null])).digest('hex').slice(0, 16);
  }

  /** Store the secrets of a policy (replacing the previous ones). */
  putAzure(vaultKey: string, policy: string, s: AzureSecrets): void {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`${vaultKey}/${policy.toLowerCase()}`));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(s), 'utf8'), cipher.final()]);
    const body = JSON.stringify({ format: FORMAT, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), sealed: sealed.toString('base64') });
    const file = this.fileOf(vaultKey, policy);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, body, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  /** The secrets of a policy, or undefined when none were given. Throws `vault.secretCorrupt` if the file cannot be opened. */
  getAzure(vaultKey: string, policy: string): AzureSecrets | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.fileOf(vaultKey, policy), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const o = JSON.parse(text) as { format: number; iv: string; tag: string; sealed: string };
      if (o.format !== FORMAT) throw new Error(`format ${String(o.format)}`);
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(o.iv, 'base64'));
      d.setAAD(Buffer.from(`${vaultKey}/${policy.toLowerCase()}`));
      d.setAuthTag(Buffer.from(o.tag, 'base64'));
      const plain = Buffer.concat([d.update(Buffer.from(o.sealed, 'base64')), d.final()]).toString('utf8');
      return JSON.parse(plain) as AzureSecrets;
    } catch {
      throw new NonRecoverableError('vault.secretCorrupt', `the stored storage credentials of policy '${policy}' cannot be opened`, {
        hint: 'PUT the policy again with azure.accountKey or azure.connectionString',
      });
    }
  }

  /** Forget a policy's secrets. Idempotent. */
  deleteAzure(vaultKey: string, policy: string): void {
    fs.rmSync(this.fileOf(vaultKey, policy), { force: true });
  }

  private fileOf(vaultKey: string, policy: string): string {
    const safe = (s: string): string => encodeURIComponent(s.toLowerCase()).replace(/\./g, '%2E');
    return path.join(this.dir, 'azure-credentials', safe(vaultKey), `${safe(policy)}.json`);
  }
}

/**
 * Split a policy spec into what is stored and the secrets it carried. The
 * spec is returned unchanged (same object) when it has none.
 */
export function takeAzureSecrets(spec: JsonObject): { readonly spec: JsonObject; readonly secrets: AzureSecrets | undefined } {
  const azure = spec.azure;
  if (typeof azure !== 'object' || azure === null || Array.isArray(azure)) return { spec, secrets: undefined };
  const { accountKey, connectionString, ...rest } = azure;
  if (accountKey === undefined && connectionString === undefined) return { spec, secrets: undefined };
  const secrets: AzureSecrets = {
    ...(typeof accountKey === 'string' ? { accountKey } : {}),
    ...(typeof connectionString === 'string' ? { connectionString } : {}),
  };
  return { spec: { ...spec, azure: rest }, secrets };
}
