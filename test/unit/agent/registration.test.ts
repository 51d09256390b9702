import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { agentPaths } from '../../../provider/agent/agent-files';
import { ensureRegistered, loadIdentity, registrationProofText } from '../../../provider/agent/registration';
import { VaultChannel } from '../../../provider/agent/vault-channel';
import { LifeboatError } from '../../../provider/errors';
import { registrationProofText as vaultProofText } from '../../../provider/vault';
import { createVaultServer, type VaultServer } from '../../../provider/vault/server';

describe('agent/registration (a real vault on loopback)', () => {
  let dir: string;
  let vault: VaultServer;
  let key: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-reg-'));
    vault = await createVaultServer({ dataDir: path.join(dir, 'vault'), log: () => undefined });
    const token = (await readFile(vault.adminTokenFile, 'utf8')).trim();
    const put = (p: string, body: unknown): Promise<Response> => fetch(`${vault.url}${p}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    await put('/v1/vaults/Lab', {});
    await put('/v1/vaults/lab/sites/hq', { kind: 'hyperv-site' });
    await put('/v1/vaults/lab/sites/dr', { kind: 'hyperv-site' });
    key = ((await (await fetch(`${vault.url}/v1/vaults/lab/registrationKey`, { headers: { authorization: `Bearer ${token}` } })).json()) as { registrationKey: string }).registrationKey;
  });

  after(async () => {
    await vault.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('signs the same text the vault verifies', () => {
    assert.equal(registrationProofText('Lab', 'HV01', 'HQ'), vaultProofText('Lab', 'HV01', 'HQ'));
  });

  it('registers once: credentials are kept (secrets mode 0600) and a restart reuses them without the key', async () => {
    const paths = agentPaths(path.join(dir, 'hv01'));
    const channel = new VaultChannel({ url: vault.url, vault: 'lab' });
    let keyReads = 0;
    const options = { paths, channel, host: 'hv01', site: 'hq', addresses: ['127.0.0.1', 'hv01.lab.local'], agentVersion: '0.1.0', registrationKey: async () => { keyReads++; return key; } };
    const first = await ensureRegistered(options);
    assert.equal(keyReads, 1);
    assert.match(first.token, /^lbh_/);
    assert.equal(first.vault, 'Lab');
    for (const f of [paths.token, paths.key]) assert.equal((await stat(f)).mode & 0o777, 0o600, f);
    assert.equal((await stat(paths.root)).mode & 0o777, 0o700);
    const cert = new X509Certificate(first.certPem);
    assert.ok(cert.verify(new X509Certificate(first.caPem).publicKey), 'issued by the vault CA');
    assert.match(cert.subject, /CN=hv01/);
    assert.match(cert.subjectAltName ?? '', /DNS:hv01\.lab\.local/);
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);

    const again = await ensureRegistered(options);
    assert.equal(keyReads, 1, 'no second registration');
    assert.equal(again.uid, first.uid);
    assert.equal(again.token, first.token);
    channel.authenticate(again.host, again.token);
    const hb = await channel.heartbeat({ agentVersion: '0.1.0' });
    assert.equal(hb.connectionState, 'Connected');

    // Another site is another identity: it registers again (the vault moves the host).
    const moved = await ensureRegistered({ ...options, site: 'dr' });
    assert.equal(keyReads, 2);
    assert.notEqual(moved.token, first.token);
    assert.equal((await loadIdentity(paths, { vault: 'lab', host: 'hv01', site: 'dr' }))?.token, moved.token);
  });

  it('a wrong key is refused (auth.registrationKeyInvalid, non-recoverable) and nothing is written', async () => {
    const paths = agentPaths(path.join(dir, 'hv02'));
    const channel = new VaultChannel({ url: vault.url, vault: 'lab' });
    const e = await ensureRegistered({ paths, channel, host: 'hv02', site: 'hq', addresses: [], agentVersion: '0.1.0', registrationKey: async () => 'lbr_wrong' })
      .then(() => undefined, (x: unknown) => x);
    assert.ok(LifeboatError.isInstance(e));
    assert.equal(e.code, 'auth.registrationKeyInvalid');
    assert.equal(e.category, 'nonRecoverable');
    assert.deepEqual((await readdir(paths.root)).filter((n) => n !== 'items'), []);
  });

  it('a missing site is invalid input with the JSON path of the field', async () => {
    const channel = new VaultChannel({ url: vault.url, vault: 'lab' });
    const e = await ensureRegistered({ paths: agentPaths(path.join(dir, 'hv03')), channel, host: 'hv03', site: 'nowhere', addresses: [], agentVersion: '0.1.0', registrationKey: async () => key })
      .then(() => undefined, (x: unknown) => x);
    assert.ok(LifeboatError.isInstance(e));
    assert.equal(e.category, 'invalidInput');
    assert.equal(e.where?.path, '/site');
  });

  it('an unreachable vault is recoverable (agent.vaultUnreachable)', async () => {
    const channel = new VaultChannel({ url: 'http://127.0.0.1:1', vault: 'lab' });
    const e = await channel.register(key, { hostname: 'x', site: 'hq', publicKey: 'k', proof: 'p', agentVersion: '0' }).then(() => undefined, (x: unknown) => x);
    assert.ok(LifeboatError.isInstance(e));
    assert.equal(e.code, 'agent.vaultUnreachable');
    assert.equal(e.category, 'recoverable');
  });
});
