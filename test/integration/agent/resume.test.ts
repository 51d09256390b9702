/**
 * Crashes across processes: `kill -9` of the primary agent during initial
 * replication (the copy resumes from its persisted cursor, in the same
 * generation, and the replica converges), and `kill -9` of the vault while
 * a protection job waits on an agent (the job resumes after the restart and
 * waits for the same command).
 *
 * So that the copy is still running when a process is killed, whatever the
 * machine's speed: the guest first writes a few MiB of data (the copy skips
 * zeros), is then shut down (no log piles up meanwhile), and the policy's
 * bandwidth limit (4 Mbit/s, about 500 KB/s, day and night) paces the copy
 * over several seconds.
 */

import { strict as assert } from 'node:assert';
import { type ReplicationProgress } from '../../../provider/replication/progress-file';
import { TestLab, waitFor } from '../lab/lab-harness';

const MiB = 1024 * 1024;
const DISK = 8 * MiB;
const SLOW_POLICY = {
  target: 'secondary-site',
  replicationFrequencySeconds: 30,
  bandwidthLimitMbps: 4,
  offHoursBandwidthLimitMbps: 4,
  associations: [{ source: 'primary', target: 'recovery' }],
};

/**
 * Let the VM's guest write until at least `bytes` of its disk hold data (in
 * 4 KiB blocks, the copy's zero-skipping unit), then shut it down with a
 * flush through the agent's control socket.
 */
async function fillThenShutDown(lab: TestLab, host: string, vm: string, bytes: number): Promise<void> {
  await waitFor(`${vm}'s guest to write ${bytes} bytes of data`, async () => {
    const disk = await lab.sourceDisk(host, vm);
    let written = 0;
    for (let at = 0; at < disk.length; at += 4096) if (disk.subarray(at, at + 4096).some((b) => b !== 0)) written += 4096;
    return written >= bytes ? true : undefined;
  }, 60_000, 200);
  const off = await lab.cli(['agent', 'vm', 'shutdown', vm, '--host', host, '--lab-dir', lab.dir]);
  assert.equal(off.code, 0, off.stderr);
}

describe('agent: crashes during protection (kill -9 across processes)', function () {
  this.timeout(150_000);
  let lab: TestLab;

  beforeEach(async () => {
    lab = await TestLab.up(['--disk-mib', '8', '--rate-kib', '1024', '--frequency-ms', '500']);
    await lab.client.putObject('lab', 'replicationPolicies', 'slow', SLOW_POLICY);
  });

  afterEach(async () => {
    await lab?.down();
  });

  it('a primary agent killed during the initial copy resumes from its cursor and the replica converges', async () => {
    await fillThenShutDown(lab, 'primary-1', 'web01', 2 * MiB);
    const created = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'slow' });
    const uid = created.uid;
    const total = DISK;
    await waitFor('the copy to be part-way', async () => {
      const p = await lab.progress('primary-1', uid);
      return p?.phase === 'initialCopy' && p.doneBytes >= 2 * MiB ? p : undefined;
    }, 30_000, 20);
    await lab.kill9('primary-1');
    const atKill = (await lab.progress('primary-1', uid))!;
    assert.equal(atKill.phase, 'initialCopy');
    assert.ok(atKill.doneBytes > 0 && atKill.doneBytes < total, `cursor ${atKill.doneBytes} is part-way`);
    assert.ok(atKill.generation !== undefined);

    // Watch the progress file while the agent restarts: a copy that started
    // over would write a cursor below the one at the kill, or a new generation.
    const seen: ReplicationProgress[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const p = await lab.progress('primary-1', uid);
        if (p !== undefined) seen.push(p);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await lab.upAgain();
      await lab.jobSucceeds(created.status.activeJob!.id, 90_000);
    } finally {
      watching = false;
      await watcher;
    }
    const copying = seen.filter((p) => p.phase === 'initialCopy');
    assert.ok(copying.length > 0, 'the copy was observed after the restart');
    for (const p of seen) assert.equal(p.generation, atKill.generation, 'the same generation: initial replication did not start over');
    for (const p of copying) assert.ok(p.doneBytes >= atKill.doneBytes, `cursor went back to ${p.doneBytes} from ${atKill.doneBytes}`);
    assert.ok(copying.some((p) => p.doneBytes > atKill.doneBytes), 'the cursor advanced after the restart');
    const done = (await lab.progress('primary-1', uid))!;
    assert.equal(done.phase, 'delta');
    assert.equal(done.generation, atKill.generation);
    assert.equal((await lab.client.getProtectedItem('lab', 'web')).status.replicationState, 'Protected');

    // Converged: the VM stayed off (it was off when the agent died), so the replica at any point now equals the source.
    const status = await lab.cli(['agent', 'status', '--host', 'primary-1', '--lab-dir', lab.dir, '--output', 'json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { vms: { name: string; power: string }[] }).vms.find((v) => v.name === 'web01')?.power, 'Off');
    await lab.down(false);
    const source = await lab.sourceDisk('primary-1', 'web01');
    const replica = await lab.replicaAtLatestPoint('recovery-1', uid, DISK);
    assert.ok(!source.equals(Buffer.alloc(DISK)), 'the guest wrote data');
    assert.ok(replica.bytes.equals(source), 'the replica equals the source');
  });

  it('a vault killed while a job waits on an agent resumes the job after its restart, with the same command', async () => {
    await fillThenShutDown(lab, 'primary-2', 'app01', 2 * MiB);
    const created = await lab.client.putProtectedItem('lab', 'app', { site: 'primary', vm: 'app01', policy: 'slow' });
    const jobId = created.status.activeJob!.id;
    await waitFor('initial replication to be under way', async () => {
      const p = await lab.progress('primary-2', created.uid);
      return p?.phase === 'initialCopy' && p.doneBytes > 0 ? true : undefined;
    }, 30_000, 20);
    const before = await lab.client.getJob('lab', jobId);
    assert.equal(before.state, 'InProgress');
    assert.equal(before.steps.find((s) => s.name === 'initialReplication')?.state, 'InProgress');

    await lab.kill9('vault');
    await assert.rejects(lab.client.health(), (e: { code?: string }) => e.code === 'client.unreachable');
    await lab.upAgain();

    const job = await lab.jobSucceeds(jobId, 90_000);
    const withCommands = await lab.client.getJob('lab', jobId, { commands: true });
    const starts = (withCommands.commands ?? []).filter((c) => c.type === 'replication.start');
    assert.equal(starts.length, 1, 'the resumed step waited for the command it had sent');
    assert.equal(starts[0]!.state, 'Succeeded');
    assert.equal(job.steps.find((s) => s.name === 'createReplica')?.attempts, 1, 'finished steps did not run again');
    assert.equal((await lab.client.getProtectedItem('lab', 'app')).status.replicationState, 'Protected');
  });
});
