/**
 * The lab's Azure-target variant (`lifeboat lab up --azure`, docs/lab.md and
 * docs/azure-failover.md §6): Azurite (the Azure Storage emulator) as a lab
 * process serving blobs on loopback from `<lab>/azurite`, with telemetry off
 * (it would reach for the internet); a site `azure` of kind azure with one
 * agent `azure-1` in the `azure` role (it runs failed-over VMs from their
 * blobs); and the policy `lab-azure-policy`, which replicates the primary
 * site into Azurite's development account.
 */

import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { NonRecoverableError } from '../../errors';
import { type LabHostSpec, type LabObjectSpec, type LabTopology, PRIMARY_SITE } from './lab-topology';

/** The site of the lab's Azure side. */
export const AZURE_SITE = 'azure';
/** Its agent, in the `azure` role. */
export const AZURE_HOST = 'azure-1';
/** The policy of the variant. */
export const LAB_AZURE_POLICY = 'lab-azure-policy';
/** The container of the lab's replicas. */
export const LAB_AZURE_CONTAINER = 'lab-replicas';
/** Azurite's development account (documented by Microsoft; public). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Its well-known key: public, not a secret; still sent to the vault as one, as a real key would be. */
export const AZURITE_DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** The topology with the Azure side added (idempotent). */
export function withAzure(t: LabTopology): LabTopology {
  if (t.hosts.some((h) => h.name === AZURE_HOST)) return t;
  const site: LabObjectSpec = { name: AZURE_SITE, spec: { kind: 'azure', description: 'lab Azure side (Azurite storage, azure-role agent)', hosts: [AZURE_HOST] } };
  const host: LabHostSpec = { name: AZURE_HOST, role: 'azure', site: AZURE_SITE, vms: [] };
  return { ...t, sites: [...t.sites, site], hosts: [...t.hosts, host] };
}

/** Blob endpoint of the lab's Azurite. */
export function azuriteEndpoint(port: number): string {
  return `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
}

/** The variant's policy (with the key, which the vault seals and never answers). */
export function labAzurePolicySpec(port: number): Record<string, unknown> {
  return {
    description: 'the lab Azure policy: primary → Azurite page blobs',
    target: 'azure',
    replicationFrequencySeconds: 30,
    recoveryPointRetentionHours: 1,
    azure: { storageAccount: AZURITE_ACCOUNT, container: LAB_AZURE_CONTAINER, endpoint: azuriteEndpoint(port), accountKey: AZURITE_DEV_KEY },
    associations: [{ source: PRIMARY_SITE }],
  };
}

/** A free loopback port (for Azurite's first start; later starts reuse the recorded one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start Azurite detached on `127.0.0.1:port` over `dataDir`, output to
 * `logFile`. Returns its pid. Throws `NonRecoverableError`
 * `lab.azuriteMissing` when the package is not installed.
 */
export function startAzurite(dataDir: string, port: number, logFile: string, cwd: string): number {
  let main: string;
  try {
    main = require.resolve('azurite/dist/src/blob/main.js');
  } catch (e) {
    throw new NonRecoverableError('lab.azuriteMissing', 'Azurite (the Azure Storage emulator) is not installed', {
      cause: e, hint: 'install it beside Lifeboat: npm install --save-exact azurite@3.37.0',
    });
  }
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [main,
      '--silent', '--location', dataDir, '--blobHost', '127.0.0.1', '--blobPort', String(port),
      '--disableTelemetry', '--skipApiVersionCheck', '--loose',
    ], { cwd, detached: true, stdio: ['ignore', fd, fd], env: { ...process.env } });
    if (child.pid === undefined) throw new Error('could not start Azurite');
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Azurite's data folder in a lab. */
export function azuriteDir(labDir: string): string {
  return path.join(labDir, 'azurite');
}

/** True when the lab folder has run Azurite before. */
export function hasAzurite(labDir: string): boolean {
  return existsSync(azuriteDir(labDir));
}
