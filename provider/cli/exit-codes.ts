/**
 * Exit codes of the `lifeboat` command (docs/operations.md §5). Scripts may
 * rely on them; they never change meaning.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | done |
 * | 1 | the operation failed (a job failed or was cancelled, the vault refused a change, a lab process is down) |
 * | 2 | usage error: unknown command or option, a bad value, or a request the vault found invalid |
 * | 3 | the vault cannot be reached (not running, wrong URL, no answer in time) |
 * | 4 | not found: the item, job, VM, lab or data folder does not exist |
 * | 5 | authentication refused: no token, a wrong token, a wrong registration key |
 * | 130 | interrupted (Ctrl-C) |
 */

import { LifeboatError, InvalidInputError } from '../errors';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
  notFound: 4,
  auth: 5,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A command line that cannot be run as given (exit code 2). */
export class UsageError extends InvalidInputError {
  constructor(message: string, hint?: string) {
    super('cli.usage', message, hint === undefined ? {} : { hint });
  }
}

/** Something the operator named does not exist (exit code 4). */
export class NotFoundError extends LifeboatError {
  constructor(code: string, message: string, hint?: string) {
    super(code, 'nonRecoverable', message, hint === undefined ? {} : { hint });
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeOf(e: unknown): ExitCode {
  if (!LifeboatError.isInstance(e)) return EXIT.failed;
  if (e.code === 'client.unreachable' || e.code === 'client.timeout' || e.code === 'agent.vaultUnreachable' || e.code === 'agent.vaultTimeout' || e.code === 'agent.notRunning') return EXIT.unreachable;
  if (e.code.startsWith('auth.') || e.code === 'cli.noToken' || e.code === 'agent.secretFileInsecure') return EXIT.auth;
  if (e instanceof NotFoundError || e.code === 'object.notFound' || e.code === 'route.notFound' || e.code === 'hypervisor.vmNotFound') return EXIT.notFound;
  if (e.category === 'invalidInput') return EXIT.usage;
  return EXIT.failed;
}
