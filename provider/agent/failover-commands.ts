/**
 * The agent's failover commands (docs/failover.md §4): on the source host,
 * fence and drain (`failover.prepareSource`) or undo that
 * (`failover.cancelSource`); on the recovery host, start a VM on
 * copy-on-write overlays over point-in-time views of the replica
 * (`failover.start`), remove it (`failover.removeVm`) and make a point
 * permanent (`failover.commit`). Also the lab's resolver of `view:`
 * locations. Every handler is idempotent (the file comment of each says why
 * in docs/failover.md §4); failures leave what §8 there says.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidInputError, LifeboatError, NonRecoverableError, ReplicaStateError } from '../errors';
import { type Hypervisor, type NicSpec, type VmInfo } from '../hypervisor/hypervisor';
import { type OverlayBase } from '../hypervisor/lab';
import { type RecoveryPointInfo, type ReplicaDisk } from '../replication/target';
import { writeFileAtomic } from './agent-files';
import { type CommandContext, type CommandHandler } from './command-runner';
import { itemDir, loadRecords, replicaDiskId, type ReplicaRecord, type SourceRecord, str } from './item-records';
import { type ReplicaService } from './replica-service';
import { type SourceItem } from './source-item';
import { type AgentCommand } from './vault-channel';

/** What the failover handlers need from the agent. */
export interface FailoverContext {
  readonly hypervisor: Hypervisor;
  readonly itemsDir: string;
  readonly replicas: ReplicaService | undefined;
  readonly sources: Map<string, SourceItem>;
  /** Make the source side of a record (to resume a cancelled planned failover). @default none: it is not resumed until the agent restarts */
  newSourceItem?(record: SourceRecord): SourceItem;
  changed(): void;
  /** The VM inventory changed: tell the vault now (a heartbeat). @default nothing beyond `changed` */
  inventoryChanged?(): void;
  now(): number;
}

/** A point spec of a command payload (docs/failover.md §1). */
export type PointSpec =
  | { readonly latest: true }
  | { readonly latestAppConsistent: true }
  | { readonly time: number }
  | { readonly ids: Readonly<Record<string, string>> };

/** The failover record a source writes at the cut (docs/failover.md §7). */
export interface FailoverRecord {
  readonly version: 1;
  readonly at: string;
  readonly wasRunning: boolean;
  readonly disks: readonly { readonly id: string; readonly pointId: string; readonly generation: string; readonly seq: number }[];
}

const VIEW_SCHEME = 'view:';

/** The location of the view of `pointId` of an item's disk, for overlay disks. */
export function viewLocation(itemUid: string, diskId: string, pointId: string): string {
  return `${VIEW_SCHEME}${itemUid}/${diskId}/${pointId}`;
}

/**
 * The lab's `resolveLocation` for `view:<uid>/<disk>/<point>`: opens the
 * point-in-time view in the replica store (the disk stays open, shared with
 * replication sessions; only the view is the overlay's to close). Waits for
 * the store when called before it is open (VMs restarted at agent start).
 * Throws `InvalidInputError` `agent.badLocation` for another scheme, and the
 * store's errors (`replica.pointNotFound`).
 */
export function viewResolver(replicas: () => Promise<ReplicaService | undefined>, itemsDir: string): (location: string) => Promise<OverlayBase> {
  return async (location) => {
    const m = /^view:([^/]+)\/([^/]+)\/([^/]+)$/.exec(location);
    if (m === null) throw new InvalidInputError('agent.badLocation', `location ${location} is not view:<item uid>/<disk>/<point>`);
    const [, uid, disk, point] = m as unknown as [string, string, string, string];
    const store = await replicas();
    if (store === undefined) throw new NonRecoverableError('agent.notRecoveryHost', `${location}: this host keeps no replicas`);
    const record = (await loadRecords(itemsDir)).find((r): r is ReplicaRecord => r.role === 'replica' && r.itemUid === uid);
    const size = record?.disks.find((d) => d.id === disk)?.sizeBytes;
    if (size === undefined) throw new NonRecoverableError('agent.noRelationship', `${location}: no replica of disk ${disk} for item ${uid} on this host`);
    const d = await store.target.openDisk({ diskId: replicaDiskId(uid, disk), sizeBytes: size });
    return d.openView(point);
  };
}

/**
 * Resolve a point spec against each disk's retained points: the first disk's
 * newest match, then each other disk's newest point no later than it. Throws
 * `ReplicaStateError` `replica.pointNotFound` naming what is retained.
 */
export function resolvePoints(spec: PointSpec, disks: readonly { readonly id: string; readonly points: readonly RecoveryPointInfo[] }[]): Map<string, RecoveryPointInfo> {
  const out = new Map<string, RecoveryPointInfo>();
  const first = disks[0];
  if (first === undefined) return out;
  const notFound = (what: string, points: readonly RecoveryPointInfo[]): ReplicaStateError => new ReplicaStateError('replica.pointNotFound', `no retained recovery point ${what}`, {
    hint: points.length === 0 ? 'the replica holds no point yet' : `retained points span ${new Date(points[0]!.time).toISOString()} to ${new Date(points[points.length - 1]!.time).toISOString()}`,
  });
  if ('ids' in spec) {
    for (const d of disks) {
      const id = spec.ids[d.id];
      const p = d.points.find((x) => x.id === id);
      if (p === undefined) throw notFound(`${String(id)} on disk ${d.id}`, d.points);
      out.set(d.id, p);
    }
    return out;
  }
  const newest = (points: readonly RecoveryPointInfo[], ok: (p: RecoveryPointInfo) => boolean): RecoveryPointInfo | undefined => [...points].reverse().find(ok);
  const head = 'latest' in spec ? newest(first.points, () => true)
    : 'latestAppConsistent' in spec ? newest(first.points, (p) => p.kind === 'appConsistent')
      : newest(first.points, (p) => p.time <= spec.time);
  if (head === undefined) {
    const what = 'latest' in spec ? '' : 'latestAppConsistent' in spec ? 'that is app-consistent' : `at or before ${new Date(spec.time).toISOString()}`;
    throw notFound(what, first.points);
  }
  out.set(first.id, head);
  for (const d of disks.slice(1)) {
    const p = newest(d.points, (x) => x.time <= head.time);
    if (p === undefined) throw notFound(`on disk ${d.id} at or before ${new Date(head.time).toISOString()}`, d.points);
    out.set(d.id, p);
  }
  return out;
}

/** The point spec of a payload's `point` field. Throws `agent.badPayload`. */
export function pointSpecOf(v: unknown): PointSpec {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (o.latest === true) return { latest: true };
  if (o.latestAppConsistent === true) return { latestAppConsistent: true };
  if (typeof o.time === 'string' && !Number.isNaN(Date.parse(o.time))) return { time: Date.parse(o.time) };
  if (typeof o.ids === 'object' && o.ids !== null) return { ids: o.ids as Record<string, string> };
  throw new InvalidInputError('agent.badPayload', 'command payload: /point must be {latest}, {latestAppConsistent}, {time} or {ids}', { where: { path: '/point' } });
}

function failoverFile(itemsDir: string, uid: string): string {
  return path.join(itemDir(itemsDir, uid), 'failover.json');
}

/** The failover record of an item on its old source host, if any. */
export async function readFailoverRecord(itemsDir: string, uid: string): Promise<FailoverRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(failoverFile(itemsDir, uid), 'utf8')) as FailoverRecord;
  } catch {
    return undefined;
  }
}

function pointJson(p: RecoveryPointInfo): Record<string, unknown> {
  return { id: p.id, time: new Date(p.time).toISOString(), kind: p.kind, generation: p.generation, seq: p.seq };
}

/**
 * What the recovery host records at commit (docs/failover.md §7): per disk,
 * the committed point and the extents of the cycles the old primary had
 * shipped after it (discarded by the commit). Reprotect reads it; without
 * it, reprotect falls back to a full block compare.
 */
export interface CommitRecord {
  readonly version: 1;
  readonly disks: Readonly<Record<string, { readonly pointId: string; readonly generation: string; readonly seq: number; readonly shippedAfter: readonly { readonly offset: number; readonly length: number }[] }>>;
}

/** `items/<uid>/commit.json` on the recovery host. */
export function commitFile(itemsDir: string, uid: string): string {
  return path.join(itemDir(itemsDir, uid), 'commit.json');
}

/** The failover handlers by command type; `withItem` serialises an item's commands. */
export function failoverHandlers(ctx: FailoverContext, withItem: <T>(c: AgentCommand, fn: () => Promise<T>) => Promise<T>): Readonly<Record<string, CommandHandler>> {
  const uidOf = (c: AgentCommand): string => str(c.payload, 'itemUid');

  const replicaRecord = async (c: AgentCommand): Promise<{ store: ReplicaService; record: ReplicaRecord }> => {
    if (ctx.replicas === undefined) {
      throw new NonRecoverableError('agent.notRecoveryHost', `${c.type}: this host does not keep replicas (it runs with --role primary)`, {
        hint: 'fail over to the item\'s recovery host',
      });
    }
    const record = (await loadRecords(ctx.itemsDir)).find((r): r is ReplicaRecord => r.role === 'replica' && r.itemUid === uidOf(c));
    if (record === undefined) {
      throw new NonRecoverableError('agent.noRelationship', `${c.type}: this host has no replica of item ${String(c.payload.item)} (${uidOf(c)})`, {
        hint: 'the item\'s replica is on its targetHost; enable protection again if it was lost',
      });
    }
    return { store: ctx.replicas, record };
  };

  const openDisks = async (store: ReplicaService, record: ReplicaRecord): Promise<{ readonly id: string; readonly disk: ReplicaDisk; readonly points: readonly RecoveryPointInfo[] }[]> => {
    const out = [];
    for (const d of record.disks) {
      const disk = await store.target.openDisk({ diskId: replicaDiskId(record.itemUid, d.id), sizeBytes: d.sizeBytes });
      out.push({ id: d.id, disk, points: await disk.listPoints() });
    }
    return out;
  };

  const getVm = async (name: string): Promise<VmInfo | undefined> => {
    try {
      return await ctx.hypervisor.get(name);
    } catch (e) {
      if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') return undefined;
      throw e;
    }
  };

  return {
    'failover.prepareSource': async (c, cc: CommandContext) => {
      const uid = uidOf(c);
      const vm = str(c.payload, 'vm');
      const item = await withItem(c, async () => {
        const src = ctx.sources.get(uid);
        const done = await readFailoverRecord(ctx.itemsDir, uid);
        // Drained before (a redelivered command): the same answer.
        if (src === undefined && done !== undefined) return { src: undefined, wasRunning: done.wasRunning, done };
        if (src === undefined) {
          throw new NonRecoverableError('agent.noRelationship', `failover.prepareSource: this host does not replicate item ${String(c.payload.item)}`, {
            hint: 'run an unplanned failover instead',
          });
        }
        const before = await ctx.hypervisor.get(vm);
        const previous = await readFailoverRecord(ctx.itemsDir, uid);
        // Fence first: the mark is written before the guest stops, so nothing restarts it.
        await ctx.hypervisor.fence(vm, `planned failover of item ${String(c.payload.item)} to ${String(c.payload.targetHost ?? 'the recovery site')}`);
        ctx.changed();
      ctx.inventoryChanged?.();
        return { src, wasRunning: previous?.wasRunning ?? (before.power !== 'Off'), done: undefined };
      });
      if (item.src === undefined) return { disks: Object.fromEntries(item.done!.disks.map((d) => [d.id, d.pointId])) };
      const drained = await item.src.drainForFailover(cc.signal, (p, m) => cc.progress(p, m));
      // Stopped for good: its reports (points, state) must not reach the vault any more.
      if (ctx.sources.get(uid) === item.src) ctx.sources.delete(uid);
      const record: FailoverRecord = {
        version: 1, at: new Date(ctx.now()).toISOString(), wasRunning: item.wasRunning,
        disks: drained.map((d) => ({ id: d.id, pointId: d.pointId, generation: d.generation, seq: d.seq })),
      };
      await fs.mkdir(itemDir(ctx.itemsDir, uid), { recursive: true, mode: 0o700 });
      await writeFileAtomic(failoverFile(ctx.itemsDir, uid), `${JSON.stringify(record, null, 2)}\n`, 0o600);
      ctx.changed();
      ctx.inventoryChanged?.();
      return { disks: Object.fromEntries(drained.map((d) => [d.id, d.pointId])), pointTime: new Date(Math.min(...drained.map((d) => d.pointTime))).toISOString() };
    },

    'failover.cancelSource': (c) => withItem(c, async () => {
      const uid = uidOf(c);
      const vm = str(c.payload, 'vm');
      const record = await readFailoverRecord(ctx.itemsDir, uid);
      if ((await getVm(vm)) !== undefined) {
        await ctx.hypervisor.unfence(vm, 'planned failover cancelled');
        if (record?.wasRunning === true) await ctx.hypervisor.start(vm);
      }
      await fs.rm(failoverFile(ctx.itemsDir, uid), { force: true });
      let src = ctx.sources.get(uid);
      const rec = (await loadRecords(ctx.itemsDir)).find((r): r is SourceRecord => r.role === 'source' && r.itemUid === uid);
      if (src === undefined && rec !== undefined && ctx.newSourceItem !== undefined) {
        src = ctx.newSourceItem(rec);
        ctx.sources.set(uid, src);
      }
      src?.activate();
      ctx.changed();
      ctx.inventoryChanged?.();
      return {};
    }),

    'failover.start': (c) => withItem(c, async () => {
      const { store, record } = await replicaRecord(c);
      const name = str(c.payload, 'vmName');
      const test = c.payload.test === true;
      const disks = await openDisks(store, record);
      const chosen = resolvePoints(pointSpecOf(c.payload.point), disks);
      const nics = Array.isArray(c.payload.nics) ? (c.payload.nics as NicSpec[]) : [];
      const first = chosen.get(record.disks[0]!.id)!;
      // A new failover: a commit record of an earlier one no longer describes this point.
      if (!test) await fs.rm(commitFile(ctx.itemsDir, record.itemUid), { force: true });
      let vm = await ctx.hypervisor.createFromDisks({
        name,
        disks: record.disks.map((d) => ({ id: d.id, location: viewLocation(record.itemUid, d.id, chosen.get(d.id)!.id), overlay: true })),
        nics,
        testFailover: test,
        tags: {
          'lifeboat.item': record.item,
          'lifeboat.itemUid': record.itemUid,
          'lifeboat.failover.point': first.id,
          'lifeboat.failover.type': test ? 'test' : 'failover',
        },
      });
      vm = await ctx.hypervisor.start(name);
      ctx.changed();
      ctx.inventoryChanged?.();
      return {
        vm: vm.name,
        power: vm.power,
        point: pointJson(first),
        disks: Object.fromEntries([...chosen].map(([id, p]) => [id, pointJson(p)])),
        points: disks[0]!.points.map(pointJson),
      };
    }),

    'failover.removeVm': (c) => withItem(c, async () => {
      const name = str(c.payload, 'vmName');
      const vm = await getVm(name);
      if (vm === undefined) return { removed: false };
      if (vm.tags['lifeboat.itemUid'] !== uidOf(c)) {
        throw new NonRecoverableError('agent.notFailoverVm', `VM ${name} on this host was not made by a failover of item ${String(c.payload.item)}`, {
          hint: 'remove it by hand if it is not needed',
        });
      }
      await ctx.hypervisor.shutdown(name, { turnOff: true, reason: 'failover VM removed' });
      await ctx.hypervisor.delete(name);
      ctx.changed();
      ctx.inventoryChanged?.();
      return { removed: true };
    }),

    'failover.commit': (c) => withItem(c, async () => {
      const { store, record } = await replicaRecord(c);
      const name = str(c.payload, 'vmName');
      const disks = await openDisks(store, record);
      const chosen = resolvePoints(pointSpecOf(c.payload.point), disks);
      const older = disks.filter((d) => d.points[d.points.length - 1]?.id !== chosen.get(d.id)!.id);
      const vm = await getVm(name);
      const restart = older.length > 0 && vm !== undefined && vm.power !== 'Off';
      // A rollback invalidates the views the VM reads: it must be off meanwhile.
      // Before anything is discarded: what the old primary shipped after the point (reprotect's A).
      const existing = await fs.readFile(commitFile(ctx.itemsDir, record.itemUid), 'utf8').catch(() => undefined);
      if (existing === undefined) {
        const entries: [string, CommitRecord['disks'][string]][] = [];
        for (const d of disks) {
          const p = chosen.get(d.id)!;
          const view = await d.disk.openView(p.id);
          try {
            const changed = 'changedExtents' in view && typeof view.changedExtents === 'function'
              ? (view.changedExtents as () => readonly { offset: number; length: number }[])() : undefined;
            if (changed === undefined) continue;
            entries.push([d.id, { pointId: p.id, generation: p.generation, seq: p.seq, shippedAfter: changed }]);
          } finally {
            await view.close();
          }
        }
        if (entries.length === disks.length) {
          const rec: CommitRecord = { version: 1, disks: Object.fromEntries(entries) };
          await fs.mkdir(itemDir(ctx.itemsDir, record.itemUid), { recursive: true, mode: 0o700 });
          await writeFileAtomic(commitFile(ctx.itemsDir, record.itemUid), `${JSON.stringify(rec)}\n`, 0o600);
        }
      }
      if (restart) await ctx.hypervisor.shutdown(name, { reason: 'failover commit: rolling the replica back to the chosen point' });
      for (const d of disks) {
        const p = chosen.get(d.id)!;
        if (older.includes(d)) await d.disk.materialise(p.id);
        await d.disk.prunePoints(p.time);
      }
      if (restart) await ctx.hypervisor.start(name);
      ctx.changed();
      ctx.inventoryChanged?.();
      const left = await disks[0]!.disk.listPoints();
      return { points: left.map(pointJson), restarted: restart };
    }),
  };
}
