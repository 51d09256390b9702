/**
 * What the system refuses across processes, and that a refusal stores
 * nothing: an agent with a wrong registration key, requests without a
 * token, a replication peer with a forged certificate (a CA other than
 * the vault's, carrying the name of a real primary host), and a real host of
 * the same vault that is not the item's source.
 */

import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { systemClock } from '../../../provider/clock';
import { LifeboatError } from '../../../provider/errors';
import { RemoteReplicaTarget } from '../../../provider/targets/remote';
import { createCertificateAuthority, issueCertificate } from '../../../provider/vault/ca';
import { lifeboat, TestLab } from '../lab/lab-harness';

describe('agent: refusals across processes (nothing stored)', function () {
  this.timeout(60_000);
  let lab: TestLab;

  before(async () => {
    lab = await TestLab.up(['--disk-mib', '2', '--frequency-ms', '1000']);
  });

  after(async () => {
    await lab?.down();
  });

  it('an agent with a wrong registration key exits with code 5; no credential is written and no host registered', async () => {
    const dataDir = path.join(lab.root, 'intruder');
    const keyFile = path.join(lab.root, 'wrong-key');
    await writeFile(keyFile, 'lbr_this-is-not-the-key\n', { mode: 0o600 });
    const hostsBefore = (await lab.client.listHosts('lab')).map((h) => h.name).sort();
    const r = await lifeboat(['agent', 'run', '--vault', lab.state.vaultUrl, '--vault-name', 'lab', '--registration-key-file', keyFile,
      '--site', 'primary', '--name', 'intruder', '--data-dir', dataDir], { timeoutMs: 30_000 });
    assert.equal(r.code, 5, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /auth\.registrationKeyInvalid/);
    assert.deepEqual((await readdir(dataDir)).filter((n) => n !== 'items').sort(), [], 'no identity, token, key or certificate in the data folder');
    assert.deepEqual((await lab.client.listHosts('lab')).map((h) => h.name).sort(), hostsBefore);
  });

  it('requests without a token are refused with 401 and change nothing; the CLI says so with exit code 5', async () => {
    const put = await fetch(`${lab.state.vaultUrl}/v1/vaults/lab/sites/rogue`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"kind":"hyperv-site"}' });
    assert.equal(put.status, 401);
    assert.equal(((await put.json()) as { error: { code: string } }).error.code, 'auth.tokenMissing');
    const heartbeat = await fetch(`${lab.state.vaultUrl}/v1/vaults/lab/hosts/primary-1/heartbeat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"agentVersion":"9.9.9"}' });
    assert.equal(heartbeat.status, 401);
    await assert.rejects(lab.client.getObject('lab', 'sites', 'rogue'), (e: { status?: number }) => e.status === 404);
    assert.notEqual((await lab.client.getHost('lab', 'primary-1')).status.agentVersion, '9.9.9');

    const cli = await lifeboat(['status', '--vault', lab.state.vaultUrl], { cwd: lab.root, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    assert.equal(cli.code, 5, cli.stderr);
    assert.match(cli.stderr, /cli\.noToken/);
    assert.match(cli.stderr, /hint: /);
  });

  it('the recovery host refuses a replication peer whose certificate another CA issued; no replica disk appears', async () => {
    const recovery = await lab.client.getHost('lab', 'recovery-1');
    const endpoint = recovery.status.replicationEndpoint!;
    const vaultCa = await lab.client.certificateAuthority('lab');
    const disksDir = path.join(lab.dataDir('recovery-1'), 'replicas', 'disks');
    await mkdir(disksDir, { recursive: true });
    const before = (await readdir(disksDir)).sort();

    // A forger's CA issues a certificate with the real primary's name and OU.
    const forger = createCertificateAuthority({ commonName: 'Lifeboat lab vault CA', clock: systemClock, validityDays: 2 });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forged = issueCertificate(forger, { publicKey, commonName: 'primary-1', organizationalUnit: 'lab/primary', dnsNames: ['primary-1'], clock: systemClock, validityDays: 2 });
    const target = new RemoteReplicaTarget({
      host: endpoint.address, port: endpoint.port, serverName: 'recovery-1', ca: vaultCa,
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: forged.certificatePem,
      connectTimeoutMs: 5000,
    });
    try {
      await assert.rejects(target.openDisk({ diskId: 'forged/disk0', sizeBytes: 1024 * 1024 }), (e: unknown) => {
        assert.ok(LifeboatError.isInstance(e), String(e));
        assert.equal(e.code, 'remote.unauthorized');
        assert.equal(e.category, 'nonRecoverable');
        return true;
      });
    } finally {
      await target.close();
    }
    assert.deepEqual((await readdir(disksDir)).sort(), before, 'the store is unchanged');
  });
  it('the recovery host refuses a registered host of the same vault that is not the item\'s source, naming it; nothing is written', async () => {
    const created = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-policy' });
    // The item's source (primary-1) is served: initial replication reaches its first point.
    await lab.jobSucceeds(created.status.activeJob!.id);
    const recovery = await lab.client.getHost('lab', 'recovery-1');
    const endpoint = recovery.status.replicationEndpoint!;
    const disksDir = path.join(lab.dataDir('recovery-1'), 'replicas', 'disks');
    // The store's disks (one folder each), not their files: primary-1 keeps shipping cycles meanwhile.
    const disks = async (): Promise<string[]> => (await readdir(disksDir)).sort();
    const before = await disks();

    // primary-2's own credentials, issued by this vault's CA at its registration.
    const dir = lab.dataDir('primary-2');
    const target = new RemoteReplicaTarget({
      host: endpoint.address, port: endpoint.port, serverName: 'recovery-1', ca: await readFile(path.join(dir, 'ca.crt'), 'utf8'),
      key: await readFile(path.join(dir, 'agent.key'), 'utf8'), cert: await readFile(path.join(dir, 'agent.crt'), 'utf8'),
      connectTimeoutMs: 5000,
    });
    try {
      await assert.rejects(target.openDisk({ diskId: `${created.uid}/disk0`, sizeBytes: 2 * 1024 * 1024 }), (e: unknown) => {
        assert.ok(LifeboatError.isInstance(e), String(e));
        assert.equal(e.code, 'remote.unauthorized');
        assert.match(e.message, /primary-2/);
        return true;
      });
    } finally {
      await target.close();
    }
    assert.deepEqual(await disks(), before, 'no disk appeared in the store');
    const log = await readFile(path.join(lab.dir, 'logs', 'recovery-1.log'), 'utf8');
    assert.match(log, /replication peer primary-2 refused: it is not the source host of any replica/);
  });
});
