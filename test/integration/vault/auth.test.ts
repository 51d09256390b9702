import { strict as assert } from 'node:assert';
import { stat } from 'node:fs/promises';
import { Harness, ScriptedAgent, type ErrorBody } from './harness';

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly security: Record<string, unknown>[];
}

/** Every operation of the served OpenAPI document. */
async function operations(h: Harness): Promise<Operation[]> {
  const doc = await h.ok<{ paths: Record<string, Record<string, { security: Record<string, unknown>[] }>> }>('GET', '/openapi.json');
  return Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]) => ({ method: m.toUpperCase(), path: p, security: op.security })));
}

/** A concrete URL for a template, naming objects that exist. */
function fill(template: string, jobId: string): string {
  return template
    .replace('{vault}', 'contoso').replace('{name}', 'hq').replace('{host}', 'hv01').replace('{id}', jobId);
}

/** A body that would be valid for the operation, so that only the credentials are wrong. */
function bodyFor(op: Operation, agent: ScriptedAgent): unknown {
  if (op.method === 'GET' || op.method === 'DELETE') return undefined;
  if (op.path.endsWith('/registrations')) return agent.request();
  if (op.path.endsWith('/heartbeat')) return {};
  if (op.path.endsWith('/reports')) return { items: [] };
  if (op.path.includes('/commands/')) return { state: 'Running' };
  if (op.path.includes('/sites/')) return { kind: 'hyperv-site', description: 'changed' };
  if (op.path.includes('/replicationPolicies/')) return { target: 'secondary-site' };
  if (op.path.includes('/networkMappings/')) return { source: { site: 'hq', network: 'a' }, target: { site: 'dr', network: 'b' } };
  if (op.path.includes('/protectedItems/')) return { site: 'hq', vm: 'web01', policy: 'gold' };
  if (op.path.includes('/recoveryPlans/')) return { groups: [{ vms: ['x'] }] };
  return op.method === 'PUT' ? {} : undefined;
}

describe('vault API: authentication', () => {
  let h: Harness;
  let agent: ScriptedAgent;
  let other: ScriptedAgent;
  let jobId: string;

  before(async () => {
    h = await Harness.start();
    await h.seedTopology();
    const key = await h.registrationKey();
    agent = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    other = new ScriptedAgent(h, 'contoso', 'hv02', 'hq');
    assert.equal((await agent.register(key)).status, 201);
    assert.equal((await other.register(key)).status, 201);
    // No protected item: no job runs in the background, so the database is quiet between snapshots.
    jobId = 'job-00000000-0000-0000-0000-000000000000';
  });
  after(async () => {
    await h.close();
  });

  it('writes the admin token to a file only its owner can read', async () => {
    assert.equal((await stat(h.server.adminTokenFile)).mode & 0o777, 0o600);
    assert.match(h.token, /^lba_[A-Za-z0-9_-]{43}$/);
  });

  it('answers /healthz without credentials and nothing else', async () => {
    const health = await h.api<{ status: string }>('GET', '/healthz', undefined, { token: null });
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const ops = await operations(h);
    assert.deepEqual(ops.filter((o) => o.security.length === 0).map((o) => `${o.method} ${o.path}`), ['GET /healthz']);
  });

  it('refuses every admin operation without a token or with a wrong one (401), changing nothing', async () => {
    const ops = (await operations(h)).filter((o) => o.security.some((s) => 'adminToken' in s));
    assert.ok(ops.length > 30, `${ops.length} admin operations`);
    const before = h.databaseSnapshot();
    for (const op of ops) {
      for (const token of [null, 'lba_wrong', agent.token]) {
        const r = await h.api<ErrorBody>(op.method, fill(op.path, jobId), bodyFor(op, agent), { token });
        assert.equal(r.status, 401, `${op.method} ${op.path} with ${String(token)}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, token === null ? 'auth.tokenMissing' : 'auth.tokenInvalid');
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
    }
    assert.equal(h.databaseSnapshot(), before, 'the store is unchanged');
  });

  it('agent endpoints take only the agent token of their own host, never the admin token', async () => {
    const ops = (await operations(h)).filter((o) => o.security.some((s) => 'agentToken' in s));
    assert.deepEqual(ops.map((o) => `${o.method} ${o.path}`).sort(), [
      'GET /v1/vaults/{vault}/hosts/{host}/commands',
      'POST /v1/vaults/{vault}/hosts/{host}/commands/{id}',
      'POST /v1/vaults/{vault}/hosts/{host}/heartbeat',
      'POST /v1/vaults/{vault}/hosts/{host}/items/{item}/storageCredentials',
      'POST /v1/vaults/{vault}/hosts/{host}/reports',
    ]);
    const before = h.databaseSnapshot();
    for (const op of ops) {
      const url = fill(op.path, 'cmd-x');
      const admin = await h.api<ErrorBody>(op.method, url, bodyFor(op, agent), { token: h.token });
      assert.equal(admin.status, 401);
      assert.equal(admin.body.error.code, 'auth.agentTokenRequired');
      const stranger = await h.api<ErrorBody>(op.method, url, bodyFor(op, agent), { token: other.token });
      assert.equal(stranger.status, 401, `hv02's token on hv01's ${op.path}`);
      assert.equal(stranger.body.error.code, 'auth.agentTokenInvalid');
      const none = await h.api<ErrorBody>(op.method, url, bodyFor(op, agent), { token: null });
      assert.equal(none.status, 401);
    }
    assert.equal(h.databaseSnapshot(), before, 'the store is unchanged');
    // The right token works.
    assert.equal((await agent.heartbeat({})).status, 200);
  });

  it('authenticates before it validates: a bad body without credentials is 401, not 400', async () => {
    const r = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/sites/x', { kind: 'nonsense' }, { token: null });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.details.length, 0);
  });
});
