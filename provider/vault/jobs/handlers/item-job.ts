/**
 * What the protected-item jobs share: loading the item and its policy,
 * choosing hosts, the payload fields every command carries, and the hooks
 * that keep the item's `activeJob`, `lastJob` and job issues current.
 */

import { NonRecoverableError, RecoverableError } from '../../../errors';
import { formatBytes } from '../../../units';
import { clearIssue, itemStatus, raiseIssue, updateItem, type ItemStatus } from '../../control/item-status';
import { effectivePolicy, parseSiteRef, sameName, type EffectivePolicy, type NetworkMappingSpec, type ProtectedItemSpec, type ReplicationPolicySpec } from '../../control/specs';
import type { VaultServices } from '../../control/services';
import type { JsonObject, StoredObject } from '../../store/records';
import type { HookContext, JobHandler, StepContext } from '../job-handler';

/** The item a job works on, with its spec, status and policy. */
export interface ItemContext {
  readonly item: StoredObject;
  readonly spec: ProtectedItemSpec;
  readonly status: ItemStatus;
  readonly policyName: string;
  readonly policy: EffectivePolicy;
}

/** Load the job's item and policy. Throws NonRecoverableError if either is gone. */
export function loadItem(ctx: StepContext): ItemContext {
  const { store } = ctx.services;
  const item = store.getObject(ctx.job.vault, 'protectedItem', ctx.job.target.name);
  if (item === undefined) throw new NonRecoverableError('protectedItem.notFound', `protected item '${ctx.job.target.name}' no longer exists`);
  const spec = item.spec as unknown as ProtectedItemSpec;
  const policy = store.getObject(ctx.job.vault, 'replicationPolicy', spec.policy);
  if (policy === undefined) throw new NonRecoverableError('replicationPolicy.notFound', `policy '${spec.policy}' of item '${item.name}' no longer exists`);
  return { item, spec, status: itemStatus(item), policyName: policy.name, policy: effectivePolicy(policy.spec as unknown as ReplicationPolicySpec) };
}

/** Fields every item command carries: the item's name and uid (a re-created item has a new uid) and the VM. */
export function itemPayload(c: ItemContext): JsonObject {
  return { item: c.item.name, itemUid: c.item.uid, vm: c.spec.vm };
}

/** A VM as a host's inventory lists it. */
export interface InventoryVm {
  readonly name: string;
  readonly powerState?: string;
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number }[];
  readonly networks?: readonly string[];
}

export function inventoryOf(host: StoredObject): readonly InventoryVm[] | undefined {
  const inv = host.status.inventory as { vms?: InventoryVm[] } | undefined;
  return inv?.vms;
}

export function isConnected(host: StoredObject | undefined): boolean {
  return host !== undefined && host.status.connectionState === 'Connected';
}

/** Hosts of a site (and cloud, if given), by name. */
export function hostsOf(services: VaultServices, vault: string, site: string, cloud?: string): StoredObject[] {
  return services.store.listObjects(vault, 'host')
    .filter((h) => sameName(String(h.spec.site), site) && (cloud === undefined || sameName(String(h.spec.cloud ?? ''), cloud)));
}

/** Where the source VM runs and which disks are replicated. */
export interface SourceChoice {
  readonly host: StoredObject;
  readonly vm: InventoryVm;
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number }[];
}

/**
 * Find the VM on the hosts of its site. Recoverable while hosts are missing
 * or have not reported their inventory; non-recoverable when every host
 * reported and none has it (the reference's "VM not found").
 */
export function chooseSource(services: VaultServices, vault: string, c: ItemContext): SourceChoice {
  const where = `site ${c.spec.site}${c.spec.cloud === undefined ? '' : `/${c.spec.cloud}`}`;
  const hosts = hostsOf(services, vault, c.spec.site, c.spec.cloud);
  if (hosts.length === 0) {
    throw new RecoverableError('site.noHosts', `no host of ${where} is registered`, {
      hint: `install the agent on the hosts of ${where} and register them with the vault registration key (lifeboat agent run)`,
    });
  }
  const found = hosts.flatMap((h) => (inventoryOf(h) ?? []).filter((vm) => vm.name.toLowerCase() === c.spec.vm.toLowerCase()).map((vm) => ({ host: h, vm })));
  if (found.length > 1) {
    throw new NonRecoverableError('vm.ambiguous', `VM '${c.spec.vm}' is on several hosts of ${where}: ${found.map((f) => f.host.name).join(', ')}`, {
      hint: 'rename one of the VMs, or protect it by another name',
    });
  }
  if (found.length === 0) {
    const silent = hosts.filter((h) => !isConnected(h) || inventoryOf(h) === undefined);
    if (silent.length > 0) {
      throw new RecoverableError('vm.inventoryPending', `VM '${c.spec.vm}' is not on the hosts of ${where} that reported; waiting for ${silent.map((h) => h.name).join(', ')}`, {
        hint: `check that the agents of ${silent.map((h) => h.name).join(', ')} run and reach the vault`,
      });
    }
    const known = hosts.flatMap((h) => (inventoryOf(h) ?? []).map((vm) => vm.name));
    throw new NonRecoverableError('vm.notFound', `VM '${c.spec.vm}' is not on any host of ${where}`, {
      hint: `check the VM name; the hosts of ${where} run: ${known.length === 0 ? '(no VMs)' : known.join(', ')}`,
    });
  }
  const { host, vm } = found[0]!;
  if (!isConnected(host)) {
    throw new RecoverableError('host.notConnected', `host ${host.name} of VM '${vm.name}' is ${String(host.status.connectionState)}`, {
      hint: `check that the agent on ${host.name} runs and reaches the vault`,
    });
  }
  let disks = vm.disks;
  if (c.spec.disks !== undefined) {
    const missing = c.spec.disks.filter((d) => !vm.disks.some((x) => x.id === d));
    if (missing.length > 0) {
      throw new NonRecoverableError('disk.notFound', `VM '${vm.name}' has no disk ${missing.join(', ')}`, { hint: `its disks are: ${vm.disks.map((d) => d.id).join(', ')}` });
    }
    disks = vm.disks.filter((d) => c.spec.disks!.includes(d.id));
  }
  if (disks.length === 0) throw new NonRecoverableError('vm.noDisks', `VM '${vm.name}' has no disk to replicate`);
  return { host, vm, disks };
}

/** The recovery host and its replication endpoint. */
export interface TargetChoice {
  readonly host: StoredObject;
  readonly address: string;
  readonly port: number;
}

/**
 * Choose the recovery host of a secondary-site item: the one named by the
 * item, else the connected host of the target site with most free space.
 * Recoverable when none is connected or none has room for `needBytes`.
 */
export function chooseTarget(services: VaultServices, vault: string, c: ItemContext, targetRef: string, needBytes: number, source: string): TargetChoice {
  const { site, cloud } = parseSiteRef(targetRef);
  let hosts = hostsOf(services, vault, site, cloud).filter((h) => !sameName(h.name, source));
  if (c.spec.target?.host !== undefined) {
    hosts = hosts.filter((h) => sameName(h.name, c.spec.target!.host));
    if (hosts.length === 0) throw new NonRecoverableError('host.notInTargetSite', `host ${c.spec.target.host} is not a registered host of target site ${targetRef}`);
  }
  if (hosts.length === 0) {
    throw new RecoverableError('target.noHosts', `no host of target site ${targetRef} is registered`, {
      hint: `install the agent on the recovery hosts of ${targetRef} and register them`,
    });
  }
  const connected = hosts.filter(isConnected);
  if (connected.length === 0) {
    throw new RecoverableError('target.noConnectedHost', `no host of target site ${targetRef} is connected (${hosts.map((h) => `${h.name}: ${String(h.status.connectionState)}`).join(', ')})`, {
      hint: 'check that the recovery hosts\' agents run and reach the vault',
    });
  }
  const free = (h: StoredObject): number | undefined => {
    const f = (h.status.storage as { freeBytes?: number } | undefined)?.freeBytes;
    return typeof f === 'number' ? f : undefined;
  };
  const roomy = connected.filter((h) => (free(h) ?? -1) >= needBytes).sort((a, b) => free(b)! - free(a)! || a.name.localeCompare(b.name));
  if (roomy.length === 0) {
    const best = Math.max(...connected.map((h) => free(h) ?? 0));
    throw new RecoverableError('target.lowDiskSpace', `no connected host of ${targetRef} has ${formatBytes(needBytes)} free for the replica (most free: ${formatBytes(best)})`, {
      hint: `free space in the replica store of a host of ${targetRef}, or register another recovery host`,
    });
  }
  const host = roomy[0]!;
  const ep = host.status.replicationEndpoint as { address?: string; port?: number } | undefined;
  const addresses = (host.spec.addresses as string[] | undefined) ?? [];
  const address = ep?.address ?? addresses[0];
  const port = c.policy.replicationPort ?? ep?.port ?? (host.spec.replicationPort as number | undefined);
  if (address === undefined || port === undefined) {
    throw new RecoverableError('target.noEndpoint', `host ${host.name} has not reported a replication endpoint`, {
      hint: `the agent on ${host.name} reports its endpoint in heartbeats once its replication listener runs`,
    });
  }
  return { host, address, port };
}

/** Network mappings from the item's site to `targetSite`, as agents apply them. */
export function networkMappingsFor(services: VaultServices, vault: string, sourceSite: string, targetSite: string | undefined): JsonObject[] {
  return services.store.listObjects(vault, 'networkMapping')
    .map((o) => o.spec as unknown as NetworkMappingSpec)
    .filter((m) => sameName(parseSiteRef(m.source.site).site, sourceSite)
      && (targetSite === undefined ? m.target.azure === true : sameName(parseSiteRef(m.target.site ?? '').site, targetSite)))
    .map((m) => ({
      sourceNetwork: m.source.network, targetNetwork: m.target.network,
      ...(m.target.subnet === undefined ? {} : { subnet: m.target.subnet }),
      ...(m.testNetwork === undefined ? {} : { testNetwork: m.testNetwork }),
    }));
}

/** Hooks every item job uses: the item's active and last job, and the job issues. */
export function itemJobHooks(): Pick<JobHandler, 'onSucceeded' | 'onFailed' | 'onEnded' | 'onRetry' | 'onStuck' | 'onRecovered'> {
  return {
    onSucceeded: ({ services, job }: HookContext) => clearIssue(services, job.vault, job.target.name, 'job.failed'),
    onFailed: ({ services, job }: HookContext, error: JsonObject) => {
      raiseIssue(services, job.vault, job.target.name, {
        code: 'job.failed',
        severity: 'Critical',
        message: `${job.type} failed: ${String(error.message ?? 'unknown error')} [${String(error.code ?? '?')}]`,
        hint: typeof error.hint === 'string' ? error.hint : `see job ${job.id}; fix the cause, then PUT the item again (or DELETE it)`,
      });
    },
    onEnded: ({ services, job }: HookContext) => {
      clearIssue(services, job.vault, job.target.name, 'job.stuck');
      clearIssue(services, job.vault, job.target.name, 'job.retrying');
      updateItem(services, job.vault, job.target.name, (s) => {
        const { activeJob: _drop, ...rest } = s;
        return { ...rest, lastJob: { id: job.id, type: job.type, state: job.state } };
      });
    },
    onRetry: ({ services, job }: HookContext, error: JsonObject, nextAttemptAt: number) => {
      raiseIssue(services, job.vault, job.target.name, {
        code: 'job.retrying',
        severity: 'Warning',
        message: `${job.type} is retrying after: ${String(error.message ?? 'an error')} [${String(error.code ?? '?')}]; next attempt at ${new Date(nextAttemptAt).toISOString()}`,
        ...(typeof error.hint === 'string' ? { hint: error.hint } : {}),
      });
    },
    onStuck: ({ services, job }: HookContext, reason: string, hint: string) => {
      raiseIssue(services, job.vault, job.target.name, { code: 'job.stuck', severity: 'Critical', message: `${job.type} is stuck: ${reason}`, hint });
    },
    onRecovered: ({ services, job }: HookContext) => {
      clearIssue(services, job.vault, job.target.name, 'job.stuck');
      clearIssue(services, job.vault, job.target.name, 'job.retrying');
    },
  };
}

/**
 * Run a compensating command if its host is connected; if the host is not
 * connected or the command fails, record what is left behind as an item
 * issue instead of waiting or failing. Throws only when the vault stops.
 */
export async function bestEffortCommand(ctx: StepContext, key: string, host: string | undefined, type: string, payload: JsonObject, what: string): Promise<void> {
  if (host === undefined) return;
  const leftover = (why: string): void => {
    raiseIssue(ctx.services, ctx.job.vault, ctx.job.target.name, {
      code: 'protectedItem.leftovers',
      severity: 'Warning',
      message: `${what} on host ${host} may be left behind: ${why} when job ${ctx.job.id} cleaned up`,
      hint: `when ${host} is back, remove the item's replication data there by hand (or re-create and delete the item)`,
    });
  };
  const h = ctx.services.store.getObject(ctx.job.vault, 'host', host);
  if (!isConnected(h)) {
    leftover(h === undefined ? 'the host was no longer registered' : 'the host was not connected');
    return;
  }
  try {
    await ctx.runCommand(key, { host, type, payload });
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    leftover(`${type} failed (${e instanceof Error ? e.message : String(e)})`);
  }
}
