/**
 * Errors of the replication protocol itself (docs/replication-protocol.md §9)
 * and the classification of socket and TLS errors into them.
 */

import { type LifeboatError, NonRecoverableError, RecoverableError } from '../../errors';

/** Why a session ended, as carried in `details.reason`. */
export type SessionEndReason =
  | 'network'
  | 'superseded'
  | 'idleTimeout'
  | 'serverClosing'
  | 'clientClosing'
  | 'timeout';

/** The connection is gone; retry the cycle from its start on a new one (§7.5). */
export function connectionLost(reason: SessionEndReason, message: string, cause?: unknown): RecoverableError {
  return new RecoverableError('remote.connectionLost', message, {
    cause,
    details: { reason },
    hint: 'The replication connection to the recovery site dropped; the cycle is retried on a new connection. If this repeats, check the network between the sites.',
  });
}

/** Could not connect at all (refused, unreachable, name not resolved). */
export function unreachable(endpoint: string, cause: unknown): RecoverableError {
  return new RecoverableError('remote.unreachable', `Cannot reach the replica server at ${endpoint}: ${messageOf(cause)}`, {
    cause,
    details: { endpoint, errno: codeOf(cause) ?? 'unknown' },
    hint: 'Check that the recovery-site agent is running and its replication port is reachable from this host (firewall, address).',
  });
}

/** No answer in time (§7.6). */
export function timedOut(what: string, ms: number): RecoverableError {
  return new RecoverableError('remote.timeout', `No answer from the replica server to ${what} within ${ms} ms`, {
    details: { what, timeoutMs: ms },
    hint: 'The recovery-site agent or the network is slow or stalled; the operation is retried. Raise the request timeout if the replica volume is slow to flush.',
  });
}

/** A TLS or authorization failure: never retried (§2, §9). */
export function unauthorized(message: string, cause?: unknown): NonRecoverableError {
  return new NonRecoverableError('remote.unauthorized', message, {
    cause,
    details: { tlsCode: codeOf(cause) ?? 'none' },
    hint: 'Both agents need current certificates issued by this vault\'s CA, and the server name must match the recovery-site host\'s certificate. Re-register the host with the vault to get a new certificate.',
  });
}

/** Malformed or unexpected frames: a bug or an incompatible peer (§3). */
export function protocolError(message: string, details: Readonly<Record<string, unknown>> = {}): NonRecoverableError {
  return new NonRecoverableError('remote.protocolError', message, {
    details,
    hint: 'The agents at the two sites do not understand each other; upgrade both to the same Lifeboat release and report this if it persists.',
  });
}

/** No common protocol version (§4, §11). */
export function protocolVersion(offered: readonly number[], supported: readonly number[]): NonRecoverableError {
  return new NonRecoverableError(
    'remote.protocolVersion',
    `No common replication protocol version: peer speaks ${JSON.stringify(offered)}, this agent ${JSON.stringify(supported)}`,
    {
      details: { offered: [...offered], supported: [...supported] },
      hint: 'Upgrade the older of the two agents.',
    },
  );
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

/** Code of our own server-identity refusal (client's `authorizeServer` hook). */
export const SERVER_REFUSED_CODE = 'ERR_LIFEBOAT_SERVER_REFUSED';

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** True for errors raised by TLS verification or a TLS alert from the peer. */
export function isTlsFailure(e: unknown): boolean {
  const code = codeOf(e);
  if (code === undefined) return false;
  return TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_') || code === SERVER_REFUSED_CODE;
}

/**
 * Classify an error of a client socket. `connected` tells whether TCP was
 * established (so that a refused or unresolved connect reads as unreachable).
 */
export function classifySocketError(e: unknown, endpoint: string, connected: boolean): LifeboatError {
  if (isTlsFailure(e)) return unauthorized(`TLS with the replica server at ${endpoint} failed: ${messageOf(e)}`, e);
  const code = codeOf(e);
  if (!connected && (code === undefined || UNREACHABLE_CODES.has(code) || code === 'ETIMEDOUT')) return unreachable(endpoint, e);
  return connectionLost('network', `Connection to the replica server at ${endpoint} lost: ${messageOf(e)}`, e);
}

/** The `code` of a Node.js error, if any. */
export function codeOf(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
