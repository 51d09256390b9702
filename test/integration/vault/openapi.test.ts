import { strict as assert } from 'node:assert';
import Ajv2020 from 'ajv/dist/2020';
import { Harness, type ErrorBody } from './harness';

type Doc = Record<string, unknown>;

/** The API as designed: every operation the vault must serve. */
const EXPECTED = [
  'GET /healthz',
  'GET /openapi.json',
  'GET /v1/vaults',
  'PUT /v1/vaults/{vault}', 'GET /v1/vaults/{vault}', 'DELETE /v1/vaults/{vault}',
  'GET /v1/vaults/{vault}/registrationKey', 'POST /v1/vaults/{vault}/registrationKey/rotate',
  'GET /v1/vaults/{vault}/certificateAuthority',
  ...['sites', 'replicationPolicies', 'networkMappings', 'protectedItems', 'recoveryPlans'].flatMap((c) => [
    `GET /v1/vaults/{vault}/${c}`, `PUT /v1/vaults/{vault}/${c}/{name}`, `GET /v1/vaults/{vault}/${c}/{name}`, `DELETE /v1/vaults/{vault}/${c}/{name}`,
  ]),
  'POST /v1/vaults/{vault}/protectedItems/{name}/cancelFailover',
  'POST /v1/vaults/{vault}/protectedItems/{name}/commit',
  'POST /v1/vaults/{vault}/protectedItems/{name}/failover',
  'POST /v1/vaults/{vault}/protectedItems/{name}/reprotect',
  'POST /v1/vaults/{vault}/protectedItems/{name}/resync',
  'POST /v1/vaults/{vault}/protectedItems/{name}/testCleanup',
  'GET /v1/vaults/{vault}/protectedItems/{name}/recoveryPoints',
  'GET /v1/vaults/{vault}/hosts', 'GET /v1/vaults/{vault}/hosts/{host}', 'DELETE /v1/vaults/{vault}/hosts/{host}',
  'GET /v1/vaults/{vault}/jobs', 'GET /v1/vaults/{vault}/jobs/{id}', 'POST /v1/vaults/{vault}/jobs/{id}/cancel',
  'POST /v1/vaults/{vault}/jobs/{id}/ack', 'POST /v1/vaults/{vault}/jobs/{id}/resume',
  ...['failover', 'commit', 'testCleanup', 'reprotect'].map((a) => `POST /v1/vaults/{vault}/recoveryPlans/{plan}/${a}`),
  'POST /v1/vaults/{vault}/registrations',
  'POST /v1/vaults/{vault}/hosts/{host}/heartbeat',
  'GET /v1/vaults/{vault}/hosts/{host}/commands',
  'POST /v1/vaults/{vault}/hosts/{host}/commands/{id}',
  'POST /v1/vaults/{vault}/hosts/{host}/items/{item}/storageCredentials',
  'POST /v1/vaults/{vault}/hosts/{host}/reports',
].sort();

function resolvePointer(doc: Doc, ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `local ref: ${ref}`);
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    assert.ok(typeof node === 'object' && node !== null && key in node, `${ref} does not resolve (at ${key})`);
    node = (node as Doc)[key];
  }
  return node;
}

function* refs(node: unknown): Generator<string> {
  if (Array.isArray(node)) for (const v of node) yield* refs(v);
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') yield v;
      else yield* refs(v);
    }
  }
}

describe('vault API: OpenAPI document', () => {
  let h: Harness;
  let doc: Doc;
  before(async () => {
    h = await Harness.start();
    const r = await h.api<Doc>('GET', '/openapi.json');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    doc = r.body;
  });
  after(async () => {
    await h.close();
  });

  it('is OpenAPI 3.1 served by the vault itself, naming its own URL', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc.servers, [{ url: h.url }]);
  });

  it('contains every path and method of the API, each with a unique operationId', () => {
    const paths = doc.paths as Record<string, Record<string, { operationId: string }>>;
    const ops = Object.entries(paths).flatMap(([p, o]) => Object.keys(o).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    assert.deepEqual(ops, EXPECTED);
    const ids = Object.values(paths).flatMap((o) => Object.values(o).map((x) => x.operationId));
    assert.equal(new Set(ids).size, ids.length);
  });

  it('every $ref resolves inside the document, and the schemas compile', () => {
    for (const r of refs(doc)) resolvePointer(doc, r);
    const components = (doc.components as { schemas: Record<string, Doc> }).schemas;
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema({ $id: 'openapi', components: { schemas: components } });
    for (const name of Object.keys(components)) {
      assert.doesNotThrow(() => ajv.getSchema(`openapi#/components/schemas/${name}`), name);
    }
    // The request schemas are the files of schemas/, so a body valid for one is valid for the other.
    const site = ajv.getSchema('openapi#/components/schemas/Site')!;
    assert.equal(site({ kind: 'hyperv-site' }), true);
    assert.equal(site({ kind: 'hyperv-site', extra: 1 }), false);
  });

  it('documents request bodies with the schemas of schemas/ and errors with the Error schema', () => {
    const paths = doc.paths as Record<string, Record<string, Doc>>;
    const put = paths['/v1/vaults/{vault}/replicationPolicies/{name}']!.put as { requestBody: { content: Record<string, { schema: { $ref: string } }> }; responses: Record<string, Doc> };
    assert.equal(put.requestBody.content['application/json']!.schema.$ref, '#/components/schemas/ReplicationPolicy');
    assert.ok('400' in put.responses && '409' in put.responses);
    const policy = resolvePointer(doc, '#/components/schemas/ReplicationPolicy') as Doc;
    assert.equal(((policy.properties as Doc).replicationFrequencySeconds as Doc).$ref, undefined);
    assert.deepEqual(((policy.properties as Doc).replicationFrequencySeconds as Doc).enum, [30, 300, 900]);
  });

  it('needs the admin token', async () => {
    const r = await h.api<ErrorBody>('GET', '/openapi.json', undefined, { token: null });
    assert.equal(r.status, 401);
  });
});
