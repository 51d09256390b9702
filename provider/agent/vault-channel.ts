/**
 * The agent's side of the vault's agent protocol (docs/vault-api.md §8–§10):
 * registration with the registration key, then heartbeats, the command
 * long-poll, command reports and item reports with the agent token. Only
 * outbound HTTP requests: a host behind a firewall needs no inbound rule.
 *
 * (provider/client is the operators' client; the agent may not import it —
 * the layers of STYLE.md put the agent below the client — so this file
 * speaks the few agent paths itself.)
 *
 * Errors: an error answer becomes a `LifeboatError` with the API's code and
 * a category by status (401/403/404/409 non-recoverable, 400 invalid input,
 * 5xx and transport failures recoverable: `agent.vaultUnreachable`,
 * `agent.vaultTimeout`). Nothing is retried here.
 */

import { LifeboatError, RecoverableError, type ErrorCategory } from '../errors';
import type { AzureCredentials } from './azure-target';

/** The answer to a registration (docs/vault-api.md §8). */
export interface Registration {
  readonly vault: string;
  readonly hostId: string;
  readonly uid: string;
  readonly agentToken: string;
  readonly certificate: string;
  readonly caCertificate: string;
  readonly heartbeatIntervalSeconds: number;
  readonly commandLeaseSeconds: number;
  readonly serverTime: string;
}

/** A registration request (schemas/host-registration.schema.json). */
export interface RegistrationBody {
  readonly hostname: string;
  readonly site: string;
  readonly cloud?: string;
  readonly publicKey: string;
  readonly proof: string;
  readonly addresses?: readonly string[];
  readonly replicationPort?: number;
  readonly agentVersion: string;
}

/** What a heartbeat carries (schemas/heartbeat.schema.json). */
export interface HeartbeatBody {
  readonly agentVersion: string;
  readonly inventory?: { readonly vms: readonly InventoryEntry[] };
  readonly storage?: { readonly freeBytes: number; readonly totalBytes?: number };
  readonly replicationEndpoint?: { readonly address: string; readonly port: number };
}

/** One VM of the inventory. */
export interface InventoryEntry {
  readonly name: string;
  readonly powerState?: 'Running' | 'Off' | 'Saved' | 'Paused' | 'Starting' | 'Stopping';
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number }[];
  readonly networks?: readonly string[];
}

export interface HeartbeatAnswer {
  readonly heartbeatIntervalSeconds: number;
  readonly serverTime: string;
  readonly pendingCommands: number;
  readonly connectionState: string;
  /**
   * VMs of this host whose items failed over to the recovery side: keep them
   * fenced and their replication stopped (docs/failover.md §6). @default none
   */
  readonly fence?: readonly FenceOrder[];
}

/** One VM the vault says must stay off. */
export interface FenceOrder {
  readonly vm: string;
  readonly item: string;
  readonly itemUid: string;
  readonly reason: string;
}

/** A command as delivered (docs/vault-api.md §9). */
export interface AgentCommand {
  readonly id: string;
  readonly type: string;
  readonly jobId?: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly state: string;
  readonly deliveries: number;
  readonly leaseExpiresAt?: string;
  readonly createdAt: string;
}

/** A report on a command (schemas/command-update.schema.json). */
export type CommandUpdate =
  | { readonly state: 'Running'; readonly progress?: number; readonly message?: string }
  | { readonly state: 'Succeeded'; readonly result: Readonly<Record<string, unknown>>; readonly message?: string }
  | { readonly state: 'Failed'; readonly error: { readonly code: string; readonly category: string; readonly message: string; readonly hint?: string } };

export interface CommandReportAnswer {
  readonly id: string;
  readonly state: string;
  /** The vault withdrew the command (its job was cancelled): stop it. */
  readonly cancelRequested: boolean;
}

/** One entry of an item report (schemas/agent-report.schema.json). */
export interface ItemReport {
  readonly item: string;
  readonly replicationState?: 'WaitingForInitialReplication' | 'InitialReplicationInProgress' | 'Protected' | 'ResynchronizationRequired' | 'Resynchronizing';
  readonly health?: 'Normal' | 'Warning' | 'Critical';
  readonly initialReplicationPercent?: number;
  readonly lastReplicatedTime?: string;
  readonly rpoSeconds?: number;
  readonly statistics?: Readonly<Record<string, number>>;
  readonly errors?: readonly { readonly code: string; readonly category?: string; readonly message: string; readonly hint?: string }[];
  readonly recoveryPoints?: readonly { readonly id: string; readonly time: string; readonly kind: 'crashConsistent' | 'appConsistent' }[];
}

export interface ReportAnswer {
  readonly accepted: readonly string[];
  readonly refused: readonly { readonly item: string; readonly code: string; readonly message?: string }[];
}

export interface VaultChannelOptions {
  /** Base URL of the vault server, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Name of the vault the host belongs to. */
  readonly vault: string;
  /** Limit of each request besides the long-poll, ms. @default 30000 */
  readonly timeoutMs?: number;
}

/** The agent's HTTP client. Stateless besides its token; calls may run concurrently. */
export class VaultChannel {
  readonly url: string;
  readonly vault: string;
  private readonly timeoutMs: number;
  private token: string | undefined;
  private host: string | undefined;

  constructor(options: VaultChannelOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.vault = options.vault;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Use these credentials for the agent paths from now on. */
  authenticate(host: string, token: string): void {
    this.host = host;
    this.token = token;
  }

  /**
   * Register (or register again). Throws the API's errors:
   * `auth.registrationKeyInvalid` (non-recoverable), `request.invalid` with
   * field paths (invalid input: a missing site, a bad proof), `host.inUse`.
   */
  register(registrationKey: string, body: RegistrationBody): Promise<Registration> {
    return this.call<Registration>('POST', `${this.vaultPath()}/registrations`, body, { token: registrationKey });
  }

  heartbeat(body: HeartbeatBody): Promise<HeartbeatAnswer> {
    return this.call<HeartbeatAnswer>('POST', `${this.hostPath()}/heartbeat`, body);
  }

  /** Long-poll: waits up to `waitSeconds` for commands. */
  async poll(waitSeconds: number, signal?: AbortSignal): Promise<readonly AgentCommand[]> {
    const r = await this.call<{ commands: AgentCommand[] }>('GET', `${this.hostPath()}/commands?wait=${waitSeconds}`, undefined, {
      timeoutMs: waitSeconds * 1000 + this.timeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
    return r.commands;
  }

  reportCommand(id: string, update: CommandUpdate): Promise<CommandReportAnswer> {
    return this.call<CommandReportAnswer>('POST', `${this.hostPath()}/commands/${encodeURIComponent(id)}`, update);
  }

  reportItems(items: readonly ItemReport[]): Promise<ReportAnswer> {
    return this.call<ReportAnswer>('POST', `${this.hostPath()}/reports`, { items });
  }

  /** The storage credentials of an item of an azure policy (docs/azure-failover.md §2). Keep them in memory only. */
  storageCredentials(item: string): Promise<AzureCredentials> {
    return this.call<AzureCredentials>('POST', `${this.hostPath()}/items/${encodeURIComponent(item)}/storageCredentials`);
  }

  private vaultPath(): string {
    return `/v1/vaults/${encodeURIComponent(this.vault)}`;
  }

  private hostPath(): string {
    if (this.host === undefined) throw new LifeboatError('agent.notRegistered', 'bug', 'agent request before registration');
    return `${this.vaultPath()}/hosts/${encodeURIComponent(this.host)}`;
  }

  private async call<T>(method: string, urlPath: string, body?: unknown, o: { token?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const token = o.token ?? this.token;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = o.signal === undefined ? timeout : AbortSignal.any([timeout, o.signal]);
    const what = `${method} ${urlPath.replace(/\?.*$/, '')}`;
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.url}${urlPath}`, { method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      status = res.status;
      text = await res.text();
    } catch (e) {
      if (o.signal?.aborted === true) throw o.signal.reason;
      if (timeout.aborted) {
        throw new RecoverableError('agent.vaultTimeout', `${what}: no answer from the vault at ${this.url} within ${timeoutMs} ms`, { hint: 'the vault may be overloaded or restarting; the agent retries' });
      }
      throw new RecoverableError('agent.vaultUnreachable', `cannot reach the vault at ${this.url}: ${causeText(e)}`, {
        cause: e,
        hint: 'check that the vault runs and that --vault names it; the agent keeps retrying',
      });
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status >= 200 && status < 300) return parsed as T;
    const err = (typeof parsed === 'object' && parsed !== null ? (parsed as { error?: Record<string, unknown> }).error : undefined) ?? {};
    const details = Array.isArray(err.details) ? (err.details as { path?: unknown }[]) : [];
    const firstPath = details.find((d) => typeof d.path === 'string')?.path as string | undefined;
    throw new LifeboatError(
      typeof err.code === 'string' ? err.code : `http.${status}`,
      categoryOfStatus(status),
      `${what}: ${typeof err.message === 'string' ? err.message : `HTTP ${status}`}`,
      {
        ...(typeof err.hint === 'string' ? { hint: err.hint } : {}),
        ...(firstPath === undefined ? {} : { where: { path: firstPath } }),
        details: { status, ...(details.length === 0 ? {} : { problems: details }) },
      },
    );
  }
}

function categoryOfStatus(status: number): ErrorCategory {
  if (status === 400 || status === 413) return 'invalidInput';
  if (status === 401 || status === 403 || status === 404 || status === 409 || status === 412) return 'nonRecoverable';
  if (status >= 500 || status === 429) return status === 500 ? 'bug' : 'recoverable';
  return 'bug';
}

function causeText(e: unknown): string {
  if (e instanceof Error) {
    const inner = (e as { cause?: unknown }).cause;
    const code = typeof inner === 'object' && inner !== null ? (inner as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}
