/**
 * What the agent does for each command of docs/vault-api.md §9 (contract:
 * docs/jobs.md). Every handler is idempotent, keyed by the item's uid: run
 * twice (a redelivery, an agent restart, a vault that resumed a job) it
 * leaves the same state and returns the same result. Handlers of one item
 * run one at a time (a per-item lock); the long waits of `replication.start`
 * and `resync.run` happen outside the lock, so a withdrawn command does not
 * hold up the next one.
 */

import * as path from 'node:path';
import { LifeboatError, NonRecoverableError } from '../errors';
import { type Hypervisor } from '../hypervisor/hypervisor';
import { type CommandContext, type CommandHandler } from './command-runner';
import {
  disksOf, hostTargetOf, type ItemRecord, loadRecords, policyOf, removeRecord, type ReplicaRecord, saveRecord,
  type SourceRecord, str,
} from './item-records';
import { failoverCheckHandlers } from './failover-check-commands';
import { failoverHandlers } from './failover-commands';
import { type AzureCommandContext, azureHandlers } from './azure-commands';
import { azureFailbackHandlers } from './azure-failback-commands';
import { type AzureCredentialsSource } from './azure-target';
import { reprotectHandlers } from './reprotect-commands';
import { scriptHandlers } from './script-commands';
import { KeyedMutex } from './keyed-mutex';
import { type ReplicaService } from './replica-service';
import { type SourceItem } from './source-item';
import { type AgentCommand } from './vault-channel';

/** What the handlers need from the agent. */
export interface HandlerContext {
  readonly hypervisor: Hypervisor;
  /** `<data-dir>/items`. */
  readonly itemsDir: string;
  /** Present on a recovery host, and on a primary host once it keeps a replica (reprotect). */
  readonly replicas: ReplicaService | undefined;
  /** The lab root. @default `<data-dir>/lab` (beside `itemsDir`) */
  readonly labDir?: string;
  /** The replica store's folder. @default `<data-dir>/replicas` */
  readonly replicasDir?: string;
  /** The folder recovery plan scripts are taken from (docs/recovery-plans.md §5). @default `<data-dir>/scripts` */
  readonly scriptsDir?: string;
  /**
   * Start the replica store and its endpoint if this host has none yet (a
   * returning primary becoming the replica). @default none: reprotect
   * commands are refused with `agent.notRecoveryHost` unless `replicas` is set
   */
  readonly ensureReplicas?: () => Promise<{ readonly service: ReplicaService; readonly endpoint: { readonly address: string; readonly port: number } }>;
  /**
   * Check that the storage account of an azure relationship is reachable with
   * the vault's credentials (opens and closes the target). Throws its
   * classified errors (`azure.authenticationFailed`, `azure.network`, …).
   * @default no check (activation finds the same errors later)
   */
  readonly checkAzureTarget?: (record: SourceRecord) => Promise<void>;
  /** Fetches an item's storage credentials from the vault (the azure commands). @default none: azure.* commands are unknown */
  readonly azureCredentials?: AzureCredentialsSource;
  /** The lab guest of VMs failed over to Azure. @default none: an idle guest */
  readonly azureGuestWorkload?: AzureCommandContext['guestWorkload'];
  /** Source items by uid (the agent's map; handlers add and remove). */
  readonly sources: Map<string, SourceItem>;
  /** Make the source side of a record (not yet activated). */
  newSourceItem(record: SourceRecord): SourceItem;
  /** Something changed that the vault should hear about (inventory, items). */
  changed(): void;
  /** The VM inventory changed (a VM made, removed or fenced): heartbeat now. @default nothing beyond `changed` */
  inventoryChanged?(): void;
  now(): number;
}

/** The handlers by command type. */
export function commandHandlers(ctx: HandlerContext): Readonly<Record<string, CommandHandler>> {
  const lock = new KeyedMutex();
  const uidOf = (c: AgentCommand): string => str(c.payload, 'itemUid');
  const withItem = <T>(c: AgentCommand, fn: () => Promise<T>): Promise<T> => lock.run(uidOf(c), fn);

  const requireReplicas = (c: AgentCommand): ReplicaService => {
    if (ctx.replicas === undefined) {
      throw new NonRecoverableError('agent.notRecoveryHost', `${c.type}: this host does not keep replicas (it runs with --role primary)`, {
        hint: 'register a host of the recovery site with --role recovery, or name that host as the item\'s target',
      });
    }
    return ctx.replicas;
  };

  const findRecord = async (role: ItemRecord['role'], uid: string): Promise<ItemRecord | undefined> =>
    (await loadRecords(ctx.itemsDir)).find((r) => r.role === role && r.itemUid === uid);

  const noRelationship = (c: AgentCommand): NonRecoverableError =>
    new NonRecoverableError('agent.noRelationship', `${c.type}: this host has no replication relationship for item ${String(c.payload.item)} (${String(c.payload.itemUid)})`, {
      hint: 'enable protection of the item again (PUT it), which creates the relationship',
    });

  return {
    ...(ctx.azureCredentials === undefined ? {} : azureHandlers({
      hypervisor: ctx.hypervisor, labDir: ctx.labDir ?? path.join(path.dirname(ctx.itemsDir), 'lab'), credentials: ctx.azureCredentials,
      ...(ctx.azureGuestWorkload === undefined ? {} : { guestWorkload: ctx.azureGuestWorkload }),
      changed: () => ctx.changed(), inventoryChanged: () => ctx.inventoryChanged?.(),
    }, withItem)),
    ...(ctx.azureCredentials === undefined ? {} : azureFailbackHandlers({
      hypervisor: ctx.hypervisor, itemsDir: ctx.itemsDir, labDir: ctx.labDir ?? path.join(path.dirname(ctx.itemsDir), 'lab'), credentials: ctx.azureCredentials, sources: ctx.sources,
      newSourceItem: (r) => ctx.newSourceItem(r), changed: () => ctx.changed(), inventoryChanged: () => ctx.inventoryChanged?.(), now: () => ctx.now(),
    }, withItem)),
    ...failoverHandlers(ctx, withItem),
    ...failoverCheckHandlers(ctx, withItem),
    ...scriptHandlers({ scriptsDir: ctx.scriptsDir ?? path.join(path.dirname(ctx.itemsDir), 'scripts') }, () => ctx.now()),
    ...reprotectHandlers({
      hypervisor: ctx.hypervisor, itemsDir: ctx.itemsDir, sources: ctx.sources, newSourceItem: (r) => ctx.newSourceItem(r), changed: () => ctx.changed(), inventoryChanged: () => ctx.inventoryChanged?.(), now: () => ctx.now(),
      labDir: ctx.labDir ?? path.join(path.dirname(ctx.itemsDir), 'lab'),
      replicasDir: ctx.replicasDir ?? path.join(path.dirname(ctx.itemsDir), 'replicas'),
      ensureReplicas: ctx.ensureReplicas ?? (async () => {
        throw new NonRecoverableError('agent.notRecoveryHost', 'this agent cannot serve a replica store', { hint: 'run the host agent (lifeboat agent run)' });
      }),
    }, withItem),

    'replica.create': (c) => withItem(c, async () => {
      const replicas = requireReplicas(c);
      const disks = disksOf(c.payload);
      const existing = (await findRecord('replica', uidOf(c))) as ReplicaRecord | undefined;
      const record: ReplicaRecord = {
        version: 1, role: 'replica', item: str(c.payload, 'item'), itemUid: uidOf(c), vm: str(c.payload, 'vm'), disks,
        policy: policyOf(c.payload), createdAt: existing?.createdAt ?? new Date(ctx.now()).toISOString(),
        sourceHost: typeof c.payload.sourceHost === 'string' ? c.payload.sourceHost : '',
        targetVm: (c.payload.targetVm ?? {}) as Record<string, unknown>,
        networkMappings: existing?.networkMappings ?? [],
      };
      await saveRecord(ctx.itemsDir, record);
      await replicas.createDisks(record.itemUid, disks);
      ctx.changed();
      return {};
    }),

    'replica.configure': (c) => withItem(c, async () => {
      requireReplicas(c);
      const existing = (await findRecord('replica', uidOf(c))) as ReplicaRecord | undefined;
      if (existing === undefined) throw noRelationship(c);
      await saveRecord(ctx.itemsDir, {
        ...existing,
        policy: policyOf(c.payload),
        targetVm: (c.payload.targetVm ?? existing.targetVm) as Record<string, unknown>,
        networkMappings: Array.isArray(c.payload.networkMappings) ? (c.payload.networkMappings as Record<string, unknown>[]) : existing.networkMappings,
      });
      return {};
    }),

    'replica.delete': (c) => withItem(c, async () => {
      const replicas = requireReplicas(c);
      const uid = uidOf(c);
      // Every disk of the item in the store, whatever the record says (it may be gone).
      const prefix = `${uid}/`;
      for (const id of await replicas.target.listDisks()) if (id.startsWith(prefix)) await replicas.target.deleteDisk(id);
      await removeRecord(ctx.itemsDir, 'replica', uid);
      ctx.changed();
      return {};
    }),

    'replica.release': (c) => withItem(c, async () => {
      requireReplicas(c);
      await removeRecord(ctx.itemsDir, 'replica', uidOf(c));
      return {};
    }),

    'replication.enable': (c) => withItem(c, async () => {
      const uid = uidOf(c);
      const target = hostTargetOf(c.payload);
      if (target.kind !== 'host' && target.kind !== 'azure') {
        throw new NonRecoverableError('agent.targetKindUnsupported', `replication to a ${target.kind} target is not supported by this agent yet`, {
          hint: 'use a secondary-site policy (replication to a recovery host)',
        });
      }
      const existing = (await findRecord('source', uid)) as SourceRecord | undefined;
      const record: SourceRecord = {
        version: 1, role: 'source', item: str(c.payload, 'item'), itemUid: uid, vm: str(c.payload, 'vm'), disks: disksOf(c.payload),
        policy: policyOf(c.payload), createdAt: existing?.createdAt ?? new Date(ctx.now()).toISOString(),
        target: target as SourceRecord['target'], timeZone: typeof c.payload.timeZone === 'string' ? c.payload.timeZone : 'UTC',
        started: existing?.started ?? false,
      };
      // Fail fast on a VM or disk this host does not have; nothing is recorded then.
      const vm = await ctx.hypervisor.get(record.vm);
      const missing = record.disks.filter((d) => !vm.disks.some((x) => x.id === d.id));
      if (missing.length > 0) {
        throw new NonRecoverableError('hypervisor.diskNotFound', `VM ${record.vm} has no disk ${missing.map((d) => d.id).join(', ')}`, {
          hint: `its disks are ${vm.disks.map((d) => d.id).join(', ')}`,
        });
      }
      if (record.target.kind === 'azure') await ctx.checkAzureTarget?.(record);
      await saveRecord(ctx.itemsDir, record);
      let item = ctx.sources.get(uid);
      if (item !== undefined && JSON.stringify(item.record.target) !== JSON.stringify(record.target)) {
        // Another recovery host: a new connection, a new item object (progress files stay).
        await item.stop();
        item = undefined;
      }
      if (item === undefined) {
        item = ctx.newSourceItem(record);
        ctx.sources.set(uid, item);
      } else if (JSON.stringify(item.record) !== JSON.stringify(record)) {
        await item.reconfigure(record);
      }
      await item.enableTracking();
      item.activate();
      ctx.changed();
      return {};
    }),

    'replication.start': async (c, cc: CommandContext) => {
      if (c.payload.method === 'offline') {
        throw new NonRecoverableError('agent.offlineNotSupported', 'offline initial replication (moving the first copy by other means) is not supported yet', {
          hint: 'set the policy\'s initialReplication.method to online',
        });
      }
      const item = await withItem(c, async () => {
        const record = (await findRecord('source', uidOf(c))) as SourceRecord | undefined;
        const src = ctx.sources.get(uidOf(c));
        if (record === undefined || src === undefined) throw noRelationship(c);
        const started: SourceRecord = { ...record, started: true };
        if (!record.started) await saveRecord(ctx.itemsDir, started);
        src.start(started);
        return src;
      });
      ctx.changed();
      await item.waitForFirstPoint(cc.signal, (p, m) => cc.progress(p, m));
      ctx.changed();
      return {};
    },

    'replication.configure': (c) => withItem(c, async () => {
      const record = (await findRecord('source', uidOf(c))) as SourceRecord | undefined;
      const item = ctx.sources.get(uidOf(c));
      if (record === undefined || item === undefined) throw noRelationship(c);
      const next: SourceRecord = { ...record, policy: policyOf(c.payload) };
      await saveRecord(ctx.itemsDir, next);
      await item.reconfigure(next);
      // The policy's storage key changed: the blobs are opened again with it (docs/azure-failover.md §3).
      if (c.payload.reopenStorage === true) await item.reopenStorage();
      return {};
    }),

    'replication.disable': (c) => withItem(c, async () => {
      const uid = uidOf(c);
      const item = ctx.sources.get(uid);
      if (item !== undefined) {
        await item.disable();
        ctx.sources.delete(uid);
      } else {
        // No relationship (never created, or already removed): stop tracking what may be left.
        await disableTrackingOf(ctx.hypervisor, str(c.payload, 'vm'));
      }
      await removeRecord(ctx.itemsDir, 'source', uid);
      ctx.changed();
      return {};
    }),

    'resync.run': async (c, cc: CommandContext) => {
      const item = ctx.sources.get(uidOf(c));
      if (item === undefined) throw noRelationship(c);
      await item.resync('resynchronisation requested through the vault', cc.signal, (p, m) => cc.progress(p, m));
      ctx.changed();
      return {};
    },
  };
}

async function disableTrackingOf(hv: Hypervisor, vm: string): Promise<void> {
  let info;
  try {
    info = await hv.get(vm);
  } catch (e) {
    if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') return;
    throw e;
  }
  for (const d of info.disks) if (d.tracked) await hv.disableTracking(vm, d.id);
}
