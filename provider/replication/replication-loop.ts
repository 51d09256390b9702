/**
 * The schedule of one disk's replication (docs/replication.md §10): initial
 * replication at its start time, then a delta cycle every copy frequency;
 * recoverable errors retried on the back-off schedule; "resync required"
 * answered by a resynchronisation inside the policy's window (or at once on
 * an operator's request); and a status with state, health and the metrics an
 * operator needs to see trouble coming (churn, log budget, projected RPO).
 *
 * Time comes from the injected Clock, so the whole schedule runs in
 * milliseconds in tests.
 */
import { type Clock, systemClock } from '../clock';
import { LifeboatError, categoryOf } from '../errors';
import { type Health, type ReplicationState } from '../states';
import { type DailyWindow } from './window';
import { type DiskHealthReport, type RateEstimate, diskHealth, updateRate } from './health-metrics';
import { type DiskReplicator, needsResync } from './replicator';
import { shouldStartAutomatically } from './resync-plan';
import { Retrier, type RetrierOptions, type RetryReport } from './retry';
import { type TrackedDisk } from './tracker';
import { type PassStats, type ReplicationPhase } from './progress-file';
import { SEGMENT_HEADER_SIZE } from '../format';

export interface ReplicationLoopOptions {
  readonly replicator: DiskReplicator;
  /** The tracked disk the replicator ships from (for the log budget). */
  readonly source: TrackedDisk;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Copy frequency: 30 s, 300 s or 900 s in a policy. */
  readonly frequencyMs: number;
  /** When initial replication may start, ms since the epoch. @default now */
  readonly initialStartAt?: number;
  /** Window in which a full resync starts by itself. @default none (at once) */
  readonly resyncWindow?: DailyWindow;
  /** Whether a full resync starts by itself at all. @default true */
  readonly automaticResync?: boolean;
  /** Retry policy of every step (clock and signal are set by the loop). @default the standard schedule */
  readonly retry?: Omit<RetrierOptions, 'clock' | 'signal' | 'onAttemptFailed' | 'what'>;
  /** Called on every status change. Must not throw. @default none */
  readonly onStatus?: (status: LoopStatus) => void;
  /** Name for messages. @default the disk id */
  readonly what?: string;
}

/** What the loop reports about its disk. */
export interface LoopStatus {
  readonly state: ReplicationState;
  readonly health: Health;
  /** Why health is not Normal, or what the loop waits for. */
  readonly reason: string | undefined;
  readonly phase: ReplicationPhase;
  /** Progress of the initial copy or resync pass, 0–100. */
  readonly passPercent: number | undefined;
  /** Source-side time of the latest recovery point. */
  readonly lastPointAt: number | undefined;
  /** Age of the latest point now. */
  readonly rpoMs: number | undefined;
  readonly churnBytesPerSecond: number | undefined;
  /** Pending log as a percentage of the resync threshold (50 % of the disk). */
  readonly logBudgetPercent: number;
  readonly projectedRpoMs: number | undefined;
  readonly lastError: { readonly code: string; readonly message: string; readonly hint: string | undefined } | undefined;
  /** Set when retrying makes no progress: the reason and what to do. */
  readonly stuck: string | undefined;
  readonly stats: PassStats;
}

/** Runs the replication of one disk until stopped. */
export class ReplicationLoop {
  private readonly clock: Clock;
  private readonly stopper = new AbortController();
  private wake: AbortController | undefined;
  private running: Promise<void> | undefined;
  private manualResync: string | undefined;
  private resyncNeeded: string | undefined;
  private churn: RateEstimate | undefined;
  private lastCycleEnd: number | undefined;
  private shipping: RateEstimate | undefined;
  private current: LoopStatus;

  constructor(private readonly o: ReplicationLoopOptions) {
    this.clock = o.clock ?? systemClock;
    const p = o.replicator.status;
    this.current = {
      state: p.phase === 'delta' ? 'Protected' : p.phase === 'resync' ? 'ResynchronizationRequired' : 'WaitingForInitialReplication',
      health: 'Normal', reason: undefined, phase: p.phase, passPercent: undefined,
      lastPointAt: p.lastSyncAt, rpoMs: undefined, churnBytesPerSecond: undefined, logBudgetPercent: 0,
      projectedRpoMs: undefined, lastError: undefined, stuck: undefined, stats: p.stats,
    };
    if (p.phase === 'resync') this.resyncNeeded = p.reason ?? 'resynchronisation required';
  }

  /** Start running in the background. Idempotent. */
  start(): void {
    this.running ??= this.run().catch((e: unknown) => {
      if (!this.stopper.signal.aborted) this.update({ health: 'Critical', reason: `replication loop ended: ${String(e)}`, lastError: errorInfo(e) });
    });
  }

  /** Stop after the step in flight is abandoned safely; resolves when stopped. */
  async stop(): Promise<void> {
    this.stopper.abort(new LifeboatError('replication.stopped', 'recoverable', 'Replication was stopped'));
    this.wake?.abort();
    await this.running;
  }

  /** An operator's resynchronisation: starts at once, window or not. */
  requestResync(reason: string): void {
    this.manualResync = reason;
    this.wake?.abort();
  }

  status(): LoopStatus {
    return this.current;
  }

  // ---------------------------------------------------------------------------

  private async run(): Promise<void> {
    const rep = this.o.replicator;
    if (rep.phase === 'notStarted') {
      const at = this.o.initialStartAt ?? this.clock.now();
      this.update({ state: 'WaitingForInitialReplication', reason: at > this.clock.now() ? `initial replication starts at ${new Date(at).toISOString()}` : undefined });
      while (this.clock.now() < at) await this.sleep(at - this.clock.now());
    }
    if (rep.phase === 'notStarted' || rep.phase === 'initialCopy' || rep.phase === 'catchUp') {
      this.update({ state: 'InitialReplicationInProgress', reason: undefined });
      await this.step('initial replication', () => rep.runInitialReplication());
      this.afterPoint();
    }
    for (;;) {
      this.checkStopped();
      if (this.manualResync !== undefined) {
        const reason = this.manualResync;
        this.manualResync = undefined;
        await this.resync(`operator request: ${reason}`);
        continue;
      }
      if (this.resyncNeeded !== undefined) {
        const decision = shouldStartAutomatically(this.clock.now(), this.o.resyncWindow, this.o.automaticResync ?? true);
        if (decision.start) {
          await this.resync(this.resyncNeeded);
          continue;
        }
        this.update({ state: 'ResynchronizationRequired', health: 'Warning', reason: `${this.resyncNeeded}; ${decision.reason}` });
        await this.sleep(decision.notBefore === undefined ? Number.MAX_SAFE_INTEGER : decision.notBefore - this.clock.now());
        continue;
      }
      try {
        const started = this.clock.now();
        const r = await this.step('delta cycle', () => rep.runCycle());
        const now = this.clock.now();
        // Churn over the time since the previous cut; shipping speed over the
        // time spent shipping, and only when something was shipped.
        const since = this.lastCycleEnd ?? started - this.o.frequencyMs;
        if (now > since) this.churn = updateRate(this.churn, { bytes: r.logBytes, startMs: since, endMs: now });
        if (r.bytes > 0) this.shipping = updateRate(this.shipping, { bytes: r.bytes, startMs: started, endMs: Math.max(now, started + 1) });
        this.lastCycleEnd = now;
        this.afterPoint();
      } catch (e) {
        this.checkStopped();
        if (needsResync(e)) {
          this.resyncNeeded = errorInfo(e).message;
          continue;
        }
        // Non-recoverable: no retry; an operator must act (a resync request, or a restart after a fix).
        this.update({ health: 'Critical', reason: errorInfo(e).message, lastError: errorInfo(e) });
        await this.sleep(Number.MAX_SAFE_INTEGER);
        continue;
      }
      await this.sleep(this.o.frequencyMs);
    }
  }

  private async resync(reason: string): Promise<void> {
    this.resyncNeeded = undefined;
    this.update({ state: 'Resynchronizing', health: 'Warning', reason: `resynchronising: ${reason}` });
    try {
      await this.step('resynchronisation', () => this.o.replicator.resync(reason));
      this.afterPoint();
    } catch (e) {
      this.checkStopped();
      this.resyncNeeded = reason;
      this.update({ state: 'ResynchronizationRequired', health: categoryOf(e) === 'recoverable' ? 'Warning' : 'Critical', reason: errorInfo(e).message, lastError: errorInfo(e) });
      if (categoryOf(e) !== 'recoverable' && categoryOf(e) !== 'resyncRequired') await this.sleep(Number.MAX_SAFE_INTEGER);
    }
  }

  /** Run one step under the retry policy, reporting attempts as health. */
  private step<T>(what: string, op: () => Promise<T>): Promise<T> {
    const retrier = new Retrier({
      ...this.o.retry,
      clock: this.clock,
      signal: this.stopper.signal,
      what: `${what} of ${this.o.what ?? this.o.source.diskId}`,
      onAttemptFailed: (r: RetryReport) => {
        if (!r.willRetry) return;
        this.update({
          health: r.health, lastError: errorInfo(r.error), stuck: r.stuck === undefined ? undefined : r.stuck.reason,
          reason: `${errorInfo(r.error).message}; retrying at ${new Date(r.nextAttemptAt!).toISOString()}`,
        });
      },
    });
    return retrier.run(async (ctx) => {
      const before = this.o.replicator.status.nextCycleSeq;
      try {
        return await op();
      } finally {
        if (this.o.replicator.status.nextCycleSeq > before) ctx.progress();
        this.refreshPass();
      }
    });
  }

  /** A point was recorded: back to Protected, with fresh metrics. */
  private afterPoint(): void {
    const now = this.clock.now();
    const p = this.o.replicator.status;
    const h: DiskHealthReport = diskHealth({
      // The current segment's header is not backlog.
      now, diskSizeBytes: this.o.source.sizeBytes, pendingLogBytes: Math.max(0, this.o.source.pendingLogBytes() - SEGMENT_HEADER_SIZE),
      lastPointTime: p.lastSyncAt, copyFrequencyMs: this.o.frequencyMs, churn: this.churn, shipping: this.shipping,
    });
    this.update({
      state: 'Protected', health: h.health, reason: h.health === 'Normal' ? undefined : h.reason,
      lastPointAt: p.lastSyncAt, rpoMs: h.rpo.currentRpoMs, churnBytesPerSecond: this.churn?.bytesPerSecond,
      logBudgetPercent: Math.round(100 * h.budget.usedFraction), projectedRpoMs: h.rpo.projectedRpoMs,
      lastError: undefined, stuck: undefined,
    });
  }

  private refreshPass(): void {
    const p = this.o.replicator.status;
    const total = p.regions.reduce((s, r) => s + r.length, 0);
    this.update({ phase: p.phase, stats: p.stats, passPercent: total === 0 ? undefined : Math.floor((100 * p.doneBytes) / total) });
  }

  /** Sleep, woken early by stop() or requestResync(). */
  private async sleep(ms: number): Promise<void> {
    this.checkStopped();
    // A request made while the loop was busy must not wait a whole interval.
    if (this.manualResync !== undefined) return;
    const wake = new AbortController();
    this.wake = wake;
    const onStop = (): void => wake.abort();
    this.stopper.signal.addEventListener('abort', onStop, { once: true });
    try {
      await this.clock.sleep(Math.min(ms, 2 ** 31 - 1), wake.signal);
    } catch {
      // Woken early.
    } finally {
      this.stopper.signal.removeEventListener('abort', onStop);
      this.wake = undefined;
    }
    this.checkStopped();
  }

  private checkStopped(): void {
    if (this.stopper.signal.aborted) throw this.stopper.signal.reason;
  }

  private update(change: Partial<LoopStatus>): void {
    this.current = { ...this.current, ...change, phase: change.phase ?? this.o.replicator.phase };
    try {
      this.o.onStatus?.(this.current);
    } catch {
      // An observer must not break replication.
    }
  }
}

function errorInfo(e: unknown): { code: string; message: string; hint: string | undefined } {
  if (LifeboatError.isInstance(e)) return { code: e.code, message: e.message, hint: e.hint };
  return { code: 'unknown', message: e instanceof Error ? e.message : String(e), hint: undefined };
}
