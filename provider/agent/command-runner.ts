/**
 * The agent's command channel (docs/vault-api.md §9, docs/agent.md §5): a
 * long-poll loop that takes the host's commands from the vault, runs each
 * with its handler, keeps its lease alive with `Running` reports, and sends
 * the final report until the vault has it.
 *
 * Delivery is at least once: a command id already known is the same command
 * (a running one gets a fresh `Running` report, a finished one its final
 * report again); a command not known — after an agent restart — is run
 * again, which is safe because every handler is idempotent (keyed by the
 * item's uid). When the vault answers `cancelRequested`, the handler's signal
 * is aborted and its outcome is reported as the vault expects.
 *
 * `stop()` abandons running commands without reporting them. Each command
 * is journaled before it runs and forgotten once the vault has its final
 * report, so a restarted agent resumes the commands it had at once (the
 * vault would otherwise deliver them again only when their lease expires).
 */

import { type Clock, repeat, systemClock, type Timer } from '../clock';
import { LifeboatError, categoryOf } from '../errors';
import { backoffDelay } from '../replication/retry';
import { type CommandJournal, noCommandJournal } from './command-journal';
import { type AgentCommand, type CommandUpdate, type VaultChannel } from './vault-channel';

/** What a handler gets besides the command. */
export interface CommandContext {
  /** Aborted when the vault withdraws the command or the agent stops. */
  readonly signal: AbortSignal;
  /** Report progress (0–100) and what is being done; sent to the vault (throttled). */
  progress(percent: number, message?: string): void;
}

/** Runs one command type; resolves with its result, or throws (the error's category goes to the vault). */
export type CommandHandler = (command: AgentCommand, ctx: CommandContext) => Promise<Readonly<Record<string, unknown>>>;

export type AgentLogger = (level: 'info' | 'warn' | 'error', message: string) => void;

/** The part of the vault channel the runner uses. */
export type CommandChannel = Pick<VaultChannel, 'poll' | 'reportCommand'>;

export interface CommandRunnerOptions {
  readonly channel: CommandChannel;
  /** Handlers by command type; an unknown type fails with `agent.unknownCommand` (non-recoverable). */
  readonly handlers: Readonly<Record<string, CommandHandler>>;
  /** Commands taken and not finished, resumed at `start`. @default none kept */
  readonly journal?: CommandJournal;
  /** The vault's command lease; `Running` reports go out three times per lease. */
  readonly leaseSeconds: number;
  /** Long-poll wait, seconds (0–60). @default 30 */
  readonly waitSeconds?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default Math.random */
  readonly random?: () => number;
  /** Delays between failed polls or reports, ms. @default 1, 2, 4, 8 s then every 15 s (with 10 % jitter) */
  readonly retrySchedule?: readonly number[];
  /** The vault refused the agent's credentials: the loop has stopped. Must not throw. */
  readonly onAuthFailure: (e: LifeboatError) => void;
  /** A poll succeeded after failing, or failed after succeeding. Must not throw. @default none */
  readonly onConnection?: (connected: boolean, error?: unknown) => void;
  readonly log: AgentLogger;
}

interface Entry {
  readonly command: AgentCommand;
  keeper: Timer | undefined;
  readonly abort: AbortController;
  progress: number;
  message: string | undefined;
  final: CommandUpdate | undefined;
  finishedAt: number | undefined;
  lastSent: number;
}

const KEEP_FINISHED_MS = 60 * 60 * 1000;
const PROGRESS_THROTTLE_MS = 1000;

/** The command loop of one agent. */
export class CommandRunner {
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  private connected = true;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly o: CommandRunnerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Resume the journaled commands, then start polling. Idempotent. */
  start(): void {
    this.loop ??= (async () => {
      try {
        for (const c of await this.journal.list()) {
          this.o.log('info', `resuming command ${c.type} ${c.id} taken before the agent restarted`);
          this.accept(c);
        }
      } catch (e) {
        this.o.log('warn', `cannot read the command journal: ${e instanceof Error ? e.message : String(e)}`);
      }
      await this.run();
    })();
  }

  private get journal(): CommandJournal {
    return this.o.journal ?? noCommandJournal;
  }

  /**
   * Stop polling; running handlers get their signal aborted and are not
   * reported (nor waited for). Resolves when the loop and the reports in
   * flight ended.
   */
  async stop(): Promise<void> {
    this.stopper.abort(new LifeboatError('agent.stopping', 'recoverable', 'the agent is stopping'));
    for (const e of this.entries.values()) {
      e.keeper?.cancel();
      if (e.final === undefined) e.abort.abort(this.stopper.signal.reason);
    }
    await this.loop;
    await Promise.allSettled([...this.pending]);
  }

  /** Commands running now (for status). */
  running(): readonly { readonly id: string; readonly type: string; readonly progress: number; readonly message: string | undefined }[] {
    return [...this.entries.values()].filter((e) => e.final === undefined).map((e) => ({ id: e.command.id, type: e.command.type, progress: e.progress, message: e.message }));
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopper.signal.aborted) {
      let commands: readonly AgentCommand[];
      try {
        commands = await this.o.channel.poll(this.o.waitSeconds ?? 30, this.stopper.signal);
      } catch (e) {
        if (this.stopper.signal.aborted) break;
        if (isAuthRefusal(e)) {
          this.o.onAuthFailure(e as LifeboatError);
          break;
        }
        failures++;
        this.setConnected(false, e);
        await this.sleep(this.retryDelay(failures));
        continue;
      }
      failures = 0;
      this.setConnected(true);
      for (const c of commands) this.accept(c);
      this.prune();
    }
  }

  private accept(command: AgentCommand): void {
    const known = this.entries.get(command.id);
    if (known !== undefined) {
      // Delivered again: the lease ran out (vault restarted, report lost).
      this.track(known.final === undefined ? this.send(known, { state: 'Running', progress: known.progress, ...(known.message === undefined ? {} : { message: known.message }) }) : this.sendFinal(known));
      return;
    }
    const entry: Entry = { command, keeper: undefined, abort: new AbortController(), progress: 0, message: undefined, final: undefined, finishedAt: undefined, lastSent: 0 };
    this.entries.set(command.id, entry);
    this.o.log('info', `command ${command.type} ${command.id}${command.deliveries > 1 ? ` (delivery ${command.deliveries})` : ''}: started`);
    // Not tracked: `stop()` does not wait for handlers (they see their signal aborted).
    void this.execute(entry);
  }

  private async execute(entry: Entry): Promise<void> {
    const { command } = entry;
    await this.journal.save(command).catch((e: unknown) => this.o.log('warn', `cannot journal command ${command.id}: ${e instanceof Error ? e.message : String(e)}`));
    await this.send(entry, { state: 'Running', progress: 0 });
    const leaseEvery = Math.max(1000, (this.o.leaseSeconds * 1000) / 3);
    const keeper = repeat(this.clock, leaseEvery, () => {
      if (entry.final === undefined && this.clock.now() - entry.lastSent >= leaseEvery * 0.9) {
        this.track(this.send(entry, { state: 'Running', progress: entry.progress, ...(entry.message === undefined ? {} : { message: entry.message }) }));
      }
    }, () => undefined);
    entry.keeper = keeper;
    let update: CommandUpdate;
    try {
      // Withdrawn already (the answer to the acknowledgement said so): do not start it.
      if (entry.abort.signal.aborted) throw entry.abort.signal.reason;
      const handler = this.o.handlers[command.type];
      if (handler === undefined) {
        throw new LifeboatError('agent.unknownCommand', 'nonRecoverable', `this agent does not know command type ${command.type}`, {
          hint: 'run the same Lifeboat version on the vault and the agents',
        });
      }
      const result = await handler(command, {
        signal: entry.abort.signal,
        progress: (percent, message) => {
          entry.progress = Math.max(0, Math.min(100, Math.floor(percent)));
          entry.message = message?.slice(0, 1024);
          if (this.clock.now() - entry.lastSent >= PROGRESS_THROTTLE_MS) {
            this.track(this.send(entry, { state: 'Running', progress: entry.progress, ...(entry.message === undefined ? {} : { message: entry.message }) }));
          }
        },
      });
      update = { state: 'Succeeded', result };
      if (this.stopper.signal.aborted) {
        this.entries.delete(command.id);
        return;
      }
    } catch (e) {
      if (this.stopper.signal.aborted) {
        this.entries.delete(command.id);
        return;
      }
      update = { state: 'Failed', error: errorInfo(e) };
    } finally {
      keeper.cancel();
    }
    entry.final = update;
    entry.finishedAt = this.clock.now();
    const outcome = update.state === 'Failed' ? `failed: ${update.error.message} [${update.error.code}]` : 'succeeded';
    this.o.log(update.state === 'Failed' ? 'warn' : 'info', `command ${command.type} ${command.id}: ${outcome}`);
    await this.sendFinal(entry);
  }

  /** Send the final report until the vault has it (or no longer knows the command). */
  private async sendFinal(entry: Entry): Promise<void> {
    for (let attempt = 1; !this.stopper.signal.aborted; attempt++) {
      try {
        await this.o.channel.reportCommand(entry.command.id, entry.final!);
        await this.journal.remove(entry.command.id).catch(() => undefined);
        return;
      } catch (e) {
        if (this.stopper.signal.aborted) return;
        if (LifeboatError.isInstance(e) && (e.code === 'object.notFound' || e.code === 'command.alreadyFinished')) {
          this.o.log('warn', `command ${entry.command.id}: final report not taken (${e.code})`);
          await this.journal.remove(entry.command.id).catch(() => undefined);
          return;
        }
        if (isAuthRefusal(e)) return;
        if (LifeboatError.isInstance(e) && e.category === 'invalidInput') {
          // The vault refuses the report's shape: retrying it cannot help. Say so in a report it takes.
          if (entry.final!.state === 'Failed' && entry.final!.error.code === 'agent.reportRefused') {
            this.o.log('error', `command ${entry.command.id}: the vault refuses its final report: ${e.message}`);
            return;
          }
          entry.final = { state: 'Failed', error: { code: 'agent.reportRefused', category: 'bug', message: `the vault refused the agent's report: ${e.message}`.slice(0, 4000), hint: 'run the same Lifeboat version on the vault and the agents' } };
          continue;
        }
        await this.sleep(this.retryDelay(attempt));
      }
    }
  }

  /** A `Running` report; a failure is only logged (the next one, or the lease, follows). */
  private async send(entry: Entry, update: CommandUpdate): Promise<void> {
    if (entry.final !== undefined && update.state === 'Running') return;
    entry.lastSent = this.clock.now();
    try {
      const answer = await this.o.channel.reportCommand(entry.command.id, update);
      if (answer.cancelRequested && !entry.abort.signal.aborted) {
        this.o.log('info', `command ${entry.command.type} ${entry.command.id}: withdrawn by the vault`);
        entry.abort.abort(new LifeboatError('agent.commandCancelled', 'nonRecoverable', `command ${entry.command.id} was withdrawn by the vault`));
      }
    } catch (e) {
      if (LifeboatError.isInstance(e) && e.code === 'object.notFound') {
        entry.abort.abort(e);
        return;
      }
      if (!this.stopper.signal.aborted) this.o.log('warn', `command ${entry.command.id}: report failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private setConnected(connected: boolean, error?: unknown): void {
    if (connected === this.connected) return;
    this.connected = connected;
    this.o.log(connected ? 'info' : 'warn', connected ? 'vault reachable again' : `vault unreachable: ${error instanceof Error ? error.message : String(error)}`);
    this.o.onConnection?.(connected, error);
  }

  private retryDelay(failures: number): number {
    return backoffDelay(failures, {
      schedule: this.o.retrySchedule ?? [1000, 2000, 4000, 8000],
      steadyMs: 15_000,
      jitterRatio: 0.1,
      random: this.o.random ?? Math.random,
    });
  }

  private async sleep(ms: number): Promise<void> {
    try {
      await this.clock.sleep(ms, this.stopper.signal);
    } catch {
      // stopping
    }
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [id, e] of this.entries) if (e.finishedAt !== undefined && now - e.finishedAt > KEEP_FINISHED_MS) this.entries.delete(id);
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}

/** The vault refused the agent's credentials (token unknown, host unregistered). */
export function isAuthRefusal(e: unknown): boolean {
  return LifeboatError.isInstance(e) && e.code.startsWith('auth.');
}

const CODE_PATTERN = /^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)+$/;

/**
 * An error as the vault takes it from agents (`errorInfo` of
 * schemas/common.schema.json): a code of the dotted pattern (others become
 * `agent.error`, keeping the original in the message), the category, and
 * message and hint cut to the schema's limits.
 */
export function errorInfo(e: unknown): { code: string; category: string; message: string; hint?: string } {
  const message = (e instanceof Error ? e.message : String(e)).slice(0, 4000);
  if (LifeboatError.isInstance(e)) {
    const ok = CODE_PATTERN.test(e.code) && e.code.length <= 128;
    return {
      code: ok ? e.code : 'agent.error',
      category: e.category,
      message: ok ? message : `${message} [${e.code}]`.slice(0, 4000),
      ...(e.hint === undefined ? {} : { hint: e.hint.slice(0, 4000) }),
    };
  }
  return { code: 'agent.internalError', category: categoryOf(e), message };
}
