/**
 * The provider of `RecoveryPlan`: the plain-spec object provider for the
 * plan itself, plus `activeLocation` (docs/pulumi.md §11). The output
 * `activeLocation` is where the plan's items run now (`primary`, `recovery`
 * or `mixed`), read from the vault; the input, when declared, is where they
 * should run: create and update move them there (plan-location.ts), and
 * `refresh` records the live value, so a failover made outside Pulumi shows
 * as drift and the next `up` reports it against the program.
 */

import type * as pulumi from '@pulumi/pulumi';
import { isNotFound } from '../client';
import { KINDS } from './kinds';
import { objectProvider } from './object-provider';
import { convergeLocation, planItems, type Location } from './plan-location';
import { type ReplicationState } from '../states';
import { type ProviderContext } from './provider-context';
import { resolveConnection } from './connection';
import { pick, str, type Props } from './props';
import { ResourceInitError } from './engine-error';
import { LifeboatError } from '../errors';
import { containsUnknown } from './spec-check';

/** Inputs of the provider, not of the vault's plan. */
export const PLAN_OPTION_KEYS = ['activeLocation', 'operationTimeoutMinutes'] as const;

/** States of an item whose failover waits for its commit or reprotect (or is under way). */
const UNSETTLED: ReadonlySet<ReplicationState> = new Set(['FailoverInProgress', 'FailedOver', 'FailoverCommitted', 'Reprotecting']);

/** Default deadline of moving a plan, minutes. */
export const DEFAULT_PLAN_TIMEOUT_MINUTES = 30;

function without(p: Props, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...p };
  for (const k of keys) delete out[k];
  return out;
}

export function recoveryPlanProvider(ctx: ProviderContext): pulumi.dynamic.ResourceProvider<Props, Props> {
  const base = objectProvider(KINDS.recoveryPlan, ctx);
  const connect = () => resolveConnection(ctx.sources);

  /**
   * Where the plan's items run and whether they are settled there (no
   * failover waiting for its commit or reprotect); undefined if the plan is gone.
   */
  const liveLocation = async (vault: string, name: string): Promise<{ activeLocation: string; locationSettled: boolean } | undefined> => {
    const c = connect();
    let env;
    try {
      env = await c.client.getRecoveryPlan(vault, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    let settled = env.status.activeLocation !== 'mixed';
    for (const item of planItems(env.spec)) {
      if (!settled) break;
      try {
        settled = !UNSETTLED.has((await c.client.getProtectedItem(vault, item)).status.replicationState);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return { activeLocation: env.status.activeLocation, locationSettled: settled };
  };

  /** Move the items if the input declares a location; the outputs with the live location and the options. */
  const settle = async (inputs: Props, outs: Props | undefined): Promise<Props> => {
    const vault = str(inputs, 'vault');
    const name = str(inputs, 'name');
    const want = inputs.activeLocation as Location | undefined;
    if (want !== undefined) {
      const minutes = typeof inputs.operationTimeoutMinutes === 'number' ? inputs.operationTimeoutMinutes : DEFAULT_PLAN_TIMEOUT_MINUTES;
      await convergeLocation(connect(), ctx, vault, name, want, ctx.clock.now() + minutes * 60_000);
    }
    const live = await liveLocation(vault, name);
    return { ...outs, ...pick(inputs, ['operationTimeoutMinutes']), ...live };
  };

  return {
    async check(olds, news) {
      const r = await base.check!(olds, without(news, PLAN_OPTION_KEYS));
      const failures = [...(r.failures ?? [])];
      const loc = news.activeLocation;
      if (loc !== undefined && !containsUnknown(loc) && loc !== 'primary' && loc !== 'recovery') {
        failures.push({ property: 'activeLocation', reason: "valid: 'primary' (the plan's items run at their primary site), 'recovery' (at the recovery site)" });
      }
      const op = news.operationTimeoutMinutes;
      if (op !== undefined && !containsUnknown(op) && (typeof op !== 'number' || !(op > 0))) failures.push({ property: 'operationTimeoutMinutes', reason: 'must be a number of minutes > 0' });
      return { inputs: news, failures };
    },
    async diff(id, olds, news) {
      const d = await base.diff!(id, without(olds, PLAN_OPTION_KEYS), without(news, PLAN_OPTION_KEYS));
      // olds has the live location at the last up or refresh: a different one, or a failover there not yet committed and reprotected, is work.
      const move = news.activeLocation !== undefined && (containsUnknown(news.activeLocation) || news.activeLocation !== olds.activeLocation || olds.locationSettled === false);
      const timeout = news.operationTimeoutMinutes !== olds.operationTimeoutMinutes;
      return { ...d, changes: d.changes === true || move || timeout };
    },
    async create(inputs) {
      const r = await base.create(without(inputs, PLAN_OPTION_KEYS));
      try {
        return { id: r.id, outs: await settle(inputs, r.outs) };
      } catch (e) {
        // The plan exists: keep the resource (partial state) so that the next `up` updates it, which moves on from where the items are.
        const le = LifeboatError.isInstance(e) ? e : undefined;
        throw new ResourceInitError(le?.code ?? 'pulumi.planMoveInterrupted', le?.message ?? String(e), r.id, { ...r.outs, ...pick(inputs, ['operationTimeoutMinutes']) }, { cause: e, ...(le?.hint === undefined ? {} : { hint: le.hint }) });
      }
    },
    async read(id, props) {
      const p = props ?? {};
      const r = await base.read!(id, without(p, PLAN_OPTION_KEYS));
      if (r.id === undefined || r.id === '') return r;
      const live = await liveLocation(str(p, 'vault'), str(p, 'name'));
      const options = pick(p, ['operationTimeoutMinutes']);
      // The live location becomes the input too (drift), unless the items are split between the sites.
      const loc = live?.activeLocation === 'primary' || live?.activeLocation === 'recovery' ? { activeLocation: live.activeLocation } : {};
      return { id: r.id, props: { ...r.props, ...options, ...live }, inputs: { ...r.inputs, ...options, ...loc } };
    },
    async update(id, olds, news) {
      const r = await base.update!(id, without(olds, PLAN_OPTION_KEYS), without(news, PLAN_OPTION_KEYS));
      return { outs: await settle(news, r.outs) };
    },
    async delete(id, props) {
      await base.delete!(id, without(props, PLAN_OPTION_KEYS));
    },
  };
}
