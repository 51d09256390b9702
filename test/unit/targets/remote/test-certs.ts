/**
 * Throwaway certificates for the replication protocol tests: a "vault" CA
 * with server and client leaves, and a foreign CA with a leaf of its own, for
 * the refusal tests. `testCerts()` issues them with the vault's own CA module
 * (provider/vault/ca), as registration does; `opensslTestCerts()` makes the
 * same set with the `openssl` CLI in a temporary directory removed at once,
 * to show the endpoint works with certificates not made by our encoder.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { systemClock } from '../../../../provider/clock';
import { createCertificateAuthority, issueCertificate, type CertificateAuthority } from '../../../../provider/vault/ca';

const run = promisify(execFile);

export interface KeyPair {
  readonly key: string;
  readonly cert: string;
}

export interface TestCerts {
  /** The vault's CA certificate. */
  readonly ca: string;
  /** Recovery-site agent: CN recovery-host, SAN DNS:localhost, IP:127.0.0.1. */
  readonly server: KeyPair;
  /** Primary-site agent: CN primary-host. */
  readonly client: KeyPair;
  /** A second primary-site agent of the same vault: CN other-host. */
  readonly otherClient: KeyPair;
  /** A certificate of the vault's CA for another name (SAN DNS:elsewhere.example). */
  readonly wrongNameServer: KeyPair;
  /** Another CA's certificate, and a leaf it issued (CN primary-host, as if stolen name). */
  readonly foreignCa: string;
  readonly foreignClient: KeyPair;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

async function makeLeaf(dir: string, ca: string, name: string, cn: string, san: string): Promise<KeyPair> {
  await openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  await writeFile(
    join(dir, `${name}.ext`),
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
  );
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`,
  ]);
  return { key: await readFile(join(dir, `${name}.key`), 'utf8'), cert: await readFile(join(dir, `${name}.crt`), 'utf8') };
}

let madeByVault: Promise<TestCerts> | undefined;
let madeByOpenssl: Promise<TestCerts> | undefined;

function vaultLeaf(ca: CertificateAuthority, commonName: string, dnsNames: string[], ipAddresses: string[]): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const issued = issueCertificate(ca, { publicKey, commonName, dnsNames, ipAddresses, clock: systemClock, validityDays: 2 });
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: issued.certificatePem };
}

/** The test certificates, issued by the vault's CA module, made once per process. */
export function testCerts(): Promise<TestCerts> {
  madeByVault ??= Promise.resolve().then(() => {
    const vault = createCertificateAuthority({ commonName: 'Test Vault CA', clock: systemClock, validityDays: 2 });
    const foreign = createCertificateAuthority({ commonName: 'Foreign CA', clock: systemClock, validityDays: 2 });
    return {
      ca: vault.certificatePem,
      server: vaultLeaf(vault, 'recovery-host', ['localhost'], ['127.0.0.1']),
      client: vaultLeaf(vault, 'primary-host', [], []),
      otherClient: vaultLeaf(vault, 'other-host', [], []),
      wrongNameServer: vaultLeaf(vault, 'recovery-host', ['elsewhere.example'], []),
      foreignCa: foreign.certificatePem,
      foreignClient: vaultLeaf(foreign, 'primary-host', [], []),
    };
  });
  return madeByVault;
}

/** The same set made with the `openssl` CLI, once per process. */
export function opensslTestCerts(): Promise<TestCerts> {
  madeByOpenssl ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-certs-'));
    try {
      await makeCa(dir, 'vault', 'Test Vault CA');
      await makeCa(dir, 'foreign', 'Foreign CA');
      const [server, client, otherClient, wrongNameServer, foreignClient] = await Promise.all([
        makeLeaf(dir, 'vault', 'server', 'recovery-host', 'DNS:localhost,IP:127.0.0.1'),
        makeLeaf(dir, 'vault', 'client', 'primary-host', 'DNS:primary-host'),
        makeLeaf(dir, 'vault', 'other', 'other-host', 'DNS:other-host'),
        makeLeaf(dir, 'vault', 'wrongname', 'recovery-host', 'DNS:elsewhere.example'),
        makeLeaf(dir, 'foreign', 'foreignclient', 'primary-host', 'DNS:primary-host'),
      ]);
      return {
        ca: await readFile(join(dir, 'vault.crt'), 'utf8'),
        server,
        client,
        otherClient,
        wrongNameServer,
        foreignCa: await readFile(join(dir, 'foreign.crt'), 'utf8'),
        foreignClient,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return madeByOpenssl;
}
