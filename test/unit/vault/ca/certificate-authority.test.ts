import { strict as assert } from 'node:assert';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { ManualClock } from '../../../../provider/clock';
import { createCertificateAuthority, issueCertificate, parsePublicKey, type CertificateAuthority } from '../../../../provider/vault/ca/certificate-authority';
import { encodeCertificate, toPem } from '../../../../provider/vault/ca/x509';

const clock = new ManualClock(Date.now());

function keyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

interface Peer {
  readonly key: string;
  readonly cert: string;
}

function issue(ca: CertificateAuthority, name: string): Peer {
  const k = keyPair();
  return { key: k.privatePem, cert: issueCertificate(ca, { publicKey: k.publicPem, commonName: name, ipAddresses: ['127.0.0.1'], clock }).certificatePem };
}

/** A self-signed certificate that copies the CA's subject: what a forger without the CA key can make. */
function forge(ca: CertificateAuthority, name: string): Peer {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caSubject = new X509Certificate(ca.certificatePem).subject;
  const cn = /CN=(.*)/.exec(caSubject)![1]!;
  const der = encodeCertificate({
    serialNumber: Buffer.from([7]), issuer: { commonName: cn, organization: 'Lifeboat' }, subject: { commonName: name, organization: 'Lifeboat' },
    notBefore: clock.now() - 60_000, notAfter: clock.now() + 86_400_000, subjectPublicKey: publicKey, isCa: false,
    keyUsage: ['digitalSignature'], extendedKeyUsage: ['serverAuth', 'clientAuth'], dnsNames: [name], ipAddresses: ['127.0.0.1'],
  }, privateKey as KeyObject);
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: toPem(der) };
}

/**
 * A TLS 1.3 server and client on loopback, each trusting only `trust`, the
 * server requiring a client certificate. Resolves with what each side saw.
 */
async function handshake(server: Peer, client: Peer, trust: string): Promise<{ clientOk: boolean; serverSawClient: string | undefined; error?: string }> {
  let serverSawClient: string | undefined;
  const srv = tls.createServer({ key: server.key, cert: server.cert, ca: [trust], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    const cn = socket.getPeerCertificate().subject?.CN;
    serverSawClient = Array.isArray(cn) ? cn.join(',') : cn;
    socket.end('hello');
  });
  const serverErrors: string[] = [];
  srv.on('tlsClientError', (e) => serverErrors.push(e.message));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, key: client.key, cert: client.cert, ca: [trust], servername: 'hv-dr', minVersion: 'TLSv1.3' });
      let data = '';
      socket.on('data', (d: Buffer) => { data += d.toString(); });
      socket.on('end', () => resolve({ clientOk: data === 'hello', serverSawClient }));
      socket.on('error', (e) => resolve({ clientOk: false, serverSawClient, error: `${e.message}; server: ${serverErrors.join(', ')}` }));
    });
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

describe('vault/ca/certificate-authority', () => {
  const ca = createCertificateAuthority({ commonName: 'Lifeboat vault contoso CA', clock });

  it('makes a self-signed CA certificate that node accepts as a CA', () => {
    const cert = new X509Certificate(ca.certificatePem);
    assert.equal(cert.ca, true);
    assert.ok(cert.checkIssued(cert));
    assert.ok(cert.verify(cert.publicKey));
    assert.equal(cert.subject, 'O=Lifeboat\nCN=Lifeboat vault contoso CA');
    assert.ok(Date.parse(cert.validTo) - clock.now() > 9 * 365 * 86_400_000);
  });

  it('issues agent certificates the CA verifies, for serverAuth and clientAuth, with the host name and addresses', () => {
    const k = keyPair();
    const issued = issueCertificate(ca, { publicKey: k.publicPem, commonName: 'hv01', organizationalUnit: 'contoso/hq', dnsNames: ['hv01.contoso.local'], ipAddresses: ['192.0.2.10'], clock, validityDays: 30 });
    const cert = new X509Certificate(issued.certificatePem);
    const caCert = new X509Certificate(ca.certificatePem);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.subjectAltName, 'DNS:hv01, DNS:hv01.contoso.local, IP Address:192.0.2.10');
    assert.equal(cert.issuer, caCert.subject);
    assert.equal(issued.serialNumber, cert.serialNumber);
    assert.equal(issued.fingerprint256, cert.fingerprint256);
    assert.equal(issued.notAfter, Date.parse(cert.validTo));
    assert.ok(Math.abs(issued.notAfter - (clock.now() + 30 * 86_400_000)) < 1000);
    // Serial numbers are random and positive.
    const other = issueCertificate(ca, { publicKey: k.publicPem, commonName: 'hv01', clock });
    assert.notEqual(other.serialNumber, issued.serialNumber);
  });

  it('certifies EC P-256/P-384, Ed25519 and RSA ≥ 2048 keys and refuses weak or unknown ones', () => {
    for (const k of [
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey,
      generateKeyPairSync('ed25519').publicKey,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
    ]) assert.doesNotThrow(() => parsePublicKey(k.export({ type: 'spki', format: 'pem' }).toString()));
    assert.throws(() => parsePublicKey(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey), /cannot be certified/);
    assert.throws(() => parsePublicKey(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey), /cannot be certified/);
    assert.throws(() => parsePublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'), /not a PEM public key/);
  });

  it('two agents with vault-issued certificates complete a mutual TLS 1.3 handshake', async () => {
    const r = await handshake(issue(ca, 'hv-dr'), issue(ca, 'hv01'), ca.certificatePem);
    assert.equal(r.error, undefined);
    assert.ok(r.clientOk);
    assert.equal(r.serverSawClient, 'hv01');
  });

  it('a server refuses a forged (self-signed, not vault-issued) client certificate', async () => {
    const r = await handshake(issue(ca, 'hv-dr'), forge(ca, 'hv01'), ca.certificatePem);
    assert.equal(r.clientOk, false);
    assert.equal(r.serverSawClient, undefined, 'the server never accepted the connection');
  });

  it('a client refuses a forged server, and a certificate from another vault\'s CA', async () => {
    const forged = await handshake(forge(ca, 'hv-dr'), issue(ca, 'hv01'), ca.certificatePem);
    assert.equal(forged.clientOk, false);
    assert.match(forged.error ?? '', /self.signed|unable to verify|certificate/i);
    const otherCa = createCertificateAuthority({ commonName: 'Lifeboat vault contoso CA', clock });
    const foreign = await handshake(issue(otherCa, 'hv-dr'), issue(ca, 'hv01'), ca.certificatePem);
    assert.equal(foreign.clientOk, false);
  });
});
