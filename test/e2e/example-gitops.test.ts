/**
 * The GitOps example's pipeline.sh run as CI runs it (a process with the
 * real `lifeboat` and `pulumi` on PATH), against a lab from its protection
 * file: deploy (validate, preview, up, drift check), a drift check that
 * catches an item deleted out of band, a check stage that stops at an
 * invalid file before previewing, a deploy that puts the item back, and a
 * destroy that deletes the replica as the policy says (deleteReplicaOnDisable).
 */

import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { type CliResult, TestLab, waitFor } from '../integration/lab/lab-harness';
import { copyExample, EXAMPLES, labEnv, pipelineEnv, run, type ExampleCopy } from './example-harness';

const VAULT = 'contoso-gitops';

describe('example gitops: pipeline.sh (real pulumi and lifeboat, lab from its protection file)', function () {
  this.timeout(240_000);
  let lab: TestLab;
  let copy: ExampleCopy;
  let env: NodeJS.ProcessEnv;
  const outputs: string[] = [];

  const pipeline = async (mode: string): Promise<CliResult> => {
    const r = await run('bash', [path.join(copy.dir, 'pipeline.sh'), mode], { cwd: copy.dir, env });
    outputs.push(`--- pipeline.sh ${mode}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const stages = (r: CliResult): string[] => [...r.stdout.matchAll(/^=== (.+)$/gm)].map((m) => m[1]!);
  const all = (): string => outputs.join('\n');

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '2', '--frequency-ms', '500', '--protection', path.join(EXAMPLES, 'gitops', 'protection.yaml')]);
    copy = await copyExample('gitops');
    env = await pipelineEnv(path.join(path.dirname(copy.dir), 'pulumi'), labEnv(lab.state));
  });

  after(async () => {
    try {
      if (copy !== undefined) await run('pulumi', ['stack', 'rm', '--yes', '--force', '--stack', 'dr', '--non-interactive'], { cwd: copy.dir, env });
    } finally {
      await copy?.dispose();
      await lab?.down();
    }
  });

  it('deploy validates, previews, ups and finds no drift; the VM ends Protected', async () => {
    const r = await pipeline('deploy');
    assert.equal(r.code, 0, all());
    assert.deepEqual(stages(r), ['validate protection.yaml', 'preview (stack dr)', 'up (stack dr)', 'drift check (stack dr)', 'done (deploy)']);
    assert.match(r.stdout, /protection\.yaml: valid \(vault 'contoso-gitops'/);
    const item = await lab.client.getProtectedItem(VAULT, 'app01');
    assert.equal(item.status.replicationState, 'Protected');
    const again = await pipeline('drift');
    assert.equal(again.code, 0, all());
    assert.deepEqual(stages(again), ['drift check (stack dr)', 'done (drift)']);
  });

  it('the drift check fails (exit 1) once an item is deleted out of band', async () => {
    const deleted = await lab.client.deleteProtectedItem(VAULT, 'app01');
    if (!deleted.removed) await lab.jobSucceeds(deleted.job.id);
    await waitFor('app01 to be gone', async () => ((await lab.client.listProtectedItems(VAULT)).length === 0 ? true : undefined), 60_000, 200);
    const r = await pipeline('drift');
    assert.equal(r.code, 1, all());
    assert.match(r.stderr, /drift: the vault differs from stack dr/);
  });

  it('check stops at an invalid protection file (exit 1, with its location) before previewing', async () => {
    const original = await copy.read('protection.yaml');
    try {
      await copy.edit('protection.yaml', 'replicationFrequencySeconds: 300', 'replicationFrequencySeconds: 60');
      const r = await pipeline('check');
      assert.equal(r.code, 1, all());
      assert.deepEqual(stages(r), ['validate protection.yaml']);
      assert.match(r.stdout, /^protection\.yaml:\d+:34: \/policies\/0\/replicationFrequencySeconds: must be one of 30, 300, 900 \(got 60\)$/m);
    } finally {
      await copy.write('protection.yaml', original);
    }
    const usage = await pipeline('everything');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: pipeline\.sh \[check\|deploy\|drift\]/);
  });

  it('deploy puts the deleted item back; destroy deletes its replica (deleteReplicaOnDisable: true)', async () => {
    const r = await pipeline('deploy');
    assert.equal(r.code, 0, all());
    const item = await lab.client.getProtectedItem(VAULT, 'app01');
    assert.equal(item.status.replicationState, 'Protected');
    const destroy = await run('pulumi', ['destroy', '--yes', '--skip-preview', '--stack', 'dr', '--non-interactive'], { cwd: copy.dir, env });
    outputs.push(destroy.stdout, destroy.stderr);
    assert.equal(destroy.code, 0, all());
    assert.deepEqual(await lab.client.listProtectedItems(VAULT), []);
    await lab.stop('hvdr01');
    const disks = await lab.replicaDiskIds('hvdr01');
    assert.ok(!disks.some((d) => d.startsWith(`${item.uid}/`)), `the replica of app01 (${item.uid}) is deleted: ${disks.join(', ')}`);
  });
});
