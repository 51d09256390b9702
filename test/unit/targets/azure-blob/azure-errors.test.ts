import { strict as assert } from 'node:assert';
import { RestError } from '@azure/storage-blob';
import { categoryOf, LifeboatError, RecoverableError } from '../../../../provider/errors';
import { classifyAzureError } from '../../../../provider/targets/azure-blob/azure-errors';

/** An SDK error as the pipeline builds it for a response with this status and storage code. */
function rest(statusCode: number | undefined, code?: string): RestError {
  return new RestError(`${code ?? 'failure'}\nRequestId:1`, { ...(statusCode === undefined ? { code: 'ECONNRESET' } : { statusCode }), ...(code === undefined ? {} : { code }) });
}

describe('targets/azure-blob/azure-errors (docs/azure-target.md §10)', () => {
  const cases: Array<[string, RestError, string, string]> = [
    ['no response (reset, refused, timeout)', rest(undefined), 'recoverable', 'azure.network'],
    ['429 throttling', rest(429, 'TooManyRequests'), 'recoverable', 'azure.throttled'],
    ['503 server busy', rest(503, 'ServerBusy'), 'recoverable', 'azure.throttled'],
    ['500', rest(500, 'InternalError'), 'recoverable', 'azure.serverError'],
    ['502', rest(502), 'recoverable', 'azure.serverError'],
    ['403 AuthenticationFailed (Azure)', rest(403, 'AuthenticationFailed'), 'nonRecoverable', 'azure.authenticationFailed'],
    ['403 AuthorizationFailure (Azurite for a bad key)', rest(403, 'AuthorizationFailure'), 'nonRecoverable', 'azure.authenticationFailed'],
    ['403 other', rest(403, 'AuthorizationPermissionMismatch'), 'nonRecoverable', 'azure.accessDenied'],
    ['409 other refusal', rest(409, 'LeaseIdMissing'), 'nonRecoverable', 'azure.requestRejected'],
  ];
  for (const [what, e, category, code] of cases) {
    it(`${what} → ${category} ${code}`, () => {
      const c = classifyAzureError(e, 'write pages of disk d');
      assert.equal(categoryOf(c), category);
      assert.equal(c.code, code);
      assert.ok((c.hint ?? '').length > 0, 'a hint for the operator');
      assert.match(c.message, /write pages of disk d/);
      assert.equal(c.cause, e);
    });
  }

  it('passes Lifeboat errors through unchanged', () => {
    const ours = new RecoverableError('x.y', 'ours');
    assert.equal(classifyAzureError(ours, 'w'), ours);
    const bug = classifyAzureError(new TypeError('x is undefined'), 'w');
    assert.ok(LifeboatError.isInstance(bug));
    assert.equal(bug.category, 'bug', 'a programming error is not retried as a network error');
    assert.equal(classifyAzureError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'w').code, 'azure.network');
  });
});
