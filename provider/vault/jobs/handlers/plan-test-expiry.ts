/**
 * Expiry of a plan's test failover (docs/recovery-plans.md §8): at
 * `status.testFailover.expiresAt` the vault starts `plan.testCleanup`
 * itself. One timer per plan on the vault's clock, armed when a test
 * failover with an expiry is requested and re-armed from the stored plans
 * when the job engine starts, so the expiry survives vault restarts (an
 * expiry that passed while the vault was down fires at start). Timers end
 * with the engine.
 */

import { LifeboatError } from '../../../errors';
import type { Timer } from '../../../clock';
import { MINUTE } from '../../../units';
import { planStatus, requestPlanOperation } from '../../control/plans';
import type { VaultServices } from '../../control/services';
import type { EngineStartContext, JobControl } from '../job-handler';

interface Armed {
  readonly jobs: JobControl;
  readonly signal: AbortSignal;
  readonly timers: Map<string, Timer>;
}

const engines = new WeakMap<VaultServices, Armed>();

/** A plan waiting for its cleanup while another plan job runs tries again this much later. */
const RETRY_MS = MINUTE;

/** Arm the timers of every stored plan with an expiring test failover (engine start). Idempotent. */
export function startPlanTestExpiry(ctx: EngineStartContext): void {
  const armed: Armed = { jobs: ctx.jobs, signal: ctx.signal, timers: new Map() };
  engines.set(ctx.services, armed);
  ctx.signal.addEventListener('abort', () => {
    for (const t of armed.timers.values()) t.cancel();
    armed.timers.clear();
  }, { once: true });
  for (const plan of ctx.services.store.listObjects(undefined, 'recoveryPlan')) armPlanTestExpiry(ctx.services, plan.vault, plan.name);
}

/**
 * Arm (or re-arm) the expiry timer of a plan from its stored status; no-op
 * when the plan has no expiring test failover or the engine has not started.
 */
export function armPlanTestExpiry(services: VaultServices, vault: string, plan: string, delayMs?: number): void {
  const armed = engines.get(services);
  if (armed === undefined || armed.signal.aborted) return;
  const o = services.store.getObject(vault, 'recoveryPlan', plan);
  const expiresAt = o === undefined ? undefined : planStatus(o).testFailover?.expiresAt;
  const key = `${vault}/${plan.toLowerCase()}`;
  armed.timers.get(key)?.cancel();
  armed.timers.delete(key);
  if (expiresAt === undefined) return;
  const wait = delayMs ?? Math.max(0, Date.parse(expiresAt) - services.clock.now());
  armed.timers.set(key, services.clock.setTimer(wait, () => {
    armed.timers.delete(key);
    expire(services, armed, vault, plan, expiresAt);
  }));
}

function expire(services: VaultServices, armed: Armed, vault: string, plan: string, expiresAt: string): void {
  const o = services.store.getObject(vault, 'recoveryPlan', plan);
  // Cleaned up (or tested again) meanwhile: this timer's test failover is gone.
  if (o === undefined || planStatus(o).testFailover?.expiresAt !== expiresAt) return;
  try {
    const job = requestPlanOperation(services, armed.jobs, vault, o.name, 'testCleanup', { automatic: true });
    services.log('info', `recovery plan ${o.name}: test failover expired at ${expiresAt}; started ${job.type} (job ${job.id})`);
    armed.jobs.kick(job.id);
  } catch (e) {
    const code = LifeboatError.isInstance(e) ? e.code : 'internal.error';
    services.log('warn', `recovery plan ${o.name}: test failover expired but its cleanup could not start (${code}: ${e instanceof Error ? e.message : String(e)}); trying again in a minute`);
    armPlanTestExpiry(services, vault, o.name, RETRY_MS);
  }
}
