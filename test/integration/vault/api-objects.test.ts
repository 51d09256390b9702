import { strict as assert } from 'node:assert';
import { Harness, ScriptedAgent, type ErrorBody, type ObjectBody } from './harness';

describe('vault API: objects (real server on loopback)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await Harness.start();
  });
  afterEach(async () => {
    await h.close();
  });

  const bodies: [string, string, Record<string, unknown>, Record<string, unknown>][] = [
    ['sites', 'hq', { kind: 'hyperv-site' }, { kind: 'hyperv-site', description: 'headquarters', hosts: ['hv01'] }],
    ['replicationPolicies', 'gold', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] },
      { target: 'secondary-site', replicationFrequencySeconds: 30, associations: [{ source: 'hq', target: 'dr' }] }],
    ['networkMappings', 'prod', { source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' } },
      { source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' }, testNetwork: 'Isolated' }],
  ];

  it('PUT creates (201), GET reads, the same PUT again keeps the generation, a change bumps it, DELETE removes', async () => {
    await h.ok('PUT', '/v1/vaults/contoso', {});
    await h.ok('PUT', '/v1/vaults/contoso/sites/dr', { kind: 'hyperv-site' });
    for (const [collection, name, first, second] of bodies) {
      const url = `/v1/vaults/contoso/${collection}/${name}`;
      const created = await h.api<ObjectBody>('PUT', url, first);
      assert.equal(created.status, 201, `${collection}: ${JSON.stringify(created.body)}`);
      assert.equal(created.body.generation, 1);
      assert.equal(created.headers.get('etag'), '"1"');
      assert.deepEqual(created.body.spec, first);
      const again = await h.api<ObjectBody>('PUT', url, { ...first, name });
      assert.equal(again.status, 200);
      assert.equal(again.body.generation, 1, `${collection}: same body, same generation`);
      assert.equal(again.body.updatedAt, created.body.updatedAt);
      const changed = await h.api<ObjectBody>('PUT', url, second);
      assert.equal(changed.status, 200);
      assert.equal(changed.body.generation, 2);
      assert.equal(changed.body.uid, created.body.uid);
      const read = await h.api<ObjectBody>('GET', url);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.spec, second);
      const list = await h.api<{ items: ObjectBody[] }>('GET', `/v1/vaults/contoso/${collection}`);
      assert.ok(list.body.items.some((o) => o.name === name));
    }
    for (const [collection, name] of [...bodies].reverse()) {
      const del = await h.api('DELETE', `/v1/vaults/contoso/${collection}/${name}`);
      assert.equal(del.status, 204, `${collection}: ${JSON.stringify(del.body)}`);
      assert.equal((await h.api('GET', `/v1/vaults/contoso/${collection}/${name}`)).status, 404);
      assert.equal((await h.api('DELETE', `/v1/vaults/contoso/${collection}/${name}`)).status, 404);
    }
  });

  it('addresses objects by name case-insensitively and keeps the first spelling', async () => {
    await h.ok('PUT', '/v1/vaults/Contoso', {});
    await h.ok('PUT', '/v1/vaults/contoso/sites/HQ', { kind: 'hyperv-site' });
    const r = await h.api<ObjectBody>('GET', '/v1/vaults/CONTOSO/sites/hq');
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'HQ');
    assert.equal(r.body.vault, 'Contoso');
    const again = await h.api<ObjectBody>('PUT', '/v1/vaults/contoso/sites/hQ', { kind: 'hyperv-site' });
    assert.equal(again.status, 200);
    assert.equal(again.body.generation, 1);
  });

  it('refuses to delete what is in use (409, with who uses it) and allows it once free', async () => {
    await h.seedTopology();
    const site = await h.api<ErrorBody>('DELETE', '/v1/vaults/contoso/sites/hq');
    assert.equal(site.status, 409);
    assert.equal(site.body.error.code, 'object.inUse');
    assert.deepEqual(site.body.error.usedBy, [{ kind: 'replicationPolicy', name: 'gold' }]);

    // A site with a registered host is in use too.
    await h.ok('PUT', '/v1/vaults/contoso/sites/edge', { kind: 'hyperv-site' });
    const agent = new ScriptedAgent(h, 'contoso', 'hv-edge', 'edge');
    assert.equal((await agent.register(await h.registrationKey())).status, 201);
    const withHost = await h.api<ErrorBody>('DELETE', '/v1/vaults/contoso/sites/edge');
    assert.equal(withHost.status, 409);
    assert.deepEqual(withHost.body.error.usedBy, [{ kind: 'host', name: 'hv-edge' }]);
    assert.equal((await h.api('DELETE', '/v1/vaults/contoso/hosts/hv-edge')).status, 204);
    assert.equal((await h.api('DELETE', '/v1/vaults/contoso/sites/edge')).status, 204);

    // A policy with protected items is in use.
    await h.ok('PUT', '/v1/vaults/contoso/protectedItems/web01', { site: 'hq', vm: 'web01', policy: 'gold' });
    const policy = await h.api<ErrorBody>('DELETE', '/v1/vaults/contoso/replicationPolicies/gold');
    assert.equal(policy.status, 409);
    assert.deepEqual(policy.body.error.usedBy, [{ kind: 'protectedItem', name: 'web01' }]);
    // The vault itself is not empty.
    const vault = await h.api<ErrorBody>('DELETE', '/v1/vaults/contoso');
    assert.equal(vault.status, 409);
    assert.equal(vault.body.error.code, 'vault.notEmpty');
  });

  it('refuses references to objects that do not exist, listing the ones that do', async () => {
    await h.seedTopology();
    const r = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/protectedItems/web01', { site: 'hq', vm: 'web01', policy: 'silver' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.error.details, [{ path: '/policy', message: "no replication policy named 'silver' in vault 'contoso'", allowed: ['gold'] }]);
    const plan = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/recoveryPlans/app', { groups: [{ vms: ['db01'] }] });
    assert.equal(plan.status, 400);
    assert.equal(plan.body.error.details[0]?.path, '/groups/0/vms/0');
    assert.equal((await h.api('GET', '/v1/vaults/contoso/recoveryPlans/app')).status, 404, 'nothing was stored');
  });

  it('refuses a policy change that would strand protected items, and item changes of identity fields', async () => {
    await h.seedTopology();
    await h.ok('PUT', '/v1/vaults/contoso/sites/dr2', { kind: 'hyperv-site' });
    await h.ok('PUT', '/v1/vaults/contoso/protectedItems/web01', { site: 'hq', vm: 'web01', policy: 'gold' });
    const drop = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/replicationPolicies/gold', { target: 'secondary-site', associations: [] });
    assert.equal(drop.status, 409);
    assert.match(drop.body.error.details[0]!.message, /web01.*uses an association/);
    const kind = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/replicationPolicies/gold', { target: 'azure', azure: { storageAccount: 'contosodr' }, associations: [{ source: 'hq' }] });
    assert.equal(kind.status, 409);
    assert.equal(kind.body.error.details.find((d) => d.path === '/target')?.allowed?.[0], 'secondary-site');
    const vm = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/protectedItems/web01', { site: 'hq', vm: 'web02', policy: 'gold' });
    assert.equal(vm.status, 409);
    assert.equal(vm.body.error.code, 'protectedItem.conflict');
    assert.deepEqual(vm.body.error.details.map((d) => d.path), ['/vm']);
    assert.deepEqual(vm.body.error.details[0]!.allowed, ['web01']);
    const item = await h.api<ObjectBody>('GET', '/v1/vaults/contoso/protectedItems/web01');
    assert.equal(item.body.spec.vm, 'web01');
    assert.equal(item.body.generation, 1);
  });

  it('honours If-Match (412 on a stale generation) and answers 404/405 for unknown paths and methods', async () => {
    await h.ok('PUT', '/v1/vaults/contoso', {});
    await h.ok('PUT', '/v1/vaults/contoso/sites/hq', { kind: 'hyperv-site' });
    const stale = await h.api<ErrorBody>('PUT', '/v1/vaults/contoso/sites/hq', { kind: 'hyperv-site', description: 'x' }, { headers: { 'if-match': '"7"' } });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.error.code, 'object.generationMismatch');
    const fresh = await h.api<ObjectBody>('PUT', '/v1/vaults/contoso/sites/hq', { kind: 'hyperv-site', description: 'x' }, { headers: { 'if-match': '"1"' } });
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.generation, 2);
    assert.equal((await h.api<ErrorBody>('GET', '/v1/vaults/contoso/sites/nowhere')).body.error.code, 'object.notFound');
    assert.equal((await h.api<ErrorBody>('GET', '/v1/vaults/nowhere/sites')).status, 404);
    assert.equal((await h.api<ErrorBody>('GET', '/v1/nothing')).body.error.code, 'route.notFound');
    const method = await h.api<ErrorBody>('POST', '/v1/vaults/contoso/sites/hq', {});
    assert.equal(method.status, 405);
    assert.equal(method.headers.get('allow'), 'PUT, GET, DELETE');
  });

  it('makes the registration key and CA with the vault, and rotates the key', async () => {
    const v = await h.api<ObjectBody>('PUT', '/v1/vaults/contoso', { heartbeatIntervalSeconds: 10 });
    assert.equal(v.status, 201);
    const key1 = await h.registrationKey();
    assert.match(key1, /^lbr_[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(v.body).includes(key1), 'the key is not part of the vault object');
    const ca = await h.ok<{ certificate: string }>('GET', '/v1/vaults/contoso/certificateAuthority');
    assert.match(ca.certificate, /^-----BEGIN CERTIFICATE-----/);
    const rotated = await h.ok<{ registrationKey: string }>('POST', '/v1/vaults/contoso/registrationKey/rotate');
    assert.notEqual(rotated.registrationKey, key1);
    assert.equal(await h.registrationKey(), rotated.registrationKey);
    // Settings PUT again: no new CA, no new key.
    await h.ok('PUT', '/v1/vaults/contoso', { heartbeatIntervalSeconds: 20 });
    assert.equal((await h.ok<{ certificate: string }>('GET', '/v1/vaults/contoso/certificateAuthority')).certificate, ca.certificate);
    assert.equal(await h.registrationKey(), rotated.registrationKey);
  });
});
