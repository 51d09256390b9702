import { strict as assert } from 'node:assert';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { encodeCertificate, toPem } from '../../../provider/vault/ca/x509';
import { Harness, ScriptedAgent, proofText, type ErrorBody, type ObjectBody } from './harness';

interface Endpoint {
  readonly key: string;
  readonly cert: string;
}

/** Mutual TLS on loopback; resolves with what the server saw of the client, or the client's error. */
async function mutualTls(server: Endpoint, client: Endpoint, ca: string, serverName: string): Promise<{ ok: boolean; peer?: string; error?: string }> {
  let peer: string | undefined;
  const srv = tls.createServer({ key: server.key, cert: server.cert, ca: [ca], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
    const cn = s.getPeerCertificate().subject?.CN;
    peer = Array.isArray(cn) ? cn.join(',') : cn;
    s.end('ok');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, key: client.key, cert: client.cert, ca: [ca], servername: serverName, minVersion: 'TLSv1.3' });
      let data = '';
      c.on('data', (d: Buffer) => { data += d.toString(); });
      c.on('end', () => resolve(data === 'ok' ? { ok: true, ...(peer === undefined ? {} : { peer }) } : { ok: false, error: 'closed without data' }));
      c.on('error', (e) => resolve({ ok: false, error: e.message }));
    });
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

describe('vault API: registration and trust', () => {
  let h: Harness;
  let key: string;
  beforeEach(async () => {
    h = await Harness.start();
    await h.seedTopology();
    key = await h.registrationKey();
  });
  afterEach(async () => {
    await h.close();
  });

  it('registers with the right key: a host id, an agent token and a certificate the vault CA issued', async () => {
    const agent = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    const r = await agent.register(key, { addresses: ['127.0.0.1', 'hv01.contoso.local'] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.hostId, 'hv01');
    assert.match(r.body.agentToken, /^lbh_/);
    const ca = (await h.ok<{ certificate: string }>('GET', '/v1/vaults/contoso/certificateAuthority')).certificate;
    assert.equal(r.body.caCertificate, ca);
    const cert = new X509Certificate(r.body.certificate);
    const caCert = new X509Certificate(ca);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.ca, false);
    assert.equal(cert.subjectAltName, 'DNS:hv01, DNS:hv01.contoso.local, IP Address:127.0.0.1');
    assert.match(cert.subject, /CN=hv01/);
    assert.ok(cert.publicKey.equals(agent.publicKey), 'the certificate carries the agent\'s own key');
    const host = await h.ok<ObjectBody>('GET', '/v1/vaults/contoso/hosts/hv01');
    assert.equal(host.status.connectionState, 'Connected');
    assert.equal((host.status.certificate as { serialNumber: string }).serialNumber, cert.serialNumber);
    assert.equal((await agent.heartbeat({})).status, 200);
  });

  it('refuses a wrong key (401, nothing stored), and the old key after a rotation', async () => {
    const agent = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    const before = h.databaseSnapshot();
    for (const wrong of ['lbr_wrong', h.token, '']) {
      const r = await agent.register(wrong);
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, wrong === '' ? 'auth.tokenMissing' : 'auth.registrationKeyInvalid');
    }
    const unknownVault = await h.api<ErrorBody>('POST', '/v1/vaults/nowhere/registrations', agent.request(), { token: key });
    assert.equal(unknownVault.status, 401, 'an unknown vault looks like a wrong key');
    assert.equal(h.databaseSnapshot(), before, 'nothing stored');

    const rotated = (await h.ok<{ registrationKey: string }>('POST', '/v1/vaults/contoso/registrationKey/rotate')).registrationKey;
    const afterRotation = h.databaseSnapshot();
    const old = await agent.register(key);
    assert.equal(old.status, 401);
    assert.equal(old.body.error.code, 'auth.registrationKeyInvalid');
    assert.equal(h.databaseSnapshot(), afterRotation);
    assert.equal((await agent.register(rotated)).status, 201);
  });

  it('refuses a request whose proof, site or key is wrong (400 with the path), storing nothing', async () => {
    const agent = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    const before = h.databaseSnapshot();
    const otherProof = sign('sha256', Buffer.from(proofText('contoso', 'hv99', 'hq')), agent.privateKey).toString('base64');
    const badProof = await agent.register(key, { proof: otherProof });
    assert.equal(badProof.status, 400);
    assert.deepEqual(badProof.body.error.details.map((d) => d.path), ['/proof']);
    const badSite = await agent.register(key, { site: 'mars', proof: sign('sha256', Buffer.from(proofText('contoso', 'hv01', 'mars')), agent.privateKey).toString('base64') });
    assert.equal(badSite.status, 400);
    assert.deepEqual(badSite.body.error.details[0], { path: '/site', message: "no site named 'mars' in vault 'contoso'", allowed: ['dr', 'hq'] });
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weakKey = await agent.register(key, {
      publicKey: weak.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      proof: sign('sha256', Buffer.from(proofText('contoso', 'hv01', 'hq')), weak.privateKey).toString('base64'),
    });
    assert.equal(weakKey.status, 400);
    assert.equal(weakKey.body.error.details[0]?.path, '/publicKey');
    const shape = await agent.register(key, { hostname: 'hv_01', extra: true });
    assert.equal(shape.status, 400);
    assert.deepEqual(shape.body.error.details.map((d) => d.path).sort(), ['/extra', '/hostname']);
    assert.equal(h.databaseSnapshot(), before, 'nothing stored');
  });

  it('registering again replaces the token: the old one stops working', async () => {
    const agent = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    await agent.register(key);
    const first = agent.token;
    await agent.register(key);
    assert.notEqual(agent.token, first);
    const stale = await h.api<ErrorBody>('POST', '/v1/vaults/contoso/hosts/hv01/heartbeat', {}, { token: first });
    assert.equal(stale.status, 401);
    assert.equal((await agent.heartbeat({})).status, 200);
    // Unregistering revokes the token.
    assert.equal((await h.api('DELETE', '/v1/vaults/contoso/hosts/hv01')).status, 204);
    assert.equal((await agent.heartbeat({})).status, 401);
  });

  it('agents holding vault-issued certificates complete mutual TLS; a forged or foreign peer is refused', async () => {
    const primary = new ScriptedAgent(h, 'contoso', 'hv01', 'hq');
    const recovery = new ScriptedAgent(h, 'contoso', 'hvdr01', 'dr');
    await primary.register(key);
    await recovery.register(key);
    const ca = primary.registration!.caCertificate;
    const p: Endpoint = { key: primary.privateKeyPem, cert: primary.registration!.certificate };
    const r: Endpoint = { key: recovery.privateKeyPem, cert: recovery.registration!.certificate };

    const good = await mutualTls(r, p, ca, 'hvdr01');
    assert.deepEqual(good, { ok: true, peer: 'hv01' });

    // A forger copies the CA's name into a self-signed certificate for hv01.
    const forgedKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const caName = new X509Certificate(ca).subject.split('\n').find((l) => l.startsWith('CN='))!.slice(3);
    const forged: Endpoint = {
      key: forgedKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      cert: toPem(encodeCertificate({
        serialNumber: Buffer.from([1, 2, 3]), issuer: { commonName: caName, organization: 'Lifeboat' }, subject: { commonName: 'hv01', organization: 'Lifeboat' },
        notBefore: Date.now() - 60_000, notAfter: Date.now() + 86_400_000, subjectPublicKey: forgedKeys.publicKey, isCa: false,
        keyUsage: ['digitalSignature'], extendedKeyUsage: ['serverAuth', 'clientAuth'], dnsNames: ['hv01', 'hvdr01'], ipAddresses: ['127.0.0.1'],
      }, forgedKeys.privateKey)),
    };
    const forgedClient = await mutualTls(r, forged, ca, 'hvdr01');
    assert.equal(forgedClient.ok, false);
    assert.equal(forgedClient.peer, undefined);
    const forgedServer = await mutualTls(forged, p, ca, 'hvdr01');
    assert.equal(forgedServer.ok, false);

    // A certificate issued by another vault's CA is not trusted either.
    await h.ok('PUT', '/v1/vaults/other', {});
    await h.ok('PUT', '/v1/vaults/other/sites/hq', { kind: 'hyperv-site' });
    const foreignAgent = new ScriptedAgent(h, 'other', 'hv01', 'hq');
    assert.equal((await foreignAgent.register(await h.registrationKey('other'))).status, 201);
    const foreign = await mutualTls(r, { key: foreignAgent.privateKeyPem, cert: foreignAgent.registration!.certificate }, ca, 'hvdr01');
    assert.equal(foreign.ok, false);
  });
});
