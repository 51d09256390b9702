/**
 * Throwaway certificates for the replication protocol tests, made with the
 * `openssl` CLI in a temporary directory that is removed at once (the PEM
 * text is kept in memory). A "vault" CA with a server and a client leaf, and
 * a foreign CA with a leaf of its own, for the refusal tests.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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

let made: Promise<TestCerts> | undefined;

/** The test certificates, made once per process. */
export function testCerts(): Promise<TestCerts> {
  made ??= (async () => {
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
  return made;
}
