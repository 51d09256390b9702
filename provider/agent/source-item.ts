/**
 * One protected item on its source host (docs/agent.md §6): the VM's tracked
 * disks (owned by the hypervisor driver), a `RemoteReplicaTarget` to the
 * recovery host's replica server, and per disk a `DiskReplicator` driven by a
 * `ReplicationLoop`. Everything it needs to resume lives on disk — the item
 * record, each disk's tracker and progress file — so a restarted agent builds
 * the same object again and every replication continues where it stopped.
 *
 * Activation (opening the trackers, the target and the replicators) runs in
 * the background and is retried on recoverable errors (the recovery host may
 * not be up yet) on a short schedule; a non-recoverable error stops it with
 * health Critical until an operator acts (a resync request retries it).
 *
 * Not concurrent-safe across calls that change it (`start`, `reconfigure`,
 * `stop`, `disable`): the agent serialises them per item.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { type Clock, systemClock } from '../clock';
import { LifeboatError, NonRecoverableError, categoryOf } from '../errors';
import { type Hypervisor, type ResumeFunction } from '../hypervisor/hypervisor';
import { BandwidthLimiter, type BandwidthLimits } from '../replication/bandwidth';
import { ReplicationLoop, type LoopStatus } from '../replication/replication-loop';
import { DiskReplicator, type ReplicationEvent, type ReplicatorOptions } from '../replication/replicator';
import { backoffDelay } from '../replication/retry';
import { type RecoveryPointInfo, type ReplicaDisk, type ReplicaTarget } from '../replication/target';
import { type TrackedDisk } from '../replication/tracker';
import { DailyWindow } from '../replication/window';
import { RemoteReplicaTarget } from '../targets/remote';
import { worseHealth, type Health, type ReplicationState } from '../states';
import { HOUR, MiB, SECOND, formatBytes } from '../units';
import { SEGMENT_HEADER_SIZE } from '../format';
import { errorInfo, type AgentLogger } from './command-runner';
import { type ItemDisk, itemDir, replicaDiskId, type SourceRecord } from './item-records';
import { type ItemReport } from './vault-channel';
import { type AzureCredentialsSource, openAzureTarget } from './azure-target';

/** The agent's certificate material for replication connections. */
export interface PeerCredentials {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
}

export interface SourceItemOptions {
  readonly record: SourceRecord;
  readonly hypervisor: Hypervisor;
  readonly credentials: PeerCredentials;
  /** `<data-dir>/items`. */
  readonly itemsDir: string;
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * Copy frequency instead of the policy's (whose minimum is 30 s). Test
   * and lab use only (`--test-frequency-ms`). @default the policy's
   */
  readonly frequencyOverrideMs?: number;
  /**
   * The retry schedule's unit instead of a minute (1, 2, 4, 8, 10 units, then
   * every 30). Test and lab use only (`--test-retry-ms`). @default one minute
   */
  readonly retryUnitMs?: number;
  /**
   * Fetches the storage credentials of an azure relationship from the vault.
   * @default none: azure relationships stop with `agent.azureUnavailable`
   */
  readonly azureCredentials?: AzureCredentialsSource;
  /** Called when anything reportable changed. Must not throw. */
  readonly onChange: () => void;
  readonly log: AgentLogger;
}

interface DiskCounters {
  bytesTransferred: number;
  cyclesCompleted: number;
  lastPassSent: number;
  lastCycleStartedAt: number | undefined;
  lastCycleDurationMs: number | undefined;
}

interface DiskSlot {
  readonly disk: ItemDisk;
  readonly progressFile: string;
  tracker: TrackedDisk | undefined;
  replica: ReplicaDisk | undefined;
  replicator: DiskReplicator | undefined;
  loop: ReplicationLoop | undefined;
  stopper: AbortController | undefined;
  status: LoopStatus | undefined;
  readonly counters: DiskCounters;
  /** Resyncs this process saw start (state Resynchronizing entered) and end (back to Protected). */
  resyncsStarted: number;
  resyncsEnded: number;
}

/** What a stopped activation left behind. */
interface Blocked {
  readonly error: unknown;
  readonly at: number;
}

/** Short retries for connecting to the recovery host; the loops keep the policy's schedule. */
const ACTIVATE_SCHEDULE = [1, 2, 4, 8, 15, 30].map((s) => s * SECOND);
const ACTIVATE_STEADY_MS = 60 * SECOND;

/** The source side of one item. */
export class SourceItem {
  private recordValue: SourceRecord;
  private readonly clock: Clock;
  private readonly slots: DiskSlot[];
  private target: ReplicaTarget | undefined;
  private activation: Promise<void> | undefined;
  private activationStopper: AbortController | undefined;
  private waiting: string | undefined;
  private blocked: Blocked | undefined;
  private readonly waiters = new Set<() => void>();
  private pointsCache: { readonly at: number | undefined; readonly points: readonly RecoveryPointInfo[] } | undefined;
  private stopped = false;

  constructor(private readonly o: SourceItemOptions) {
    this.recordValue = o.record;
    this.clock = o.clock ?? systemClock;
    const dir = itemDir(o.itemsDir, o.record.itemUid);
    this.slots = o.record.disks.map((disk) => ({
      disk, progressFile: path.join(dir, `${disk.id}.replication.json`), tracker: undefined, replica: undefined, replicator: undefined,
      loop: undefined, stopper: undefined, status: undefined, resyncsStarted: 0, resyncsEnded: 0,
      counters: { bytesTransferred: 0, cyclesCompleted: 0, lastPassSent: 0, lastCycleStartedAt: undefined, lastCycleDurationMs: undefined },
    }));
  }

  get record(): SourceRecord {
    return this.recordValue;
  }

  get name(): string {
    return this.recordValue.item;
  }

  /**
   * Start tracking every disk of the relationship (idempotent: a tracked
   * disk's tracker is reused). Throws the hypervisor's errors
   * (`hypervisor.vmNotFound`, `hypervisor.diskNotFound`, …); disks tracked
   * before the failure stay tracked (a retry, or `disable`, settles them).
   */
  async enableTracking(): Promise<void> {
    await fs.mkdir(itemDir(this.o.itemsDir, this.recordValue.itemUid), { recursive: true, mode: 0o700 });
    for (const s of this.slots) s.tracker ??= await this.o.hypervisor.enableTracking(this.recordValue.vm, s.disk.id);
  }

  /**
   * Bring the relationship up in the background: trackers, the connection
   * to the recovery host, and — once `record.started` — the replication
   * loops. Idempotent; a previous activation that stopped on an error is
   * retried.
   */
  activate(): void {
    if (this.activation !== undefined && this.blocked === undefined && !this.stopped) return;
    this.blocked = undefined;
    this.stopped = false;
    const stopper = new AbortController();
    this.activationStopper = stopper;
    this.activation = this.runActivation(stopper.signal);
  }

  /** Mark the relationship started (persisted by the caller) and start the loops. */
  start(record: SourceRecord): void {
    this.recordValue = record;
    this.activate();
    void this.activation?.then(() => this.startLoops());
  }

  /**
   * Wait until every disk has its first recovery point (initial
   * replication done), reporting progress. Throws `NonRecoverableError`
   * with the loop's error when replication stopped on a non-recoverable
   * error, or the signal's reason.
   */
  async waitForFirstPoint(signal: AbortSignal, progress: (percent: number, message: string) => void): Promise<void> {
    for (;;) {
      this.throwIfFailed();
      if (this.slots.every((s) => s.status !== undefined && s.status.phase === 'delta' && s.status.lastPointAt !== undefined)) return;
      const p = this.initialPercent();
      progress(p ?? 0, this.progressMessage());
      await this.changed(signal);
    }
  }

  /**
   * Resynchronise every disk now (an operator's or the vault's request) and
   * wait until each disk's resync — the one requested, or one already
   * running — has ended back in Protected. Throws the loop's error when a
   * disk's resync ended otherwise (ResynchronizationRequired: recoverable
   * errors stay recoverable, so the vault retries), the activation's
   * non-recoverable error, or the signal's reason.
   */
  async resync(reason: string, signal: AbortSignal, progress: (percent: number, message: string) => void): Promise<void> {
    // A key the account refused: open the blobs again with the credentials the vault holds now (docs/azure-failover.md §3).
    if (this.slots.some((s) => s.status?.health === 'Critical')) await this.reopenStorage();
    if (this.blocked !== undefined) this.activate();
    if (this.slots.some((s) => s.status?.health === 'Critical' && s.status.stuck === undefined)) {
      // Loops stopped by a non-recoverable error start again from their progress files.
      await this.stopLoops();
      for (const s of this.slots) s.status = undefined;
      this.startLoops();
    }
    await this.waitUntil(signal, () => this.slots.every((s) => s.loop !== undefined));
    const marks = this.slots.map((s) => {
      const running = s.status?.state === 'Resynchronizing';
      if (!running) s.loop!.requestResync(reason);
      // A resync counts once it started after this request (or was running at it) and ended.
      return { started: running ? s.resyncsStarted - 1 : s.resyncsStarted, ended: s.resyncsEnded };
    });
    for (;;) {
      // Only the activation's failure counts here: a loop stopped by a
      // non-recoverable error is what an operator's resync is for.
      this.throwIfBlocked();
      let done = true;
      for (const [i, s] of this.slots.entries()) {
        const m = marks[i]!;
        const ended = s.resyncsStarted > m.started && s.resyncsEnded > m.ended && s.status?.state !== 'Resynchronizing';
        if (!ended) {
          done = false;
          continue;
        }
        if (s.status?.state !== 'Protected') {
          const e = s.status?.lastError;
          const category = s.status?.health === 'Critical' ? 'nonRecoverable' : 'recoverable';
          throw new LifeboatError(e?.code ?? 'replication.resyncFailed', category, e?.message ?? `the resync of disk ${s.disk.id} did not finish (${s.status?.state ?? 'unknown'})`, e?.hint === undefined ? {} : { hint: e.hint });
        }
      }
      if (done) return;
      const p = this.initialPercent();
      progress(p ?? 0, `resynchronising: ${this.progressMessage()}`);
      await this.changed(signal);
    }
  }

  /**
   * Planned failover (docs/failover.md §3): wait until every disk's log is
   * shipped and committed (no sealed segment, an empty current one: the VM
   * must be off, or it keeps writing), then stop replication (trackers and
   * their logs stay open with the hypervisor). Returns each disk's latest
   * point and its tracker's generation and segment at the cut. Throws the
   * activation's or a loop's non-recoverable error, or the signal's reason;
   * replication then keeps running. Idempotent: a drained item answers at
   * once (after `stop`, its loops are started again to read the points).
   */
  async drainForFailover(signal: AbortSignal, progress: (percent: number, message: string) => void): Promise<readonly DrainedDisk[]> {
    if (this.stopped || this.blocked !== undefined) this.activate();
    if (this.recordValue.started && this.slots.some((s) => s.loop === undefined)) this.startLoops();
    // Wait until every disk is in delta (a resync or initial copy must finish first).
    for (;;) {
      this.throwIfFailed();
      if (this.slots.every((s) => s.replica !== undefined && s.tracker !== undefined && s.loop !== undefined && s.status?.phase === 'delta')) break;
      progress(0, `waiting for replication: ${this.progressMessage()}`);
      await this.changed(signal);
    }
    // Ship the rest now rather than at the next scheduled cycle: the loops stop and
    // each disk's replicator runs cycles until its log is empty (the VM is off).
    await this.stopLoops();
    try {
      const total = this.slots.reduce((n, s) => n + logLeft(s.tracker!), 0);
      for (const s of this.slots) {
        const rep = await this.openReplicator(s, signal);
        for (let i = 0; logLeft(s.tracker!) > 0; i++) {
          if (i >= 8) throw new LifeboatError('failover.logNotDrained', 'recoverable', `disk ${s.disk.id}: log still pending after ${i} cycles`, { hint: 'is the VM still writing? it must be off' });
          const left = this.slots.reduce((n, x) => n + logLeft(x.tracker!), 0);
          progress(total === 0 ? 99 : Math.min(99, Math.floor((100 * (total - left)) / total)), `shipping the last ${formatBytes(left)} of log`);
          await rep.runCycle();
        }
      }
    } catch (e) {
      // Replication goes on as before; the vault retries a recoverable failure with a new command.
      if (!this.stopped) this.startLoops();
      throw e;
    }
    const out: DrainedDisk[] = [];
    for (const s of this.slots) {
      const points = await s.replica!.listPoints();
      const last = points[points.length - 1];
      if (last === undefined) throw new NonRecoverableError('replica.noPoint', `the replica of disk ${s.disk.id} holds no recovery point`, { hint: 'resynchronise the item before a planned failover' });
      out.push({ id: s.disk.id, pointId: last.id, pointTime: last.time, generation: s.tracker!.generation, seq: s.tracker!.currentSeq });
    }
    await this.stop();
    return out;
  }

  /** A replicator of one disk outside its loop (the loop must be stopped), for a planned failover's last cycles. */
  private openReplicator(slot: DiskSlot, signal: AbortSignal): Promise<DiskReplicator> {
    const r = this.recordValue;
    const limiter = limiterOf(r, this.clock);
    return DiskReplicator.open({
      source: slot.tracker!,
      replica: slot.replica!,
      progressFile: slot.progressFile,
      clock: this.clock,
      ...batchOptionsFor(slot.disk.sizeBytes),
      retentionMs: r.policy.recoveryPointRetentionHours * HOUR,
      appConsistentEveryMs: r.policy.appConsistentSnapshotFrequencyHours * HOUR,
      quiesce: () => this.quiesce(),
      ...(limiter === undefined ? {} : { limiter }),
      onEvent: (e) => this.onEvent(slot, e),
      signal,
    });
  }

  /** True while the replication loops of this item run (not stopped for a failover or a fence). */
  get running(): boolean {
    return !this.stopped;
  }

  /** Apply changed settings: the loops restart with the new policy (their progress is on disk). */
  async reconfigure(record: SourceRecord): Promise<void> {
    const wasStarted = this.slots.some((s) => s.loop !== undefined);
    await this.stopLoops();
    this.recordValue = record;
    if (wasStarted || record.started) this.startLoops();
  }

  /**
   * An azure relationship whose storage credentials changed (docs/azure-failover.md
   * §3): stop the loops, close the blobs, fetch the credentials from the
   * vault again and start over from the progress files; a loop stopped by
   * a refused key starts again. Nothing for other targets, or before the
   * blobs were first opened. Idempotent; a failure to open with the new
   * credentials stops the activation with that error, as at start.
   */
  async reopenStorage(): Promise<void> {
    if (this.recordValue.target.kind !== 'azure' || this.target === undefined) return;
    await this.stopLoops();
    for (const s of this.slots) {
      await s.replica?.close().catch(() => undefined);
      s.replica = undefined;
      s.status = undefined;
    }
    await this.target.close().catch(() => undefined);
    this.target = undefined;
    await this.activation?.catch(() => undefined);
    this.activation = undefined;
    this.start(this.recordValue);
  }

  /** Stop replication (the agent stops): loops and connection; trackers stay with the hypervisor. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.activationStopper?.abort(new LifeboatError('agent.stopping', 'recoverable', 'the agent is stopping'));
    await this.activation?.catch(() => undefined);
    await this.stopLoops();
    await this.target?.close().catch(() => undefined);
    this.target = undefined;
  }

  /**
   * End the relationship: stop, stop tracking every disk (its log is
   * deleted; the disk stays), delete the progress files. Idempotent. The
   * replica on the recovery host is the vault's business (`replica.delete`
   * or `replica.release`).
   */
  async disable(): Promise<void> {
    await this.stop();
    for (const s of this.slots) {
      try {
        await this.o.hypervisor.disableTracking(this.recordValue.vm, s.disk.id);
      } catch (e) {
        // A VM or disk that no longer exists has nothing to stop.
        if (!(LifeboatError.isInstance(e) && (e.code === 'hypervisor.vmNotFound' || e.code === 'hypervisor.diskNotFound'))) throw e;
      }
      s.tracker = undefined;
    }
  }

  /** The entry of the item report (schemas/agent-report.schema.json). */
  async report(): Promise<ItemReport> {
    const now = this.clock.now();
    const statuses = this.slots.map((s) => s.status);
    const known = statuses.filter((s): s is LoopStatus => s !== undefined);
    let state: ReportedState = this.recordValue.started ? 'InitialReplicationInProgress' : 'WaitingForInitialReplication';
    if (known.length === this.slots.length) state = aggregateState(known.map((s) => s.state));
    let health: Health = known.reduce<Health>((h, s) => worseHealth(h, s.health), 'Normal');
    const errors: ReturnType<typeof errorInfo>[] = [];
    if (this.blocked !== undefined) {
      health = worseHealth(health, categoryOf(this.blocked.error) === 'recoverable' ? 'Warning' : 'Critical');
      errors.push(errorInfo(this.blocked.error));
    }
    if (this.waiting !== undefined) health = worseHealth(health, 'Warning');
    for (const s of known) {
      if (s.lastError !== undefined) {
        const category = s.state === 'ResynchronizationRequired' ? 'resyncRequired' : s.health === 'Critical' && s.stuck === undefined ? 'nonRecoverable' : 'recoverable';
        errors.push(errorInfo(new LifeboatError(s.lastError.code, category, s.lastError.message, s.lastError.hint === undefined ? {} : { hint: s.lastError.hint })));
      }
    }
    const lastPoints = known.map((s) => s.lastPointAt);
    const oldest = lastPoints.length === this.slots.length && lastPoints.every((t) => t !== undefined) ? Math.min(...(lastPoints as number[])) : undefined;
    const percent = this.initialPercent();
    const stats: Record<string, number> = {
      bytesTransferred: this.slots.reduce((n, s) => n + s.counters.bytesTransferred, 0),
      cyclesCompleted: this.slots.reduce((n, s) => n + s.counters.cyclesCompleted, 0),
      pendingLogBytes: this.slots.reduce((n, s) => n + (s.tracker === undefined ? 0 : safePending(s.tracker)), 0),
    };
    const durations = this.slots.map((s) => s.counters.lastCycleDurationMs).filter((d): d is number => d !== undefined);
    if (durations.length > 0) stats.lastCycleDurationMs = Math.max(...durations);
    const pass = this.passBytes();
    if (pass !== undefined && state !== 'Protected') {
      stats.initialReplicationBytesCopied = pass.done;
      stats.initialReplicationBytesTotal = pass.total;
    }
    const points = await this.recoveryPoints().catch(() => undefined);
    return {
      item: this.recordValue.item,
      replicationState: state,
      health,
      ...(percent === undefined || state === 'Protected' ? {} : { initialReplicationPercent: percent }),
      ...(oldest === undefined ? {} : { lastReplicatedTime: new Date(oldest).toISOString(), rpoSeconds: Math.max(0, (now - oldest) / 1000) }),
      statistics: stats,
      errors: errors.slice(0, 20),
      ...(points === undefined ? {} : {
        recoveryPoints: points.slice(-10000).map((p) => ({ id: p.id, time: new Date(p.time).toISOString(), kind: p.kind })),
      }),
    };
  }

  /**
   * Retained points of the item's first disk, oldest first (the item's
   * points: docs/agent.md §6 says why only one disk's). Cached until the
   * next point.
   */
  async recoveryPoints(): Promise<readonly RecoveryPointInfo[]> {
    const first = this.slots[0];
    if (first?.replica === undefined) return this.pointsCache?.points ?? [];
    const at = first.status?.lastPointAt;
    if (this.pointsCache !== undefined && this.pointsCache.at === at) return this.pointsCache.points;
    const points = await first.replica.listPoints();
    this.pointsCache = { at, points };
    return points;
  }

  /** For the local control socket and tests: each disk's loop status. */
  diskStatuses(): readonly { readonly disk: string; readonly status: LoopStatus | undefined; readonly progressFile: string }[] {
    return this.slots.map((s) => ({ disk: s.disk.id, status: s.status, progressFile: s.progressFile }));
  }

  // ---------------------------------------------------------------------------

  private async runActivation(signal: AbortSignal): Promise<void> {
    for (let failures = 0; ; ) {
      try {
        await this.open(signal);
        this.waiting = undefined;
        this.notify();
        if (this.recordValue.started) this.startLoops();
        return;
      } catch (e) {
        if (signal.aborted) return;
        failures++;
        if (categoryOf(e) !== 'recoverable') {
          this.blocked = { error: e, at: this.clock.now() };
          this.waiting = undefined;
          this.o.log('error', `item ${this.name}: replication cannot start: ${errorInfo(e).message}`);
          this.notify();
          return;
        }
        const delay = backoffDelay(failures, { schedule: ACTIVATE_SCHEDULE, steadyMs: ACTIVATE_STEADY_MS, jitterRatio: 0.1 });
        this.waiting = `${errorInfo(e).message}; retrying in ${Math.round(delay / 1000)} s`;
        this.o.log('warn', `item ${this.name}: ${this.waiting}`);
        this.notify();
        try {
          await this.clock.sleep(delay, signal);
        } catch {
          return;
        }
      }
    }
  }

  /** Trackers, target, replica disks and replicators; each step skipped when done. */
  private async open(signal: AbortSignal): Promise<void> {
    const r = this.recordValue;
    await this.enableTracking();
    if (this.target === undefined && r.target.kind === 'azure') {
      const source = this.o.azureCredentials;
      if (source === undefined) {
        throw new NonRecoverableError('agent.azureUnavailable', `item ${r.item} replicates to Azure, but this agent cannot fetch storage credentials`, {
          hint: 'run the host agent connected to a vault (lifeboat agent run)',
        });
      }
      this.target = await openAzureTarget(r.item, r.target, source);
    }
    this.target ??= r.target.kind === 'host' ? new RemoteReplicaTarget({
      host: r.target.address,
      port: r.target.port,
      serverName: r.target.serverName,
      ca: this.o.credentials.caPem,
      key: this.o.credentials.keyPem,
      cert: this.o.credentials.certPem,
      compression: r.policy.compression ? 'zstd' : 'none',
      clock: this.clock,
    }) : undefined;
    if (this.target === undefined) throw new NonRecoverableError('agent.targetKindUnsupported', `unknown target kind of item ${r.item}`);
    for (const s of this.slots) {
      if (signal.aborted) throw signal.reason;
      s.replica ??= await this.target.openDisk({ diskId: replicaDiskId(r.itemUid, s.disk.id), sizeBytes: s.disk.sizeBytes });
    }
  }

  private startLoops(): void {
    if (this.target === undefined || this.blocked !== undefined) return;
    const r = this.recordValue;
    const frequencyMs = this.o.frequencyOverrideMs ?? r.policy.replicationFrequencySeconds * SECOND;
    const tz = r.timeZone;
    const resyncWindow = new DailyWindow({ ...r.policy.resync.window, timeZone: tz });
    const limiter = limiterOf(r, this.clock);
    for (const s of this.slots) {
      if (s.stopper !== undefined || s.tracker === undefined || s.replica === undefined) continue;
      const stopper = new AbortController();
      s.stopper = stopper;
      const tracker = s.tracker;
      const replica = s.replica;
      const slot = s;
      // Opening the replicator talks to the replica (it settles a cycle that
      // was in flight): run it inside the loop's own retry by deferring.
      void (async () => {
        try {
          const replicator = await DiskReplicator.open({
            source: tracker,
            replica,
            progressFile: slot.progressFile,
            clock: this.clock,
            ...batchOptionsFor(slot.disk.sizeBytes),
            retentionMs: r.policy.recoveryPointRetentionHours * HOUR,
            appConsistentEveryMs: r.policy.appConsistentSnapshotFrequencyHours * HOUR,
            quiesce: () => this.quiesce(),
            ...(limiter === undefined ? {} : { limiter }),
            onEvent: (e) => this.onEvent(slot, e),
            signal: stopper.signal,
          });
          if (stopper.signal.aborted) return;
          if (this.waiting?.startsWith(`disk ${slot.disk.id}:`) === true) this.waiting = undefined;
          slot.replicator = replicator;
          // The pass counters are persisted: count only what this process sends.
          slot.counters.lastPassSent = replicator.status.stats.sentBytes;
          const loop = new ReplicationLoop({
            replicator,
            source: tracker,
            clock: this.clock,
            frequencyMs,
            resyncWindow,
            // The vault schedules automatic resyncs in the policy's window (resync.run).
            automaticResync: false,
            what: `${r.item}/${slot.disk.id}`,
            ...(this.o.retryUnitMs === undefined ? {} : { retry: { schedule: [1, 2, 4, 8, 10].map((n) => n * this.o.retryUnitMs!), steadyMs: 30 * this.o.retryUnitMs } }),
            onStatus: (st) => {
              const before = slot.status;
              slot.status = st;
              if (st.state === 'Resynchronizing' && before?.state !== 'Resynchronizing') slot.resyncsStarted++;
              if (before?.state === 'Resynchronizing' && st.state !== 'Resynchronizing') slot.resyncsEnded++;
              if (before?.state !== st.state || before?.health !== st.health) {
                this.o.log(st.health === 'Normal' ? 'info' : 'warn', `item ${r.item} disk ${slot.disk.id}: ${st.state}, ${st.health}${st.reason === undefined ? '' : ` (${st.reason})`}`);
              }
              this.notify();
            },
          });
          slot.loop = loop;
          slot.status = loop.status();
          loop.start();
          this.notify();
        } catch (e) {
          if (stopper.signal.aborted) return;
          slot.stopper = undefined;
          if (categoryOf(e) === 'recoverable') {
            // e.g. the connection dropped while the replicator settled a cycle: try again shortly.
            this.waiting = `disk ${slot.disk.id}: ${errorInfo(e).message}; retrying in ${ACTIVATE_SCHEDULE[2]! / 1000} s`;
            this.o.log('warn', `item ${r.item}: ${this.waiting}`);
            this.clock.setTimer(ACTIVATE_SCHEDULE[2]!, () => {
              if (!this.stopped) this.startLoops();
            });
          } else {
            this.blocked = { error: e, at: this.clock.now() };
            this.o.log('error', `item ${r.item} disk ${slot.disk.id}: cannot open replication: ${errorInfo(e).message}`);
          }
          this.notify();
        }
      })();
    }
  }

  private async stopLoops(): Promise<void> {
    await Promise.all(this.slots.map(async (s) => {
      s.stopper?.abort(new LifeboatError('replication.stopped', 'recoverable', 'replication was stopped'));
      await s.loop?.stop().catch(() => undefined);
      s.loop = undefined;
      s.replicator = undefined;
      s.stopper = undefined;
    }));
  }

  private async quiesce(): Promise<ResumeFunction> {
    try {
      return await this.o.hypervisor.quiesce(this.recordValue.vm);
    } catch (e) {
      // A VM that is off writes nothing: it is quiesced as it is.
      if (LifeboatError.isInstance(e) && e.code === 'hypervisor.notRunning') return async () => undefined;
      throw e;
    }
  }

  private onEvent(slot: DiskSlot, e: ReplicationEvent): void {
    const c = slot.counters;
    if (e.type === 'pass') {
      const sent = e.stats.sentBytes;
      c.bytesTransferred += sent >= c.lastPassSent ? sent - c.lastPassSent : sent;
      c.lastPassSent = sent;
    } else if (e.type === 'cycle') {
      c.bytesTransferred += e.bytes;
      if (e.point !== undefined) c.cyclesCompleted++;
      const now = this.clock.now();
      if (c.lastCycleStartedAt !== undefined) c.lastCycleDurationMs = now - c.lastCycleStartedAt;
      c.lastCycleStartedAt = now;
    } else {
      c.lastPassSent = 0;
    }
    this.notify();
  }

  private passBytes(): { readonly done: number; readonly total: number } | undefined {
    let done = 0;
    let total = 0;
    let any = false;
    for (const s of this.slots) {
      const p = s.replicator?.status;
      if (p === undefined) continue;
      const t = p.regions.reduce((n, r) => n + r.length, 0);
      if (p.phase === 'delta') {
        done += s.disk.sizeBytes;
        total += s.disk.sizeBytes;
      } else {
        any = true;
        done += p.phase === 'catchUp' ? t : p.doneBytes;
        total += t;
      }
    }
    return any ? { done, total } : undefined;
  }

  private initialPercent(): number | undefined {
    const b = this.passBytes();
    if (b === undefined) return this.slots.every((s) => s.status?.phase === 'delta') ? 100 : undefined;
    if (b.total === 0) return 0;
    // 100 only once every disk has its point.
    return Math.min(99, Math.floor((100 * b.done) / b.total));
  }

  private progressMessage(): string {
    if (this.waiting !== undefined) return this.waiting;
    const parts = this.slots.map((s, i) => {
      const p = s.replicator?.status;
      if (p === undefined) return `disk ${i + 1}: opening`;
      const total = p.regions.reduce((n, r) => n + r.length, 0);
      if (p.phase === 'initialCopy' || p.phase === 'resync') return `disk ${i + 1}: ${formatBytes(p.doneBytes)} of ${formatBytes(total)}`;
      return `disk ${i + 1}: ${p.phase}`;
    });
    return parts.join(', ');
  }

  private throwIfBlocked(): void {
    if (this.blocked !== undefined && categoryOf(this.blocked.error) !== 'recoverable') throw this.blocked.error;
  }

  private throwIfFailed(): void {
    this.throwIfBlocked();
    for (const s of this.slots) {
      const st = s.status;
      // Critical without `stuck`: stopped by a non-recoverable error (the loop no longer retries).
      if (st !== undefined && st.health === 'Critical' && st.stuck === undefined && st.lastError !== undefined) {
        throw new NonRecoverableError(st.lastError.code, st.lastError.message, st.lastError.hint === undefined ? {} : { hint: st.lastError.hint });
      }
    }
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
    this.o.onChange();
  }

  /** Resolves at the next change (or after a second, to re-check time-based conditions). */
  private changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const done = (): void => {
        this.waiters.delete(done);
        timer.cancel();
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.waiters.delete(done);
        timer.cancel();
        reject(signal.reason);
      };
      const timer = this.clock.setTimer(SECOND, done);
      this.waiters.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async waitUntil(signal: AbortSignal, cond: () => boolean): Promise<void> {
    while (!cond()) {
      this.throwIfBlocked();
      await this.changed(signal);
    }
  }
}

/** A disk of a drained item: its latest point and where its tracker's log stood at the cut. */
export interface DrainedDisk {
  readonly id: string;
  readonly pointId: string;
  readonly pointTime: number;
  readonly generation: string;
  /** Sequence number of the (empty) current segment at the cut. */
  readonly seq: number;
}

/** Log bytes a tracker still holds beyond an empty current segment's header. */
function logLeft(t: TrackedDisk): number {
  try {
    const sealed = t.sealedSegments().reduce((n, x) => n + x.fileBytes, 0);
    return sealed + Math.max(0, t.pendingLogBytes() - sealed - SEGMENT_HEADER_SIZE);
  } catch {
    return 1;
  }
}

/** The replication states a source host reports (schemas/agent-report.schema.json). */
export type ReportedState = 'WaitingForInitialReplication' | 'InitialReplicationInProgress' | 'Protected' | 'ResynchronizationRequired' | 'Resynchronizing';

/** The state of an item from its disks' states: the least advanced wins. */
export function aggregateState(states: readonly ReplicationState[]): ReportedState {
  const order: readonly ReportedState[] = ['ResynchronizationRequired', 'Resynchronizing', 'WaitingForInitialReplication', 'InitialReplicationInProgress', 'Protected'];
  for (const s of order) if (states.includes(s)) return s;
  return 'WaitingForInitialReplication';
}

/**
 * Pass bytes per replica cycle: a persisted cursor step at least every
 * sixteenth of the disk (so a small disk's copy resumes part-way too), at
 * most 64 MiB (the replicator's default), a whole number of 64 KiB blocks.
 */
export function batchBytesFor(sizeBytes: number): number {
  const block = 64 * 1024;
  return Math.max(block, Math.min(64 * MiB, Math.floor(sizeBytes / 16 / block) * block));
}

/**
 * The first cycle of an initial copy: one chunk of the copy pass. The replica
 * keeps undo data for that cycle alone (docs/replication.md §5.1), which made a
 * first cycle of 64 MiB cost as much as three later ones of 190 MiB
 * (docs/benchmarks.md §11).
 */
const FIRST_COPY_BATCH_BYTES = MiB;

/**
 * Pass bytes per cycle of an initial copy after its first cycle (docs/replication.md
 * §5.1): those cycles keep no undo data, so only their commits cost; a cursor
 * step at least every eighth of the disk, at most 256 MiB (4 × the most of
 * `batchBytesFor`, docs/benchmarks.md §11), never less than `batchBytesFor`.
 */
export function copyBatchBytesFor(sizeBytes: number): number {
  const block = 64 * 1024;
  return Math.max(batchBytesFor(sizeBytes), Math.min(256 * MiB, Math.floor(sizeBytes / 8 / block) * block));
}

/** The replicator's cycle sizes for a disk of `sizeBytes` (docs/replication.md §4). */
export function batchOptionsFor(sizeBytes: number): Pick<ReplicatorOptions, 'batchBytes' | 'copyBatchBytes' | 'firstCopyBatchBytes'> {
  return { batchBytes: batchBytesFor(sizeBytes), copyBatchBytes: copyBatchBytesFor(sizeBytes), firstCopyBatchBytes: FIRST_COPY_BATCH_BYTES };
}

/** The policy's bandwidth limits (Mbit/s) as a limiter, in the source site's time zone; `undefined` when unlimited. */
function limiterOf(r: SourceRecord, clock: Clock): BandwidthLimiter | undefined {
  const work = r.policy.bandwidthLimitMbps;
  const off = r.policy.offHoursBandwidthLimitMbps;
  if (work === undefined && off === undefined) return undefined;
  const limits: BandwidthLimits = {
    bytesPerSecond: work === undefined ? 0 : (work * 1e6) / 8,
    offHours: { window: new DailyWindow({ ...r.policy.offHours, timeZone: r.timeZone }), bytesPerSecond: off === undefined ? 0 : (off * 1e6) / 8 },
  };
  return new BandwidthLimiter({ ...limits, clock });
}

function safePending(t: TrackedDisk): number {
  try {
    return t.pendingLogBytes();
  } catch {
    return 0;
  }
}
