/**
 * Hosts: registration with the vault registration key (a certificate
 * request in JSON, answered with an agent token and a certificate from the
 * vault's CA), the heartbeats and other contact that keep a host Connected,
 * and the monitor that marks silent hosts NotResponding, then Disconnected,
 * turning the health of their items to Warning.
 *
 * Connection states and transitions are those of provider/states.ts §3.
 * Every authenticated agent request counts as a heartbeat: an agent that is
 * long-polling or reporting is alive.
 */

import { createHash, verify } from 'node:crypto';
import { isIP } from 'node:net';
import { type Clock, type Timer, repeat } from '../../clock';
import { LifeboatError } from '../../errors';
import { transition, type ConnectionState } from '../../states';
import { formatDuration } from '../../units';
import { issueCertificate, parsePublicKey } from '../ca/certificate-authority';
import type { JsonObject, StoredObject } from '../store/records';
import { keyOf } from '../store/sqlite/sqlite-store';
import { clearIssue, itemStatus, raiseIssue } from './item-status';
import { iso, type VaultServices } from './services';
import type { SiteSpec } from './specs';
import { invalidRequest, VaultError } from './vault-error';
import { newSecret, requireVault, vaultSecrets, vaultSettings } from './vaults';

/** A registration request (schemas/host-registration.schema.json). */
export interface RegistrationRequest {
  readonly hostname: string;
  readonly site: string;
  readonly cloud?: string;
  readonly publicKey: string;
  readonly proof: string;
  readonly addresses?: readonly string[];
  readonly replicationPort?: number;
  readonly agentVersion: string;
}

/** What a registered agent receives. The token is shown once; the vault keeps only its hash. */
export interface RegistrationResponse {
  readonly vault: string;
  /** The host's name: its id in every agent endpoint path. */
  readonly hostId: string;
  /** Changes when the host registers again. */
  readonly uid: string;
  /** Bearer token of the agent endpoints of this host. Secret. */
  readonly agentToken: string;
  /** The host's certificate (PEM), issued by the vault CA; serverAuth + clientAuth. */
  readonly certificate: string;
  /** The vault CA certificate (PEM): the only trust anchor for agent-to-agent TLS. */
  readonly caCertificate: string;
  readonly heartbeatIntervalSeconds: number;
  /** A delivered command must be acknowledged or reported on within this time, or it is delivered again. */
  readonly commandLeaseSeconds: number;
  readonly serverTime: string;
}

/**
 * The text an agent signs to prove it holds the private key of `publicKey`:
 * `lifeboat-register/v1\n<vault>\n<hostname>\n<site>`, names in lower case.
 */
export function registrationProofText(vault: string, hostname: string, site: string): string {
  return `lifeboat-register/v1\n${keyOf(vault)}\n${keyOf(hostname)}\n${keyOf(site)}`;
}

/** SHA-256 (hex) of an agent token, as the store keeps it. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Items whose source or target is the host. */
export function itemsOfHost(services: VaultServices, vault: string, host: string): StoredObject[] {
  return services.store.listObjects(vault, 'protectedItem').filter((o) => {
    const s = itemStatus(o);
    return (s.sourceHost !== undefined && keyOf(s.sourceHost) === keyOf(host)) || (s.targetHost !== undefined && keyOf(s.targetHost) === keyOf(host));
  });
}

/**
 * Register (or re-register) a host. The caller has checked the registration
 * key. Checks the site (and cloud), the public key and the proof of
 * possession (400 with the JSON path of each problem); refuses to move a host
 * that replicates items to another site (409). On success the host object,
 * its token hash and certificate are stored in one transaction; a previous
 * token of the host stops working.
 */
export function registerHost(services: VaultServices, vault: string, req: RegistrationRequest): RegistrationResponse {
  const v = requireVault(services, vault);
  const settings = vaultSettings(v);
  const problems = [];
  const site = services.store.getObject(vault, 'site', req.site);
  if (site === undefined) {
    problems.push({ path: '/site', message: `no site named '${req.site}' in vault '${v.name}'`, allowed: services.store.listObjects(vault, 'site').map((s) => s.name) });
  } else {
    const spec = site.spec as unknown as SiteSpec;
    const clouds = (spec.clouds ?? []).map((c) => c.name);
    if (spec.kind === 'vmm-cloud' && (req.cloud === undefined || !clouds.some((c) => keyOf(c) === keyOf(req.cloud!)))) {
      problems.push({ path: '/cloud', message: req.cloud === undefined ? `site '${site.name}' is a VMM site: name the host's cloud` : `site '${site.name}' has no cloud '${req.cloud}'`, allowed: clouds });
    }
    if (spec.kind === 'hyperv-site' && req.cloud !== undefined) problems.push({ path: '/cloud', message: `site '${site.name}' has no clouds; leave cloud out` });
  }
  let key;
  try {
    key = parsePublicKey(req.publicKey);
  } catch (e) {
    if (!LifeboatError.isInstance(e)) throw e;
    problems.push({ path: '/publicKey', message: e.message, ...(e.hint === undefined ? {} : { expected: e.hint }) });
  }
  if (key !== undefined) {
    const text = Buffer.from(registrationProofText(vault, req.hostname, req.site), 'utf8');
    let ok = false;
    try {
      ok = verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', text, key, Buffer.from(req.proof, 'base64'));
    } catch {
      ok = false;
    }
    if (!ok) {
      problems.push({
        path: '/proof', message: 'the signature does not verify with publicKey',
        expected: `base64 signature of "${registrationProofText(vault, req.hostname, req.site).replace(/\n/g, '\\n')}" by the private key (SHA-256; pure Ed25519 for Ed25519 keys)`,
      });
    }
  }
  if (problems.length > 0) throw invalidRequest(problems, 'the registration request is invalid');

  return services.store.transaction(() => {
    const now = services.clock.now();
    const existing = services.store.getObject(vault, 'host', req.hostname);
    if (existing !== undefined && keyOf(String(existing.spec.site)) !== keyOf(req.site)) {
      const items = itemsOfHost(services, vault, req.hostname);
      if (items.length > 0) {
        throw new VaultError(409, 'host.inUse', `host '${existing.name}' replicates ${items.map((i) => i.name).join(', ')} in site ${String(existing.spec.site)}; it cannot move to site ${req.site}`, {
          hint: 'disable protection of those items first, or register the host with its current site',
        });
      }
    }
    const addresses = req.addresses ?? [];
    const secrets = vaultSecrets(services, vault);
    const cert = issueCertificate({ privateKeyPem: secrets.caPrivateKeyPem, certificatePem: secrets.caCertificatePem }, {
      publicKey: key!,
      commonName: keyOf(req.hostname),
      organizationalUnit: `${v.name}/${site!.name}`,
      dnsNames: addresses.filter((a) => isIP(a) === 0).map((a) => a.toLowerCase()),
      ipAddresses: addresses.filter((a) => isIP(a) !== 0),
      clock: services.clock,
      validityDays: settings.certificateValidityDays,
    });
    const spec: JsonObject = {
      site: site!.name,
      ...(req.cloud === undefined ? {} : { cloud: req.cloud }),
      publicKey: req.publicKey,
      addresses: [...addresses],
      ...(req.replicationPort === undefined ? {} : { replicationPort: req.replicationPort }),
      agentVersion: req.agentVersion,
    };
    const put = services.store.putObject(vault, 'host', req.hostname, spec, [{ kind: 'site', name: site!.name }], now);
    const token = newSecret('lbh');
    services.store.putAgentCredential(vault, req.hostname, tokenHash(token), now);
    const host = services.store.updateStatus(vault, 'host', req.hostname, (s) => ({
      ...s,
      connectionState: 'Connected',
      connectionReason: 'registered',
      connectionChangedAt: iso(now),
      lastContactAt: iso(now),
      registeredAt: iso(now),
      agentVersion: req.agentVersion,
      certificate: { serialNumber: cert.serialNumber, notAfter: iso(cert.notAfter), fingerprint256: cert.fingerprint256, pem: cert.certificatePem },
    }), now)!;
    services.log('info', `host ${host.name} registered in vault ${v.name}, site ${site!.name}${put.created ? '' : ' (again: its previous token no longer works)'}`);
    return {
      vault: v.name,
      hostId: host.name,
      uid: host.uid,
      agentToken: token,
      certificate: cert.certificatePem,
      caCertificate: secrets.caCertificatePem,
      heartbeatIntervalSeconds: settings.heartbeatIntervalMs / 1000,
      commandLeaseSeconds: services.timings.commandLeaseMs / 1000,
      serverTime: iso(now),
    };
  });
}

function setConnection(services: VaultServices, vault: string, host: StoredObject, to: ConnectionState, reason: string): void {
  const from = (host.status.connectionState ?? 'Connected') as ConnectionState;
  const t = transition('connection', from, to, reason);
  if (!t.ok) return;
  const now = services.clock.now();
  services.store.updateStatus(vault, 'host', host.name, (s) => ({
    ...s, connectionState: to, connectionReason: `${t.trigger}: ${reason}`, connectionChangedAt: iso(now),
  }), now);
  services.log(to === 'Connected' ? 'info' : 'warn', `host ${host.name} (vault ${vault}): ${from} → ${to}: ${reason}`);
  for (const item of itemsOfHost(services, vault, host.name)) {
    if (to === 'Disconnected') {
      raiseIssue(services, vault, item.name, {
        code: 'host.disconnected',
        severity: 'Warning',
        message: `host ${host.name} is disconnected from the vault (${reason})`,
        hint: `check that the agent on ${host.name} runs and can reach the vault; jobs that need it wait until it reconnects`,
      });
    } else if (to === 'Connected') {
      clearIssue(services, vault, item.name, 'host.disconnected');
    }
  }
}

/** A heartbeat's content (schemas/heartbeat.schema.json). */
export interface HeartbeatBody {
  readonly agentVersion?: string;
  readonly inventory?: JsonObject;
  readonly storage?: JsonObject;
  readonly replicationEndpoint?: JsonObject;
}

/**
 * Record contact from an authenticated agent: the time, what a heartbeat
 * carries, and Connected again if it was not. Returns the host.
 */
export function recordContact(services: VaultServices, vault: string, hostName: string, heartbeat?: HeartbeatBody): StoredObject {
  const now = services.clock.now();
  const host = services.store.updateStatus(vault, 'host', hostName, (s) => ({
    ...s,
    lastContactAt: iso(now),
    ...(heartbeat === undefined ? {} : {
      lastHeartbeatAt: iso(now),
      ...(heartbeat.agentVersion === undefined ? {} : { agentVersion: heartbeat.agentVersion }),
      ...(heartbeat.inventory === undefined ? {} : { inventory: heartbeat.inventory }),
      ...(heartbeat.storage === undefined ? {} : { storage: heartbeat.storage }),
      ...(heartbeat.replicationEndpoint === undefined ? {} : { replicationEndpoint: heartbeat.replicationEndpoint }),
    }),
  }), now);
  if (host === undefined) throw new VaultError(404, 'object.notFound', `host '${hostName}' is not registered`);
  if (host.status.connectionState !== 'Connected') {
    setConnection(services, vault, host, 'Connected', heartbeat === undefined ? 'agent request received' : 'heartbeat received');
  }
  return services.store.getObject(vault, 'host', hostName)!;
}

export interface HeartbeatMonitorOptions {
  readonly services: VaultServices;
  /** How often hosts are checked. @default 5000 ms */
  readonly checkEveryMs?: number;
}

/**
 * Marks hosts NotResponding when a heartbeat is overdue by more than one
 * interval plus half an interval of grace, and Disconnected after
 * `missedHeartbeatsBeforeDisconnected` intervals of silence (vault settings).
 * Silence is counted from the later of the last contact and the monitor's
 * start, so a vault restart does not disconnect every host at once.
 */
export class HeartbeatMonitor {
  private readonly services: VaultServices;
  private readonly clock: Clock;
  private readonly every: number;
  private readonly startedAt: number;
  private timer: Timer | undefined;

  constructor(options: HeartbeatMonitorOptions) {
    this.services = options.services;
    this.clock = options.services.clock;
    this.every = options.checkEveryMs ?? 5000;
    this.startedAt = this.clock.now();
  }

  start(): void {
    this.timer ??= repeat(this.clock, this.every, () => this.check(), (e) => {
      this.services.log('error', `heartbeat monitor: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  stop(): void {
    this.timer?.cancel();
  }

  /** Check every host of every vault once. */
  check(): void {
    const now = this.clock.now();
    for (const v of this.services.store.listObjects(undefined, 'vault')) {
      const settings = vaultSettings(v);
      const interval = settings.heartbeatIntervalMs;
      const timeout = settings.missedHeartbeatsBeforeDisconnected * interval;
      for (const host of this.services.store.listObjects(v.vault, 'host')) {
        const last = Math.max(Date.parse(String(host.status.lastContactAt ?? '')) || 0, this.startedAt);
        const silent = now - last;
        const state = host.status.connectionState as ConnectionState | undefined;
        if (silent > timeout && state !== 'Disconnected') {
          const reason = `no heartbeat for ${formatDuration(silent)} (disconnect timeout ${formatDuration(timeout)})`;
          if (state === 'Connected') setConnection(this.services, v.vault, host, 'NotResponding', reason);
          setConnection(this.services, v.vault, this.services.store.getObject(v.vault, 'host', host.name)!, 'Disconnected', reason);
        } else if (silent > interval * 1.5 && state === 'Connected') {
          setConnection(this.services, v.vault, host, 'NotResponding', `heartbeat overdue by ${formatDuration(silent - interval)}`);
        }
      }
    }
  }
}
