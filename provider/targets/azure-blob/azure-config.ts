/**
 * Configuration of the Azure target (docs/azure-target.md §10): the storage
 * account (connection string, or account name and key), the vault's
 * container, and the transport rules (HTTPS unless the endpoint is loopback).
 */
import { BlobServiceClient, type ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { InvalidInputError } from '../../errors';

export interface AzureBlobTargetConfig {
  /** A storage connection string (a secret). Either this or `accountName` + `accountKey`. @default none */
  readonly connectionString?: string;
  /** Storage account name. @default none */
  readonly accountName?: string;
  /** Storage account key, base64 (a secret). @default none */
  readonly accountKey?: string;
  /** Blob endpoint with `accountName`. @default `https://<accountName>.blob.core.windows.net` */
  readonly endpoint?: string;
  /** The vault's container: 3–63 of `[a-z0-9-]`, starting with a letter or digit. */
  readonly container: string;
  /** Allow `http:` to an endpoint that is not loopback. @default false */
  readonly allowInsecureHttp?: boolean;
  /** Tries of one request by the SDK before Lifeboat's own retry schedule takes over. @default 3 */
  readonly maxTries?: number;
  /** Timeout of one try, ms. @default 60000 */
  readonly tryTimeoutMs?: number;
}

function bad(message: string, path: string, hint: string): InvalidInputError {
  return new InvalidInputError('azure.invalidConfig', message, { where: { path }, hint });
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/**
 * A container client for `config`. Does no I/O. Throws `InvalidInputError`
 * `azure.invalidConfig` for a malformed config and `azure.insecureEndpoint`
 * for HTTP to a non-loopback endpoint without `allowInsecureHttp`. Messages
 * never contain the key or connection string.
 */
export function containerClientOf(config: AzureBlobTargetConfig): ContainerClient {
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(config.container ?? '')) {
    throw bad(`Invalid container name ${JSON.stringify(config.container)}`, '/container', '3 to 63 characters of a-z, 0-9 and single hyphens, starting and ending with a letter or digit.');
  }
  const retryOptions = { maxTries: config.maxTries ?? 3, tryTimeoutInMs: config.tryTimeoutMs ?? 60_000, retryDelayInMs: 500, maxRetryDelayInMs: 5_000 };
  let service: BlobServiceClient;
  if (config.connectionString !== undefined) {
    if (config.accountName !== undefined || config.accountKey !== undefined) {
      throw bad('Give either a connection string or an account name and key, not both', '/connectionString', 'Remove one of them.');
    }
    try {
      service = BlobServiceClient.fromConnectionString(config.connectionString, { retryOptions });
    } catch {
      // The SDK's message may quote the string: it is a secret.
      throw bad('The storage connection string is malformed', '/connectionString', 'Copy it again from the storage account\'s "Access keys" page.');
    }
  } else {
    if (config.accountName === undefined || config.accountKey === undefined || !/^[a-z0-9]{3,24}$/.test(config.accountName)) {
      throw bad('A storage account name (3–24 of a-z, 0-9) and key are required', config.accountName === undefined ? '/accountName' : '/accountKey', 'Set connectionString, or accountName and accountKey.');
    }
    const endpoint = config.endpoint ?? `https://${config.accountName}.blob.core.windows.net`;
    let credential: StorageSharedKeyCredential;
    try {
      credential = new StorageSharedKeyCredential(config.accountName, config.accountKey);
    } catch {
      throw bad('The storage account key is malformed', '/accountKey', 'The key is base64, as shown on the storage account\'s "Access keys" page.');
    }
    service = new BlobServiceClient(endpoint, credential, { retryOptions });
  }
  let url: URL;
  try {
    url = new URL(service.url);
  } catch {
    throw bad('The storage endpoint is not a URL', '/endpoint', 'e.g. https://myaccount.blob.core.windows.net');
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && config.allowInsecureHttp !== true) {
    throw new InvalidInputError('azure.insecureEndpoint', `The storage endpoint ${url.origin} is plain HTTP`, {
      where: { path: '/endpoint' },
      hint: 'Use https (Azure Storage offers it everywhere); plain HTTP is allowed only to loopback (Azurite) or with allowInsecureHttp.',
    });
  }
  return service.getContainerClient(config.container);
}

/** Account and endpoint of a config, for messages and logs: never the key. */
export function describeConfig(config: AzureBlobTargetConfig): string {
  try {
    const c = containerClientOf(config);
    return `${c.accountName} at ${new URL(c.url).origin}, container ${config.container}`;
  } catch {
    return `container ${String(config.container)}`;
  }
}
