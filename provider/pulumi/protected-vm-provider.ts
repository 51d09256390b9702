/**
 * The provider of `ProtectedVm`: a protected item of the vault.
 *
 * - create PUTs the item (which starts `protection.enable`) and returns once
 *   protection is enabled (the item is past `EnablingProtection`); with
 *   `waitForInitialReplication` it waits for `Protected`, logging progress.
 *   Any failure after the PUT carries the resource id and the outputs so far
 *   (ResourceInitError): the engine keeps the resource, and the next `up`
 *   updates it, which PUTs the same spec (the vault starts no second job
 *   while one runs) and waits for the same job.
 * - delete refuses an item that is failed over, cancels a running enable,
 *   starts `protection.disable` and waits for it.
 */

import type * as pulumi from '@pulumi/pulumi';
import {
  isNotFound, VaultApiError, type JobInfo, type ObjectEnvelope, type ProtectedItemSpec, type ProtectedItemStatus,
} from '../client';
import { LifeboatError, NonRecoverableError } from '../errors';
import { type ReplicationState } from '../states';
import { resolveConnection, type ResolvedConnection } from './connection';
import { ResourceInitError } from './engine-error';
import { alreadyExists, checkControl, objectId, unknownInputs } from './object-provider';
import { diskBytes, gib, progressLine, sampleOf, type ProgressSample } from './progress';
import { type ProviderContext } from './provider-context';
import { CONTROL_KEYS, pick, str, type Props } from './props';
import { checkBody, checkName, containsUnknown } from './spec-check';
import { changedKeys, diffByRules } from './spec-diff';

/** Members of the item's API body. */
export const ITEM_SPEC_KEYS = ['site', 'cloud', 'vm', 'policy', 'target', 'disks', 'targetVm'] as const;
/** Inputs that steer the provider, not the vault. */
export const ITEM_OPTION_KEYS = ['targetKind', 'waitForInitialReplication', 'operationTimeoutMinutes', 'replacementReason'] as const;
/** Outputs read from the item's status. */
export const ITEM_STATUS_KEYS = [
  'replicationState', 'health', 'initialReplicationPercent', 'lastReplicatedTime', 'rpoSeconds', 'activeLocation', 'sourceHost', 'targetHost',
] as const;
export const ITEM_OUTPUT_KEYS = ['uid', 'adopted', 'diskSizeBytes', 'enableJob', ...ITEM_STATUS_KEYS] as const;

/** Changing one of these replaces the item: a new protection, a full re-seed. */
export const ITEM_IDENTITY_KEYS = ['vault', 'name', 'site', 'cloud', 'vm', 'target', 'disks', 'targetKind'] as const;
const IDENTIFIERS = ['vault', 'name', 'site', 'cloud', 'vm', 'policy', 'target.site', 'target.host'];

/** Default deadline of enabling and of disabling, minutes. */
export const DEFAULT_OPERATION_TIMEOUT_MINUTES = 10;

/** States in which protection is not (or no longer) enabled. */
const NOT_ENABLED: ReadonlySet<ReplicationState> = new Set(['NotProtected', 'EnablingProtection', 'DisablingProtection']);
/** States of an item whose workload runs (or may run) on the recovery site. */
const FAILED_OVER: ReadonlySet<ReplicationState> = new Set(['FailoverInProgress', 'FailedOver', 'FailoverCommitted', 'Reprotecting']);

/** True if the item is failed over: destroying it would drop the running workload's protection. */
export function isFailedOver(status: ProtectedItemStatus): boolean {
  return status.activeLocation === 'recovery' || FAILED_OVER.has(status.replicationState);
}

/** The reason shown in a preview when an item is replaced. */
export function replacementText(changed: readonly string[], sizeBytes: number | undefined, why?: string): string {
  const size = sizeBytes === undefined || sizeBytes === 0 ? `every disk${why === undefined ? '' : ` (size unknown: ${why})`}` : `${gib(sizeBytes)} GiB`;
  return `changing ${changed.join(', ')} replaces the protection: it is disabled and enabled again, a full re-seed of ${size}`;
}

function minutes(p: Props, key: string, fallback: number): number {
  const v = p[key];
  return typeof v === 'number' && v > 0 ? v : fallback;
}

function waitTimeout(p: Props): number | undefined {
  const w = p.waitForInitialReplication;
  if (typeof w !== 'object' || w === null) return undefined;
  const t = (w as { timeoutMinutes?: unknown }).timeoutMinutes;
  return typeof t === 'number' ? t : DEFAULT_OPERATION_TIMEOUT_MINUTES;
}

/** The provider of ProtectedVm for one call's context. */
export function protectedVmProvider(ctx: ProviderContext): pulumi.dynamic.ResourceProvider<Props, Props> {
  const connect = (): ResolvedConnection => resolveConnection(ctx.sources);
  const get = async (c: ResolvedConnection, vault: string, name: string): Promise<ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus> | undefined> => {
    try {
      return await c.client.getProtectedItem(vault, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
  const outputs = (inputs: Props, env: ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus>, adopted: boolean, enableJob: unknown): Props => ({
    ...pick(inputs, [...CONTROL_KEYS, ...ITEM_OPTION_KEYS]),
    ...pick(env.spec as unknown as Props, ITEM_SPEC_KEYS),
    uid: env.uid,
    adopted,
    diskSizeBytes: diskBytes(env.status),
    ...(typeof enableJob === 'string' ? { enableJob } : {}),
    ...pick(env.status as unknown as Props, ITEM_STATUS_KEYS),
  });
  const rules = {
    keys: [...CONTROL_KEYS, ...ITEM_SPEC_KEYS, 'targetKind', 'waitForInitialReplication', 'operationTimeoutMinutes'],
    identity: [...ITEM_IDENTITY_KEYS],
    identifiers: IDENTIFIERS,
  };

  /** The job's first error, for messages. */
  const jobError = async (c: ResolvedConnection, vault: string, id: string | undefined): Promise<string> => {
    if (id === undefined) return '';
    try {
      const job = await c.client.getJob(vault, id);
      const e = job.errors[0];
      return e === undefined ? ` (job ${id} ${job.state})` : ` (job ${id} ${job.state}: ${e.message}${e.hint === undefined ? '' : `; ${e.hint}`})`;
    } catch {
      return ` (job ${id})`;
    }
  };

  /**
   * Wait until protection is enabled (or Protected with `untilProtected`).
   * Throws ResourceInitError carrying the id and the outputs so far on
   * failure or when the deadline passes.
   */
  const waitEnabled = async (c: ResolvedConnection, inputs: Props, adopted: boolean, jobId: string | undefined, untilProtected: number | undefined): Promise<Props> => {
    const vault = str(inputs, 'vault');
    const name = str(inputs, 'name');
    const id = objectId(vault, 'protectedItems', name);
    const enableMs = minutes(inputs, 'operationTimeoutMinutes', DEFAULT_OPERATION_TIMEOUT_MINUTES) * 60_000;
    const deadline = ctx.clock.now() + (untilProtected === undefined ? enableMs : untilProtected * 60_000);
    let last: ObjectEnvelope<ProtectedItemSpec, ProtectedItemStatus> | undefined;
    let previous: ProgressSample | undefined;
    let lastLine = '';
    let lastLogAt = Number.NEGATIVE_INFINITY;
    const partial = (): Props => (last === undefined ? pick(inputs, [...CONTROL_KEYS, ...ITEM_SPEC_KEYS, ...ITEM_OPTION_KEYS]) : outputs(inputs, last, adopted, jobId));
    try {
      for (;;) {
        last = await get(c, vault, name);
        if (last === undefined) throw new NonRecoverableError('pulumi.itemGone', `the protected item ${vault}/${name} was deleted while protection was being enabled`, { hint: 'run `pulumi up` again to protect the VM again' });
        const s = last.status;
        jobId ??= s.activeJob?.type === 'protection.enable' ? s.activeJob.id : undefined;
        if (s.replicationState === 'Protected' || (untilProtected === undefined && !NOT_ENABLED.has(s.replicationState))) return outputs(inputs, last, adopted, jobId);
        if (s.activeJob === undefined && (s.replicationState === 'NotProtected' || s.lastJob?.state === 'Failed' || s.lastJob?.state === 'Cancelled')) {
          throw new NonRecoverableError('pulumi.enableFailed', `enabling protection of ${vault}/${name} failed: the item is ${s.replicationState}${await jobError(c, vault, s.lastJob?.id)}`, {
            hint: 'fix the cause, then run `pulumi up` again: it starts protection.enable again',
          });
        }
        if (untilProtected !== undefined && s.replicationState === 'InitialReplicationInProgress') {
          const now = sampleOf(s, ctx.clock.now());
          const line = progressLine(name, now, previous, s.statistics?.throughputBytesPerSecond);
          if (line !== lastLine && now.at - lastLogAt >= 2_000) {
            ctx.log(line);
            lastLine = line;
            lastLogAt = now.at;
          }
          previous = now;
        }
        if (ctx.clock.now() + ctx.pollMs > deadline) {
          const what = untilProtected === undefined ? 'protection to be enabled' : 'initial replication';
          throw new LifeboatError('pulumi.deadline', 'recoverable', `${vault}/${name} did not finish ${what} in time: it is ${s.replicationState}${s.initialReplicationPercent === undefined ? '' : ` at ${Math.floor(s.initialReplicationPercent)} %`}`, {
            hint: 'the job keeps running in the vault; run `pulumi up` again to go on waiting for the same job (raise waitForInitialReplication.timeoutMinutes or operationTimeoutMinutes to wait longer)',
          });
        }
        await ctx.clock.sleep(ctx.pollMs);
      }
    } catch (e) {
      const le = LifeboatError.isInstance(e) ? e : undefined;
      throw new ResourceInitError(le?.code ?? 'pulumi.enableInterrupted', le?.message ?? String(e), id, partial(), { cause: e, ...(le?.hint === undefined ? {} : { hint: le.hint }) });
    }
  };

  /** PUT the spec and wait: create, update and the resume after a failed create share it. */
  const apply = async (inputs: Props, adopted: boolean, previousJob: unknown): Promise<Props> => {
    const c = connect();
    const env = await c.client.putProtectedItem(str(inputs, 'vault'), str(inputs, 'name'), pick(inputs, ITEM_SPEC_KEYS) as unknown as ProtectedItemSpec);
    const started = env.status.activeJob?.type === 'protection.enable' ? env.status.activeJob.id : undefined;
    return waitEnabled(c, inputs, adopted, started ?? (typeof previousJob === 'string' ? previousJob : undefined), waitTimeout(inputs));
  };

  return {
    async check(_olds, news) {
      const failures = [
        ...checkName('vault', news.vault),
        ...checkName('name', news.name),
        ...checkControl(news),
        ...unknownInputs(news, [...CONTROL_KEYS, ...ITEM_SPEC_KEYS, ...ITEM_OPTION_KEYS, ...ITEM_OUTPUT_KEYS]),
        ...checkBody('protected-item', pick(news, ITEM_SPEC_KEYS)),
      ];
      const w = news.waitForInitialReplication;
      if (w !== undefined && !containsUnknown(w)) {
        const t = typeof w === 'object' && w !== null ? (w as { timeoutMinutes?: unknown }).timeoutMinutes : undefined;
        if (typeof w !== 'object' || w === null || (t !== undefined && (typeof t !== 'number' || !(t > 0)))) {
          failures.push({ property: 'waitForInitialReplication', reason: 'must be { timeoutMinutes: N } with N > 0 minutes' });
        }
      }
      const op = news.operationTimeoutMinutes;
      if (op !== undefined && !containsUnknown(op) && (typeof op !== 'number' || !(op > 0))) failures.push({ property: 'operationTimeoutMinutes', reason: 'must be a number of minutes > 0' });
      if (news.targetKind !== undefined && !containsUnknown(news.targetKind) && news.targetKind !== 'secondary-site' && news.targetKind !== 'azure') {
        failures.push({ property: 'targetKind', reason: "valid: 'secondary-site', 'azure'" });
      }
      const inputs: Record<string, unknown> = { ...news };
      delete inputs.replacementReason;
      // The engine shows no free-text reason for a replacement, and passes
      // check no old inputs (measured, 3.259): an input it displays carries
      // the reason, computed from the item the vault holds under this name.
      if (failures.length === 0 && news.adopt !== true && typeof news.vault === 'string' && typeof news.name === 'string' && !containsUnknown(pick(news, ITEM_SPEC_KEYS))) {
        const reason = await reseedReason(news);
        if (reason !== undefined) inputs.replacementReason = reason;
      }
      return { inputs, failures };
    },
    async diff(_id, olds, news) {
      const d = diffByRules(olds, news, rules, typeof news.replacementReason === 'string' ? ['replacementReason'] : []);
      if ((d.replaces ?? []).length > 0 || containsUnknown(news.policy) || typeof olds.policy !== 'string' || typeof news.policy !== 'string') return d;
      // Moving to a policy of another target kind replaces the item; ask the vault when the inputs do not say.
      if (olds.policy.toLowerCase() !== news.policy.toLowerCase() && (olds.targetKind === undefined || news.targetKind === undefined)) {
        const kinds = await policyKinds(str(news, 'vault'), [olds.policy, news.policy]);
        if (kinds !== undefined && kinds[0] !== kinds[1]) return { ...d, replaces: ['policy'] };
      }
      return d;
    },
    async create(inputs) {
      const c = connect();
      const existing = await get(c, str(inputs, 'vault'), str(inputs, 'name'));
      if (existing !== undefined && inputs.adopt !== true) throw alreadyExists('protected item', `${str(inputs, 'vault')}/${str(inputs, 'name')}`);
      const outs = await apply(inputs, existing !== undefined, undefined);
      return { id: objectId(str(inputs, 'vault'), 'protectedItems', str(inputs, 'name')), outs };
    },
    async read(id, props) {
      const p = props ?? {};
      const env = await get(connect(), str(p, 'vault'), str(p, 'name'));
      if (env === undefined) return {};
      const fresh = outputs(p, env, p.adopted === true, p.enableJob);
      const inputs = { ...pick(p, [...CONTROL_KEYS, 'targetKind', 'waitForInitialReplication', 'operationTimeoutMinutes']), ...pick(env.spec as unknown as Props, ITEM_SPEC_KEYS) };
      // Telemetry moves every cycle; it is refreshed when the state or health changed, so
      // that `pulumi refresh --expect-no-changes` finds drift, not replication at work.
      const steady = fresh.replicationState === p.replicationState && fresh.health === p.health;
      if (!steady) return { id, props: fresh, inputs };
      const kept: Record<string, unknown> = { ...fresh };
      for (const k of ['initialReplicationPercent', 'lastReplicatedTime', 'rpoSeconds']) {
        if (p[k] === undefined) delete kept[k];
        else kept[k] = p[k];
      }
      return { id, props: kept, inputs };
    },
    async update(_id, olds, news) {
      return { outs: await apply(news, olds.adopted === true, olds.enableJob) };
    },
    async delete(_id, props) {
      const c = connect();
      const vault = str(props, 'vault');
      const name = str(props, 'name');
      const deadline = ctx.clock.now() + minutes(props, 'operationTimeoutMinutes', DEFAULT_OPERATION_TIMEOUT_MINUTES) * 60_000;
      for (;;) {
        const env = await get(c, vault, name);
        if (env === undefined) return;
        if (isFailedOver(env.status)) {
          throw new NonRecoverableError('pulumi.failedOver', `${vault}/${name} is failed over (${env.status.replicationState}, active on the ${env.status.activeLocation ?? 'recovery'} site): destroying it would leave the running workload unprotected`, {
            hint: 'fail back first (planned failover back to the primary site), then destroy; to keep it and stop managing it, `pulumi state delete` the resource',
          });
        }
        let job: JobInfo | undefined;
        try {
          const r = await c.client.deleteProtectedItem(vault, name);
          if (r.removed) return;
          job = r.job;
        } catch (e) {
          if (isNotFound(e)) return;
          if (!(e instanceof VaultApiError) || e.code !== 'job.inProgress') throw e;
          // Another job owns the item: cancel an enable (it removes what it made), wait for others.
          const running = env.status.activeJob;
          if (running !== undefined) {
            if (running.type === 'protection.enable') await c.client.cancelJob(vault, running.id).catch(() => undefined);
            await waitJob(c, vault, running.id, deadline);
          } else {
            await ctx.clock.sleep(ctx.pollMs);
          }
          continue;
        }
        const done = await waitJob(c, vault, job.id, deadline);
        if (done.state !== 'Succeeded') {
          throw new NonRecoverableError('pulumi.disableFailed', `disabling protection of ${vault}/${name} ended ${done.state}${await jobError(c, vault, done.id)}`, {
            hint: 'fix the cause and run `pulumi destroy` again: a new disable job continues where this one stopped',
          });
        }
        return;
      }
    },
  };

  async function waitJob(c: ResolvedConnection, vault: string, id: string, deadline: number): Promise<JobInfo> {
    const remaining = Math.max(ctx.pollMs, deadline - ctx.clock.now());
    return c.client.waitForJob(vault, id, { pollMs: ctx.pollMs, timeoutMs: remaining });
  }

  /** Why `news` replaces the item stored under its name, with the GiB it re-seeds; undefined if it does not (or the vault cannot say). */
  async function reseedReason(news: Props): Promise<string | undefined> {
    try {
      const env = await get(resolveConnection(ctx.sources, { timeoutMs: 10_000 }), str(news, 'vault'), str(news, 'name'));
      if (env === undefined) return undefined;
      const keys = ['site', 'cloud', 'vm', 'target', 'disks'];
      const changed = changedKeys(env.spec as unknown as Props, news, { keys, identity: keys, identifiers: IDENTIFIERS });
      return changed.length === 0 ? undefined : replacementText(changed, diskBytes(env.status));
    } catch {
      return undefined;
    }
  }

  async function policyKinds(vault: string, names: readonly string[]): Promise<readonly unknown[] | undefined> {
    try {
      const c = resolveConnection(ctx.sources, { timeoutMs: 10_000 });
      return await Promise.all(names.map(async (n) => (await c.client.getObject(vault, 'replicationPolicies', n)).spec.target));
    } catch {
      return undefined;
    }
  }
}
