/**
 * The operator commands as processes against a lab with one protected VM:
 * tables for people, `--output json` for scripts, `jobs --watch`,
 * `recovery-points`, `resync --wait`, and the documented exit codes.
 */

import { strict as assert } from 'node:assert';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { lifeboat, TestLab, waitFor } from '../lab/lab-harness';

describe('cli: operator commands against a lab (real processes)', function () {
  this.timeout(120_000);
  let lab: TestLab;
  let enableJob: string;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '2', '--frequency-ms', '500']);
    const item = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-policy' });
    enableJob = item.status.activeJob!.id;
  });

  after(async () => {
    await lab?.down();
  });

  it('jobs --watch follows a job to its end (one line per change without a terminal) and exits 0', async () => {
    const r = await lab.cli(['jobs', '--watch', enableJob]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[lines.length - 1]!, new RegExp(`${enableJob} protection\\.enable web: Succeeded 100%`));
    const detail = await lab.cli(['jobs', enableJob.slice(0, 12)]);
    assert.equal(detail.code, 0, detail.stderr);
    assert.match(detail.stdout, /Check prerequisites\s+Succeeded/);
    assert.match(detail.stdout, /Initial replication\s+Succeeded/);
    const list = JSON.parse((await lab.cli(['jobs', '--output', 'json'])).stdout) as { id: string; state: string }[];
    assert.ok(list.some((j) => j.id === enableJob && j.state === 'Succeeded'));
  });

  it('status and recovery-points show the protected item, as tables and as JSON', async () => {
    await waitFor('two recovery points', async () => ((await lab.client.recoveryPoints('lab', 'web')).length >= 2 ? true : undefined));
    const table = await lab.cli(['status']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /vault lab at http:\/\/127\.0\.0\.1:\d+: ok/);
    assert.match(table.stdout, /web\s+web01\s+Protected\s+primary\s+Normal/);
    assert.match(table.stdout, /primary-1 → recovery-1/);
    const json = JSON.parse((await lab.cli(['status', '--output', 'json'])).stdout) as { vault: string; items: { name: string; status: { replicationState: string } }[]; hosts: unknown[] };
    assert.equal(json.vault, 'lab');
    assert.equal(json.hosts.length, 3);
    assert.equal(json.items.find((i) => i.name === 'web')?.status.replicationState, 'Protected');

    const points = await lab.cli(['recovery-points', 'web']);
    assert.equal(points.code, 0, points.stderr);
    assert.match(points.stdout, /p-[0-9a-f]{16}\s+\S+\s+.* ago\s+crash-consistent/);
    const pointsJson = JSON.parse((await lab.cli(['recovery-points', 'web', '-o', 'json'])).stdout) as { id: string; kind: string }[];
    assert.ok(pointsJson.length >= 2);
    const vms = await lab.cli(['vms']);
    assert.match(vms.stdout, /web01\s+primary-1\s+primary\s+Running\s+1 \(2\.00 MiB\)\s+web\s+Protected/);
  });

  it('resync --wait runs a resynchronisation to its end; the item is Protected again', async () => {
    const r = await lab.cli(['resync', 'web', '--wait']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /resync\.run web: Succeeded 100%/);
    const jobs = await lab.client.listJobs('lab', { type: 'resync.run' });
    assert.equal(jobs[0]?.state, 'Succeeded');
    assert.equal((await lab.client.getProtectedItem('lab', 'web')).status.replicationState, 'Protected');
  });

  it('disabling protection (DELETE) stops tracking on the primary and ends with the item gone', async () => {
    const r = await lab.client.deleteProtectedItem('lab', 'web');
    assert.equal(r.removed, false);
    const job = r.removed ? undefined : await lab.jobSucceeds(r.job.id);
    assert.equal(job?.type, 'protection.disable');
    await assert.rejects(lab.client.getProtectedItem('lab', 'web'), (e: { status?: number }) => e.status === 404);
    const status = JSON.parse((await lab.cli(['agent', 'status', '--host', 'primary-1', '--lab-dir', lab.dir, '-o', 'json'])).stdout) as { vms: { name: string; disks: { tracked: boolean }[] }[]; items: unknown[] };
    assert.deepEqual(status.items, []);
    assert.equal(status.vms.find((v) => v.name === 'web01')?.disks[0]?.tracked, false);
    const replicas = JSON.parse((await lab.cli(['agent', 'status', '--host', 'recovery-1', '--lab-dir', lab.dir, '-o', 'json'])).stdout) as { replicas: unknown[] };
    assert.deepEqual(replicas.replicas, [], 'the recovery host released the relationship (the policy keeps the replica)');
  });

  it('exit codes: 4 not found, 2 usage, 3 unreachable, 5 no token', async () => {
    const missing = await lab.cli(['recovery-points', 'nothing']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /no protected item nothing/);
    assert.equal((await lab.cli(['resync', 'nothing'])).code, 4);
    assert.equal((await lab.cli(['jobs', 'job-00000000'])).code, 4);
    assert.equal((await lab.cli(['status', '--vault-name', 'nope'])).code, 4);

    const usage = await lab.cli(['jobs', '--limit', 'many']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--limit many is not a whole number/);
    assert.equal((await lab.cli(['status', '--frobnicate'])).code, 2);
    assert.equal((await lab.cli(['status', '--output', 'yaml'])).code, 2);
    assert.equal((await lab.cli(['recovery-points'])).code, 2);

    const tokenFile = path.join(lab.root, 'token');
    await writeFile(tokenFile, 'lba_whatever\n', { mode: 0o600 });
    const unreachable = await lifeboat(['status', '--vault', 'http://127.0.0.1:1', '--token-file', tokenFile, '--vault-name', 'lab'], { cwd: lab.root });
    assert.equal(unreachable.code, 3);
    assert.match(unreachable.stderr, /cannot reach the vault at http:\/\/127\.0\.0\.1:1/);
    assert.match(unreachable.stderr, /hint: /);
    const wrongToken = await lifeboat(['status', '--vault', lab.state.vaultUrl, '--token-file', tokenFile], { cwd: lab.root });
    assert.equal(wrongToken.code, 5);
    assert.match(wrongToken.stderr, /auth\.tokenInvalid/);
  });
});
