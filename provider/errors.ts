/**
 * Errors of Lifeboat: one base class with a stable `code`, a `category` that
 * decides what the system does about it, the `cause`, and a hint for the
 * operator. Each layer classifies the errors of its SDKs into these.
 *
 * Categories (DESIGN.md §3.6):
 * - `recoverable`: transient (network, low disk, low memory); retried on the
 *   back-off schedule of replication/retry.ts; health Warning while retrying.
 * - `resyncRequired`: delta replication cannot continue (log lost or corrupt,
 *   log budget exceeded, unclean stop); the item needs a resynchronisation.
 * - `nonRecoverable`: broken log chain, invalid replica state, authentication
 *   or authorisation failure, VM not found; no retry, health Critical.
 * - `invalidInput`: the request or file is wrong; `where` says where.
 * - `bug`: an invariant of ours broke.
 */

export type ErrorCategory = 'recoverable' | 'resyncRequired' | 'nonRecoverable' | 'invalidInput' | 'bug';

/** Where bad input is: a file position and/or a JSON path, and what would be valid. */
export interface ErrorLocation {
  /** File the input came from, if any. */
  readonly file?: string;
  /** 1-based line. */
  readonly line?: number;
  /** 1-based column. */
  readonly column?: number;
  /** JSON path of the offending value, e.g. `/policies/0/replicationFrequencySeconds`. */
  readonly path?: string;
}

export interface LifeboatErrorOptions {
  /** The underlying error. */
  readonly cause?: unknown;
  /** What the operator should do next. @default none */
  readonly hint?: string;
  /** For invalid input: where it is. @default none */
  readonly where?: ErrorLocation;
  /** Extra machine-readable facts (sizes, sequence numbers). @default {} */
  readonly details?: Readonly<Record<string, unknown>>;
}

const BRAND = Symbol.for('lifeboat.LifeboatError');

/** Base class of every error Lifeboat raises on purpose. */
export class LifeboatError extends Error {
  readonly code: string;
  readonly category: ErrorCategory;
  readonly hint: string | undefined;
  readonly where: ErrorLocation | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, category: ErrorCategory, message: string, options: LifeboatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.category = category;
    this.hint = options.hint;
    this.where = options.where;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** True for any LifeboatError, even one made by another copy of this package. */
  static isInstance(e: unknown): e is LifeboatError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
  }

  /** A JSON-safe description, for API responses and job records. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      category: this.category,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.where === undefined ? {} : { where: this.where }),
      ...(Object.keys(this.details).length === 0 ? {} : { details: this.details }),
    };
  }
}

/** Transient failure; retry later on the back-off schedule. */
export class RecoverableError extends LifeboatError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, 'recoverable', message, options);
  }
}

/** Delta replication cannot continue; the item needs resynchronisation. */
export class ResyncRequiredError extends LifeboatError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, 'resyncRequired', message, options);
  }
}

/** Retrying cannot help; an operator must act. */
export class NonRecoverableError extends LifeboatError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, 'nonRecoverable', message, options);
  }
}

/**
 * The replica's state forbids the request: a sequence number already applied,
 * a second open cycle, an unknown point, a store written by a newer format.
 * Retrying the same request cannot succeed (codes: docs/replica-format.md §10,
 * `cycle.alreadyApplied` and `replica.*`).
 */
export class ReplicaStateError extends NonRecoverableError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, message, options);
  }
}

/** The input is wrong; `where` says where and the message what would be valid. */
export class InvalidInputError extends LifeboatError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, 'invalidInput', message, options);
  }
}

/** An invariant of ours broke. */
export class BugError extends LifeboatError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, 'bug', message, options);
  }
}

/** The category of any thrown value: ours as declared, anything else is a bug. */
export function categoryOf(e: unknown): ErrorCategory {
  return LifeboatError.isInstance(e) ? e.category : 'bug';
}

/** A message for people: the error's message, then its hint. */
export function describe(e: unknown): string {
  if (LifeboatError.isInstance(e)) {
    return e.hint === undefined ? `${e.message} [${e.code}]` : `${e.message} [${e.code}]\n  hint: ${e.hint}`;
  }
  return e instanceof Error ? e.message : String(e);
}
