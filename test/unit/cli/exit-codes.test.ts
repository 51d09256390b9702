import { strict as assert } from 'node:assert';
import { VaultApiError, VaultTimeoutError, VaultUnreachableError } from '../../../provider/client';
import { EXIT, exitCodeOf, NotFoundError, UsageError } from '../../../provider/cli/exit-codes';
import { BugError, LifeboatError, NonRecoverableError } from '../../../provider/errors';

const api = (status: number, code: string): VaultApiError => new VaultApiError({ status, code, message: code, request: 'GET /' });

describe('cli/exit-codes', () => {
  it('maps each kind of failure to its documented code', () => {
    const cases: [unknown, number][] = [
      [new UsageError('bad flag'), EXIT.usage],
      [api(400, 'request.invalid'), EXIT.usage],
      [new VaultUnreachableError('http://x', new Error('ECONNREFUSED')), EXIT.unreachable],
      [new VaultTimeoutError('GET /', 10), EXIT.unreachable],
      [new LifeboatError('agent.notRunning', 'recoverable', 'no agent'), EXIT.unreachable],
      [api(404, 'object.notFound'), EXIT.notFound],
      [new NotFoundError('lab.notFound', 'no lab'), EXIT.notFound],
      [api(401, 'auth.tokenInvalid'), EXIT.auth],
      [new LifeboatError('cli.noToken', 'nonRecoverable', 'no token'), EXIT.auth],
      [api(409, 'job.inProgress'), EXIT.failed],
      [new NonRecoverableError('remote.unauthorized', 'no'), EXIT.failed],
      [new BugError('x.y', 'oops'), EXIT.failed],
      [new Error('plain'), EXIT.failed],
    ];
    for (const [e, code] of cases) assert.equal(exitCodeOf(e), code, String(e));
  });
});
