/**
 * Classification of `@azure/storage-blob` failures into Lifeboat errors
 * (docs/azure-target.md §10): network, throttling and 5xx are recoverable;
 * authentication, authorisation and other refusals are not.
 */
import { BugError, LifeboatError, NonRecoverableError, RecoverableError } from '../../errors';

interface RestErrorLike {
  readonly statusCode?: number;
  readonly code?: string;
  readonly message?: string;
}

function restFields(e: unknown): RestErrorLike {
  if (typeof e !== 'object' || e === null) return {};
  const r = e as Record<string, unknown>;
  const details = typeof r.details === 'object' && r.details !== null ? (r.details as Record<string, unknown>) : {};
  return {
    ...(typeof r.statusCode === 'number' ? { statusCode: r.statusCode } : {}),
    ...(typeof details.errorCode === 'string' ? { code: details.errorCode } : typeof r.code === 'string' ? { code: r.code } : {}),
    ...(typeof r.message === 'string' ? { message: r.message } : {}),
  };
}

/** HTTP status of an SDK error, if it got a response. */
export function statusOf(e: unknown): number | undefined {
  return restFields(e).statusCode;
}

/** Storage error code (`BlobNotFound`, …) of an SDK error, if any. */
export function storageCodeOf(e: unknown): string | undefined {
  return restFields(e).code;
}

/** True when the SDK error is a 404 (blob, snapshot or container not found). */
export function isNotFound(e: unknown): boolean {
  return statusOf(e) === 404;
}

/**
 * A Lifeboat error for any failure of a request described by `what` (e.g.
 * `write pages of disk d`). Lifeboat errors pass through unchanged. The
 * message carries the storage code and the first line of the service's
 * message, never request headers (which hold the signature).
 */
export function classifyAzureError(e: unknown, what: string): LifeboatError {
  if (LifeboatError.isInstance(e)) return e;
  const { statusCode, code, message } = restFields(e);
  const first = (message ?? String(e)).split('\n')[0]!.slice(0, 300);
  const details = { ...(statusCode === undefined ? {} : { statusCode }), ...(code === undefined ? {} : { storageCode: code }) };
  if (statusCode === undefined && !isTransportFailure(e)) {
    return new BugError('azure.unexpected', `Unexpected failure (${what}): ${first}`, { cause: e, details, hint: 'Report it: this is not a storage or network error.' });
  }
  if (statusCode === undefined) {
    return new RecoverableError('azure.network', `Azure Storage unreachable (${what}): ${first}`, {
      cause: e, details, hint: 'Check the network path to the storage account endpoint; replication retries on its schedule.',
    });
  }
  if (statusCode === 429 || statusCode === 503) {
    return new RecoverableError('azure.throttled', `Azure Storage is throttling requests (${what}): HTTP ${statusCode} ${code ?? ''}`.trim(), {
      cause: e, details, hint: 'The account is over its request or bandwidth targets; replication retries with back-off. Lower the policy bandwidth or spread disks over accounts if it persists.',
    });
  }
  if (statusCode >= 500) {
    return new RecoverableError('azure.serverError', `Azure Storage failed (${what}): HTTP ${statusCode} ${code ?? ''}`.trim(), {
      cause: e, details, hint: 'A service-side failure; replication retries on its schedule.',
    });
  }
  if (statusCode === 403 && (code === 'AuthenticationFailed' || code === 'AuthorizationFailure')) {
    return new NonRecoverableError('azure.authenticationFailed', `Azure Storage refused the credentials (${what}): ${code}`, {
      cause: e, details, hint: 'Check the storage account name and key (or connection string) in the policy; a rotated key must be updated in Lifeboat.',
    });
  }
  if (statusCode === 403) {
    return new NonRecoverableError('azure.accessDenied', `Azure Storage denied the request (${what}): ${code ?? 'HTTP 403'}`, {
      cause: e, details, hint: 'The credentials lack permission for this container or operation (or a network rule blocks this host); grant it or use an account key.',
    });
  }
  return new NonRecoverableError('azure.requestRejected', `Azure Storage rejected the request (${what}): HTTP ${statusCode} ${code ?? ''}: ${first}`, {
    cause: e, details, hint: 'An unexpected refusal; check the storage account settings. Report it if it persists.',
  });
}

/** An SDK request that got no response: the SDK's RestError without status, or a socket/DNS/timeout error. */
function isTransportFailure(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const r = e as Record<string, unknown>;
  return r.name === 'RestError' || r.name === 'AbortError' || r.name === 'TimeoutError' || (typeof r.code === 'string' && /^E[A-Z_]+$/.test(r.code));
}

/** Run `fn`, classifying any failure as a request described by `what`. */
export async function azureCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw classifyAzureError(e, what);
  }
}
