/**
 * `lifeboat lab up --protection FILE` as processes: the vault named as in
 * the file with its sites and nothing else, one agent per host in the role
 * its site plays, one demo VM per protected VM on its site's hosts (round
 * robin, NIC on the mapped source network, the disks the file names); the
 * folder remembers the topology across `down` and `up`; a file with
 * problems or for another vault starts nothing.
 */

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { lifeboat, TestLab, waitFor } from './lab-harness';

const PROTECTION = `apiVersion: lifeboat/v1
vault: { name: acme, description: lab test vault }
sites:
  - { name: hq, kind: hyperv-site, hosts: [hv01, hv02] }
  - { name: dr, kind: hyperv-site, hosts: [hvdr01] }
  - { name: branch, kind: hyperv-site, hosts: [br01] }
policies:
  - name: gold
    target: secondary-site
    replicationFrequencySeconds: 30
    recoveryPointRetentionHours: 1
    associations: [{ source: hq, target: dr }]
networkMappings:
  - { name: prod, source: { site: hq, network: Prod }, target: { site: dr, network: Prod-DR } }
protectedVms:
  - { name: web01, site: hq, vm: web01, policy: gold }
  - { name: db01, site: hq, vm: db01, policy: gold, disks: [disk0, logs] }
  - { name: app01, site: hq, vm: app01, policy: gold }
`;

describe('lab: up --protection FILE (real processes)', function () {
  this.timeout(150_000);
  let lab: TestLab;
  let file: string;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '2'], {
      prepare: async (root) => {
        file = path.join(root, 'protection.yaml');
        await writeFile(file, PROTECTION);
        return ['--protection', file];
      },
    });
  });

  after(async () => {
    await lab?.down();
  });

  it('starts the vault named in the file, an agent per host (recovery where the site is an association target) and nothing the stack owns', async () => {
    assert.equal(lab.state.vaultName, 'acme');
    assert.deepEqual(lab.state.processes.map((p) => p.name).sort(), ['br01', 'hv01', 'hv02', 'hvdr01', 'vault']);
    const hosts = await lab.client.listHosts('acme');
    assert.deepEqual(hosts.map((h) => [h.name, h.spec.site, h.status.connectionState]).sort(), [
      ['br01', 'branch', 'Connected'], ['hv01', 'hq', 'Connected'], ['hv02', 'hq', 'Connected'], ['hvdr01', 'dr', 'Connected'],
    ]);
    const roles = Object.fromEntries((JSON.parse((await lifeboat(['lab', 'status', '--dir', lab.dir, '-o', 'json'])).stdout) as { processes: { name: string; role?: string }[] }).processes.map((p) => [p.name, p.role]));
    assert.deepEqual(roles, { vault: undefined, hv01: 'primary', hv02: 'primary', hvdr01: 'recovery', br01: 'primary' });

    // The vault and its sites as the file declares them (so a stack adopts them unchanged); no policy, mapping, item or plan.
    const vault = await lab.client.getVault('acme');
    assert.equal((vault.spec as { description?: string }).description, 'lab test vault');
    const sites = await lab.client.listObjects<{ kind: string; hosts: string[] }>('acme', 'sites');
    assert.deepEqual(sites.map((s) => [s.name, s.spec.kind, s.spec.hosts]).sort(), [['branch', 'hyperv-site', ['br01']], ['dr', 'hyperv-site', ['hvdr01']], ['hq', 'hyperv-site', ['hv01', 'hv02']]]);
    for (const c of ['replicationPolicies', 'networkMappings', 'recoveryPlans'] as const) assert.deepEqual(await lab.client.listObjects('acme', c), [], c);
    assert.deepEqual(await lab.client.listProtectedItems('acme'), []);
  });

  it('creates one running demo VM per protected VM on its site\'s hosts, round robin, on the mapped source network, with the disks the file names', async () => {
    const hosts = await lab.client.listHosts('acme');
    const vms = hosts.flatMap((h) => (h.status.inventory?.vms ?? []).map((v) => ({ host: h.name, ...v })));
    assert.deepEqual(vms.map((v) => [v.name, v.host, v.powerState, v.networks, v.disks.map((d) => [d.id, d.sizeBytes])]).sort(), [
      ['app01', 'hv01', 'Running', ['Prod'], [['disk0', 2 * 1024 * 1024]]],
      ['db01', 'hv02', 'Running', ['Prod'], [['disk0', 2 * 1024 * 1024], ['logs', 2 * 1024 * 1024]]],
      ['web01', 'hv01', 'Running', ['Prod'], [['disk0', 2 * 1024 * 1024]]],
    ]);
    const status = await lifeboat(['lab', 'status', '--dir', lab.dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.ok(status.stdout.includes(`topology: ${file}`), status.stdout);
    assert.match(status.stdout, /hv01\s+primary \(site hq\)\s+\d+\s+running\s+.+\s+app01, web01/);
  });

  it('refuses a file for another vault, or with problems, and starts nothing', async () => {
    const other = path.join(lab.root, 'other.yaml');
    await writeFile(other, PROTECTION.replace('name: acme', 'name: other'));
    const before = lab.state.processes.map((p) => p.pid);
    const r = await lifeboat(['lab', 'up', '--dir', lab.dir, '--protection', other]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /runs vault 'acme' .* not vault 'other' .*\[lab\.topologyMismatch\]/);

    const fresh = await mkdtemp(path.join(tmpdir(), 'lb-lab-bad-'));
    try {
      const bad = path.join(fresh, 'bad.yaml');
      await writeFile(bad, PROTECTION.replace('replicationFrequencySeconds: 30', 'replicationFrequencySeconds: 60'));
      const b = await lifeboat(['lab', 'up', '--dir', path.join(fresh, 'lab'), '--protection', bad]);
      assert.equal(b.code, 2, b.stderr);
      assert.ok(b.stderr.includes(`${bad}:10:34: /policies/0/replicationFrequencySeconds: must be one of 30, 300, 900 (got 60)`), b.stderr);
      assert.match(b.stderr, /1 problem \(listed above\); nothing was started \[lab\.invalidProtectionFile\]/);
      assert.ok(!existsSync(path.join(fresh, 'lab')), 'nothing was created');
      const noHosts = path.join(fresh, 'no-hosts.yaml');
      await writeFile(noHosts, PROTECTION.replace('hosts: [hv01, hv02]', 'hosts: []'));
      const n = await lifeboat(['lab', 'up', '--dir', path.join(fresh, 'lab'), '--protection', noHosts]);
      assert.equal(n.code, 2, n.stderr);
      assert.match(n.stderr, /protected VM 'app01' runs on site 'hq'.*lists no host .*\[lab\.noHostForVm\]/);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
    assert.deepEqual(JSON.parse((await lifeboat(['lab', 'status', '--dir', lab.dir, '-o', 'json'])).stdout).processes.map((p: { pid: number }) => p.pid), before);
  });

  it('after down, up without --protection restarts the same lab; the vault\'s sites are not overwritten (the stack owns them)', async () => {
    await lab.client.putObject('acme', 'sites', 'branch', { kind: 'hyperv-site', hosts: ['br01'], description: 'changed by the stack' });
    const down = await lab.down(false);
    assert.equal(down.code, 0, down.stderr);
    await lab.upAgain();
    assert.equal(lab.state.vaultName, 'acme');
    assert.deepEqual(lab.state.processes.map((p) => p.name).sort(), ['br01', 'hv01', 'hv02', 'hvdr01', 'vault']);
    const site = await lab.client.getObject<{ description?: string }>('acme', 'sites', 'branch');
    assert.equal(site.spec.description, 'changed by the stack');
    const hosts = await lab.client.listHosts('acme');
    assert.equal(hosts.filter((h) => h.status.connectionState === 'Connected').length, 4);
    assert.equal(hosts.flatMap((h) => h.status.inventory?.vms ?? []).length, 3);
  });

  it('up --protection with a file that protects one more VM creates just that VM (restarting its host only); the others stay where they run', async () => {
    const more = path.join(lab.root, 'more.yaml');
    await writeFile(more, `${PROTECTION}  - { name: api01, site: hq, vm: api01, policy: gold }\n`);
    const before = new Map(lab.state.processes.map((p) => [p.name, p.pid]));
    const r = await lifeboat(['lab', 'up', '--dir', lab.dir, '--protection', more]);
    assert.equal(r.code, 0, r.stderr);
    // api01 comes first by name: round robin puts it on hv01; app01, db01 and web01 are already placed.
    assert.match(r.stdout, /host hv01 stopped to create api01\n/);
    const after = JSON.parse((await lifeboat(['lab', 'status', '--dir', lab.dir, '-o', 'json'])).stdout) as { processes: { name: string; pid: number; vms: string[] }[] };
    for (const p of after.processes) {
      if (p.name === 'hv01') assert.notEqual(p.pid, before.get('hv01'), 'hv01 was restarted');
      else assert.equal(p.pid, before.get(p.name), `${p.name} kept running`);
    }
    assert.deepEqual(Object.fromEntries(after.processes.map((p) => [p.name, p.vms])), { vault: [], hvdr01: [], hv01: ['app01', 'web01', 'api01'], hv02: ['db01'], br01: [] });
    // The restarted agent starts the VMs it stopped once the vault has answered: wait for its next inventory.
    const expected = [['api01', 'hv01', 'Running'], ['app01', 'hv01', 'Running'], ['db01', 'hv02', 'Running'], ['web01', 'hv01', 'Running']];
    let vms: string[][] = [];
    await waitFor('every VM running where it should', async () => {
      const hosts = await lab.client.listHosts('acme');
      vms = hosts.flatMap((h) => (h.status.inventory?.vms ?? []).map((v) => [v.name, h.name, v.powerState ?? '?'])).sort();
      return JSON.stringify(vms) === JSON.stringify(expected) ? true : undefined;
    }, 60_000, 250).catch((e: unknown) => assert.fail(`${String(e)}: last seen ${JSON.stringify(vms)}`));
  });
});
