/**
 * The steps of the failover jobs as functions of a step context
 * (docs/failover.md §3), so that each single-VM job is a list of them and a
 * recovery plan job can run the same functions per item of a group (with its
 * own command keys: every function takes a `key` prefix). Each is resumable:
 * commands go through `ctx.runCommand` under a stable key, choices are kept
 * in the job's data.
 */

import { NonRecoverableError, RecoverableError } from '../../../errors';
import { iso } from '../../control/services';
import { itemStatus, transitionItem, updateItem, type ItemStatus } from '../../control/item-status';
import type { Json, JsonObject } from '../../store/records';
import type { StepContext } from '../job-handler';
import { azureHost, azureNics, commitAzureFailover, isAzureItem, removeAzureVm, startAzureVm } from './azure-failover-steps';
import { bestEffortCommand, type ItemContext, inventoryOf, isConnected, itemPayload, loadItem, networkMappingsFor } from './item-job';

/** The hosts of an item: where its VM ran and where its replica is. */
export interface FailoverHosts {
  readonly source: string;
  readonly target: string;
  readonly targetSite: string;
}

/** The item's hosts; `needSource` makes a disconnected source host a (recoverable) wait. */
export function failoverHosts(ctx: StepContext, c: ItemContext, needSource: boolean): FailoverHosts {
  const { store } = ctx.services;
  const source = c.status.sourceHost;
  if (isAzureItem(c) && source !== undefined) {
    const a = azureHost(ctx, c);
    if (needSource && !isConnected(store.getObject(ctx.job.vault, 'host', source))) {
      throw new RecoverableError('host.notConnected', `source host ${source} is not connected; a planned failover shuts the VM down there first`, {
        hint: 'wait for the host, or cancel this job and run an unplanned failover',
      });
    }
    return { source, target: a.host, targetSite: a.site };
  }
  const target = c.status.targetHost;
  if (source === undefined || target === undefined) {
    throw new NonRecoverableError('failover.noReplica', `item '${c.item.name}' has no recovery host (${c.policy.target} target)`, {
      hint: 'failover to Azure is not built yet; protect the VM to a secondary site',
    });
  }
  const t = store.getObject(ctx.job.vault, 'host', target);
  if (t === undefined) throw new NonRecoverableError('host.notRegistered', `recovery host ${target} of item '${c.item.name}' is no longer registered`);
  if (!isConnected(t)) {
    throw new RecoverableError('host.notConnected', `recovery host ${target} is ${String(t.status.connectionState)}`, { hint: `check that the agent on ${target} runs and reaches the vault` });
  }
  if (needSource && !isConnected(store.getObject(ctx.job.vault, 'host', source))) {
    throw new RecoverableError('host.notConnected', `source host ${source} is not connected; a planned failover shuts the VM down there first`, {
      hint: 'wait for the host, or cancel this job and run an unplanned failover',
    });
  }
  return { source, target, targetSite: String(t.spec.site) };
}

/**
 * The NICs of the failover VM: one per network the source VM was attached to
 * (as its host last reported), on the mapped target network, or the mapped
 * test network for a test failover. Throws `NonRecoverableError`
 * `network.notMapped` naming the first network without a mapping.
 */
export function mappedNics(ctx: StepContext, c: ItemContext, hosts: FailoverHosts, test: boolean): JsonObject[] {
  const src = ctx.services.store.getObject(ctx.job.vault, 'host', hosts.source);
  const vm = (src === undefined ? [] : inventoryOf(src) ?? []).find((v) => v.name.toLowerCase() === c.spec.vm.toLowerCase());
  // The host may not have reported a VM it made seconds ago: the networks the vault gave it then.
  const earlier = c.status.failover?.vm !== undefined && sameSite(hosts.targetSite, c.spec.site) ? c.status.failover.networks : undefined;
  const networks = vm?.networks ?? (Array.isArray(earlier) ? earlier.map(String) : []);
  // Failing back (the target is the item's own site): the same mappings, read the other way.
  const back = sameSite(hosts.targetSite, c.spec.site);
  const sourceSite = src === undefined ? '' : String(src.spec.site);
  const mappings = back ? networkMappingsFor(ctx.services, ctx.job.vault, c.spec.site, sourceSite) : networkMappingsFor(ctx.services, ctx.job.vault, c.spec.site, hosts.targetSite);
  return networks.map((n, i) => {
    const m = mappings.find((x) => String(back ? x.targetNetwork : x.sourceNetwork).toLowerCase() === n.toLowerCase());
    const target = test ? m?.testNetwork : back ? m?.sourceNetwork : m?.targetNetwork;
    if (target === undefined) {
      throw new NonRecoverableError('network.notMapped', `network '${n}' of VM '${c.spec.vm}' has no ${test ? 'test network in its mapping' : 'mapping'} to site ${hosts.targetSite}`, {
        hint: `PUT a networkMapping between ${back ? `${c.spec.site} and ${sourceSite}/${n}` : `${c.spec.site}/${n} and a network of ${hosts.targetSite}`}${test ? ' with a testNetwork' : ''}, then run the failover again`,
      });
    }
    return { name: `nic${i}`, network: String(target) };
  });
}

function sameSite(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A point spec of the API as the agents' payload. */
export function pointPayload(point: string): JsonObject {
  if (point === 'latest') return { latest: true };
  if (point === 'latestAppConsistent') return { latestAppConsistent: true };
  return { time: point };
}

/** Check the item and hosts and keep the NIC plan in the job's data. */
export function checkPrerequisites(ctx: StepContext, needSource: boolean, test: boolean): void {
  const c = loadItem(ctx);
  ctx.progress(20, 'checking hosts');
  const hosts = failoverHosts(ctx, c, needSource);
  ctx.progress(60, 'checking network mappings');
  const nics = isAzureItem(c) ? azureNics(ctx, c, hosts.source, test) : mappedNics(ctx, c, hosts, test);
  ctx.set({ source: hosts.source, target: hosts.target, nics });
}

/** Planned failover: fence the source VM and ship its last log; keeps the disks' final points in `diskPoints`. */
export async function shutDownSource(ctx: StepContext, key = ''): Promise<void> {
  const c = loadItem(ctx);
  const source = String(ctx.get('source'));
  const r = await ctx.runCommand(`${key}prepareSource`, {
    host: source, type: 'failover.prepareSource', payload: { ...itemPayload(c), targetHost: String(ctx.get('target')) },
  });
  ctx.set({ diskPoints: r.disks ?? {}, sourcePrepared: true });
}

/**
 * Start the failover VM (or the test VM) on the recovery host from the points
 * in `diskPoints`, else from the job's point spec; records the result on the
 * item. Real failovers end `FailedOver` with `activeLocation: recovery`.
 */
export async function startFailoverVm(ctx: StepContext, test: boolean, key = ''): Promise<void> {
  const c = loadItem(ctx);
  if (isAzureItem(c)) {
    await startAzureVm(ctx, test, key);
    return;
  }
  const target = String(ctx.get('target'));
  const ids = ctx.get('diskPoints');
  const point = typeof ids === 'object' && ids !== null && !Array.isArray(ids) ? { ids } : pointPayload(String(ctx.job.input.point ?? 'latest'));
  const vmName = test ? `${c.spec.vm}-test` : c.spec.vm;
  const r = await ctx.runCommand(`${key}start`, {
    host: target, type: 'failover.start', payload: { ...itemPayload(c), vmName, test, point, nics: (ctx.get('nics') ?? []) as Json },
  });
  ctx.set({ vmStarted: true });
  const now = iso(ctx.services.clock.now());
  const diskPoints = Object.fromEntries(Object.entries((r.disks ?? {}) as Record<string, { id: string }>).map(([d, p]) => [d, p.id]));
  const pointGenerations = Object.fromEntries(Object.entries((r.disks ?? {}) as Record<string, { generation?: string }>).map(([d, p]) => [d, p.generation ?? null]));
  const targetSite = String(ctx.services.store.getObject(ctx.job.vault, 'host', target)?.spec.site ?? '');
  if (test) {
    updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, testFailover: { vm: vmName, host: target, point: r.point as JsonObject, job: ctx.job.id, diskPoints } }));
    return;
  }
  if (Array.isArray(r.points)) {
    const points = r.points as { id: string; time: string; kind: 'crashConsistent' | 'appConsistent' }[];
    ctx.services.store.replaceRecoveryPoints(ctx.job.vault, c.item.name, points.map((p) => ({ id: p.id, time: Date.parse(p.time), kind: p.kind })));
  }
  const t = transitionItem(ctx.services, ctx.job.vault, c.item.name, 'FailedOver', `VM ${vmName} runs on ${target} from point ${String((r.point as JsonObject | undefined)?.id)}`, (s): ItemStatus => ({
    ...s,
    activeLocation: sameSite(targetSite, c.spec.site) ? 'primary' : 'recovery',
    failover: {
      ...(s.failover ?? { type: 'unplanned', requested: 'latest', job: ctx.job.id }), point: r.point as JsonObject, diskPoints, pointGenerations, vm: vmName, host: target, startedAt: now,
      networks: ((ctx.get('nics') ?? []) as { network?: string }[]).map((n) => String(n.network)),
    },
  }));
  if (t !== undefined && !t.ok && t.code !== 'state.unchanged') throw new NonRecoverableError('failover.stateRefused', t.message);
}

/** Remove a failover VM of the item (test cleanup, or the old VM when the point changes); an azure item's with its downloaded disks and exports. Idempotent. */
export async function removeFailoverVm(ctx: StepContext, host: string, vmName: string, key = ''): Promise<void> {
  const c = loadItem(ctx);
  if (isAzureItem(c)) {
    await removeAzureVm(ctx, host, vmName, key);
    return;
  }
  await ctx.runCommand(`${key}remove`, { host, type: 'failover.removeVm', payload: { ...itemPayload(c), vmName } });
}

/** Commit: the chosen point becomes the only one (docs/failover.md §3). */
export async function commitFailover(ctx: StepContext, key = ''): Promise<void> {
  const c = loadItem(ctx);
  const f = c.status.failover;
  if (f?.host === undefined || f.vm === undefined || f.diskPoints === undefined) {
    throw new NonRecoverableError('failover.unknown', `item '${c.item.name}' has no record of its failover VM`, { hint: 'run the failover again' });
  }
  const r = isAzureItem(c) ? await commitAzureFailover(ctx, key) : await ctx.runCommand(`${key}commit`, {
    host: f.host, type: 'failover.commit', payload: { ...itemPayload(c), vmName: f.vm, point: { ids: f.diskPoints } },
  });
  if (Array.isArray(r.points)) {
    const points = r.points as { id: string; time: string; kind: 'crashConsistent' | 'appConsistent' }[];
    ctx.services.store.replaceRecoveryPoints(ctx.job.vault, c.item.name, points.map((p) => ({ id: p.id, time: Date.parse(p.time), kind: p.kind })));
  }
  const now = iso(ctx.services.clock.now());
  transitionItem(ctx.services, ctx.job.vault, c.item.name, 'FailoverCommitted', `point ${String(f.point?.id)} committed; the other points are discarded`, (s) => ({
    ...s, failover: { ...f, committedAt: now },
  }));
}

/**
 * Undo a failover that did not finish (docs/failover.md §3): a started VM
 * makes the item `FailedOver` (it is the workload now); otherwise a planned
 * failover's source is unfenced and resumes (best effort), and the item
 * returns to `Protected` when it started there and the replica is unchanged,
 * else `ResynchronizationRequired`.
 */
export async function compensateFailover(ctx: StepContext): Promise<void> {
  const name = ctx.job.target.name;
  const item = ctx.services.store.getObject(ctx.job.vault, 'protectedItem', name);
  if (item === undefined || itemStatus(item).replicationState !== 'FailoverInProgress') return;
  if (ctx.get('vmStarted') === true) {
    transitionItem(ctx.services, ctx.job.vault, name, 'FailedOver', `job ${ctx.job.id} stopped after the failover VM started`);
    return;
  }
  if (ctx.get('sourcePrepared') === true || ctx.job.type === 'failover.planned') {
    const c = loadItem(ctx);
    await bestEffortCommand(ctx, 'cancelSource', c.status.sourceHost, 'failover.cancelSource', itemPayload(c), `the fence of VM ${c.spec.vm}`);
  }
  const from = String(ctx.job.input.from ?? '');
  const back = from === 'Protected' ? 'Protected' : 'ResynchronizationRequired';
  transitionItem(ctx.services, ctx.job.vault, name, back, `job ${ctx.job.id} stopped before a failover VM started`, (s) => ({
    ...s,
    // A point change that lost its VM keeps the old source fenced; otherwise the source may run again.
    ...(s.failover === undefined || from === 'FailedOver' ? {} : { failover: { ...s.failover, released: true } }),
  }));
}
