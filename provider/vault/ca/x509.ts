/**
 * A minimal X.509 v3 certificate encoder (RFC 5280 §4.1): node:crypto makes
 * keys and signatures but not certificates, so the vault encodes its CA and
 * agent certificates itself. Only what agent-to-agent mutual TLS needs:
 * names of CN/O/OU, validity, basicConstraints, keyUsage, extKeyUsage,
 * subjectAltName (DNS, IP) and the key identifiers; signed with ECDSA P-256 /
 * SHA-256 (RFC 5758 §3.2) or Ed25519 (RFC 8410).
 *
 * The output is checked against an independent parser (node's
 * `X509Certificate`) and a real TLS handshake in the tests.
 */

import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { BugError, InvalidInputError } from '../../errors';
import * as der from './der';

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ed25519: '1.3.101.112',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** A distinguished name of up to three attributes, encoded in this order: O, OU, CN. */
export interface DistinguishedName {
  readonly commonName: string;
  /** @default omitted */
  readonly organization?: string;
  /** @default omitted */
  readonly organizationalUnit?: string;
}

/** KeyUsage bits (RFC 5280 §4.2.1.3). */
export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

const KEY_USAGE_BIT: Readonly<Record<KeyUsage, number>> = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
};

export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

/** What goes into one certificate. */
export interface CertificateTemplate {
  /** Positive, at most 20 octets (RFC 5280 §4.1.2.2). */
  readonly serialNumber: Buffer;
  readonly issuer: DistinguishedName;
  readonly subject: DistinguishedName;
  /** ms since the epoch. */
  readonly notBefore: number;
  /** ms since the epoch. */
  readonly notAfter: number;
  readonly subjectPublicKey: KeyObject;
  /** A CA certificate may sign others; marks basicConstraints cA. */
  readonly isCa: boolean;
  /** For a CA: how many intermediate CAs may follow. @default omitted (no limit) */
  readonly pathLength?: number;
  readonly keyUsage: readonly KeyUsage[];
  /** @default omitted */
  readonly extendedKeyUsage?: readonly ExtendedKeyUsage[];
  /** subjectAltName dNSName entries. @default [] */
  readonly dnsNames?: readonly string[];
  /** subjectAltName iPAddress entries, IPv4 or IPv6 text. @default [] */
  readonly ipAddresses?: readonly string[];
  /** The issuer's subject key identifier, for authorityKeyIdentifier. @default omitted (self-signed) */
  readonly authorityKeyIdentifier?: Buffer;
}

function encodeName(name: DistinguishedName): Buffer {
  const rdn = (type: string, value: string): Buffer => der.setOf(der.sequence(der.oid(type), der.utf8String(value)));
  const rdns: Buffer[] = [];
  if (name.organization !== undefined) rdns.push(rdn(OID.organization, name.organization));
  if (name.organizationalUnit !== undefined) rdns.push(rdn(OID.organizationalUnit, name.organizationalUnit));
  rdns.push(rdn(OID.commonName, name.commonName));
  return der.sequence(...rdns);
}

/**
 * The 4 or 16 octets of an IP address in text form. Throws
 * `InvalidInputError('x509.badIpAddress')` for anything else.
 */
export function ipAddressBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new InvalidInputError('x509.badIpAddress', `'${ip}' is not an IPv4 or IPv6 address`);
  let text = ip.replace(/%.*$/, '');
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    tail.push(...v4[1]!.split('.').map(Number));
    text = `${text.slice(0, v4.index)}0:0`;
  }
  const halves = text.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = groups(halves[0]!);
  const rest = halves.length > 1 ? groups(halves[1]!) : [];
  const words = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}

/** A dNSName (RFC 5280 §4.2.1.6): letters, digits, hyphens and dots, ASCII. */
function dnsNameBytes(name: string): Buffer {
  if (!/^[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name) || name.length > 253) {
    throw new InvalidInputError('x509.badDnsName', `'${name}' is not a DNS name`);
  }
  return Buffer.from(name, 'ascii');
}

/**
 * The key identifier of RFC 5280 §4.2.1.2 method (1): SHA-1 of the
 * subjectPublicKey BIT STRING's value (without tag, length and unused-bits
 * octet).
 */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const [, bits] = der.readChildren(der.readElement(spki).content);
  if (bits === undefined || bits.tag !== der.Tag.bitString) throw new BugError('x509.badSpki', 'SubjectPublicKeyInfo without a key');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/** The AlgorithmIdentifier and the sign function for a signer key. */
function signatureAlgorithm(key: KeyObject): { readonly id: Buffer; readonly sign: (data: Buffer) => Buffer } {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { id: der.sequence(der.oid(OID.ecdsaWithSha256)), sign: (data) => sign('sha256', data, { key, dsaEncoding: 'der' }) };
  }
  if (key.asymmetricKeyType === 'ed25519') {
    return { id: der.sequence(der.oid(OID.ed25519)), sign: (data) => sign(null, data, key) };
  }
  throw new InvalidInputError('x509.unsupportedSignerKey',
    `cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`, { hint: 'use an EC P-256 or Ed25519 key' });
}

/**
 * Encode and sign a certificate. Returns its DER bytes. Throws
 * `InvalidInputError` for an unsupported signer key, a bad serial number or a
 * bad IP address; produces nothing on failure.
 */
export function encodeCertificate(template: CertificateTemplate, signerKey: KeyObject): Buffer {
  const serial = template.serialNumber;
  if (serial.length === 0 || serial.length > 20 || serial.every((b) => b === 0)) {
    throw new InvalidInputError('x509.badSerial', 'a serial number is 1-20 octets and positive');
  }
  if (template.notAfter <= template.notBefore) {
    throw new InvalidInputError('x509.badValidity', 'notAfter must be later than notBefore');
  }
  const alg = signatureAlgorithm(signerKey);
  const extensions: Buffer[] = [];
  extensions.push(extension(OID.basicConstraints, true, der.sequence(
    ...(template.isCa ? [der.boolean(true)] : []),
    ...(template.isCa && template.pathLength !== undefined ? [der.integer(BigInt(template.pathLength))] : []),
  )));
  extensions.push(extension(OID.keyUsage, true, der.namedBitString(template.keyUsage.map((u) => KEY_USAGE_BIT[u]))));
  if (template.extendedKeyUsage !== undefined && template.extendedKeyUsage.length > 0) {
    extensions.push(extension(OID.extKeyUsage, false, der.sequence(...template.extendedKeyUsage.map((u) => der.oid(OID[u])))));
  }
  const names = [
    ...(template.dnsNames ?? []).map((n) => der.implicitPrimitive(2, dnsNameBytes(n))),
    ...(template.ipAddresses ?? []).map((ip) => der.implicitPrimitive(7, ipAddressBytes(ip))),
  ];
  if (names.length > 0) extensions.push(extension(OID.subjectAltName, false, der.sequence(...names)));
  extensions.push(extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(template.subjectPublicKey))));
  if (template.authorityKeyIdentifier !== undefined) {
    extensions.push(extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, template.authorityKeyIdentifier))));
  }
  const tbs = der.sequence(
    der.explicit(0, der.integer(2n)),
    der.integer(serial),
    alg.id,
    encodeName(template.issuer),
    der.sequence(der.time(template.notBefore), der.time(template.notAfter)),
    encodeName(template.subject),
    template.subjectPublicKey.export({ type: 'spki', format: 'der' }),
    der.explicit(3, der.sequence(...extensions)),
  );
  return der.sequence(tbs, alg.id, der.bitString(alg.sign(tbs)));
}

/** PEM armour (RFC 7468) of DER bytes. */
export function toPem(bytes: Buffer, label = 'CERTIFICATE'): string {
  const b64 = bytes.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}
