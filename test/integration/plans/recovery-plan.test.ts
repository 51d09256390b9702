/**
 * A recovery plan end to end across real processes (`lifeboat lab up`: a
 * vault, two primary agents, a recovery agent), one lab for the file:
 *
 * - a test failover of three groups (web, data, app): group 1's before
 *   script, group 2's after script that first times out (killed, output
 *   kept) and stops the plan in WaitingForAction; the script is fixed in
 *   the agent's scripts directory and `lifeboat jobs resume` continues; group
 *   3's manual action waits until `lifeboat jobs ack`; the scripts' markers
 *   show the order; `lifeboat test-cleanup --plan` removes every test VM;
 * - a planned failover of the plan toRecovery: every item FailedOver at the
 *   recovery site, the failed-over disk equal byte for byte to the fenced
 *   source; commit and reprotect; then `lifeboat failback --plan` back to
 *   the primary;
 * - an unplanned failover through the plan with a point.
 */

import { strict as assert } from 'node:assert';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { JobInfo } from '../../../provider/client';
import { TestLab, waitFor } from '../lab/lab-harness';
import { MiB, failoverDisk, firstDifference, itemStatus, mapNetworks, protect, vmExists } from '../failover/failover-harness';

const DISK = 4 * MiB;
const HOSTS = ['primary-1', 'primary-2', 'recovery-1'];

describe('recovery plans: groups in order, scripts, manual actions, resume, failover and failback (vault + agents as processes)', function () {
  this.timeout(600_000);
  let lab: TestLab;
  let markers: string;
  const uids = new Map<string, string>();

  async function script(name: string, body: string): Promise<void> {
    for (const h of HOSTS) await writeFile(path.join(lab.dataDir(h), 'scripts', name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }

  async function job(id: string): Promise<JobInfo> {
    return lab.client.getJob('lab', id);
  }

  async function waiting(id: string, kind: 'acknowledgement' | 'resume'): Promise<JobInfo> {
    return waitFor(`job ${id} waiting for ${kind}`, async () => {
      const j = await job(id);
      assert.ok(j.state !== 'Failed' && j.state !== 'Cancelled', `job ended ${j.state}: ${JSON.stringify(j.errors)}`);
      return j.state === 'WaitingForAction' && j.waiting?.kind === kind ? j : undefined;
    }, 240_000, 250);
  }

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '4', '--rate-kib', '128', '--frequency-ms', '500']);
    markers = path.join(lab.root, 'markers.txt');
    await writeFile(markers, '');
    await mapNetworks(lab);
    for (const [item, vm] of [['web', 'web01'], ['db', 'db01'], ['app', 'app01']] as const) uids.set(item, await protect(lab, item, vm));
    const mark = `echo "$LIFEBOAT_GROUP $LIFEBOAT_PHASE $LIFEBOAT_FAILOVER_TYPE $LIFEBOAT_DIRECTION" >> "${markers}"`;
    await script('pre.sh', mark);
    await script('post.sh', `echo "$LIFEBOAT_GROUP timing out" >> "${markers}"; echo "checking the database"; sleep 30`);
    await lab.client.putObject('lab', 'recoveryPlans', 'erp', {
      groups: [
        { name: 'web', vms: ['web'], before: [{ script: 'pre.sh' }] },
        { name: 'data', vms: ['db'], after: [{ script: 'post.sh', timeoutSeconds: 2 }] },
        { name: 'app', vms: ['app'], before: [{ manual: 'Check DNS' }] },
      ],
    });
  });

  after(async () => {
    await lab?.down();
  });

  it('test failover: order kept, a timed-out script stops the plan, resume after the fix, the manual action waits for ack; cleanup removes every test VM', async () => {
    const started = await lab.client.failoverPlan('lab', 'erp', { type: 'test' });
    assert.equal(started.type, 'plan.failover');
    assert.deepEqual(started.plan?.groups.map((g) => g.name), ['web', 'data', 'app']);

    const stopped = await waiting(started.id, 'resume');
    const post = stopped.plan!.groups[1]!.actions[0]!;
    assert.deepEqual({ state: post.state, timedOut: post.timedOut, host: post.host }, { state: 'Failed', timedOut: true, host: 'recovery-1' });
    assert.match(String(post.output), /checking the database/, 'the output of the killed script is kept');
    assert.deepEqual(stopped.plan!.groups.map((g) => g.state), ['Succeeded', 'Failed', 'NotStarted']);
    assert.match(stopped.waiting!.message, /lifeboat jobs resume/);
    assert.equal((await itemStatus(lab, 'app')).testFailover, undefined, 'group 3 has not started');
    const shown = await lab.cli(['jobs', 'show', started.id]);
    assert.match(shown.stdout, /WAITING \(resume\)/);
    assert.match(shown.stdout, /after script post.sh\s+Failed/);

    await script('post.sh', `echo "$LIFEBOAT_GROUP $LIFEBOAT_PHASE $LIFEBOAT_FAILOVER_TYPE $LIFEBOAT_DIRECTION" >> "${markers}"`);
    const resumed = await lab.cli(['jobs', 'resume', started.id, '--detach']);
    assert.equal(resumed.code, 0, resumed.stderr);

    const manual = await waiting(started.id, 'acknowledgement');
    assert.match(manual.waiting!.message, /waiting for acknowledgement of 'Check DNS'.*lifeboat jobs ack/);
    assert.equal((await itemStatus(lab, 'app')).testFailover, undefined, 'group 3 waits for the acknowledgement');
    const ack = await lab.cli(['jobs', 'ack', started.id, '--comment', 'dns ok']);
    assert.equal(ack.code, 0, `${ack.stdout}\n${ack.stderr}`);

    const done = await lab.jobSucceeds(started.id, 240_000);
    const vms = done.plan!.groups.flatMap((g) => g.vms);
    assert.ok(vms.every((v) => v.state === 'Succeeded' && v.point?.id !== undefined && v.runningAt !== undefined), JSON.stringify(vms));
    const [web, db, app] = vms;
    assert.ok(web!.runningAt! <= db!.startedAt! && db!.runningAt! <= app!.startedAt!, 'each group starts after the one before it runs');
    assert.equal(done.plan!.groups[2]!.actions[0]!.comment, 'dns ok');
    assert.deepEqual((await readFile(markers, 'utf8')).trim().split('\n'), [
      'web before test toRecovery', 'data timing out', 'data after test toRecovery',
    ]);
    for (const item of ['web', 'db', 'app']) assert.ok((await itemStatus(lab, item)).testFailover !== undefined, item);
    assert.equal((await lab.client.getRecoveryPlan('lab', 'erp')).status.testFailover?.job, started.id);

    const clean = await lab.cli(['test-cleanup', '--plan', 'erp']);
    assert.equal(clean.code, 0, `${clean.stdout}\n${clean.stderr}`);
    for (const [item, vm] of [['web', 'web01'], ['db', 'db01'], ['app', 'app01']]) {
      assert.equal((await itemStatus(lab, item!)).testFailover, undefined);
      assert.equal(vmExists(lab, 'recovery-1', `${vm!}-test`), false, `${vm!}-test is gone`);
    }
    assert.equal((await lab.client.getRecoveryPlan('lab', 'erp')).status.testFailover, undefined);
  });

  it('planned failover of the plan: every item at the recovery site, the disk equal to the fenced source; commit, reprotect, then failback', async () => {
    await writeFile(markers, '');
    const planned = await lab.client.failoverPlan('lab', 'erp', { type: 'planned' });
    assert.equal(planned.plan?.direction, 'toRecovery');
    await waiting(planned.id, 'acknowledgement');
    await lab.client.ackJob('lab', planned.id);
    await lab.jobSucceeds(planned.id, 240_000);
    for (const item of ['web', 'db', 'app']) {
      const s = await itemStatus(lab, item);
      assert.deepEqual({ state: s.replicationState, at: s.activeLocation }, { state: 'FailedOver', at: 'recovery' }, item);
    }
    assert.equal((await lab.client.getRecoveryPlan('lab', 'erp')).status.activeLocation, 'recovery');

    // Byte for byte: the fenced source's disk and what the failover VM reads (both processes stopped to read their stores).
    await lab.stop('primary-1');
    await lab.stop('recovery-1');
    const source = await lab.sourceDisk('primary-1', 'web01');
    const failed = await failoverDisk(lab, 'recovery-1', 'web01', uids.get('web')!, DISK);
    assert.equal(firstDifference(failed.bytes, source), -1, 'the failed-over disk equals the source at the cut');
    await lab.upAgain();

    await lab.jobSucceeds((await lab.client.commitPlan('lab', 'erp')).id, 240_000);
    await lab.jobSucceeds((await lab.client.reprotectPlan('lab', 'erp')).id, 300_000);
    for (const item of ['web', 'db', 'app']) assert.equal((await itemStatus(lab, item)).replicationState, 'Protected', item);

    // Failback: the manual action of group 3 is acknowledged from "another shell" while the CLI follows.
    const back = lab.cli(['failback', '--plan', 'erp']);
    const fb = await waitFor('the failback plan job', async () => (await lab.client.listJobs('lab', { type: 'plan.failover', limit: 1 }))[0]?.id !== planned.id
      ? (await lab.client.listJobs('lab', { type: 'plan.failover', limit: 1 }))[0] : undefined, 120_000, 250);
    assert.equal(fb.plan?.direction, 'toPrimary');
    await waiting(fb.id, 'acknowledgement');
    await lab.client.ackJob('lab', fb.id, 'back home');
    const r = await back;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    for (const item of ['web', 'db', 'app']) {
      const s = await itemStatus(lab, item);
      assert.deepEqual({ state: s.replicationState, at: s.activeLocation }, { state: 'Protected', at: 'primary' }, item);
    }
    const fbDone = await job(fb.id);
    assert.equal(fbDone.plan!.groups[0]!.actions[0]!.host, 'primary-1', 'scripts of a failback run where the VMs come up');
    assert.deepEqual((await readFile(markers, 'utf8')).trim().split('\n'), [
      'web before planned toRecovery', 'data after planned toRecovery', 'web before planned toPrimary', 'data after planned toPrimary',
    ]);
    assert.equal((await lab.client.getRecoveryPlan('lab', 'erp')).status.activeLocation, 'primary');
  });

  it('unplanned failover through the plan with a point', async () => {
    // The VMs run idle after a failback (docs/failover.md §10): the point is the newest retained one at or before now.
    const point = new Date().toISOString();
    const j = await lab.client.failoverPlan('lab', 'erp', { type: 'unplanned', point });
    await waiting(j.id, 'acknowledgement');
    await lab.client.ackJob('lab', j.id);
    const done = await lab.jobSucceeds(j.id, 240_000);
    for (const v of done.plan!.groups.flatMap((g) => g.vms)) {
      assert.ok(v.point?.time !== undefined && v.point.time <= point, `${v.item}: the point is at or before the time asked for`);
      assert.equal((await itemStatus(lab, v.item)).replicationState, 'FailedOver');
    }
    assert.equal(done.plan!.point, point);
  });
});
