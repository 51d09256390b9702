/**
 * The vault's certificate authority: one EC P-256 key and a self-signed CA
 * certificate per vault, and the agent certificates it issues at
 * registration. Agents trust only this CA for agent-to-agent replication, so
 * a peer whose certificate the vault did not issue is refused by the TLS
 * handshake itself.
 *
 * Issued certificates carry serverAuth and clientAuth (every agent is both a
 * replication client and, on the recovery side, a server), the host name as
 * CN and DNS name, and the host's addresses as subjectAltName entries.
 */

import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { type Clock } from '../../clock';
import { InvalidInputError } from '../../errors';
import { HOUR, MINUTE } from '../../units';
import { encodeCertificate, keyIdentifier, toPem } from './x509';

/** A CA as the store keeps it: PEM text of the private key and the certificate. */
export interface CertificateAuthority {
  /** PKCS#8 PEM of the CA's private key. Secret: never returned by the API. */
  readonly privateKeyPem: string;
  /** The CA certificate (PEM); agents pin it as their only trust anchor. */
  readonly certificatePem: string;
}

export interface CreateCertificateAuthorityOptions {
  /** CN of the CA, e.g. `Lifeboat vault contoso-dr CA`. */
  readonly commonName: string;
  readonly clock: Clock;
  /** @default 3650 (ten years) */
  readonly validityDays?: number;
}

const DAY = 24 * HOUR;

/** Clocks of hosts disagree a little; a certificate is valid from a few minutes before it was made. */
const BACKDATE_MS = 5 * MINUTE;

function serialNumber(): Buffer {
  const s = randomBytes(16);
  s[0] = (s[0]! & 0x7f) | 0x01;
  return s;
}

/** Make a new CA. Pure apart from key generation: nothing is stored. */
export function createCertificateAuthority(options: CreateCertificateAuthorityOptions): CertificateAuthority {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = options.clock.now();
  const name = { commonName: options.commonName, organization: 'Lifeboat' };
  const cert = encodeCertificate({
    serialNumber: serialNumber(),
    issuer: name,
    subject: name,
    notBefore: now - BACKDATE_MS,
    notAfter: now + (options.validityDays ?? 3650) * DAY,
    subjectPublicKey: publicKey,
    isCa: true,
    pathLength: 0,
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  }, privateKey);
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificatePem: toPem(cert),
  };
}

export interface IssueCertificateOptions {
  /** The subject's public key (PEM SPKI or a KeyObject). */
  readonly publicKey: string | KeyObject;
  /** Host name: the CN and the first DNS subjectAltName. */
  readonly commonName: string;
  /** Organizational unit, e.g. the vault and site. @default omitted */
  readonly organizationalUnit?: string;
  /** More DNS names. @default [] */
  readonly dnsNames?: readonly string[];
  /** IP addresses the host is reached at. @default [] */
  readonly ipAddresses?: readonly string[];
  readonly clock: Clock;
  /** @default 365 */
  readonly validityDays?: number;
}

/** An issued certificate and the facts the vault records about it. */
export interface IssuedCertificate {
  readonly certificatePem: string;
  /** Upper-case hex, as `X509Certificate.serialNumber` shows it. */
  readonly serialNumber: string;
  /** ms since the epoch. */
  readonly notAfter: number;
  /** SHA-256 fingerprint, colon-separated hex. */
  readonly fingerprint256: string;
}

/**
 * Issue an agent certificate signed by `ca`. Throws
 * `InvalidInputError('ca.badPublicKey')` when the key cannot be parsed or is
 * of a kind TLS peers would refuse (RSA under 2048 bits, curves other than
 * P-256/P-384, anything but EC/Ed25519/RSA). Stores nothing.
 */
export function issueCertificate(ca: CertificateAuthority, options: IssueCertificateOptions): IssuedCertificate {
  const subjectKey = parsePublicKey(options.publicKey);
  const caKey = createPrivateKey(ca.privateKeyPem);
  const caCert = new X509Certificate(ca.certificatePem);
  const now = options.clock.now();
  const dnsNames = [...new Set([options.commonName, ...(options.dnsNames ?? [])])];
  const der = encodeCertificate({
    serialNumber: serialNumber(),
    issuer: parseSubject(caCert),
    subject: {
      commonName: options.commonName,
      organization: 'Lifeboat',
      ...(options.organizationalUnit === undefined ? {} : { organizationalUnit: options.organizationalUnit }),
    },
    notBefore: now - BACKDATE_MS,
    notAfter: now + (options.validityDays ?? 365) * DAY,
    subjectPublicKey: subjectKey,
    isCa: false,
    keyUsage: subjectKey.asymmetricKeyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'],
    extendedKeyUsage: ['serverAuth', 'clientAuth'],
    dnsNames,
    ipAddresses: options.ipAddresses ?? [],
    authorityKeyIdentifier: keyIdentifier(caCert.publicKey),
  }, caKey);
  const pem = toPem(der);
  const issued = new X509Certificate(pem);
  return {
    certificatePem: pem,
    serialNumber: issued.serialNumber,
    notAfter: Date.parse(issued.validTo),
    fingerprint256: issued.fingerprint256,
  };
}

/** The CA certificate's subject, read back so that issuer and subject match byte for byte. */
function parseSubject(cert: X509Certificate): { commonName: string; organization?: string } {
  const fields = new Map(cert.subject.split('\n').map((line) => {
    const i = line.indexOf('=');
    return [line.slice(0, i), line.slice(i + 1)] as const;
  }));
  const cn = fields.get('CN');
  if (cn === undefined) throw new InvalidInputError('ca.badCertificate', 'the CA certificate has no CN');
  const o = fields.get('O');
  return o === undefined ? { commonName: cn } : { commonName: cn, organization: o };
}

/** Parse and vet a subject public key. */
export function parsePublicKey(key: string | KeyObject): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPublicKey(key) : key;
  } catch (e) {
    throw new InvalidInputError('ca.badPublicKey', 'publicKey is not a PEM public key', {
      cause: e, hint: 'send the SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----) of an EC P-256, Ed25519 or RSA ≥ 2048 key',
    });
  }
  const type = k.asymmetricKeyType;
  const curve = k.asymmetricKeyDetails?.namedCurve;
  const ok = (type === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1'))
    || type === 'ed25519'
    || (type === 'rsa' && (k.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048);
  if (!ok || k.type !== 'public') {
    throw new InvalidInputError('ca.badPublicKey', `a ${type ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`} key cannot be certified`, {
      hint: 'use an EC P-256 (prime256v1), P-384, Ed25519 or RSA key of at least 2048 bits',
    });
  }
  return k;
}
