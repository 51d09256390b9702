import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { VaultClient } from '../../../../provider/client';
import { type CliContext } from '../../../../provider/cli/command';
import { watchJobs } from '../../../../provider/cli/commands/jobs';
import { EXIT } from '../../../../provider/cli/exit-codes';
import { type Output } from '../../../../provider/cli/output';
import { createVaultServer, type VaultServer } from '../../../../provider/vault/server';

function capture(isTTY: boolean): { ctx: CliContext; frames: string[]; lines: string[]; abort: AbortController } {
  const frames: string[] = [];
  const lines: string[] = [];
  const abort = new AbortController();
  const out: Output = { isTTY, line: (t) => lines.push(t), error: () => undefined, redraw: (t) => frames.push(t) };
  return { ctx: { out, env: {}, cwd: '/', signal: abort.signal }, frames, lines, abort };
}

describe('cli/commands/jobs: watching', function () {
  this.timeout(20_000);
  let dir: string;
  let vault: VaultServer;
  let client: VaultClient;
  let jobId: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-jobs-'));
    vault = await createVaultServer({ dataDir: dir, log: () => undefined });
    client = new VaultClient({ url: vault.url, token: (await readFile(vault.adminTokenFile, 'utf8')).trim() });
    await client.putVault('v', {});
    await client.putObject('v', 'sites', 'hq', { kind: 'hyperv-site' });
    await client.putObject('v', 'sites', 'dr', { kind: 'hyperv-site' });
    await client.putObject('v', 'replicationPolicies', 'p', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] });
    // No host is registered: the enable job retries its first step until cancelled.
    jobId = (await client.putProtectedItem('v', 'web', { site: 'hq', vm: 'web01', policy: 'p' })).status.activeJob!.id;
  });

  after(async () => {
    await vault.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('on a terminal, redraws the job with progress bars until it ends; a job that did not succeed exits 1', async () => {
    const c = capture(true);
    const watching = watchJobs(c.ctx, client, 'v', { id: jobId, format: 'table', pollMs: 20 });
    while (c.frames.length === 0) await new Promise((r) => setTimeout(r, 10));
    assert.match(c.frames[0]!, new RegExp(`job ${jobId}: protection\\.enable of protectedItem web`));
    assert.match(c.frames[0]!, /\[[#-]{30}\]\s+\d+%/);
    assert.match(c.frames[0]!, /Check prerequisites/);
    await client.cancelJob('v', jobId);
    assert.equal(await watching, EXIT.failed);
    assert.match(c.frames[c.frames.length - 1]!, /state Cancelled/);
    assert.deepEqual(c.lines, []);
  });

  it('without a terminal, prints a line per change; with no active job it ends at once', async () => {
    const c = capture(false);
    assert.equal(await watchJobs(c.ctx, client, 'v', { id: jobId, format: 'table', pollMs: 20 }), EXIT.failed);
    assert.equal(c.lines.length, 1);
    assert.match(c.lines[0]!, new RegExp(`${jobId} protection\\.enable web: Cancelled`));
    const none = capture(false);
    assert.equal(await watchJobs(none.ctx, client, 'v', { format: 'table', pollMs: 20 }), EXIT.ok);
    assert.deepEqual(none.lines, ['no active jobs']);
  });
});
