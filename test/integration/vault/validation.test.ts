import { strict as assert } from 'node:assert';
import { Harness, type ErrorBody } from './harness';

/** [what, url, body, expected (path → message pattern)] */
type Case = [string, string, unknown, Record<string, RegExp>];

const V = '/v1/vaults/contoso';

const cases: Case[] = [
  ['vault: out-of-range setting', V, { heartbeatIntervalSeconds: 1 }, { '/heartbeatIntervalSeconds': /must be >= 5/ }],
  ['site: unknown kind and extra field', `${V}/sites/x`, { kind: 'esxi', color: 'red' }, { '/kind': /must be one of 'hyperv-site', 'vmm-cloud'/, '/color': /unknown property 'color'/ }],
  ['site: clouds on a Hyper-V site', `${V}/sites/x`, { kind: 'hyperv-site', clouds: [{ name: 'c' }] }, { '/clouds': /not allowed here when kind is 'hyperv-site'/ }],
  ['site: a VMM site needs clouds', `${V}/sites/x`, { kind: 'vmm-cloud' }, { '/clouds': /at least one cloud/ }],
  ['site: bad host name in the list', `${V}/sites/x`, { kind: 'hyperv-site', hosts: ['hv_01'] }, { '/hosts/0': /expected form/ }],
  ['site: unknown time zone', `${V}/sites/x`, { kind: 'hyperv-site', timeZone: 'Mars/Olympus' }, { '/timeZone': /unknown time zone 'Mars\/Olympus'/ }],
  ['policy: every field wrong', `${V}/replicationPolicies/p`, {
    target: 'tape', replicationFrequencySeconds: 60, recoveryPointRetentionHours: -1, compression: 'yes', replicationPort: 70000,
  }, {
    '/target': /must be one of 'secondary-site', 'azure'/, '/replicationFrequencySeconds': /must be one of 30, 300, 900/,
    '/recoveryPointRetentionHours': /must be >= 0/, '/compression': /must be a boolean/, '/replicationPort': /must be <= 65535/,
  }],
  ['policy: app-consistent above retention', `${V}/replicationPolicies/p`, {
    target: 'secondary-site', recoveryPointRetentionHours: 2, appConsistentSnapshotFrequencyHours: 4, associations: [{ source: 'hq', target: 'dr' }],
  }, { '/appConsistentSnapshotFrequencyHours': /must be <= 2 when recoveryPointRetentionHours is 2/ }],
  ['policy: empty resync window', `${V}/replicationPolicies/p`, {
    target: 'secondary-site', resync: { window: { start: '22:00', end: '22:00' } }, associations: [{ source: 'hq', target: 'dr' }],
  }, { '/resync/window': /is empty/ }],
  ['policy: kerberos is not supported', `${V}/replicationPolicies/p`, {
    target: 'secondary-site', authentication: 'kerberos', associations: [{ source: 'hq', target: 'dr' }],
  }, { '/authentication': /not supported/ }],
  ['policy: association to itself, duplicate source, unknown site', `${V}/replicationPolicies/p`, {
    target: 'secondary-site', associations: [{ source: 'hq', target: 'hq' }, { source: 'hq', target: 'dr' }, { source: 'nowhere', target: 'dr' }],
  }, { '/associations/0/target': /another site/, '/associations/1/source': /duplicates the source/, '/associations/2/source': /no site named 'nowhere'/ }],
  ['policy: cloud of a site without it', `${V}/replicationPolicies/p`, {
    target: 'secondary-site', associations: [{ source: 'hq/Gold', target: 'dr' }],
  }, { '/associations/0/source': /site 'hq' has no cloud 'Gold'/ }],
  ['mapping: missing network and both targets', `${V}/networkMappings/m`, {
    source: { site: 'hq' }, target: { site: 'dr', azure: true, network: 'x' },
  }, { '/source/network': /is required/, '/target': /exactly one of 'site', 'azure'/ }],
  ['item: missing fields', `${V}/protectedItems/i`, { vm: 'web01' }, { '/site': /is required/, '/policy': /is required/ }],
  ['item: bad disks and target VM', `${V}/protectedItems/i`, {
    site: 'hq', vm: 'web01', policy: 'gold', disks: [], targetVm: { cpuCount: 0, networkAdapters: [{ ipAddress: '10.0.0' }] },
  }, { '/disks': /at least 1/, '/targetVm/cpuCount': /must be >= 1/, '/targetVm/networkAdapters/0/ipAddress': /expected form/ }],
  ['item: cloud on a Hyper-V site, target site outside the association', `${V}/protectedItems/i`, {
    site: 'hq', cloud: 'Gold', vm: 'web01', policy: 'gold', target: { site: 'hq' },
  }, { '/cloud': /Hyper-V site without clouds/, '/target/site': /replicates hq to dr/ }],
  ['plan: action with both script and manual', `${V}/recoveryPlans/p`, {
    groups: [{ vms: ['web01'], before: [{ script: 'a.sh', manual: 'b' }] }],
  }, { '/groups/0/before/0': /exactly one of 'script', 'manual'/ }],
  ['plan: unknown item, item in two groups', `${V}/recoveryPlans/p`, {
    groups: [{ vms: ['web01'] }, { vms: ['WEB01'] }],
  }, { '/groups/0/vms/0': /no protected item named 'web01'/, '/groups/1/vms/0': /already in group 0/ }],
  ['name in the body differs from the path', `${V}/sites/hq2`, { name: 'other', kind: 'hyperv-site' }, { '/name': /must match the name in the path/ }],
  ['body is not an object', `${V}/sites/x`, [1, 2], { '': /must be an object/ }],
];

describe('vault API: invalid bodies (400 with the JSON path of each bad field)', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
    await h.seedTopology();
  });
  after(async () => {
    await h.close();
  });

  for (const [what, url, body, expected] of cases) {
    it(what, async () => {
      const before = h.databaseSnapshot();
      const r = await h.api<ErrorBody>('PUT', url, body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'request.invalid');
      const byPath = new Map(r.body.error.details.map((d) => [d.path, d.message]));
      for (const [p, pattern] of Object.entries(expected)) {
        assert.ok(byPath.has(p), `expected a problem at ${p}; got ${JSON.stringify(r.body.error.details)}`);
        assert.match(byPath.get(p)!, pattern, `${p}`);
      }
      assert.match(r.body.error.hint ?? '', /allowed.*expected/);
      assert.equal(h.databaseSnapshot(), before, 'nothing stored');
    });
  }

  it('names what would be valid: enum values, property names, existing objects', async () => {
    // The shape is checked first; references once the shape is right.
    const shape = await h.api<ErrorBody>('PUT', `${V}/protectedItems/i`, { site: 'nowhere', vm: 'web01', policy: 'gold', color: 1 });
    assert.deepEqual(shape.body.error.details.map((x) => x.path), ['/color']);
    assert.ok(shape.body.error.details[0]!.allowed?.includes('targetVm'));
    const refs = await h.api<ErrorBody>('PUT', `${V}/protectedItems/i`, { site: 'nowhere', vm: 'web01', policy: 'gold' });
    assert.deepEqual(refs.body.error.details.map((x) => [x.path, x.allowed]), [['/site', ['dr', 'hq']]]);
  });

  it('refuses malformed JSON, a missing body, an oversized body and a bad name in the path', async () => {
    const malformed = await h.api<ErrorBody>('PUT', `${V}/sites/x`, undefined, { raw: '{"kind": "hyperv-site",' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 'request.malformedJson');
    const missing = await h.api<ErrorBody>('PUT', `${V}/sites/x`);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.details[0]?.message, 'a JSON body is required');
    const huge = await h.api<ErrorBody>('PUT', `${V}/sites/x`, { kind: 'hyperv-site', description: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(huge.status, 413);
    const badName = await h.api<ErrorBody>('PUT', `${V}/sites/-bad-`, { kind: 'hyperv-site' });
    assert.equal(badName.status, 400);
    assert.equal(badName.body.error.details[0]?.path, '{name}');
    assert.equal((await h.api('GET', `${V}/sites/x`)).status, 404);
  });
});
