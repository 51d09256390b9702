/**
 * The agent's side of scenario B (docs/azure-failover.md §3): opening the
 * `AzureBlobReplicaTarget` of an azure relationship with the storage
 * credentials fetched from the vault. The credentials live only in the
 * returned target (the SDK's credential object); they are never written to
 * the item record, a log line or a command result.
 */

import { AzureBlobReplicaTarget, type AzureBlobTargetConfig } from '../targets/azure-blob';
import type { AzureTargetSpec } from './item-records';

/** The storage credentials the vault answers for an item (`itemStorageCredentials`). */
export interface AzureCredentials {
  readonly accountName: string;
  readonly container: string;
  readonly endpoint?: string;
  readonly accountKey?: string;
  readonly connectionString?: string;
}

/** Fetches an item's credentials from the vault; throws the vault's errors. */
export type AzureCredentialsSource = (item: string) => Promise<AzureCredentials>;

/** The target config of a relationship: the record's account and container, the vault's secret. */
export function azureConfigOf(spec: AzureTargetSpec, c: AzureCredentials): AzureBlobTargetConfig {
  if (c.connectionString !== undefined) return { connectionString: c.connectionString, container: spec.container };
  return {
    accountName: spec.storageAccount,
    ...(c.accountKey === undefined ? {} : { accountKey: c.accountKey }),
    ...(spec.endpoint === undefined ? {} : { endpoint: spec.endpoint }),
    container: spec.container,
  };
}

/**
 * Open the target of an azure relationship of `item`. Throws the vault's
 * errors (`azure.credentialsMissing`, `agent.vaultUnreachable`) or the
 * target's classified errors (`azure.authenticationFailed` non-recoverable,
 * `azure.network` recoverable, …).
 */
export async function openAzureTarget(item: string, spec: AzureTargetSpec, credentials: AzureCredentialsSource): Promise<AzureBlobReplicaTarget> {
  const c = await credentials(item);
  return AzureBlobReplicaTarget.open(azureConfigOf(spec, c));
}
