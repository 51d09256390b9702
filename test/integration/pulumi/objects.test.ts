/**
 * The providers of Vault, Site, ReplicationPolicy, NetworkMapping and
 * RecoveryPlan against a real vault on loopback: check with the API's
 * schemas, hand-written diff, create/read/update/delete, drift after
 * out-of-band changes, adopt and release.
 */

import { strict as assert } from 'node:assert';
import { providerOf } from '../../../provider/pulumi/registry';
import { type Props } from '../../../provider/pulumi/props';
import { Harness } from '../vault/harness';
import { contextFor, thrown } from './provider-harness';

describe('pulumi providers: vault objects (real vault on loopback)', function () {
  this.timeout(60_000);
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.start();
  });
  afterEach(async () => {
    await h?.close();
  });

  const ctx = () => contextFor(h.url, h.token);

  it('Vault: create outputs the registration key and CA; a second create without adopt fails saying to set adopt; adopt takes it over and delete releases it', async () => {
    const p = providerOf('vault', ctx());
    const inputs: Props = { name: 'contoso', heartbeatIntervalSeconds: 10, implVersion: 1 };
    assert.deepEqual((await p.check!({}, inputs)).failures, []);
    const created = await p.create(inputs);
    assert.equal(created.id, 'contoso');
    assert.equal(created.outs!.registrationKey, await h.registrationKey('contoso'));
    assert.match(String(created.outs!.certificateAuthority), /BEGIN CERTIFICATE/);
    assert.equal(created.outs!.heartbeatIntervalSeconds, 10);
    assert.equal(created.outs!.adopted, false);

    const again = await thrown(() => p.create(inputs));
    assert.equal(again.code, 'pulumi.alreadyExists');
    assert.match(String(again.hint), /adopt: true/);

    const adopted = await p.create({ ...inputs, name: 'CONTOSO', adopt: true, heartbeatIntervalSeconds: 20 });
    assert.equal(adopted.outs!.adopted, true);
    assert.equal((await h.ok<{ spec: { heartbeatIntervalSeconds: number } }>('GET', '/v1/vaults/contoso')).spec.heartbeatIntervalSeconds, 20);
    await p.delete!(adopted.id, adopted.outs!);
    assert.equal((await h.api('GET', '/v1/vaults/contoso')).status, 200, 'an adopted vault is released, not deleted');

    await p.delete!(created.id, created.outs!);
    assert.equal((await h.api('GET', '/v1/vaults/contoso')).status, 404);
  });

  it('Vault: check names the property and what would be valid, before any call', async () => {
    const p = providerOf('vault', contextFor('http://127.0.0.1:1', 'lba_wrong'));
    const r = await p.check!({}, { name: 'bad name!', heartbeatIntervalSeconds: 1, colour: 'blue' });
    const byProp = new Map((r.failures ?? []).map((f) => [f.property, f.reason]));
    assert.match(byProp.get('name') ?? '', /expected string of 1..63 characters matching/);
    assert.match(byProp.get('heartbeatIntervalSeconds') ?? '', /5/);
    assert.match(byProp.get('colour') ?? '', /unknown input colour; valid: .*heartbeatIntervalSeconds/);
  });

  it('ReplicationPolicy: schema failures, in-place changes, replace on target, case-insensitive names, drift, delete', async () => {
    await h.seedTopology('contoso');
    const p = providerOf('replicationPolicy', ctx());
    const bad = await p.check!({}, { vault: 'contoso', name: 'silver', target: 'secondary-site', replicationFrequencySeconds: 60, recoveryPointRetentionHours: 3, appConsistentSnapshotFrequencyHours: 4 });
    const reasons = new Map((bad.failures ?? []).map((f) => [f.property, f.reason]));
    assert.match(reasons.get('replicationFrequencySeconds') ?? '', /valid: 30, 300, 900/);
    assert.match(reasons.get('appConsistentSnapshotFrequencyHours') ?? '', /<= ?3/);

    const inputs: Props = { vault: 'contoso', name: 'silver', target: 'secondary-site', replicationFrequencySeconds: 300, associations: [{ source: 'hq', target: 'dr' }], implVersion: 1 };
    assert.deepEqual((await p.check!({}, inputs)).failures, []);
    const c = await p.create(inputs);
    assert.equal(c.id, 'contoso/replicationPolicies/silver');
    const olds = c.outs!;

    // Read right after create reports exactly what create returned: no drift, no perpetual diff.
    const r0 = await p.read!(c.id, olds);
    assert.deepEqual(r0.props, olds);
    assert.deepEqual(r0.inputs, inputs);
    assert.deepEqual(await p.diff!(c.id, olds, inputs), { changes: false, replaces: [], deleteBeforeReplace: true });

    const sameButCased = { ...inputs, vault: 'CONTOSO', name: 'Silver', associations: [{ source: 'HQ', target: 'Dr' }] };
    assert.equal((await p.diff!(c.id, olds, sameButCased)).changes, false, 'identifiers compare case-insensitively');

    const faster = { ...inputs, replicationFrequencySeconds: 30 };
    assert.deepEqual(await p.diff!(c.id, olds, faster), { changes: true, replaces: [], deleteBeforeReplace: true });
    const u = await p.update!(c.id, olds, faster);
    assert.equal(u.outs!.replicationFrequencySeconds, 30);
    assert.equal((await h.ok<{ spec: { replicationFrequencySeconds: number } }>('GET', '/v1/vaults/contoso/replicationPolicies/silver')).spec.replicationFrequencySeconds, 30);

    const azure = { ...faster, target: 'azure', azure: { storageAccount: 'acct1' }, associations: [{ source: 'hq' }] };
    assert.deepEqual((await p.diff!(c.id, u.outs!, azure)).replaces, ['target']);

    // Out-of-band change: read shows it, diff sees it, update puts the declared spec back.
    await h.ok('PUT', '/v1/vaults/contoso/replicationPolicies/silver', { target: 'secondary-site', replicationFrequencySeconds: 900, associations: [{ source: 'hq', target: 'dr' }] });
    const drifted = await p.read!(c.id, u.outs!);
    assert.equal(drifted.props!.replicationFrequencySeconds, 900);
    assert.deepEqual(drifted.inputs, { vault: 'contoso', name: 'silver', implVersion: 1, target: 'secondary-site', replicationFrequencySeconds: 900, associations: [{ source: 'hq', target: 'dr' }] });
    assert.equal((await p.diff!(c.id, drifted.props!, faster)).changes, true);

    // Out-of-band delete: read reports the resource gone.
    await h.ok('DELETE', '/v1/vaults/contoso/replicationPolicies/silver');
    const gone = await p.read!(c.id, u.outs!);
    assert.equal(gone.id, undefined);

    const again = await p.create(faster);
    await p.delete!(again.id, again.outs!);
    assert.equal((await h.api('GET', '/v1/vaults/contoso/replicationPolicies/silver')).status, 404);
    await p.delete!(again.id, again.outs!); // already gone: nothing to do
  });

  it('Site: replaced on kind, released when adopted, deleted when created; NetworkMapping and RecoveryPlan round trips', async () => {
    await h.ok('PUT', '/v1/vaults/contoso', {});
    const site = providerOf('site', ctx());
    const hq = await site.create({ vault: 'contoso', name: 'hq', kind: 'hyperv-site', hosts: ['hv01'] });
    const dr = await site.create({ vault: 'contoso', name: 'dr', kind: 'hyperv-site' });
    assert.deepEqual((await site.diff!(hq.id, hq.outs!, { vault: 'contoso', name: 'hq', kind: 'vmm-cloud', clouds: [{ name: 'c1' }] })).replaces, ['kind']);
    assert.deepEqual(await site.diff!(hq.id, hq.outs!, { vault: 'contoso', name: 'hq', kind: 'hyperv-site', hosts: ['HV01'] }), { changes: false, replaces: [], deleteBeforeReplace: true });

    const mapping = providerOf('networkMapping', ctx());
    const m = await mapping.create({ vault: 'contoso', name: 'prod', source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' } });
    const mu = await mapping.update!(m.id, m.outs!, { ...m.outs!, testNetwork: 'Isolated' });
    assert.equal(mu.outs!.testNetwork, 'Isolated');
    const badMapping = await mapping.check!({}, { vault: 'contoso', name: 'x', source: { site: 'hq', network: 'Prod' }, target: { network: 'n' } });
    assert.ok((badMapping.failures ?? []).some((f) => f.property.startsWith('target')), JSON.stringify(badMapping.failures));

    await h.ok('PUT', '/v1/vaults/contoso/replicationPolicies/gold', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] });
    const plan = providerOf('recoveryPlan', ctx());
    const badPlan = await plan.check!({}, { vault: 'contoso', name: 'app', groups: [{ vms: ['web01'], before: [{ script: 'a.sh', manual: 'both' }] }] });
    assert.ok((badPlan.failures ?? []).some((f) => f.property === 'groups[0].before[0]'), JSON.stringify(badPlan.failures));

    // A site in use cannot go: the vault's refusal reaches the caller.
    const inUse = await thrown(() => site.delete!(hq.id, hq.outs!));
    assert.equal(inUse.code, 'object.inUse');

    await mapping.delete!(m.id, mu.outs!);
    await h.ok('DELETE', '/v1/vaults/contoso/replicationPolicies/gold');
    const adoptedDr = await site.create({ vault: 'contoso', name: 'DR', kind: 'hyperv-site', adopt: true });
    assert.equal(adoptedDr.outs!.adopted, true);
    await site.delete!(adoptedDr.id, adoptedDr.outs!);
    assert.equal((await h.api('GET', '/v1/vaults/contoso/sites/dr')).status, 200, 'an adopted site is released');
    await site.delete!(dr.id, dr.outs!);
    await site.delete!(hq.id, hq.outs!);
    assert.equal((await h.api('GET', '/v1/vaults/contoso/sites/hq')).status, 404);
  });

  it('connection: missing URL or token says what to set; a refused token names where it came from', async () => {
    const none = providerOf('site', { ...ctx(), sources: { env: {}, config: () => undefined } });
    const noUrl = await thrown(() => none.create({ vault: 'contoso', name: 'hq', kind: 'hyperv-site' }));
    assert.equal(noUrl.code, 'pulumi.noConnection');
    assert.match(String(noUrl.hint), /lifeboat:vaultUrl.*LIFEBOAT_VAULT_URL/);
    const noToken = providerOf('site', { ...ctx(), sources: { env: {}, config: (k) => (k === 'lifeboat:vaultUrl' ? h.url : undefined) } });
    const e2 = await thrown(() => noToken.create({ vault: 'contoso', name: 'hq', kind: 'hyperv-site' }));
    assert.equal(e2.code, 'pulumi.noConnection');
    assert.match(String(e2.hint), /lifeboat:token.*LIFEBOAT_TOKEN_FILE/);

    // Stack config wins over the environment.
    await h.ok('PUT', '/v1/vaults/contoso', {});
    const fromConfig = providerOf('site', contextFor('http://127.0.0.1:1', 'lba_wrong', { config: { 'lifeboat:vaultUrl': h.url, 'lifeboat:token': h.token } }));
    const made = await fromConfig.create({ vault: 'contoso', name: 'hq', kind: 'hyperv-site' });
    assert.equal(made.outs!.kind, 'hyperv-site');

    // Through the engine-facing wrapper: the message carries the code and where the token came from.
    const { engineProvider } = await import('../../../provider/pulumi/registry');
    const saved = { url: process.env.LIFEBOAT_VAULT_URL, token: process.env.LIFEBOAT_TOKEN };
    process.env.LIFEBOAT_VAULT_URL = h.url;
    process.env.LIFEBOAT_TOKEN = 'lba_not-the-token';
    try {
      const e3 = await thrown(() => engineProvider('site').read!('contoso/sites/hq', made.outs!));
      assert.match(e3.message, /refused the admin token from environment LIFEBOAT_TOKEN \[pulumi\.tokenRefused\]/);
      assert.match(e3.message, /hint: set lifeboat:token/);
    } finally {
      for (const [k, v] of [['LIFEBOAT_VAULT_URL', saved.url], ['LIFEBOAT_TOKEN', saved.token]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
