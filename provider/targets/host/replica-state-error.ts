import { NonRecoverableError, type LifeboatErrorOptions } from '../../errors';

/**
 * The replica's state forbids the request: a sequence number already applied,
 * a second open cycle, an unknown point, a store written by a newer format.
 * Category `nonRecoverable`: retrying the same request cannot succeed.
 *
 * target.ts names this class; it lives here until it moves to provider/errors.ts
 * (codes: docs/replica-format.md §10).
 */
export class ReplicaStateError extends NonRecoverableError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, message, options);
  }
}
