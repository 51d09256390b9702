/**
 * Reprotect after an unplanned failover to an older point, then failback,
 * across real processes.
 *
 * The oracle: the guest's writes are a deterministic stream. The test cuts
 * P1 with the guest shut down (the source then equals the replica's latest
 * point; its bytes are read there, and the guest journal says the stream
 * stood at operation N1), lets it write on to operation N2 (named by the
 * journal before it runs, so a stop may leave it partly done) and stops it,
 * then fails over to P1. The only blocks where the old primary and the
 * failover VM can differ are those operations N1 to N2 wrote (the failover
 * VM writes nothing), so reprotect must compare at most those blocks and send
 * at most their bytes — far below the disk size — and afterwards every copy
 * (replica, failback VM, replica again) equals P1.
 */

import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { workloadOpsFrom } from '../../../provider/hypervisor/lab';
import { REPROTECT_BLOCK, mergeRegions, regionBytes } from '../../../provider/agent/reprotect-commands';
import { type Region } from '../../../provider/replication/progress-file';
import { TestLab, waitFor } from '../lab/lab-harness';
import { MiB, firstDifference, itemStatus, mapNetworks, protect, sourceStream, vmConfig, vmExists } from './failover-harness';

const DISK = 16 * MiB;

async function agentItemBytes(lab: TestLab, host: string): Promise<number | undefined> {
  const r = await lab.cli(['agent', 'status', '--host', host, '--lab-dir', lab.dir, '--output', 'json']);
  if (r.code !== 0) return undefined;
  const items = (JSON.parse(r.stdout) as { items: { item: string; report: { statistics?: { bytesTransferred?: number } } }[] }).items;
  return items.find((i) => i.item === 'web')?.report.statistics?.bytesTransferred;
}

async function inStepAfter(lab: TestLab, at: number): Promise<void> {
  await waitFor('the replica in step after the shutdown', async () => {
    const s = await itemStatus(lab, 'web');
    return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > at ? true : undefined;
  }, 60_000, 100);
}

describe('failover: reprotect without a full copy, then failback (processes)', function () {
  this.timeout(300_000);
  let lab: TestLab;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '16', '--rate-kib', '256', '--frequency-ms', '500']);
    await mapNetworks(lab);
  });

  after(async () => {
    await lab?.down();
  });

  it('reprotect compares and sends only the blocks written since the point; failback restores the original direction with nothing lost; a second round works the same', async () => {
    const uid = await protect(lab, 'web', 'web01');
    const shutdown = async (): Promise<number> => {
      const off = await lab.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'primary-1', '--lab-dir', lab.dir]);
      assert.equal(off.code, 0, off.stderr);
      return Date.now();
    };
    await inStepAfter(lab, await shutdown());
    const atCut = await lab.sourceDisk('primary-1', 'web01');
    const n1 = (await sourceStream(lab, 'primary-1', 'web01')).nextOp;
    const p1 = (await lab.client.recoveryPoints('lab', 'web')).at(-1)!;

    assert.equal((await lab.cli(['agent', 'vm', 'start', 'web01', '--host', 'primary-1', '--lab-dir', lab.dir])).code, 0);
    await waitFor('two points newer than P1', async () => {
      const points = await lab.client.recoveryPoints('lab', 'web');
      return points.filter((p) => Date.parse(p.time) > Date.parse(p1.time)).length >= 2 ? true : undefined;
    }, 60_000, 100);
    await shutdown();
    const stream = await sourceStream(lab, 'primary-1', 'web01');
    const n2 = stream.nextOp;
    assert.ok(n2 > n1, 'the guest wrote after P1');

    // The blocks the guest wrote after P1: the bound of what reprotect may compare and send.
    // Operation n2 is included: the journal names it before it runs, and a stop may leave it partly done.
    const after: Region[] = [];
    for (const { index, op } of workloadOpsFrom(stream.workload, n1)) {
      if (index > n2) break;
      if (op.kind === 'write') after.push({ offset: op.offset, length: op.length });
    }
    const bound = regionBytes(mergeRegions(after, REPROTECT_BLOCK, DISK));
    assert.ok(bound > 0 && bound < DISK / 2, `the guest changed ${bound} bytes of blocks, a part of the disk`);

    for (const args of [['failover', 'web', '--type', 'unplanned', '--point', p1.time], ['commit', 'web']]) {
      const r = await lab.cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    }
    assert.equal((await itemStatus(lab, 'web')).failover?.point?.id, p1.id);

    const rp = await lab.cli(['reprotect', 'web']);
    assert.equal(rp.code, 0, `${rp.stdout}\n${rp.stderr}\n${await TestLab.logsOf(lab.dir)}`);
    const s = await itemStatus(lab, 'web');
    assert.equal(s.replicationState, 'Protected');
    assert.deepEqual({ source: s.sourceHost, target: s.targetHost, active: s.activeLocation }, { source: 'recovery-1', target: 'primary-1', active: 'recovery' });
    assert.equal(s.reprotect?.delta, true, 'the records of both sides were there: no full compare');
    assert.ok(s.reprotect!.regionBytes > 0, 'the blocks the old primary wrote after P1 are compared');
    assert.ok(s.reprotect!.regionBytes <= bound, `compared ${s.reprotect!.regionBytes} bytes; the guest changed only ${bound}`);
    const sent = await waitFor('the new source\'s statistics', () => agentItemBytes(lab, 'recovery-1'), 30_000, 200);
    assert.ok(sent <= s.reprotect!.regionBytes, `sent ${sent} bytes, at most the ${s.reprotect!.regionBytes} bytes of blocks that can differ (disk: ${DISK})`);
    assert.equal(vmExists(lab, 'primary-1', 'web01'), false, 'the old VM is now the replica');

    const fb = await lab.cli(['failback', 'web']);
    assert.equal(fb.code, 0, `${fb.stdout}\n${fb.stderr}\n${await TestLab.logsOf(lab.dir)}`);
    const back = await itemStatus(lab, 'web');
    assert.deepEqual({ state: back.replicationState, source: back.sourceHost, target: back.targetHost, active: back.activeLocation }, { state: 'Protected', source: 'primary-1', target: 'recovery-1', active: 'primary' });
    const vm = await vmConfig(lab, 'primary-1', 'web01');
    assert.equal(vm.power, 'Running');
    assert.deepEqual(vm.nics.map((n) => n.network), ['lab-net'], 'back on the original network');
    assert.equal(vmExists(lab, 'recovery-1', 'web01'), false);
    await inStepAfter(lab, Date.now());

    // A second round: the records of the first (on both hosts) must not answer for it.
    for (const args of [['failover', 'web', '--type', 'planned'], ['commit', 'web'], ['reprotect', 'web']]) {
      const r = await lab.cli(args);
      assert.equal(r.code, 0, `second round, ${args.join(' ')}: ${r.stdout}\n${r.stderr}\n${await TestLab.logsOf(lab.dir)}`);
    }
    const again = await itemStatus(lab, 'web');
    assert.deepEqual({ state: again.replicationState, source: again.sourceHost, target: again.targetHost, active: again.activeLocation }, { state: 'Protected', source: 'recovery-1', target: 'primary-1', active: 'recovery' });
    assert.equal(again.reprotect?.delta, true);
    assert.ok(again.reprotect!.regionBytes <= bound, 'a planned failover of an idle VM leaves nothing new to compare');
    const recoveryVm = await vmConfig(lab, 'recovery-1', 'web01');
    assert.equal(recoveryVm.power, 'Running');
    // No wait for a later cycle: the failover VM writes nothing (no guest workload), and reprotect
    // ended with the first point of the reverse direction, so that point holds the whole disk.

    await lab.down(false);
    const disk = await readFile(path.join(lab.dataDir('recovery-1'), 'lab', recoveryVm.disks[0]!.file));
    assert.equal(firstDifference(disk, atCut), -1, 'after failback and another failover the VM\'s disk is still P1: nothing lost, nothing added');
    const replica = await lab.replicaAtLatestPoint('primary-1', uid, DISK);
    assert.equal(firstDifference(replica.bytes, atCut), -1, 'and its replica at the primary equals it');
  });
});
