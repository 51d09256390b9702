import { strict as assert } from 'node:assert';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { encodeCertificate, ipAddressBytes, keyIdentifier, toPem } from '../../../../provider/vault/ca/x509';

const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

describe('vault/ca/x509', () => {
  it('encodes IPv4 and IPv6 addresses as 4 and 16 octets', () => {
    assert.equal(ipAddressBytes('127.0.0.1').toString('hex'), '7f000001');
    assert.equal(ipAddressBytes('::1').toString('hex'), '00000000000000000000000000000001');
    assert.equal(ipAddressBytes('fe80::1:2').toString('hex'), 'fe800000000000000000000000010002');
    assert.equal(ipAddressBytes('2001:db8::').toString('hex'), '20010db8000000000000000000000000');
    assert.equal(ipAddressBytes('::ffff:192.0.2.1').toString('hex'), '00000000000000000000ffffc0000201');
    assert.equal(ipAddressBytes('1:2:3:4:5:6:7:8').toString('hex'), '00010002000300040005000600070008');
    assert.throws(() => ipAddressBytes('hv01'), /not an IPv4 or IPv6 address/);
  });

  it('makes a certificate that node parses back with every field it was given', () => {
    const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const leaf = generateKeyPairSync('ed25519');
    const der = encodeCertificate({
      serialNumber: Buffer.from('00ff01', 'hex'),
      issuer: { commonName: 'Test CA', organization: 'Lifeboat' },
      subject: { commonName: 'hv01', organization: 'Lifeboat', organizationalUnit: 'contoso/hq' },
      notBefore: NOW,
      notAfter: NOW + 30 * DAY,
      subjectPublicKey: leaf.publicKey,
      isCa: false,
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: ['serverAuth', 'clientAuth'],
      dnsNames: ['hv01', 'hv01.contoso.local'],
      ipAddresses: ['10.0.0.5', '::1'],
      authorityKeyIdentifier: keyIdentifier(ca.publicKey),
    }, ca.privateKey);
    const cert = new X509Certificate(toPem(der));
    assert.deepEqual(cert.raw, der);
    assert.equal(cert.serialNumber, 'FF01');
    assert.equal(cert.subject, 'O=Lifeboat\nOU=contoso/hq\nCN=hv01');
    assert.equal(cert.issuer, 'O=Lifeboat\nCN=Test CA');
    assert.equal(Date.parse(cert.validFrom), NOW);
    assert.equal(Date.parse(cert.validTo), NOW + 30 * DAY);
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.subjectAltName, 'DNS:hv01, DNS:hv01.contoso.local, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1');
    assert.equal(cert.publicKey.asymmetricKeyType, 'ed25519');
    assert.ok(cert.verify(ca.publicKey), 'signature verifies with the issuer key');
    assert.ok(!cert.verify(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey), 'and not with another key');
    assert.equal(cert.checkHost('hv01.contoso.local'), 'hv01.contoso.local');
    assert.equal(cert.checkIP('10.0.0.5'), '10.0.0.5');
    assert.equal(cert.checkIP('10.0.0.6'), undefined);
  });

  it('signs with Ed25519 too', () => {
    const signer = generateKeyPairSync('ed25519');
    const der = encodeCertificate({
      serialNumber: Buffer.from([1]), issuer: { commonName: 'x' }, subject: { commonName: 'x' }, notBefore: NOW, notAfter: NOW + DAY,
      subjectPublicKey: signer.publicKey, isCa: true, pathLength: 0, keyUsage: ['keyCertSign'],
    }, signer.privateKey);
    const cert = new X509Certificate(der);
    assert.ok(cert.ca);
    assert.ok(cert.verify(signer.publicKey));
    assert.ok(cert.checkIssued(cert));
  });

  it('refuses what RFC 5280 forbids and keys it cannot sign with', () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const base = {
      serialNumber: Buffer.from([1]), issuer: { commonName: 'x' }, subject: { commonName: 'x' }, notBefore: NOW, notAfter: NOW + DAY,
      subjectPublicKey: k.publicKey, isCa: false, keyUsage: ['digitalSignature'] as const,
    };
    assert.throws(() => encodeCertificate({ ...base, serialNumber: Buffer.alloc(21, 1) }, k.privateKey), /serial/);
    assert.throws(() => encodeCertificate({ ...base, serialNumber: Buffer.from([0, 0]) }, k.privateKey), /serial/);
    assert.throws(() => encodeCertificate({ ...base, notAfter: NOW }, k.privateKey), /notAfter/);
    assert.throws(() => encodeCertificate({ ...base, dnsNames: ['bad_name'] }, k.privateKey), /not a DNS name/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    assert.throws(() => encodeCertificate(base, p384.privateKey), /cannot sign with/);
  });
});
