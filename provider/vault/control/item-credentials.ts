/**
 * Which agent may read the storage secrets of an item (docs/azure-failover.md
 * §2): only the host that replicates it (the item's source host) or the
 * host that runs its failed-over or test VM in the `azure` role
 * (`status.azureVm.host`, `status.testFailover.host`), and the host a
 * failback from Azure is bringing the workload to (`status.failbackTo`).
 */

import type { JsonObject } from '../store/records';
import { itemStatus } from './item-status';
import { azureStorageCredentials, type AzureStorageCredentials } from './policy-secrets';
import type { VaultServices } from './services';
import { sameName, type ProtectedItemSpec, type ReplicationPolicySpec } from './specs';
import { VaultError } from './vault-error';

/**
 * The credentials of `item`'s azure policy for `host`. Throws `VaultError`
 * 404 (no such item), 409 `azure.notAzurePolicy` (the policy is not azure),
 * 403 `azure.credentialsRefused` (the host has no business with the item),
 * or `azure.credentialsMissing`.
 */
export function itemCredentialsFor(services: VaultServices, vaultKey: string, host: string, item: string): AzureStorageCredentials {
  const o = services.store.getObject(vaultKey, 'protectedItem', item);
  if (o === undefined) throw new VaultError(404, 'object.notFound', `protected item '${item}' not found`);
  const spec = o.spec as unknown as ProtectedItemSpec;
  const policy = services.store.getObject(vaultKey, 'replicationPolicy', spec.policy);
  const p = policy?.spec as unknown as ReplicationPolicySpec | undefined;
  if (policy === undefined || p?.target !== 'azure' || p.azure === undefined) {
    throw new VaultError(409, 'azure.notAzurePolicy', `protected item '${item}' does not replicate to Azure`);
  }
  const status = itemStatus(o);
  const azureHost = ((o.status as JsonObject).azureVm as JsonObject | undefined)?.host;
  // A failback to an alternate host opens the blobs there before that host becomes the source host.
  const failbackTo = (o.status as JsonObject).failbackTo;
  const allowed = [status.sourceHost, typeof azureHost === 'string' ? azureHost : undefined, status.testFailover?.host, typeof failbackTo === 'string' ? failbackTo : undefined]
    .filter((h): h is string => h !== undefined);
  if (!allowed.some((h) => sameName(h, host))) {
    throw new VaultError(403, 'azure.credentialsRefused', `host ${host} neither replicates nor runs protected item '${item}'`, {
      hint: 'only the item\'s source host and the host running its failed-over or test VM receive the storage credentials',
    });
  }
  return azureStorageCredentials(services, vaultKey, policy.name, p.azure);
}
