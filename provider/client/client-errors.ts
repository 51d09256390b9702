/**
 * Errors of the vault API client: the API's own error (status, stable code,
 * field problems with their JSON paths, hint) as a `LifeboatError`, and the
 * transport failures (unreachable, timed out, an answer that is not the
 * API's). The category follows what a caller can do about it:
 *
 * | HTTP status | category | why |
 * |---|---|---|
 * | 400, 413 | `invalidInput` | fix the request (`where.path` names the first bad field) |
 * | 401, 403 | `nonRecoverable` | the credential is wrong; retrying cannot help |
 * | 404, 405, 409, 412 | `nonRecoverable` | the vault's state refuses it; look, then decide |
 * | 429, 502, 503, 504, unreachable, timeout | `recoverable` | try again later |
 * | 500 and anything else | `bug` | the vault's log says more |
 */

import { LifeboatError, RecoverableError, type ErrorCategory } from '../errors';

/** One bad field of a refused request (docs/vault-api.md §4). */
export interface FieldProblem {
  /** JSON Pointer of the value in the body (`''` the whole body), `{name}` a path parameter, `?name` a query parameter. */
  readonly path: string;
  readonly message: string;
  /** The valid values, when they can be listed. */
  readonly allowed?: readonly unknown[];
  /** What would be valid, when they cannot. */
  readonly expected?: string;
}

function categoryOfStatus(status: number): ErrorCategory {
  if (status === 400 || status === 413 || status === 422) return 'invalidInput';
  if (status === 401 || status === 403 || status === 404 || status === 405 || status === 409 || status === 412) return 'nonRecoverable';
  if (status === 429 || status === 502 || status === 503 || status === 504) return 'recoverable';
  return 'bug';
}

export interface VaultApiErrorInit {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  readonly problems?: readonly FieldProblem[];
  /** Other members of the error body (`usedBy`, `job`, `state`, …). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** `METHOD path` of the request, for messages. */
  readonly request: string;
}

/**
 * The vault refused a request: `status` is the HTTP status, `code` the API's
 * stable code (`object.notFound`, `request.invalid`, `auth.tokenInvalid`…),
 * `problems` the bad fields and `where.path` the first of them.
 */
export class VaultApiError extends LifeboatError {
  readonly status: number;
  readonly problems: readonly FieldProblem[];
  readonly extra: Readonly<Record<string, unknown>>;
  readonly request: string;

  constructor(init: VaultApiErrorInit) {
    const problems = init.problems ?? [];
    const first = problems[0];
    super(init.code, categoryOfStatus(init.status), init.message, {
      ...(init.hint === undefined ? {} : { hint: init.hint }),
      ...(first === undefined ? {} : { where: { path: first.path } }),
      details: { status: init.status, request: init.request, ...(problems.length === 0 ? {} : { problems }), ...(init.extra ?? {}) },
    });
    this.status = init.status;
    this.problems = problems;
    this.extra = init.extra ?? {};
    this.request = init.request;
  }

  /** True for any VaultApiError, even from another copy of this package. */
  static isApiError(e: unknown): e is VaultApiError {
    return LifeboatError.isInstance(e) && typeof (e as Partial<VaultApiError>).status === 'number' && Array.isArray((e as Partial<VaultApiError>).problems);
  }
}

/** The vault cannot be reached (connection refused, DNS, reset): `client.unreachable`. */
export class VaultUnreachableError extends RecoverableError {
  constructor(url: string, cause: unknown) {
    super('client.unreachable', `cannot reach the vault at ${url}: ${causeText(cause)}`, {
      cause,
      details: { url },
      hint: 'check that the vault runs (`lifeboat vault serve`, or `lifeboat lab status`) and that the URL is right',
    });
  }
}

/** No answer in time: `client.timeout`. */
export class VaultTimeoutError extends RecoverableError {
  constructor(request: string, timeoutMs: number) {
    super('client.timeout', `${request}: no answer from the vault within ${timeoutMs} ms`, {
      details: { request, timeoutMs },
      hint: 'the vault may be overloaded or stopping; try again, or raise the timeout',
    });
  }
}

/** The error's code is one of the API's `auth.*` codes (a missing, wrong or wrong-kind credential). */
export function isAuthError(e: unknown): boolean {
  return VaultApiError.isApiError(e) && (e.status === 401 || e.status === 403);
}

/** The vault answered 404 (no such object, job or route). */
export function isNotFound(e: unknown): boolean {
  return VaultApiError.isApiError(e) && e.status === 404;
}

/** The vault could not be reached or did not answer in time. */
export function isUnreachable(e: unknown): boolean {
  return LifeboatError.isInstance(e) && (e.code === 'client.unreachable' || e.code === 'client.timeout');
}

function causeText(e: unknown): string {
  if (e instanceof Error) {
    const inner = (e as { cause?: unknown }).cause;
    const code = typeof inner === 'object' && inner !== null ? (inner as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}
