import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { topologyFromProtection } from '../../../../provider/cli/lab/protection-topology';
import { LifeboatError } from '../../../../provider/errors';
import { loadProtectionFileSync, parseProtection, toProtectionDocument, type ProtectionModel } from '../../../../provider/yaml';

const EXAMPLE = path.join(__dirname, '../../../../examples/yaml-declared/protection.yaml');

function model(text: string): ProtectionModel {
  const r = parseProtection(text, 'test.yaml');
  assert.deepEqual(r.problems, []);
  return r.model!;
}

const HEAD = 'apiVersion: lifeboat/v1\nvault: { name: v }\n';

function refusal(text: string): LifeboatError {
  try {
    topologyFromProtection(model(text), '/f.yaml');
  } catch (e) {
    assert.ok(LifeboatError.isInstance(e));
    return e;
  }
  assert.fail('the topology was accepted');
}

describe('cli/lab/protection-topology', () => {
  it('the example: its vault and sites as the stack will PUT them, an agent per host in its role, VMs round robin on the mapped network', () => {
    const m = loadProtectionFileSync(EXAMPLE);
    const t = topologyFromProtection(m, EXAMPLE);
    const doc = toProtectionDocument(m);
    const { name: _v, ...vaultBody } = doc.vault;
    assert.deepEqual(t.vault, { name: 'contoso-dr', spec: vaultBody });
    assert.deepEqual(t.sites, (doc.sites ?? []).map(({ name, ...spec }) => ({ name, spec })));
    assert.deepEqual(t.policies, []);
    assert.equal(t.objects, 'createOnly');
    assert.equal(t.protectionFile, EXAMPLE);
    assert.deepEqual(t.hosts.map((h) => [h.name, h.site, h.role, h.vms.map((v) => [v.name, v.network, v.disks])]), [
      ['hvdr01', 'dr', 'recovery', []],
      ['hv01', 'hq', 'primary', [['db01', 'Prod', undefined]]],
      ['hv02', 'hq', 'primary', [['web01', 'Prod', undefined]]],
    ]);
    // Seeds depend on the site and VM only: the same file gives the same guests.
    assert.deepEqual(topologyFromProtection(loadProtectionFileSync(EXAMPLE), EXAMPLE), t);
    const seeds = t.hosts.flatMap((h) => h.vms.map((v) => v.seed));
    assert.equal(new Set(seeds).size, seeds.length);
  });

  it('VMM clouds: a VM runs on its cloud\'s hosts; an Azure association makes no recovery host; no mapping means lab-net', () => {
    const t = topologyFromProtection(model(`${HEAD}sites:
  - { name: vmm, kind: vmm-cloud, clouds: [{ name: gold, hosts: [g1, g2] }, { name: silver, hosts: [s1] }] }
  - { name: dr, kind: hyperv-site, hosts: [d1] }
  - { name: edge, kind: hyperv-site, hosts: [e1] }
policies:
  - { name: p, target: secondary-site, associations: [{ source: vmm/gold, target: dr }] }
  - { name: a, target: azure, azure: { storageAccount: acct }, associations: [{ source: edge }] }
protectedVms:
  - { name: a1, site: vmm, cloud: gold, vm: a1, policy: p, disks: [d0, logs] }
  - { name: a2, site: vmm, cloud: gold, vm: a2, policy: p }
  - { name: a3, site: vmm, cloud: gold, vm: a3, policy: p }
  - { name: e, site: edge, vm: e, policy: a }
`), '/f.yaml');
    assert.deepEqual(t.hosts.map((h) => [h.name, h.role, h.vms.map((v) => v.name)]).sort(), [
      ['d1', 'recovery', []], ['e1', 'primary', ['e']], ['g1', 'primary', ['a1', 'a3']], ['g2', 'primary', ['a2']], ['s1', 'primary', []],
    ]);
    const a1 = t.hosts.find((h) => h.name === 'g1')!.vms[0]!;
    assert.deepEqual([a1.disks, a1.network], [['d0', 'logs'], 'lab-net']);
  });

  it('refuses what the lab cannot run, naming the entry: no hosts, a VM whose site has none, a name the lab hypervisor refuses', () => {
    const noHosts = refusal(`${HEAD}sites: [{ name: hq, kind: hyperv-site }]\n`);
    assert.equal(noHosts.code, 'lab.noHosts');
    const noHostForVm = refusal(`${HEAD}sites:
  - { name: hq, kind: hyperv-site }
  - { name: dr, kind: hyperv-site, hosts: [d1] }
policies: [{ name: p, target: secondary-site, associations: [{ source: hq, target: dr }] }]
protectedVms: [{ name: w, site: hq, vm: w, policy: p }]
`);
    assert.equal(noHostForVm.code, 'lab.noHostForVm');
    assert.deepEqual(noHostForVm.where, { file: '/f.yaml', path: '/protectedVms/0' });
    const badName = refusal(`${HEAD}sites:
  - { name: hq, kind: hyperv-site, hosts: [h1] }
  - { name: dr, kind: hyperv-site, hosts: [d1] }
policies: [{ name: p, target: secondary-site, associations: [{ source: hq, target: dr }] }]
protectedVms: [{ name: w, site: hq, vm: "DB Server (01)", policy: p }]
`);
    assert.equal(badName.code, 'lab.unsupportedName');
    assert.deepEqual(badName.where, { file: '/f.yaml', path: '/protectedVms/0/vm' });
  });
});
