/**
 * The YAML-declared example end to end with the real `pulumi`, against a lab
 * started from its own protection file: up protects the VMs and the replicas
 * equal the sources byte for byte; a changed replication frequency is an
 * in-place update; a changed VM source is a replacement with its reason; an
 * item deleted out of band shows in refresh and up puts it back; destroy
 * disables protection and keeps the replicas (deleteReplicaOnDisable: false).
 */

import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { type ProtectedItemStatus } from '../../provider/client';
import { TestLab, waitFor } from '../integration/lab/lab-harness';
import { copyExample, EXAMPLES, exampleStack, labEnv, type ExampleCopy } from './example-harness';
import { type TempStack } from './pulumi-harness';

const DISK = 4 * 1024 * 1024;
const VAULT = 'contoso-dr';
/** Where the lab puts each protected VM (docs/operations.md §2.1: hq's hosts, round robin by name). */
const SOURCE_HOST: Readonly<Record<string, string>> = { db01: 'hv01', web01: 'hv02' };

describe('example yaml-declared (real pulumi, lab from its protection file)', function () {
  this.timeout(240_000);
  let lab: TestLab;
  let copy: ExampleCopy;
  let t: TempStack;
  const log = (): string => t.log.join('');

  before(async () => {
    lab = await TestLab.up(['--disk-mib', String(DISK / 1024 / 1024), '--frequency-ms', '500', '--protection', path.join(EXAMPLES, 'yaml-declared', 'protection.yaml')]);
    copy = await copyExample('yaml-declared');
    t = await exampleStack(copy, labEnv(lab.state));
  });

  after(async () => {
    try {
      await t?.dispose();
    } finally {
      await copy?.dispose();
      await lab?.down();
    }
  });

  const item = (name: string): Promise<{ uid: string; status: ProtectedItemStatus }> => lab.client.getProtectedItem(VAULT, name);

  it('up creates every resource of the file, adopting the lab\'s vault and sites; the VMs end Protected', async () => {
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    // Stack, vault, 2 sites, policy, mapping, 2 VMs, plan.
    assert.equal(res.summary.resourceChanges?.create, 9, log());
    const vms = res.outputs.vms!.value as { name: string; state: string; health: string }[];
    assert.deepEqual(vms.map((v) => [v.name, v.state, v.health]), [['db01', 'Protected', 'Normal'], ['web01', 'Protected', 'Normal']]);
    for (const name of ['db01', 'web01']) {
      const s = (await item(name)).status;
      assert.equal(s.replicationState, 'Protected', name);
      assert.equal(s.sourceHost, SOURCE_HOST[name]);
      assert.equal(s.targetHost, 'hvdr01');
    }
    assert.deepEqual((await lab.client.listObjects(VAULT, 'recoveryPlans')).map((p) => p.name), ['app']);
  });

  it('the replicas equal the sources byte for byte after a flushed shutdown and a cycle after it', async () => {
    const shutAt = new Map<string, number>();
    for (const vm of ['db01', 'web01']) {
      // Both guests have written something by now (they run from lab up on).
      const off = await lab.cli(['agent', 'vm', 'shutdown', vm, '--host', SOURCE_HOST[vm]!, '--lab-dir', lab.dir]);
      assert.equal(off.code, 0, off.stderr);
      shutAt.set(vm, Date.now());
    }
    const uids = new Map<string, string>();
    for (const vm of ['db01', 'web01']) {
      await waitFor(`a cycle of ${vm} after its shutdown`, async () => {
        const s = (await item(vm)).status;
        return s.lastReplicatedTime !== undefined && Date.parse(s.lastReplicatedTime) > shutAt.get(vm)! && s.replicationState === 'Protected' ? true : undefined;
      }, 60_000, 200);
      uids.set(vm, (await item(vm)).uid);
    }
    // The replica store is the recovery agent's alone: stop it to read it, then start it again.
    await lab.stop('hvdr01');
    try {
      for (const vm of ['db01', 'web01']) {
        const source = await lab.sourceDisk(SOURCE_HOST[vm]!, vm);
        assert.equal(source.length, DISK);
        assert.ok(!source.equals(Buffer.alloc(DISK)), `${vm}'s guest wrote something`);
        const replica = await lab.replicaAtLatestPoint('hvdr01', uids.get(vm)!, DISK);
        assert.ok(replica.bytes.equals(source), `${vm}: the replica differs from the source at byte ${firstDifference(replica.bytes, source)}`);
      }
    } finally {
      await lab.upAgain();
    }
  });

  it('a changed replication frequency previews as an in-place update of the policy, and up applies it', async () => {
    await copy.edit('protection.yaml', 'replicationFrequencySeconds: 30', 'replicationFrequencySeconds: 300');
    const preview = await t.stack.preview({ onOutput: t.onOutput, diff: true });
    assert.deepEqual(withoutSame(preview.changeSummary), { update: 1 }, log());
    assert.match(preview.stdout, /~ pulumi-nodejs:dynamic\/lifeboat:ReplicationPolicy: \(update\)\n\s+\[id=contoso-dr\/replicationPolicies\/gold\]/);
    assert.match(preview.stdout, /~ replicationFrequencySeconds\s*: 30 => 300\n/);
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    assert.deepEqual(withoutSame(res.summary.resourceChanges ?? {}), { update: 1 }, log());
    const policy = await lab.client.getObject<{ replicationFrequencySeconds: number }>(VAULT, 'replicationPolicies', 'gold');
    assert.equal(policy.spec.replicationFrequencySeconds, 300);
    for (const vm of ['db01', 'web01']) assert.equal((await item(vm)).status.replicationState, 'Protected', `${vm} stays protected`);
  });

  it('a changed VM source previews as a replacement of that VM only, with its reason (a full re-seed)', async () => {
    const original = await copy.read('protection.yaml');
    try {
      await copy.edit('protection.yaml', '{ name: web01, site: hq, vm: web01,', '{ name: web01, site: hq, vm: web02,');
      const preview = await t.stack.preview({ onOutput: t.onOutput, diff: true });
      assert.deepEqual(withoutSame(preview.changeSummary), { replace: 1 }, log());
      assert.match(preview.stdout, /\+-pulumi-nodejs:dynamic\/lifeboat:ProtectedVm: \(replace\)\n\s+\[id=contoso-dr\/protectedItems\/web01\]/);
      assert.match(preview.stdout, /~ vm\s*: "web01" => "web02"\n/);
      assert.match(preview.stdout, /\+ replacementReason\s*: "changing vm replaces the protection: .*a full re-seed of [0-9.]+ GiB"/, 'the preview says why, and how many GiB');
    } finally {
      await copy.write('protection.yaml', original);
    }
  });

  it('an item deleted out of band shows as drift in refresh; up protects the VM again', async () => {
    const deleted = await lab.client.deleteProtectedItem(VAULT, 'web01');
    if (!deleted.removed) await lab.jobSucceeds(deleted.job.id);
    await waitFor('web01 to be gone from the vault', async () => ((await lab.client.listProtectedItems(VAULT)).some((i) => i.name === 'web01') ? undefined : true), 60_000, 200);
    const refresh = await t.stack.refresh({ onOutput: t.onOutput });
    assert.equal(refresh.summary.result, 'succeeded', log());
    assert.deepEqual(withoutSame(refresh.summary.resourceChanges ?? {}), { delete: 1 }, log());
    const res = await t.stack.up({ onOutput: t.onOutput });
    assert.deepEqual(withoutSame(res.summary.resourceChanges ?? {}), { create: 1 }, log());
    assert.equal((await item('web01')).status.replicationState, 'Protected');
  });

  it('destroy disables protection and keeps the replicas (the policy\'s deleteReplicaOnDisable is false)', async () => {
    const uids = await Promise.all(['db01', 'web01'].map(async (vm) => (await item(vm)).uid));
    const res = await t.stack.destroy({ onOutput: t.onOutput });
    assert.equal(res.summary.result, 'succeeded', log());
    assert.equal(res.summary.resourceChanges?.delete, 9, log());
    assert.deepEqual(await lab.client.listProtectedItems(VAULT), []);
    assert.deepEqual(await lab.client.listObjects(VAULT, 'replicationPolicies'), []);
    // The adopted vault and sites are released, not deleted: the lab's hosts stay registered.
    assert.deepEqual((await lab.client.listObjects(VAULT, 'sites')).map((s) => s.name).sort(), ['dr', 'hq']);
    // Kept: the replica disks and their points stay in the recovery host's store, still equal to the (stopped) sources.
    await lab.stop('hvdr01');
    const disks = await lab.replicaDiskIds('hvdr01');
    for (const [i, vm] of ['db01', 'web01'].entries()) {
      assert.ok(disks.includes(`${uids[i]}/disk0`), `the replica of ${vm} is kept: ${disks.join(', ')}`);
      const replica = await lab.replicaAtLatestPoint('hvdr01', uids[i]!, DISK);
      assert.ok(replica.bytes.equals(await lab.sourceDisk(SOURCE_HOST[vm]!, vm)), `${vm}: the kept replica still equals the source`);
    }
  });
});

function withoutSame(changes: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(changes).filter(([k, v]) => k !== 'same' && v > 0));
}

function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}
