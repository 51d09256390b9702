/**
 * Errors on the wire (docs/replication-protocol.md §9): a LifeboatError
 * travels with its code, category, message, hint, details and location, and
 * is rebuilt on the other side as the same class where the class is known,
 * else as the base class of its category.
 */

import {
  BugError,
  type ErrorCategory,
  type ErrorLocation,
  InvalidInputError,
  LifeboatError,
  type LifeboatErrorOptions,
  NonRecoverableError,
  RecoverableError,
  ResyncRequiredError,
} from '../../errors';
import { ReplicaStateError } from '../../errors';
import { protocolError } from './remote-errors';

/** The JSON of an ERROR frame, and of a CREDIT's `error`. */
export interface WireError {
  readonly name: string;
  readonly code: string;
  readonly category: ErrorCategory;
  readonly message: string;
  readonly hint?: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly where?: ErrorLocation;
}

type ErrorClass = new (code: string, message: string, options?: LifeboatErrorOptions) => LifeboatError;

/** Classes rebuilt by name, with the category each one has. */
const KNOWN: ReadonlyMap<string, { readonly cls: ErrorClass; readonly category: ErrorCategory }> = new Map([
  ['ReplicaStateError', { cls: ReplicaStateError, category: 'nonRecoverable' }],
  ['RecoverableError', { cls: RecoverableError, category: 'recoverable' }],
  ['ResyncRequiredError', { cls: ResyncRequiredError, category: 'resyncRequired' }],
  ['NonRecoverableError', { cls: NonRecoverableError, category: 'nonRecoverable' }],
  ['InvalidInputError', { cls: InvalidInputError, category: 'invalidInput' }],
  ['BugError', { cls: BugError, category: 'bug' }],
]);

const BY_CATEGORY: Readonly<Record<ErrorCategory, ErrorClass>> = {
  recoverable: RecoverableError,
  resyncRequired: ResyncRequiredError,
  nonRecoverable: NonRecoverableError,
  invalidInput: InvalidInputError,
  bug: BugError,
};

const CATEGORIES = new Set<string>(Object.keys(BY_CATEGORY));

/** Describe any thrown value for the wire. Never throws. */
export function toWireError(e: unknown): WireError {
  if (LifeboatError.isInstance(e)) {
    const details = jsonSafe(e.details);
    const where = jsonSafe(e.where);
    return {
      name: e.name,
      code: e.code,
      category: e.category,
      message: e.message,
      ...(e.hint === undefined ? {} : { hint: e.hint }),
      ...(details === undefined || Object.keys(details).length === 0 ? {} : { details }),
      ...(where === undefined ? {} : { where: where as ErrorLocation }),
    };
  }
  return {
    name: 'BugError',
    code: 'remote.serverError',
    category: 'bug',
    message: `The replica server failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`,
    hint: 'This is a defect of the recovery-site agent; its log has the details.',
  };
}

/**
 * Rebuild an error received from `origin` (an address, for the message of
 * its cause). A malformed description becomes `remote.protocolError`.
 */
export function fromWireError(value: unknown, origin: string): LifeboatError {
  if (typeof value !== 'object' || value === null) return protocolError('Malformed error from the peer', { origin });
  const w = value as Record<string, unknown>;
  const { code, category, message } = w;
  if (typeof code !== 'string' || typeof message !== 'string' || typeof category !== 'string' || !CATEGORIES.has(category)) {
    return protocolError('Malformed error from the peer', { origin });
  }
  const cat = category as ErrorCategory;
  const options: LifeboatErrorOptions = {
    cause: new Error(`raised by the replica server at ${origin}`),
    ...(typeof w.hint === 'string' ? { hint: w.hint } : {}),
    ...(isRecord(w.details) ? { details: w.details } : {}),
    ...(isRecord(w.where) ? { where: w.where as ErrorLocation } : {}),
  };
  const name = typeof w.name === 'string' ? w.name : '';
  const known = KNOWN.get(name);
  const cls = known !== undefined && known.category === cat ? known.cls : BY_CATEGORY[cat];
  const err = new cls(code, message, options);
  if (known === undefined && name !== '') err.name = name;
  return err;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON round trip of `v`, or undefined if it cannot be serialised. */
function jsonSafe(v: object | undefined): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(JSON.stringify(v));
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
