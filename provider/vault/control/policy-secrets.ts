/**
 * What the vault does with the storage secrets of `azure` policies
 * (docs/azure-failover.md §2): record them sealed at a policy PUT, show only
 * their presence and fingerprint in the policy's status, and hand them to
 * the agent that replicates an item of the policy.
 */

import { NonRecoverableError } from '../../errors';
import type { JsonObject } from '../store/records';
import type { AzureSecrets } from './azure-credentials';
import type { VaultServices } from './services';
import type { AzureStorageSpec } from './specs';

/** The storage settings an agent needs to open the item's `AzureBlobReplicaTarget` (secrets included). */
export interface AzureStorageCredentials extends AzureSecrets {
  readonly accountName: string;
  readonly container: string;
  readonly endpoint?: string;
}

/**
 * After a policy PUT (inside its transaction): store `secrets` if given,
 * forget them if the policy is no longer `azure`, and write
 * `status.azureCredentials` (`{ set, fingerprint? }`, never the secret).
 */
export function recordAzureSecrets(services: VaultServices, vaultKey: string, policy: string, spec: JsonObject, secrets: AzureSecrets | undefined): void {
  const box = services.secrets;
  if (box === undefined) return;
  if (spec.target !== 'azure') {
    box.deleteAzure(vaultKey, policy);
    services.store.updateStatus(vaultKey, 'replicationPolicy', policy, (s) => {
      const { azureCredentials: _gone, ...rest } = s;
      return rest;
    }, services.clock.now());
    return;
  }
  if (secrets !== undefined) box.putAzure(vaultKey, policy, secrets);
  const stored = secrets ?? box.getAzure(vaultKey, policy);
  services.store.updateStatus(vaultKey, 'replicationPolicy', policy, (s) => ({
    ...s,
    azureCredentials: (stored === undefined ? { set: false } : { set: true, fingerprint: box.fingerprint(stored) }) as JsonObject,
  }), services.clock.now());
}

/** Forget a deleted policy's secrets. Idempotent. */
export function forgetAzureSecrets(services: VaultServices, vaultKey: string, policy: string): void {
  services.secrets?.deleteAzure(vaultKey, policy);
}

/** Fingerprint of a policy's stored secrets, or undefined when none are stored. */
export function azureSecretsFingerprint(services: VaultServices, vaultKey: string, policy: string): string | undefined {
  const s = services.secrets?.getAzure(vaultKey, policy);
  return s === undefined ? undefined : services.secrets!.fingerprint(s);
}

/**
 * The storage settings of an azure policy with its secrets. Throws
 * `NonRecoverableError` `azure.credentialsMissing` when the policy has none.
 */
export function azureStorageCredentials(services: VaultServices, vaultKey: string, policy: string, azure: AzureStorageSpec): AzureStorageCredentials {
  const s = services.secrets?.getAzure(vaultKey, policy);
  if (s === undefined) {
    throw new NonRecoverableError('azure.credentialsMissing', `policy '${policy}' has no storage account key or connection string`, {
      hint: `PUT the policy with azure.accountKey (or azure.connectionString) for storage account ${azure.storageAccount}`,
    });
  }
  return {
    accountName: azure.storageAccount,
    container: azure.container ?? 'lifeboat-replicas',
    ...(azure.endpoint === undefined ? {} : { endpoint: azure.endpoint }),
    ...s,
  };
}
