/**
 * `lifeboat lab up|status|down` as a new user runs them: processes detached
 * on loopback, the endpoint and the token's file printed but never the
 * token, the state file, `status` exit codes, `down` idempotent, and `up`
 * again restarting only what is not running.
 */

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { lifeboat, TestLab, waitFor } from './lab-harness';

describe('lab: up, status, down (real processes)', function () {
  this.timeout(90_000);
  let lab: TestLab;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '2']);
  });

  after(async () => {
    await lab?.down();
  });

  it('up starts a vault, two primary hosts and a recovery host with demo VMs, and prints where the token is, not the token', async () => {
    const token = (await readFile(lab.state.adminTokenFile, 'utf8')).trim();
    assert.match(lab.upOutput.stdout, new RegExp(`vault endpoint: ${lab.state.vaultUrl.replace(/[.]/g, '\\.')}`));
    assert.ok(lab.upOutput.stdout.includes(lab.state.adminTokenFile));
    assert.ok(!lab.upOutput.stdout.includes(token) && !lab.upOutput.stderr.includes(token), 'the token is never printed');
    assert.equal((await stat(lab.state.adminTokenFile)).mode & 0o777, 0o600);
    assert.equal((await stat(path.join(lab.dir, 'registration-key'))).mode & 0o777, 0o600);
    assert.deepEqual(lab.state.processes.map((p) => p.name), ['vault', 'primary-1', 'primary-2', 'recovery-1']);
    assert.match(lab.state.vaultUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

    const hosts = await lab.client.listHosts('lab');
    assert.deepEqual(hosts.map((h) => [h.name, h.spec.site, h.status.connectionState]).sort(), [
      ['primary-1', 'primary', 'Connected'], ['primary-2', 'primary', 'Connected'], ['recovery-1', 'recovery', 'Connected'],
    ]);
    // The demo VMs' network is mapped, so that a failover works on a fresh lab.
    const mappings = await lab.client.listObjects('lab', 'networkMappings');
    assert.deepEqual(mappings.map((m) => [m.name, m.spec.source, m.spec.target, m.spec.testNetwork]), [
      ['lab-net', { site: 'primary', network: 'lab-net' }, { site: 'recovery', network: 'dr-net' }, 'dr-test'],
    ]);
    const vms = await lab.cli(['vms', '--output', 'json']);
    assert.equal(vms.code, 0, vms.stderr);
    const list = JSON.parse(vms.stdout) as { name: string; host: string; powerState: string; replicationState?: string }[];
    assert.deepEqual(list.map((v) => [v.name, v.host, v.powerState]).sort(), [['app01', 'primary-2', 'Running'], ['db01', 'primary-1', 'Running'], ['web01', 'primary-1', 'Running']]);
    // Running VMs write: their disk files change.
    const first = await lab.sourceDisk('primary-1', 'web01');
    await waitFor('web01 to write', async () => ((await lab.sourceDisk('primary-1', 'web01')).equals(first) ? undefined : true), 20_000, 200);
  });

  it('status exits 0 when everything runs and 1 when a process is down; up again restarts only that one', async () => {
    const ok = await lifeboat(['lab', 'status', '--dir', lab.dir, '--output', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
    const s = JSON.parse(ok.stdout) as { up: boolean; vaultHealth: string; processes: { name: string; running: boolean }[] };
    assert.equal(s.up, true);
    assert.equal(s.vaultHealth, 'ok');

    const before = new Map(lab.state.processes.map((p) => [p.name, p.pid]));
    await lab.kill9('primary-2');
    const down = await lifeboat(['lab', 'status', '--dir', lab.dir]);
    assert.equal(down.code, 1);
    assert.match(down.stdout, /primary-2\s+primary \(site primary\)\s+\d+\s+stopped/);

    await lab.upAgain();
    for (const p of lab.state.processes) {
      if (p.name === 'primary-2') assert.notEqual(p.pid, before.get(p.name), 'primary-2 was restarted');
      else assert.equal(p.pid, before.get(p.name), `${p.name} kept running`);
    }
    assert.equal((await lifeboat(['lab', 'status', '--dir', lab.dir])).code, 0);
  });

  it('status without a lab exits 4; down stops everything and is idempotent', async () => {
    const none = await lifeboat(['lab', 'status', '--dir', path.join(lab.root, 'nowhere')]);
    assert.equal(none.code, 4);
    assert.match(none.stderr, /lab\.notFound/);

    const r = await lifeboat(['lab', 'down', '--dir', lab.dir]);
    assert.equal(r.code, 0, r.stderr);
    for (const p of lab.state.processes) assert.ok(!existsSync(`/proc/${p.pid}`) || (await readFile(`/proc/${p.pid}/stat`, 'utf8')).includes(') Z'), `${p.name} stopped`);
    const again = await lifeboat(['lab', 'down', '--dir', lab.dir]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /not running/);
    assert.equal((await lifeboat(['lab', 'status', '--dir', lab.dir])).code, 1);
  });
});
