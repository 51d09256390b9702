import {
  LifeboatError,
  NonRecoverableError,
  RecoverableError,
} from '../../errors';

const LOW_DISK = new Set(['ENOSPC', 'EDQUOT']);
const RESOURCES = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);
const ACCESS = new Set(['EACCES', 'EPERM', 'EROFS']);

/** The errno code of a Node.js system error, if it is one. */
export function errnoOf(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Classify an error of a file operation (docs/replica-format.md §10). Our own
 * errors pass through unchanged; system errors become `replica.lowDisk`,
 * `replica.resourceExhausted`, `replica.accessDenied` or `replica.ioError`.
 * `what` names the operation and file for the message.
 */
export function classifyIoError(e: unknown, what: string): LifeboatError {
  if (LifeboatError.isInstance(e)) return e;
  const errno = errnoOf(e);
  const details = { errno: errno ?? 'unknown', operation: what };
  if (errno !== undefined && LOW_DISK.has(errno)) {
    return new RecoverableError('replica.lowDisk', `No space left for the replica store (${what})`, {
      cause: e,
      details,
      hint: 'Free space on the recovery-site volume or move the replica store; replication retries on its own.',
    });
  }
  if (errno !== undefined && RESOURCES.has(errno)) {
    return new RecoverableError('replica.resourceExhausted', `Out of file handles or memory (${what})`, {
      cause: e,
      details,
      hint: 'Raise the open-file limit or free memory on the recovery-site host; replication retries on its own.',
    });
  }
  if (errno !== undefined && ACCESS.has(errno)) {
    return new NonRecoverableError('replica.accessDenied', `The replica store is not writable (${what})`, {
      cause: e,
      details,
      hint: 'Give the agent read/write access to the replica store directory, or remount it read-write.',
    });
  }
  return new RecoverableError('replica.ioError', `I/O error in the replica store (${what}): ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
    details,
    hint: 'Check the recovery-site volume (kernel log, SMART); replication retries on its own.',
  });
}
