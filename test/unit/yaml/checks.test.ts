import { strict as assert } from 'node:assert';
import { checkProtection } from '../../../provider/yaml/checks';

const base = {
  apiVersion: 'lifeboat/v1',
  vault: { name: 'v' },
  sites: [
    { name: 'hq', kind: 'hyperv-site' },
    { name: 'dr', kind: 'hyperv-site' },
    { name: 'vmm01', kind: 'vmm-cloud', clouds: [{ name: 'Gold' }, { name: 'Silver' }] },
  ],
};

function problems(extra: Record<string, unknown>): [string, string][] {
  return checkProtection({ ...base, ...extra }).map((p) => [p.path, p.code]);
}

describe('yaml/checks', () => {
  it('finds nothing wrong in consistent data, and ignores what is not an object', () => {
    assert.deepEqual(problems({
      policies: [{ name: 'gold', target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }, { source: 'vmm01/gold', target: 'DR' }] }],
      protectedVms: [{ name: 'a', site: 'HQ', vm: 'a', policy: 'GOLD' }, { name: 'b', site: 'vmm01', cloud: 'GOLD', vm: 'b', policy: 'gold', target: { site: 'dr' } }],
      recoveryPlans: [{ name: 'p', groups: [{ vms: ['A'] }, { vms: ['b'] }] }],
    }), []);
    for (const v of [null, 1, 'x', [], [{}]]) assert.deepEqual(checkProtection(v), []);
  });

  it('does not call a reference dangling while an element of that list has no name (it may be the one meant)', () => {
    const doc = {
      ...base,
      sites: [...base.sites, { kind: 'hyperv-site' }],
      policies: [{ name: 'gold', target: 'secondary-site', associations: [{ source: 'branch', target: 'dr' }] }, { target: 'azure' }],
      protectedVms: [{ name: 'a', site: 'branch', vm: 'a', policy: 'silver' }, { site: 'hq' }],
      recoveryPlans: [{ name: 'p', groups: [{ vms: ['zz'] }] }],
    };
    assert.deepEqual(checkProtection(doc), []);
  });

  it('a VM uses the association of its cloud before the one of its whole site (the vault\'s rule)', () => {
    const policies = [{ name: 'gold', target: 'secondary-site', associations: [{ source: 'vmm01', target: 'hq' }, { source: 'vmm01/Gold', target: 'dr' }] }];
    assert.deepEqual(problems({ policies, protectedVms: [{ name: 'a', site: 'vmm01', cloud: 'Gold', vm: 'a', policy: 'gold', target: { site: 'dr' } }] }), []);
    assert.deepEqual(problems({ policies, protectedVms: [{ name: 'a', site: 'vmm01', cloud: 'Silver', vm: 'a', policy: 'gold', target: { site: 'hq' } }] }), []);
    assert.deepEqual(problems({ policies, protectedVms: [{ name: 'a', site: 'vmm01', cloud: 'Gold', vm: 'a', policy: 'gold', target: { site: 'hq' } }] }), [['/protectedVms/0/target/site', 'protection.targetMismatch']]);
  });

  it('lists the names that would resolve', () => {
    const [p] = checkProtection({ ...base, protectedVms: [{ name: 'a', site: 'vmm01', cloud: 'Bronze', vm: 'a', policy: 'x' }], policies: [] });
    assert.deepEqual(p, { code: 'protection.unknownReference', path: '/protectedVms/0/cloud', message: "site 'vmm01' has no cloud 'Bronze'", allowed: ['Gold', 'Silver'] });
    const [q] = checkProtection({ ...base, policies: [{ name: 'g', target: 'secondary-site', associations: [{ source: 'hq', target: 'vmm01/Bronze' }] }] });
    assert.deepEqual(q?.allowed, ['vmm01/Gold', 'vmm01/Silver']);
  });

  it('names the other place through `describe`', () => {
    const [p] = checkProtection({ ...base, sites: [...base.sites, { name: 'HQ', kind: 'hyperv-site' }] }, { describe: (path) => `<${path}>` });
    assert.equal(p?.message, "duplicates the name of the site at </sites/0> ('hq'); names are unique and compare case-insensitively");
  });

  it('checks azure targets: no site or host for the VM of an azure policy', () => {
    const policies = [{ name: 'cloud', target: 'azure', azure: { storageAccount: 'abc' }, associations: [{ source: 'hq' }] }];
    assert.deepEqual(problems({ policies, protectedVms: [{ name: 'a', site: 'hq', vm: 'a', policy: 'cloud', target: { host: 'h1' } }] }), [['/protectedVms/0/target', 'protection.targetMismatch']]);
    assert.deepEqual(problems({ policies, protectedVms: [{ name: 'a', site: 'hq', vm: 'a', policy: 'cloud', targetVm: { azureVmSize: 'Standard_D2s_v5' } }] }), []);
  });
});
