/**
 * The failover steps of items of `azure` policies (docs/azure-failover.md
 * §4), called by failover-steps.ts when the item's policy targets Azure. The
 * replica is the item's page blobs; the "recovery host" is a connected agent
 * of a site of kind `azure` (the `azure` role): it exports the chosen point as
 * a standalone fixed-VHD blob and, in the lab, runs the VM from it. The item
 * records the VM to create in Azure (`status.azureVm`), which the
 * `AzureRecoveredVm` Pulumi component (components/azure-vm/) takes as input.
 */

import { NonRecoverableError, RecoverableError } from '../../../errors';
import { transitionItem, updateItem, type ItemStatus } from '../../control/item-status';
import { iso, type VaultServices } from '../../control/services';
import type { Json, JsonObject } from '../../store/records';
import type { StepContext } from '../job-handler';
import { type ItemContext, inventoryOf, isConnected, itemPayload, loadItem, networkMappingsFor } from './item-job';

/** True when the item replicates to Azure. */
export function isAzureItem(c: ItemContext): boolean {
  return c.policy.target === 'azure';
}

/**
 * The connected `azure`-role host for an item's failover (the one that ran
 * its failover VM before, if any, else the first by name of a site of kind
 * `azure`). Throws `NonRecoverableError` `failover.noAzureHost` when no site
 * of kind azure has a host, `RecoverableError` `host.notConnected` when none
 * of them is connected.
 */
export function azureHost(ctx: StepContext, c: ItemContext): { readonly host: string; readonly site: string } {
  return azureHostFor(ctx.services, ctx.job.vault, c.item.name, c.status);
}

/** `azureHost` from the vault's services, for callers without an item job (a plan's scripts). */
export function azureHostFor(services: VaultServices, vault: string, item: string, status: ItemStatus): { readonly host: string; readonly site: string } {
  const { store } = services;
  const sites = store.listObjects(vault, 'site').filter((s) => (s.spec as { kind?: unknown }).kind === 'azure');
  const hosts = store.listObjects(vault, 'host').filter((h) => sites.some((s) => s.name.toLowerCase() === String(h.spec.site).toLowerCase()))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (hosts.length === 0) {
    throw new NonRecoverableError('failover.noAzureHost', `item '${item}' replicates to Azure, but no agent of a site of kind azure is registered`, {
      hint: 'register an agent with --role azure in a site of kind azure (the lab: lifeboat lab up --azure)',
    });
  }
  const previous = (status as unknown as { azureVm?: { host?: string } }).azureVm?.host;
  const ordered = [...hosts.filter((h) => h.name === previous), ...hosts.filter((h) => h.name !== previous)];
  const up = ordered.find((h) => isConnected(h));
  if (up === undefined) {
    throw new RecoverableError('host.notConnected', `no azure-role host is connected (${hosts.map((h) => h.name).join(', ')})`, { hint: 'check that the azure agent runs and reaches the vault' });
  }
  return { host: up.name, site: String(up.spec.site) };
}

/**
 * The NICs of the Azure VM: one per network of the source VM, on the virtual
 * network and subnet of its mapping with `target.azure: true` (the test
 * network for a test failover). Throws `network.notMapped`.
 */
export function azureNics(ctx: StepContext, c: ItemContext, source: string, test: boolean): JsonObject[] {
  const src = ctx.services.store.getObject(ctx.job.vault, 'host', source);
  const vm = (src === undefined ? [] : inventoryOf(src) ?? []).find((v) => v.name.toLowerCase() === c.spec.vm.toLowerCase());
  const earlier = c.status.failover?.networks;
  const networks = vm?.networks ?? (Array.isArray(earlier) ? earlier.map(String) : []);
  const mappings = networkMappingsFor(ctx.services, ctx.job.vault, c.spec.site, undefined);
  return networks.map((n, i) => {
    const m = mappings.find((x) => String(x.sourceNetwork).toLowerCase() === n.toLowerCase());
    const target = test ? m?.testNetwork : m?.targetNetwork;
    if (m === undefined || target === undefined) {
      throw new NonRecoverableError('network.notMapped', `network '${n}' of VM '${c.spec.vm}' has no ${test ? 'test network in its mapping' : 'mapping'} to an Azure virtual network`, {
        hint: `PUT a networkMapping from ${c.spec.site}/${n} to an Azure virtual network (target.azure: true, subnet)${test ? ' with a testNetwork' : ''}, then run the failover again`,
      });
    }
    return { name: `nic${i}`, network: String(target), ...(m.subnet === undefined ? {} : { subnet: String(m.subnet) }) };
  });
}

/** The target spec of the agents' azure commands (no secret). */
export function azurePayload(c: ItemContext): JsonObject {
  const a = c.policy.azure!;
  return { kind: 'azure', storageAccount: a.storageAccount, container: a.container, ...(a.endpoint === undefined ? {} : { endpoint: a.endpoint }) };
}

/** The Azure-side VM's name: the target VM's (@default the source VM's), `-test` appended for a test failover. */
export function azureVmName(c: ItemContext, test: boolean): string {
  const name = c.spec.targetVm?.name ?? c.spec.vm;
  return test ? `${name}-test` : name;
}

function disksPayload(c: ItemContext): Json {
  return (c.status.disks ?? []).map((d) => ({ id: d.id, sizeBytes: d.sizeBytes }));
}

/**
 * Export the point and start the VM on the azure-role host; record
 * `status.azureVm` (the VM to create in Azure) and, for a real failover,
 * `FailedOver` with `activeLocation: recovery`.
 */
export async function startAzureVm(ctx: StepContext, test: boolean, key = ''): Promise<void> {
  const c = loadItem(ctx);
  const host = String(ctx.get('target'));
  const ids = ctx.get('diskPoints');
  const point = typeof ids === 'object' && ids !== null && !Array.isArray(ids) ? { ids } : pointSpecPayload(String(ctx.job.input.point ?? 'latest'));
  const vmName = azureVmName(c, test);
  const nics = (ctx.get('nics') ?? []) as JsonObject[];
  // The credentials route serves the azure host from here on. A test VM leaves the failover's record alone.
  updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => (test
    ? { ...s, testFailover: { vm: vmName, host, job: ctx.job.id } }
    : { ...s, azureVm: { ...((s as unknown as { azureVm?: JsonObject }).azureVm ?? {}), host } }));
  const r = await ctx.runCommand(`${key}azureStart`, {
    host, type: 'azure.startVm', payload: { ...itemPayload(c), vmName, test, point, nics: nics as Json, disks: disksPayload(c), azure: azurePayload(c) },
  });
  ctx.set({ vmStarted: true });
  const now = iso(ctx.services.clock.now());
  const exports = (r.exports ?? {}) as Record<string, string>;
  const azureVm: JsonObject = {
    name: vmName,
    host,
    size: c.spec.targetVm?.azureVmSize ?? null,
    publicIp: c.spec.targetVm?.publicIp === true,
    nics: nics as Json,
    disks: (c.status.disks ?? []).map((d) => ({ id: d.id, sizeBytes: d.sizeBytes, blobUrl: exports[d.id] ?? null })),
    point: (r.point ?? null) as Json,
    ...(c.policy.azure?.resourceGroup === undefined ? {} : { resourceGroup: c.policy.azure.resourceGroup }),
    ...(c.policy.azure?.region === undefined ? {} : { region: c.policy.azure.region }),
    ...(c.policy.azure?.subscriptionId === undefined ? {} : { subscriptionId: c.policy.azure.subscriptionId }),
    test,
    createdAt: now,
  };
  const diskPoints = Object.fromEntries(Object.entries((r.disks ?? {}) as Record<string, { id: string }>).map(([d, p]) => [d, p.id]));
  const pointGenerations = Object.fromEntries(Object.entries((r.disks ?? {}) as Record<string, { generation?: string }>).map(([d, p]) => [d, p.generation ?? null]));
  if (test) {
    updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, testFailover: { vm: vmName, host, point: r.point as JsonObject, job: ctx.job.id, azureVm } }));
    return;
  }
  if (Array.isArray(r.points)) {
    const points = r.points as { id: string; time: string; kind: 'crashConsistent' | 'appConsistent' }[];
    ctx.services.store.replaceRecoveryPoints(ctx.job.vault, c.item.name, points.map((p) => ({ id: p.id, time: Date.parse(p.time), kind: p.kind })));
  }
  const t = transitionItem(ctx.services, ctx.job.vault, c.item.name, 'FailedOver', `VM ${vmName} runs in Azure (${host}) from point ${String((r.point as JsonObject | undefined)?.id)}`, (s): ItemStatus => ({
    ...s,
    activeLocation: 'recovery',
    azureVm,
    failover: {
      ...(s.failover ?? { type: 'unplanned', requested: 'latest', job: ctx.job.id }), point: r.point as JsonObject, diskPoints, pointGenerations, vm: vmName, host, startedAt: now,
      networks: nics.map((n) => String(n.network)),
    },
  } as ItemStatus));
  if (t !== undefined && !t.ok && t.code !== 'state.unchanged') throw new NonRecoverableError('failover.stateRefused', t.message);
}

/** Commit on Azure: the failover's point becomes the page blobs' only point. */
export async function commitAzureFailover(ctx: StepContext, key = ''): Promise<JsonObject> {
  const c = loadItem(ctx);
  const f = c.status.failover;
  if (f?.host === undefined || f.diskPoints === undefined) {
    throw new NonRecoverableError('failover.unknown', `item '${c.item.name}' has no record of its failover VM`, { hint: 'run the failover again' });
  }
  const r = await ctx.runCommand(`${key}azureCommit`, {
    host: f.host, type: 'azure.commit', payload: { ...itemPayload(c), vmName: f.vm ?? c.spec.vm, point: { ids: f.diskPoints }, disks: disksPayload(c), azure: azurePayload(c) },
  });
  // A rollback discarded cycles the old primary shipped after the point: failback cannot know them (A) and compares checksums.
  updateItem(ctx.services, ctx.job.vault, c.item.name, (s) => ({ ...s, azureVm: { ...((s as unknown as { azureVm?: JsonObject }).azureVm ?? {}), commitRolledBack: r.rolledBack === true } }));
  return r;
}

/** Remove an Azure-side failover VM and its exports. Idempotent. */
export async function removeAzureVm(ctx: StepContext, host: string, vmName: string, key = ''): Promise<void> {
  await ctx.runCommand(`${key}azureRemove`, { host, type: 'azure.removeVm', payload: azureRemovePayload(loadItem(ctx), vmName) });
}

/** The payload of `azure.removeVm`: the VM, and the disks whose exports go with it. */
export function azureRemovePayload(c: ItemContext, vmName: string): JsonObject {
  return { ...itemPayload(c), vmName, disks: disksPayload(c), azure: azurePayload(c) };
}

function pointSpecPayload(point: string): JsonObject {
  if (point === 'latest') return { latest: true };
  if (point === 'latestAppConsistent') return { latestAppConsistent: true };
  return { time: point };
}
