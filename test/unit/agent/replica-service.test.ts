import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ReplicaService } from '../../../provider/agent/replica-service';
import { systemClock } from '../../../provider/clock';
import { LifeboatError } from '../../../provider/errors';
import { RemoteReplicaTarget } from '../../../provider/targets/remote';
import { createCertificateAuthority, issueCertificate } from '../../../provider/vault/ca';

const ca = createCertificateAuthority({ commonName: 'Lab vault CA', clock: systemClock, validityDays: 2 });

function leaf(cn: string, ou: string, ips: string[] = []): { keyPem: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const c = issueCertificate(ca, { publicKey, commonName: cn, organizationalUnit: ou, dnsNames: [cn], ipAddresses: ips, clock: systemClock, validityDays: 2 });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certPem: c.certificatePem };
}

describe('agent/ReplicaService', () => {
  let dir: string;
  let service: ReplicaService | undefined;
  const uid = '6f1d2c3b-aaaa-4bbb-8ccc-123456789abc';

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-replicas-'));
  });
  afterEach(async () => {
    await service?.close();
    service = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  function client(cred: { keyPem: string; certPem: string }, port: number): RemoteReplicaTarget {
    return new RemoteReplicaTarget({ host: '127.0.0.1', port, serverName: 'dr1', ca: ca.certificatePem, key: cred.keyPem, cert: cred.certPem, connectTimeoutMs: 5000 });
  }

  it('creates replica disks idempotently, serves them to peers of its vault only, and deletes them', async () => {
    service = await ReplicaService.start({ root: dir, credentials: { ...leaf('dr1', 'Lab/dr', ['127.0.0.1']), caPem: ca.certificatePem }, vault: 'lab', log: () => undefined });
    await service.createDisks(uid, [{ id: 'disk0', sizeBytes: 1024 * 1024 }]);
    await service.createDisks(uid, [{ id: 'disk0', sizeBytes: 1024 * 1024 }]);
    assert.deepEqual(await service.target.listDisks(), [`${uid}/disk0`]);
    await assert.rejects(service.createDisks(uid, [{ id: 'disk0', sizeBytes: 2 * 1024 * 1024 }]), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'replica.sizeMismatch');

    const ours = client(leaf('hq1', 'lab/hq'), service.port);
    try {
      const disk = await ours.openDisk({ diskId: `${uid}/disk0`, sizeBytes: 1024 * 1024 });
      assert.equal((await disk.state()).appliedSeq, 0);
    } finally {
      await ours.close();
    }
    const theirs = client(leaf('hq1', 'other/hq'), service.port);
    try {
      await assert.rejects(theirs.openDisk({ diskId: `${uid}/disk0`, sizeBytes: 1024 * 1024 }), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'remote.unauthorized');
    } finally {
      await theirs.close();
    }
    assert.ok(service.stats().rejectedPeers >= 1);

    await service.deleteDisks(uid, [{ id: 'disk0', sizeBytes: 1024 * 1024 }]);
    await service.deleteDisks(uid, [{ id: 'disk0', sizeBytes: 1024 * 1024 }]);
    assert.deepEqual(await service.target.listDisks(), []);
    assert.ok((await service.storage()).freeBytes > 0);
  });

  it('with sourceHosts, serves only the source hosts of its replicas: another host of the vault is refused, named, before any request', async () => {
    const sources = ['HQ1'];
    const logged: string[] = [];
    service = await ReplicaService.start({
      root: dir, credentials: { ...leaf('dr1', 'lab/dr', ['127.0.0.1']), caPem: ca.certificatePem }, vault: 'lab',
      sourceHosts: () => Promise.resolve(sources), log: (_level, message) => logged.push(message),
    });
    await service.createDisks(uid, [{ id: 'disk0', sizeBytes: 1024 * 1024 }]);
    const other = client(leaf('hq2', 'lab/hq'), service.port);
    try {
      await assert.rejects(other.openDisk({ diskId: `${uid}/disk0`, sizeBytes: 1024 * 1024 }), (e: unknown) => {
        assert.ok(LifeboatError.isInstance(e), String(e));
        assert.equal(e.code, 'remote.unauthorized');
        assert.match(e.message, /hq2/);
        return true;
      });
    } finally {
      await other.close();
    }
    assert.equal(service.stats().rejectedPeers, 1);
    assert.ok(logged.some((m) => /hq2 refused: it is not the source host of any replica/.test(m)), logged.join('\n'));
    assert.equal((await (await service.target.openDisk({ diskId: `${uid}/disk0`, sizeBytes: 1024 * 1024 })).state()).appliedSeq, 0, 'nothing was applied');

    const source = client(leaf('hq1', 'lab/hq'), service.port);
    try {
      assert.equal((await (await source.openDisk({ diskId: `${uid}/disk0`, sizeBytes: 1024 * 1024 })).state()).appliedSeq, 0);
    } finally {
      await source.close();
    }
    // A relationship created later is honoured at the next connection.
    sources.push('hq2');
    const now = client(leaf('hq2', 'lab/hq'), service.port);
    try {
      await now.openDisk({ diskId: `${uid}/disk0`, sizeBytes: 1024 * 1024 });
    } finally {
      await now.close();
    }
    assert.equal(service.stats().rejectedPeers, 1);
  });

  it('listens again on the same port after a restart', async () => {
    const credentials = { ...leaf('dr1', 'lab/dr', ['127.0.0.1']), caPem: ca.certificatePem };
    const first = await ReplicaService.start({ root: dir, credentials, vault: 'lab', log: () => undefined });
    const port = first.port;
    await first.close();
    service = await ReplicaService.start({ root: dir, credentials, vault: 'lab', port, log: () => undefined });
    assert.equal(service.port, port);
  });
});
