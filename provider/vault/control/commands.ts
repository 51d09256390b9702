/**
 * The per-host command queue (vault → agent), persisted in the store.
 *
 * Agents make outbound connections only: they long-poll for commands,
 * acknowledge them by reporting `Running` (with progress), and finish them
 * with `Succeeded` + result or `Failed` + error. Delivery is at least once: a
 * delivered command whose agent neither acknowledges nor reports within the
 * lease is delivered again (agent restarted, response lost), so agents must
 * treat a command id they already know as the same command, and repeat its
 * final report if it already finished.
 *
 * Command states: Pending → Delivered → Running → Succeeded | Failed, with
 * Delivered/Running → Delivered again when the lease ends, and any
 * non-final state → Cancelled when the vault withdraws it (its job was
 * cancelled).
 */

import { randomUUID } from 'node:crypto';
import type { CommandRecord, CommandState, JsonObject } from '../store/records';
import { keyOf } from '../store/sqlite/sqlite-store';
import { topics } from './notifier';
import type { VaultServices } from './services';

/** Final command states. */
export function isFinalCommandState(s: CommandState): boolean {
  return s === 'Succeeded' || s === 'Failed' || s === 'Cancelled';
}

export interface EnqueueOptions {
  readonly vault: string;
  readonly host: string;
  readonly type: string;
  readonly payload: JsonObject;
  /** The job waiting for it. @default none */
  readonly jobId?: string;
}

/** Queue a command and wake the host's long-poll. Joins the caller's transaction, if any. */
export function enqueueCommand(services: VaultServices, options: EnqueueOptions): CommandRecord {
  const now = services.clock.now();
  const c: CommandRecord = {
    id: `cmd-${randomUUID()}`,
    vault: keyOf(options.vault),
    host: keyOf(options.host),
    ...(options.jobId === undefined ? {} : { jobId: options.jobId }),
    type: options.type,
    payload: options.payload,
    state: 'Pending',
    progress: 0,
    deliveries: 0,
    createdAt: now,
    updatedAt: now,
  };
  services.store.insertCommand(c);
  services.notifier.notify(topics.hostCommands(c.vault, c.host));
  return c;
}

/**
 * Hand the host its deliverable commands (Pending, or Delivered/Running with
 * an expired lease), oldest first, marking them Delivered with a new lease.
 * Atomic; returns [] when there is nothing to deliver.
 */
export function takeCommands(services: VaultServices, vault: string, host: string, max = 20): CommandRecord[] {
  return services.store.transaction(() => {
    const now = services.clock.now();
    const due = services.store.commandsOfHost(vault, host, ['Pending', 'Delivered', 'Running'])
      .filter((c) => c.state === 'Pending' || (c.leaseExpiresAt ?? 0) <= now)
      .slice(0, max);
    return due.map((c) => {
      const next: CommandRecord = { ...c, state: 'Delivered', deliveries: c.deliveries + 1, leaseExpiresAt: now + services.timings.commandLeaseMs, updatedAt: now };
      services.store.updateCommand(next);
      return next;
    });
  });
}

/** Ms until the earliest lease of the host's delivered commands ends, or undefined if none is out. */
export function nextLeaseExpiry(services: VaultServices, vault: string, host: string): number | undefined {
  const now = services.clock.now();
  const leases = services.store.commandsOfHost(vault, host, ['Delivered', 'Running']).map((c) => (c.leaseExpiresAt ?? now) - now);
  return leases.length === 0 ? undefined : Math.max(0, Math.min(...leases));
}

/** An agent's report on a command (schemas/command-update.schema.json). */
export interface CommandUpdate {
  readonly state: 'Running' | 'Succeeded' | 'Failed';
  readonly progress?: number;
  readonly message?: string;
  readonly result?: JsonObject;
  readonly error?: JsonObject;
}

/** What applying a report did. */
export type CommandUpdateOutcome =
  | { readonly kind: 'notFound' }
  | { readonly kind: 'applied'; readonly command: CommandRecord }
  /** The command was withdrawn; the agent should stop it. */
  | { readonly kind: 'cancelled'; readonly command: CommandRecord }
  /** Same final report again: accepted, nothing changed. */
  | { readonly kind: 'repeated'; readonly command: CommandRecord }
  /** A different final report for a finished command: refused. */
  | { readonly kind: 'conflict'; readonly command: CommandRecord };

/**
 * Apply an agent's report to one of its commands. Idempotent for repeated
 * final reports. A command of another host is `notFound`.
 */
export function applyCommandUpdate(services: VaultServices, vault: string, host: string, id: string, update: CommandUpdate): CommandUpdateOutcome {
  const outcome = services.store.transaction((): CommandUpdateOutcome => {
    const c = services.store.getCommand(id);
    if (c === undefined || c.vault !== keyOf(vault) || c.host !== keyOf(host)) return { kind: 'notFound' };
    if (c.state === 'Cancelled') return { kind: 'cancelled', command: c };
    if (c.state === 'Succeeded' || c.state === 'Failed') {
      return c.state === update.state ? { kind: 'repeated', command: c } : { kind: 'conflict', command: c };
    }
    const now = services.clock.now();
    const next: CommandRecord = {
      ...c,
      state: update.state,
      progress: update.state === 'Succeeded' ? 100 : update.progress ?? c.progress,
      ...(update.message === undefined ? {} : { message: update.message }),
      ...(update.result === undefined ? {} : { result: update.result }),
      ...(update.error === undefined ? {} : { error: update.error }),
      leaseExpiresAt: now + services.timings.commandLeaseMs,
      updatedAt: now,
    };
    services.store.updateCommand(next);
    return { kind: 'applied', command: next };
  });
  if (outcome.kind === 'applied') services.notifier.notify(topics.command(id));
  return outcome;
}

/** Withdraw every unfinished command of a job but those in `keep`. Returns how many. */
export function cancelCommandsOfJob(services: VaultServices, jobId: string, keep: ReadonlySet<string> = new Set()): number {
  const cancelled = services.store.transaction(() => {
    const now = services.clock.now();
    const open = services.store.commandsOfJob(jobId).filter((c) => !isFinalCommandState(c.state) && !keep.has(c.id));
    for (const c of open) services.store.updateCommand({ ...c, state: 'Cancelled', updatedAt: now });
    return open;
  });
  for (const c of cancelled) services.notifier.notify(topics.command(c.id));
  return cancelled.length;
}
