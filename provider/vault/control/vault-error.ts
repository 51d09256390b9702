/**
 * Errors the vault answers requests with. Each has an HTTP status, a stable
 * dotted code, a message, the field problems (JSON path, what is wrong, what
 * would be valid) and a hint. The API writes them as
 * `{"error": {"code", "message", "details": [{"path", "message", "allowed"?, "expected"?}], "hint"?}}`.
 */

import { LifeboatError, type ErrorCategory } from '../../errors';
import type { FieldProblem } from '../../validation/problems';

export interface VaultErrorOptions {
  readonly details?: readonly FieldProblem[];
  readonly hint?: string;
  readonly cause?: unknown;
  /** Extra members of the error object (e.g. `job` for a conflict with a running job). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

function categoryOfStatus(status: number): ErrorCategory {
  if (status >= 500) return status === 503 ? 'recoverable' : 'bug';
  return 'invalidInput';
}

export class VaultError extends LifeboatError {
  readonly status: number;
  readonly problems: readonly FieldProblem[];
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, options: VaultErrorOptions = {}) {
    super(code, categoryOfStatus(status), message, {
      ...(options.hint === undefined ? {} : { hint: options.hint }),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.status = status;
    this.problems = options.details ?? [];
    this.extra = options.extra ?? {};
  }

  /** The response body. */
  body(): { error: Record<string, unknown> } {
    return {
      error: {
        code: this.code,
        message: this.message,
        details: this.problems,
        ...(this.hint === undefined ? {} : { hint: this.hint }),
        ...this.extra,
      },
    };
  }
}

/** 400 for invalid request bodies: one problem per bad field. */
export function invalidRequest(details: readonly FieldProblem[], message = 'the request body is invalid'): VaultError {
  const first = details[0];
  return new VaultError(400, 'request.invalid', first === undefined ? message : `${message}: ${first.path === '' ? '(body)' : first.path} ${first.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`, {
    details,
    hint: 'fix each field listed in details; `allowed` or `expected` says what would be valid',
  });
}

/** 404 for a named object that does not exist. */
export function notFound(what: string, name: string, vault?: string): VaultError {
  return new VaultError(404, 'object.notFound', `${what} '${name}' does not exist${vault === undefined ? '' : ` in vault '${vault}'`}`);
}
