/**
 * Test failover and planned failover end to end across real processes (a
 * vault, two primary agents and a recovery agent of `lifeboat lab up`), from
 * the CLI as an operator runs them:
 *
 * - a test failover while the guest writes and replication continues: a
 *   `-test` VM on the mapped test network at the recovery host; cleanup
 *   removes it and its files;
 * - then a planned failover under the running workload, and its commit:
 *   the source VM is fenced; the failover VM runs on the mapped network; its
 *   disk (read through its own overlay) holds every write the guest flushed
 *   before the shutdown (the guest journal's `flushedOps`, recomputed from
 *   the workload's seed) and equals the source disk byte for byte; commit
 *   leaves one point.
 *
 * The last comparison also shows that the test failover did not disturb
 * the replica: the points cut after it still equal the source.
 */

import { strict as assert } from 'node:assert';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { TestLab, waitFor } from '../lab/lab-harness';
import {
  MiB, failoverDisk, firstDifference, holdsWrites, itemStatus, mapNetworks, protect, sourceStream, vmConfig, vmExists,
} from './failover-harness';

const DISK = 4 * MiB;

describe('failover: test failover, then planned failover and commit (vault + agents as processes)', function () {
  this.timeout(240_000);
  let lab: TestLab;
  let uid: string;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '256', '--frequency-ms', '500']);
    await mapNetworks(lab);
    uid = await protect(lab, 'web', 'web01');
  });

  after(async () => {
    await lab?.down();
  });

  it('the CLI refuses bad requests with the documented exit codes', async () => {
    const cases: readonly [readonly string[], number, RegExp][] = [
      [['failover', 'web', '--type', 'sideways'], 2, /--type sideways is not test, planned or unplanned/],
      [['failover', 'web', '--type', 'unplanned', '--point', 'yesterday'], 2, /--point yesterday/],
      [['failover', 'web', '--type', 'planned', '--point', 'latestAppConsistent'], 2, /planned failover always uses the latest point/],
      [['failover', 'nosuch', '--type', 'test'], 4, /no protected item nosuch/],
      [['commit', 'web'], 1, /is Protected; only a FailedOver item can be committed/],
      [['test-cleanup', 'web'], 1, /no test failover to clean up/],
      [['reprotect', 'web'], 1, /reprotect needs a committed failover/],
      [['failback', 'web'], 1, /failback needs it Protected in the reverse direction/],
    ];
    for (const [args, code, message] of cases) {
      const r = await lab.cli(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.equal((await itemStatus(lab, 'web')).replicationState, 'Protected', 'nothing started');
  });

  it('a test failover runs a VM on the test network while replication continues; cleanup leaves nothing', async () => {
    const r = await lab.cli(['failover', 'web', '--type', 'test']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const s = await itemStatus(lab, 'web');
    assert.equal(s.replicationState, 'Protected', 'a test failover changes no replication state');
    assert.equal(s.activeLocation, 'primary');
    assert.deepEqual({ vm: s.testFailover?.vm, host: s.testFailover?.host }, { vm: 'web01-test', host: 'recovery-1' });
    const config = await vmConfig(lab, 'recovery-1', 'web01-test');
    assert.equal(config.power, 'Running');
    assert.equal(config.testFailover, true);
    assert.deepEqual(config.nics.map((n) => n.network), ['dr-test']);
    assert.ok(config.disks.every((d) => d.overlay !== undefined && 'location' in d.overlay), 'on overlays over point-in-time views');

    // Replication goes on: a point cut after the test VM started.
    const startedAt = Date.now();
    await waitFor('a recovery point after the test failover', async () => {
      const points = await lab.client.recoveryPoints('lab', 'web');
      return points.some((p) => Date.parse(p.time) > startedAt) ? true : undefined;
    }, 60_000, 200);

    const clean = await lab.cli(['test-cleanup', 'web']);
    assert.equal(clean.code, 0, `${clean.stdout}\n${clean.stderr}`);
    assert.equal((await itemStatus(lab, 'web')).testFailover, undefined);
    assert.equal(vmExists(lab, 'recovery-1', 'web01-test'), false, 'the test VM folder is gone');
    const left = (await readdir(path.join(lab.dataDir('recovery-1'), 'lab', 'vms'))).filter((n) => n.includes('web01'));
    assert.deepEqual(left, [], 'no creating/deleting leftovers either');
  });

  it('a planned failover under a running workload loses no flushed write; commit keeps one point', async () => {
    assert.equal((await vmConfig(lab, 'primary-1', 'web01')).power, 'Running', 'the guest writes during the failover');
    const r = await lab.cli(['failover', 'web', '--type', 'planned', '--output', 'json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${await TestLab.logsOf(lab.dir)}`);
    const s = await itemStatus(lab, 'web');
    assert.equal(s.replicationState, 'FailedOver');
    assert.equal(s.activeLocation, 'recovery');
    assert.equal(s.failover?.type, 'planned');
    assert.equal(s.failover?.host, 'recovery-1');

    const source = await vmConfig(lab, 'primary-1', 'web01');
    assert.equal(source.power, 'Off');
    assert.ok(source.fence !== null, 'the source VM is fenced');
    assert.equal(source.lastStop?.clean, true, 'shut down with a guest flush');
    const failed = await vmConfig(lab, 'recovery-1', 'web01');
    assert.equal(failed.power, 'Running');
    assert.deepEqual(failed.nics.map((n) => n.network), ['dr-net']);

    // What an operator sees: where the workload runs, and the fenced old VM.
    type Row = { name: string; host: string; activeLocation?: string; fenced: boolean };
    const rows = await waitFor('the recovery host to report the failover VM', async () => {
      const r = await lab.cli(['vms', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const all = JSON.parse(r.stdout) as Row[];
      return all.some((x) => x.name === 'web01' && x.host === 'recovery-1') ? all : undefined;
    }, 30_000, 200);
    const old = rows.find((x) => x.name === 'web01' && x.host === 'primary-1');
    assert.deepEqual({ fenced: old?.fenced, active: old?.activeLocation }, { fenced: true, active: 'recovery' }, JSON.stringify(rows));
    const st = await lab.cli(['status']);
    assert.match(st.stdout, /web\s+web01\s+FailedOver\s+recovery/);

    // The vault refuses to start the fenced source through the agent.
    const start = await lab.cli(['agent', 'vm', 'start', 'web01', '--host', 'primary-1', '--lab-dir', lab.dir]);
    assert.notEqual(start.code, 0, 'a fenced VM does not start');

    const c = await lab.cli(['commit', 'web']);
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
    const committed = await itemStatus(lab, 'web');
    assert.equal(committed.replicationState, 'FailoverCommitted');
    assert.equal((await lab.client.recoveryPoints('lab', 'web')).length, 1, 'commit discards the other points');

    await lab.down(false);
    const src = await lab.sourceDisk('primary-1', 'web01');
    const stream = await sourceStream(lab, 'primary-1', 'web01');
    assert.equal(stream.flushedOps, stream.nextOp, 'a clean shutdown flushed every operation');
    assert.ok(stream.flushedOps > 0, 'the guest wrote');
    const disk = await failoverDisk(lab, 'recovery-1', 'web01', uid, DISK);
    assert.equal(disk.pointId, s.failover?.point?.id);
    assert.ok(await holdsWrites(disk.bytes, stream.workload, stream.flushedOps), 'every flushed write of the guest is on the failed-over disk');
    assert.equal(firstDifference(disk.bytes, src), -1, 'the failed-over disk equals the source byte for byte');
  });
});
