/**
 * Automatic resynchronisation (DESIGN.md §3.5): an item that needs a resync
 * (ResynchronizationRequired, reported by its agent) and whose policy says
 * `resync.automatic` gets a `resync.run` job as soon as the policy's resync
 * window is open, in the time zone of the item's site. Outside the window it
 * waits (health Warning from the agent); an operator may start it at any
 * time with POST …/resync.
 */

import { type Clock, type Timer, repeat } from '../../clock';
import { DailyWindow } from '../../replication/window';
import { MINUTE } from '../../units';
import { itemStatus } from './item-status';
import { activeJobOf, requestResync } from './protected-items';
import type { JobStarter, VaultServices } from './services';
import { effectivePolicy, type ProtectedItemSpec, type ReplicationPolicySpec, type SiteSpec } from './specs';

export interface ResyncSchedulerOptions {
  readonly services: VaultServices;
  readonly jobs: JobStarter;
  /** How often items are checked. @default 1 minute */
  readonly checkEveryMs?: number;
}

export class ResyncScheduler {
  private readonly services: VaultServices;
  private readonly jobs: JobStarter;
  private readonly clock: Clock;
  private readonly every: number;
  private timer: Timer | undefined;

  constructor(options: ResyncSchedulerOptions) {
    this.services = options.services;
    this.jobs = options.jobs;
    this.clock = options.services.clock;
    this.every = options.checkEveryMs ?? MINUTE;
  }

  start(): void {
    this.timer ??= repeat(this.clock, this.every, () => this.check(), (e) => {
      this.services.log('error', `resync scheduler: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  stop(): void {
    this.timer?.cancel();
  }

  /** Start the resyncs that are due now. Returns the ids of the jobs started. */
  check(): string[] {
    const { store } = this.services;
    const now = this.clock.now();
    const started: string[] = [];
    for (const v of store.listObjects(undefined, 'vault')) {
      for (const item of store.listObjects(v.vault, 'protectedItem')) {
        if (itemStatus(item).replicationState !== 'ResynchronizationRequired') continue;
        if (activeJobOf(this.services, v.vault, item.name) !== undefined) continue;
        const spec = item.spec as unknown as ProtectedItemSpec;
        const policyObj = store.getObject(v.vault, 'replicationPolicy', spec.policy);
        if (policyObj === undefined) continue;
        const policy = effectivePolicy(policyObj.spec as unknown as ReplicationPolicySpec);
        if (!policy.resync.automatic) continue;
        const site = store.getObject(v.vault, 'site', spec.site)?.spec as unknown as SiteSpec | undefined;
        const window = new DailyWindow({ ...policy.resync.window, timeZone: site?.timeZone ?? 'UTC' });
        if (!window.contains(now)) continue;
        const job = requestResync(this.services, this.jobs, v.vault, item.name, { automatic: true, window: window.toString() });
        this.jobs.kick(job.id);
        started.push(job.id);
        this.services.log('info', `item ${item.name} (vault ${v.name}): automatic resync started inside the window ${window.toString()}`);
      }
    }
    return started;
  }
}
