/**
 * The host agent (DESIGN.md §1, docs/agent.md): registers with its vault
 * once, heartbeats with its inventory, takes commands over the long-poll
 * channel, runs the hypervisor driver, replicates the protected VMs of a
 * primary host and serves the replica store of a recovery host, and reports
 * every item's state, health, RPO and statistics. Restarted, it finds its
 * relationships in its data folder and resumes every replication where it
 * stopped.
 *
 * Only outbound connections to the vault. A recovery host listens for
 * replication (mutual TLS with vault-issued certificates) and every agent
 * listens on its local control socket.
 */

import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { type Clock, systemClock, type Timer } from '../clock';
import { type LifeboatError, categoryOf, describe } from '../errors';
import { type Hypervisor, type VmInfo } from '../hypervisor/hypervisor';
import { LabHypervisor } from '../hypervisor/lab';
import { backoffDelay } from '../replication/retry';
import { SECOND } from '../units';
import { type AgentPaths, agentPaths, ensureDataDir, readOptional, writeFileAtomic } from './agent-files';
import { commandHandlers } from './command-handlers';
import { fileCommandJournal } from './command-journal';
import { type AgentLogger, CommandRunner, isAuthRefusal } from './command-runner';
import { ControlServer, MAX_SOCKET_PATH } from './control-server';
import { loadRecords, type ItemRecord, type SourceRecord } from './item-records';
import { ensureRegistered, type AgentIdentity } from './registration';
import { ReplicaService } from './replica-service';
import { applyFenceOrders } from './fencing';
import { viewResolver } from './failover-commands';
import { SourceItem } from './source-item';
import { type FenceOrder, type HeartbeatBody, type InventoryEntry, VaultChannel } from './vault-channel';
import { openAzureTarget } from './azure-target';

export type AgentRole = 'primary' | 'recovery' | 'azure';

/** The replica store as the lab's view resolver finds it: set when it opens, possibly after the agent started. */
interface ReplicaHolder {
  service: ReplicaService | undefined;
  readonly opened: Promise<void>;
  markOpened(): void;
}

export interface HostAgentOptions {
  /** Base URL of the vault server. */
  readonly vaultUrl: string;
  /** Name of the vault. */
  readonly vault: string;
  /** This host's name (a DNS label or name; its certificate's CN). */
  readonly host: string;
  readonly site: string;
  /** The data folder (docs/agent.md §2). */
  readonly dataDir: string;
  /** Read only when registering. */
  readonly registrationKeyFile: string;
  /** `recovery` keeps replicas and serves them. @default 'primary' */
  readonly role?: AgentRole;
  /** Addresses other agents reach this host at; the first is advertised as the replication endpoint. @default ['127.0.0.1'] */
  readonly addresses?: readonly string[];
  /** Address the replication endpoint listens on. @default '127.0.0.1' */
  readonly listenAddress?: string;
  /** Replication port of a recovery host. @default the port of the previous run, else a free one */
  readonly replicationPort?: number;
  /** @default the lab hypervisor in `<data-dir>/lab`, restarting the VMs that ran when the agent last stopped */
  readonly hypervisor?: Hypervisor;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Executables recovery plans may run on this host (docs/recovery-plans.md §5); created at start if missing. @default `<data-dir>/scripts` */
  readonly scriptsDir?: string;
  /** Azure role in the lab: write rate of the guest of failed-over VMs, bytes per second. @default none: an idle guest */
  readonly azureGuestBytesPerSecond?: number;
  /** Copy frequency for every item instead of the policy's. Test and lab use only. @default the policy's */
  readonly frequencyOverrideMs?: number;
  /** Unit of the replication retry schedule instead of a minute. Test and lab use only. @default one minute */
  readonly retryUnitMs?: number;
  /** How often item reports go out besides on changes. @default 5 s */
  readonly reportIntervalMs?: number;
  /** Long-poll wait. @default 20 s */
  readonly pollWaitSeconds?: number;
  /** @default lines on stderr */
  readonly log?: AgentLogger;
  /** The agent stopped itself (its credentials were refused). Must not throw. @default none */
  readonly onFatal?: (e: LifeboatError) => void;
}

/** The agent's status (control socket `GET /status`, `lifeboat agent status`). */
export interface AgentStatus {
  readonly vault: string;
  readonly vaultUrl: string;
  readonly host: string;
  readonly site: string;
  readonly role: AgentRole;
  readonly version: string;
  readonly vaultReachable: boolean;
  readonly replicationEndpoint: { readonly address: string; readonly port: number } | undefined;
  readonly vms: readonly { readonly name: string; readonly power: string; readonly disks: readonly { readonly id: string; readonly sizeBytes: number; readonly tracked: boolean }[] }[];
  readonly items: readonly unknown[];
  readonly replicas: readonly { readonly item: string; readonly itemUid: string; readonly disks: readonly string[] }[];
  readonly commands: readonly { readonly id: string; readonly type: string; readonly progress: number; readonly message: string | undefined }[];
}

/** The running agent. Start with `HostAgent.start`. */
export class HostAgent {
  private readonly clock: Clock;
  private readonly log: AgentLogger;
  private readonly sources = new Map<string, SourceItem>();
  private runner: CommandRunner | undefined;
  private replicas: ReplicaService | undefined;
  private control: ControlServer | undefined;
  private heartbeatTimer: Timer | undefined;
  private reportTimer: Timer | undefined;
  private reportSoon: Timer | undefined;
  private heartbeatSoon: Timer | undefined;
  private heartbeatIntervalMs: number;
  private reachable = true;
  private stopping: Promise<void> | undefined;
  private readonly version = agentVersion();
  /** Until the vault's first answer says which VMs failed over elsewhere: VMs to start and items to resume then. */
  private deferred: { readonly vms: readonly string[]; readonly items: SourceItem[] } | undefined;
  private replicasStarting: Promise<ReplicaService> | undefined;

  private constructor(
    private readonly o: HostAgentOptions,
    readonly paths: AgentPaths,
    readonly identity: AgentIdentity,
    readonly hypervisor: Hypervisor,
    private readonly channel: VaultChannel,
    private readonly replicaHolder: ReplicaHolder,
  ) {
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? stderrLogger(o.host);
    this.heartbeatIntervalMs = identity.heartbeatIntervalSeconds * SECOND;
  }

  /**
   * Register (unless already registered), open the hypervisor and, on a
   * recovery host, the replica store and its endpoint; resume every
   * relationship found in the data folder; start heartbeats, reports, the
   * command loop and the control socket. Retries an unreachable vault at
   * registration (1, 2, 4, 8 s, then every 15 s); throws registration's
   * refusals (`auth.registrationKeyInvalid`, `request.invalid` …) and
   * `hypervisor.labInUse` when another agent drives the lab folder. If it
   * throws, whatever it opened is closed.
   */
  static async start(o: HostAgentOptions): Promise<HostAgent> {
    const paths = agentPaths(o.dataDir);
    await ensureDataDir(paths);
    const log = o.log ?? stderrLogger(o.host);
    const clock = o.clock ?? systemClock;
    const channel = new VaultChannel({ url: o.vaultUrl, vault: o.vault });
    const role = o.role ?? 'primary';
    let identity: AgentIdentity | undefined;
    for (let failures = 0; identity === undefined; ) {
      try {
        identity = await ensureRegistered({
          paths, channel, host: o.host, site: o.site, agentVersion: agentVersion(),
          registrationKey: async () => readFile(o.registrationKeyFile, 'utf8'),
          addresses: o.addresses ?? ['127.0.0.1'],
        });
      } catch (e) {
        if (categoryOf(e) !== 'recoverable') throw e;
        failures++;
        const delay = backoffDelay(failures, { schedule: [1000, 2000, 4000, 8000], steadyMs: 15_000, jitterRatio: 0.1 });
        log('warn', `registration: ${describe(e)}; retrying in ${Math.round(delay / 1000)} s`);
        await clock.sleep(delay);
      }
    }
    channel.authenticate(identity.host, identity.token);
    log('info', `registered as host ${identity.host} of vault ${identity.vault}, site ${identity.site} (certificate from the vault CA)`);
    let opened: () => void = () => undefined;
    const holder: ReplicaHolder = { service: undefined, opened: new Promise<void>((resolve) => { opened = resolve; }), markOpened: () => opened() };
    // VMs are started only once the vault said which failed over elsewhere (docs/failover.md §6).
    // Views are resolved once the replica store (if any) is open, and from whichever store runs then.
    const hypervisor = o.hypervisor ?? await LabHypervisor.open({
      labRoot: paths.labDir, startInterrupted: false, clock, resolveLocation: viewResolver(async () => { await holder.opened; return holder.service; }, paths.itemsDir),
    });
    const agent = new HostAgent(o, paths, identity, hypervisor, channel, holder);
    try {
      await agent.open(role);
    } catch (e) {
      holder.markOpened();
      await agent.stop().catch(() => undefined);
      throw e;
    }
    return agent;
  }

  /** The replication endpoint of a recovery host. */
  get replicationEndpoint(): { readonly address: string; readonly port: number } | undefined {
    return this.replicas === undefined ? undefined : { address: (this.o.addresses ?? ['127.0.0.1'])[0]!, port: this.replicas.port };
  }

  /**
   * Stop: the control socket, the command loop (running commands are
   * abandoned; the vault delivers them again), replication (progress stays
   * on disk), the replica endpoint, then the hypervisor (running VMs are
   * shut down with a guest flush and restarted at the next start).
   * Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.heartbeatTimer?.cancel();
      this.reportTimer?.cancel();
      this.reportSoon?.cancel();
      this.heartbeatSoon?.cancel();
      await this.control?.close().catch(() => undefined);
      await this.runner?.stop();
      await Promise.all([...this.sources.values()].map((s) => s.stop().catch((e: unknown) => this.log('warn', `stopping ${s.name}: ${describe(e)}`))));
      await this.sendReports().catch(() => undefined);
      await this.replicas?.close().catch((e: unknown) => this.log('warn', `closing the replica store: ${describe(e)}`));
      await this.hypervisor.close().catch((e: unknown) => this.log('warn', `closing the hypervisor: ${describe(e)}`));
      this.log('info', 'agent stopped');
    })();
    return this.stopping;
  }

  /** The status document of the control socket. */
  async status(): Promise<AgentStatus> {
    const vms = await this.hypervisor.list();
    const records = await loadRecords(this.paths.itemsDir).catch(() => [] as ItemRecord[]);
    const items = await Promise.all([...this.sources.values()].map(async (s) => ({
      item: s.name,
      itemUid: s.record.itemUid,
      vm: s.record.vm,
      target: s.record.target,
      started: s.record.started,
      report: await s.report(),
      disks: s.diskStatuses(),
    })));
    return {
      vault: this.identity.vault,
      vaultUrl: this.channel.url,
      host: this.identity.host,
      site: this.identity.site,
      role: this.o.role ?? 'primary',
      version: this.version,
      vaultReachable: this.reachable,
      replicationEndpoint: this.replicationEndpoint,
      vms: vms.map((v) => ({ name: v.name, power: v.power, disks: v.disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes, tracked: d.tracked })) })),
      items,
      replicas: records.filter((r) => r.role === 'replica').map((r) => ({ item: r.item, itemUid: r.itemUid, disks: r.disks.map((d) => d.id) })),
      commands: this.runner?.running() ?? [],
    };
  }

  // ---------------------------------------------------------------------------

  private async open(role: AgentRole): Promise<void> {
    // A primary host that became the replica of a reprotected item serves its store too.
    const keepsReplicas = (await loadRecords(this.paths.itemsDir)).some((r) => r.role === 'replica');
    if (role === 'recovery' || keepsReplicas) await this.ensureReplicas();
    this.replicaHolder.markOpened();
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- read by a getter of the handlers' context
    const agent = this;
    const items: SourceItem[] = [];
    for (const r of await loadRecords(this.paths.itemsDir)) {
      if (r.role !== 'source') continue;
      const item = this.newSourceItem(r);
      this.sources.set(r.itemUid, item);
      items.push(item);
    }
    const vms = this.hypervisor instanceof LabHypervisor ? this.hypervisor.openReport.resumable : [];
    this.deferred = { vms, items };
    const scriptsDir = this.o.scriptsDir ?? path.join(this.paths.root, 'scripts');
    await mkdir(scriptsDir, { recursive: true });
    this.runner = new CommandRunner({
      channel: this.channel,
      handlers: commandHandlers({
        hypervisor: this.hypervisor,
        itemsDir: this.paths.itemsDir,
        labDir: this.paths.labDir,
        replicasDir: this.paths.replicasDir,
        scriptsDir,
        // A getter: the store may start later (reprotect).
        get replicas() { return agent.replicas; },
        ensureReplicas: () => this.ensureReplicas(),
        sources: this.sources,
        newSourceItem: (rec) => this.newSourceItem(rec),
        azureCredentials: (item) => this.channel.storageCredentials(item),
        ...(this.o.azureGuestBytesPerSecond === undefined ? {} : { azureGuestWorkload: { pattern: 'random' as const, bytesPerSecond: this.o.azureGuestBytesPerSecond } }),
        checkAzureTarget: async (rec) => {
          if (rec.target.kind !== 'azure') return;
          const t = await openAzureTarget(rec.item, rec.target, (item) => this.channel.storageCredentials(item));
          await t.close();
        },
        changed: () => this.changed(),
        inventoryChanged: () => this.heartbeatNow(),
        now: () => this.clock.now(),
      }),
      journal: fileCommandJournal(this.paths.commandsDir),
      leaseSeconds: this.identity.commandLeaseSeconds,
      waitSeconds: Math.max(1, Math.min(this.o.pollWaitSeconds ?? 20, this.identity.heartbeatIntervalSeconds)),
      clock: this.clock,
      log: this.log,
      onAuthFailure: (e) => this.fatal(e),
      onConnection: (connected) => {
        this.reachable = connected;
        if (connected) this.heartbeatNow();
      },
    });
    if (Buffer.byteLength(this.paths.controlSocket) <= MAX_SOCKET_PATH) {
      this.control = await ControlServer.start({
        socketPath: this.paths.controlSocket, hypervisor: this.hypervisor, status: () => this.status(), onVmChange: () => this.heartbeatNow(),
      });
    } else {
      this.log('warn', `no control socket: ${this.paths.controlSocket} is longer than ${MAX_SOCKET_PATH} bytes`);
    }
    await this.heartbeat();
    this.runner.start();
    this.scheduleHeartbeat();
    this.reportTimer = this.every(this.o.reportIntervalMs ?? 5 * SECOND, () => this.sendReports());
  }

  /** Open the replica store and serve it (once); the endpoint goes out in the next heartbeat. */
  private async ensureReplicas(): Promise<{ readonly service: ReplicaService; readonly endpoint: { readonly address: string; readonly port: number } }> {
    this.replicasStarting ??= (async () => {
      const credentials = { keyPem: this.identity.keyPem, certPem: this.identity.certPem, caPem: this.identity.caPem };
      const endpointFile = path.join(this.paths.root, 'endpoint.json');
      const previous = Number((JSON.parse((await readOptional(endpointFile)) ?? '{}') as { port?: unknown }).port ?? 0);
      const service = await ReplicaService.start({
        root: this.paths.replicasDir, credentials, vault: this.identity.vault, clock: this.clock, log: this.log,
        sourceHosts: async () => (await loadRecords(this.paths.itemsDir)).flatMap((r) => (r.role === 'replica' ? [r.sourceHost] : [])),
        host: this.o.listenAddress ?? '127.0.0.1', port: this.o.replicationPort ?? (Number.isInteger(previous) ? previous : 0),
      });
      this.replicas = service;
      this.replicaHolder.service = service;
      if (service.port !== previous) await writeFileAtomic(endpointFile, `${JSON.stringify({ port: service.port })}\n`, 0o644);
      this.log('info', `replica store ${this.paths.replicasDir} served on ${this.replicationEndpoint!.address}:${service.port} (mutual TLS, vault CA)`);
      this.heartbeatNow();
      return service;
    })();
    try {
      const service = await this.replicasStarting;
      return { service, endpoint: this.replicationEndpoint! };
    } catch (e) {
      this.replicasStarting = undefined;
      throw e;
    }
  }

  private newSourceItem(record: SourceRecord): SourceItem {
    return new SourceItem({
      record,
      hypervisor: this.hypervisor,
      credentials: { keyPem: this.identity.keyPem, certPem: this.identity.certPem, caPem: this.identity.caPem },
      itemsDir: this.paths.itemsDir,
      clock: this.clock,
      ...(this.o.frequencyOverrideMs === undefined ? {} : { frequencyOverrideMs: this.o.frequencyOverrideMs }),
      ...(this.o.retryUnitMs === undefined ? {} : { retryUnitMs: this.o.retryUnitMs }),
      onChange: () => this.changed(),
      log: this.log,
      azureCredentials: (item) => this.channel.storageCredentials(item),
    });
  }

  /** Reports soon (debounced): a state changed. */
  private changed(): void {
    if (this.stopping !== undefined || this.reportSoon !== undefined) return;
    this.reportSoon = this.clock.setTimer(500, () => {
      this.reportSoon = undefined;
      void this.sendReports().catch(() => undefined);
    });
  }

  private heartbeatNow(): void {
    if (this.stopping !== undefined || this.heartbeatSoon !== undefined) return;
    this.heartbeatSoon = this.clock.setTimer(0, () => {
      this.heartbeatSoon = undefined;
      void this.heartbeat().catch(() => undefined);
    });
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.every(this.heartbeatIntervalMs, () => this.heartbeat());
  }

  /** Send one heartbeat; failures are logged (the next one follows). */
  private async heartbeat(): Promise<void> {
    try {
      const answer = await this.channel.heartbeat(await this.heartbeatBody());
      this.reachable = true;
      await this.afterAnswer(answer.fence ?? []);
      const interval = answer.heartbeatIntervalSeconds * SECOND;
      if (interval > 0 && interval !== this.heartbeatIntervalMs) {
        this.heartbeatIntervalMs = interval;
        this.scheduleHeartbeat();
      }
    } catch (e) {
      if (isAuthRefusal(e)) this.fatal(e as LifeboatError);
      else this.log('warn', `heartbeat failed: ${describe(e)}`);
    }
  }

  /** Fence what the vault says failed over; the first time, start what was deferred. */
  private async afterAnswer(fences: readonly FenceOrder[]): Promise<void> {
    const fenced = await applyFenceOrders({ hypervisor: this.hypervisor, sources: this.sources, log: this.log }, fences);
    const deferred = this.deferred;
    if (deferred === undefined) return;
    this.deferred = undefined;
    const keepOff = new Set(fences.map((f) => f.vm.toLowerCase()));
    for (const item of deferred.items) {
      if (fenced.has(item.record.itemUid) || !this.sources.has(item.record.itemUid)) continue;
      item.activate();
      this.log('info', `resuming replication of item ${item.name} (VM ${item.record.vm}${item.record.started ? '' : ', initial replication not started'})`);
    }
    for (const vm of deferred.vms) {
      if (keepOff.has(vm.toLowerCase())) continue;
      try {
        await this.hypervisor.start(vm);
        this.log('info', `VM ${vm} started again: it was running when the agent stopped`);
      } catch (e) {
        this.log('warn', `VM ${vm} could not be started again: ${describe(e)}`);
      }
    }
    this.heartbeatNow();
  }

  private async heartbeatBody(): Promise<HeartbeatBody> {
    const vms = await this.hypervisor.list();
    const storage = await this.replicas?.storage().catch(() => undefined);
    const endpoint = this.replicationEndpoint;
    return {
      agentVersion: this.version,
      inventory: { vms: vms.filter((v) => !v.testFailover).map(inventoryEntry) },
      ...(storage === undefined ? {} : { storage }),
      ...(endpoint === undefined ? {} : { replicationEndpoint: endpoint }),
    };
  }

  private async sendReports(): Promise<void> {
    if (this.sources.size === 0) return;
    const items = await Promise.all([...this.sources.values()].map((s) => s.report()));
    try {
      const answer = await this.channel.reportItems(items);
      for (const r of answer.refused) {
        // A job owning the item is normal (the vault moves the state itself); anything else is worth a line.
        if (r.code !== 'state.ownedByJob' && r.code !== 'state.notAllowed') this.log('warn', `report on ${r.item} refused: ${r.code} ${r.message ?? ''}`);
      }
    } catch (e) {
      if (isAuthRefusal(e)) this.fatal(e as LifeboatError);
    }
  }

  private every(ms: number, fn: () => Promise<void>): Timer {
    let timer: Timer | undefined;
    let cancelled = false;
    const tick = (): void => {
      timer = this.clock.setTimer(ms, () => {
        void fn().catch((e: unknown) => this.log('warn', describe(e))).finally(() => {
          if (!cancelled) tick();
        });
      });
    };
    tick();
    return { cancel: () => { cancelled = true; timer?.cancel(); } };
  }

  private fatal(e: LifeboatError): void {
    if (this.stopping !== undefined) return;
    this.log('error', `the vault refused this agent's credentials: ${describe(e)}`);
    this.log('error', `to register again, stop the agent, remove ${this.paths.identity} and start it with the registration key`);
    this.o.onFatal?.(e);
  }
}

function inventoryEntry(v: VmInfo): InventoryEntry {
  const power: InventoryEntry['powerState'] = v.power === 'ShuttingDown' ? 'Stopping' : v.power;
  const networks = v.nics.map((n) => n.network).filter((n): n is string => n !== undefined);
  return {
    name: v.name,
    powerState: power,
    disks: v.disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes })),
    ...(networks.length === 0 ? {} : { networks }),
  };
}

/** The package version (package.json of `lifeboat`), or `0.0.0`. */
export function agentVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'lifeboat' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // keep looking
    }
    if (path.dirname(dir) === dir) return '0.0.0';
  }
}

function stderrLogger(host: string): AgentLogger {
  return (level, message) => process.stderr.write(`[agent ${host}] ${new Date().toISOString()} ${level}: ${message}\n`);
}
