/**
 * Vaults: their settings, their registration key (a secret agents present to
 * register; rotating it makes the old one stop working at once) and their
 * certificate authority (made when the vault is created; never rotated by
 * this release).
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createCertificateAuthority } from '../ca/certificate-authority';
import type { JsonObject, StoredObject, VaultSecrets } from '../store/records';
import type { PutResult } from '../store/sqlite/sqlite-store';
import { iso, type VaultServices } from './services';
import type { VaultSpec } from './specs';
import { notFound, VaultError } from './vault-error';

/** A new random secret with a recognisable prefix (secret scanners look for them). */
export function newSecret(prefix: 'lba' | 'lbh' | 'lbr'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** Equality of two secrets in time independent of where they differ (hashes first, so lengths match too). */
export function secretEquals(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/** Effective settings of a vault. */
export interface VaultSettings {
  readonly heartbeatIntervalMs: number;
  readonly missedHeartbeatsBeforeDisconnected: number;
  readonly certificateValidityDays: number;
}

export function vaultSettings(v: StoredObject): VaultSettings {
  const spec = v.spec as unknown as VaultSpec;
  return {
    heartbeatIntervalMs: (spec.heartbeatIntervalSeconds ?? 30) * 1000,
    missedHeartbeatsBeforeDisconnected: spec.missedHeartbeatsBeforeDisconnected ?? 3,
    certificateValidityDays: spec.certificateValidityDays ?? 365,
  };
}

/** The vault object, or a 404. */
export function requireVault(services: VaultServices, vault: string): StoredObject {
  const v = services.store.getObject(vault, 'vault', vault);
  if (v === undefined) throw notFound('vault', vault);
  return v;
}

/**
 * Create or update a vault. Creating also makes its registration key and CA
 * (in the same transaction: a vault never exists without them). The same
 * settings again change nothing.
 */
export function putVault(services: VaultServices, name: string, spec: JsonObject): PutResult {
  return services.store.transaction(() => {
    const now = services.clock.now();
    const result = services.store.putObject(name, 'vault', name, spec, [], now, {});
    if (result.created) {
      const ca = createCertificateAuthority({ commonName: `Lifeboat vault ${name} CA`, clock: services.clock });
      const secrets: VaultSecrets = {
        registrationKey: newSecret('lbr'),
        registrationKeyRotatedAt: now,
        caPrivateKeyPem: ca.privateKeyPem,
        caCertificatePem: ca.certificatePem,
      };
      services.store.putVaultSecrets(name, secrets);
      const status = vaultStatusOf(secrets);
      return { ...result, object: services.store.updateStatus(name, 'vault', name, () => status, now)! };
    }
    return result;
  });
}

function vaultStatusOf(s: VaultSecrets): JsonObject {
  return { registrationKeyRotatedAt: iso(s.registrationKeyRotatedAt), certificateAuthority: { certificate: s.caCertificatePem } };
}

/** Delete an empty vault and its secrets, jobs and commands. 409 while it holds objects. */
export function deleteVault(services: VaultServices, name: string): void {
  services.store.transaction(() => {
    requireVault(services, name);
    const n = services.store.countVaultContents(name);
    if (n > 0) {
      throw new VaultError(409, 'vault.notEmpty', `vault '${name}' still holds ${n} object(s)`, {
        hint: 'delete its protected items, plans, mappings, policies, hosts and sites first',
      });
    }
    services.store.deleteObject(name, 'vault', name);
    services.store.deleteVaultSecrets(name);
  });
}

/** The vault's secrets; 404 if the vault does not exist. */
export function vaultSecrets(services: VaultServices, vault: string): VaultSecrets {
  requireVault(services, vault);
  const s = services.store.getVaultSecrets(vault);
  if (s === undefined) throw new VaultError(500, 'vault.secretsMissing', `vault '${vault}' has no registration key or CA`);
  return s;
}

/** Replace the registration key. The old key stops working when this returns. */
export function rotateRegistrationKey(services: VaultServices, vault: string): VaultSecrets {
  return services.store.transaction(() => {
    const old = vaultSecrets(services, vault);
    const next: VaultSecrets = { ...old, registrationKey: newSecret('lbr'), registrationKeyRotatedAt: services.clock.now() };
    services.store.putVaultSecrets(vault, next);
    services.store.updateStatus(vault, 'vault', vault, (s) => ({ ...s, ...vaultStatusOf(next) }), services.clock.now());
    return next;
  });
}
