import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { VaultApiError, VaultClient, isAuthError, isNotFound, isUnreachable } from '../../../provider/client';
import { type LifeboatError } from '../../../provider/errors';
import { createVaultServer, type VaultServer } from '../../../provider/vault/server';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('client/VaultClient (a real vault on loopback)', () => {
  let dir: string;
  let vault: VaultServer;
  let client: VaultClient;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-client-'));
    vault = await createVaultServer({ dataDir: dir, log: () => undefined });
    client = new VaultClient({ url: `${vault.url}/`, token: (await readFile(vault.adminTokenFile, 'utf8')).trim() });
  });

  after(async () => {
    await vault.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, reads and lists objects; the same PUT keeps the generation', async () => {
    const v = await client.putVault('contoso', {});
    assert.equal(v.name, 'contoso');
    await client.putObject('contoso', 'sites', 'hq', { kind: 'hyperv-site' });
    const again = await client.putObject('contoso', 'sites', 'hq', { kind: 'hyperv-site' });
    assert.equal(again.generation, 1);
    const changed = await client.putObject('contoso', 'sites', 'hq', { kind: 'hyperv-site', description: 'head office' });
    assert.equal(changed.generation, 2);
    assert.deepEqual((await client.listObjects('contoso', 'sites')).map((s) => s.name), ['hq']);
    assert.equal((await client.getObject('contoso', 'sites', 'HQ')).spec.description, 'head office');
    assert.match(await client.registrationKey('contoso'), /^lbr_/);
    assert.match(await client.certificateAuthority('contoso'), /BEGIN CERTIFICATE/);
    assert.equal((await client.health()).status, 'ok');
    assert.deepEqual(await client.listJobs('contoso'), []);
  });

  it('maps a refused body to VaultApiError (invalidInput) with the path of each bad field', async () => {
    await client.putVault('contoso', {});
    const e = await client.putObject('contoso', 'replicationPolicies', 'gold', { target: 'secondary-site', replicationFrequencySeconds: 31 }).then(() => undefined, (x: unknown) => x);
    assert.ok(VaultApiError.isApiError(e), String(e));
    assert.equal(e.status, 400);
    assert.equal(e.code, 'request.invalid');
    assert.equal(e.category, 'invalidInput');
    assert.equal(e.where?.path, '/replicationFrequencySeconds');
    assert.deepEqual(e.problems[0]?.allowed, [30, 300, 900]);
    assert.ok(e.hint !== undefined);
  });

  it('maps 404 and a missing or wrong token to their codes; the call changed nothing', async () => {
    const missing = await client.getObject('contoso', 'sites', 'nowhere').then(() => undefined, (x: unknown) => x);
    assert.ok(isNotFound(missing));
    assert.equal((missing as VaultApiError).code, 'object.notFound');
    const anonymous = new VaultClient({ url: vault.url });
    const noToken = await anonymous.putVault('intruder', {}).then(() => undefined, (x: unknown) => x);
    assert.ok(isAuthError(noToken));
    assert.equal((noToken as VaultApiError).code, 'auth.tokenMissing');
    assert.equal((noToken as VaultApiError).category, 'nonRecoverable');
    const wrong = await new VaultClient({ url: vault.url, token: 'lba_wrong' }).listVaults().then(() => undefined, (x: unknown) => x);
    assert.equal((wrong as VaultApiError).code, 'auth.tokenInvalid');
    assert.ok(!(await client.listVaults()).some((v) => v.name === 'intruder'));
  });

  it('reports an unreachable vault as recoverable client.unreachable', async () => {
    const closed = createServer();
    const url = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = await new VaultClient({ url, token: 't' }).health().then(() => undefined, (x: unknown) => x);
    assert.ok(isUnreachable(e), String(e));
    assert.equal((e as LifeboatError).category, 'recoverable');
  });

  it('times out a vault that does not answer, and refuses an answer that is not JSON', async () => {
    const silent = createServer(() => undefined);
    const text = createServer((_req, res) => res.end('<html>proxy error</html>'));
    try {
      const slow = await new VaultClient({ url: await listen(silent), timeoutMs: 200 }).health().then(() => undefined, (x: unknown) => x);
      assert.equal((slow as LifeboatError).code, 'client.timeout');
      const html = await new VaultClient({ url: await listen(text) }).health().then(() => undefined, (x: unknown) => x);
      assert.equal((html as LifeboatError).code, 'client.badResponse');
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
      await new Promise<void>((resolve) => text.close(() => resolve()));
    }
  });

  it('waits for a job to end and reports each poll', async () => {
    await client.putVault('contoso', {});
    await client.putObject('contoso', 'sites', 'hq', { kind: 'hyperv-site' });
    await client.putObject('contoso', 'sites', 'dr', { kind: 'hyperv-site' });
    await client.putObject('contoso', 'replicationPolicies', 'gold', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] });
    // No host is registered: protection.enable retries; cancelling it ends the job.
    const item = await client.putProtectedItem('contoso', 'web', { site: 'hq', vm: 'web01', policy: 'gold' });
    const id = item.status.activeJob!.id;
    await client.cancelJob('contoso', id);
    const seen: string[] = [];
    const job = await client.waitForJob('contoso', id, { pollMs: 20, timeoutMs: 10_000, onProgress: (j) => seen.push(j.state) });
    assert.equal(job.state, 'Cancelled');
    assert.ok(seen.length >= 1);
    const deleted = await client.deleteProtectedItem('contoso', 'web');
    assert.deepEqual(deleted, { removed: true });
  });
});
