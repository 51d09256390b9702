/**
 * Reprotect (reverse replication) on the agents (docs/failover.md §7): the
 * old primary turns its fenced VM's disk into the replica of the reverse
 * direction without copying it (`reprotect.prepareReplica`), and the host
 * where the workload now runs moves its failover VM off the overlay onto a
 * plain tracked disk and seeds the reverse replication with only the blocks
 * that can differ (`reprotect.prepareSource`): the union of what the old
 * primary wrote after the failover point (its unshipped log, and the cycles
 * it had shipped after the point that the commit discarded) and what the
 * failover VM wrote since it started (its overlay's blocks). The reverse
 * relationship's first pass then compares only those blocks; `resync.run`
 * drives it. Without those records the pass covers the whole disk (the
 * core's block-compare resync).
 *
 * Both handlers are idempotent: each keeps a record of what it did in the
 * item's folder and answers it again; every step checks what is already
 * done (a disk already adopted, a VM already flattened).
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, NonRecoverableError } from '../errors';
import { type Hypervisor, type VmInfo } from '../hypervisor/hypervisor';
import { CowOverlay } from '../hypervisor/lab';
import { scanSegmentFile } from '../replication/segment-reader';
import { emptyStats, writeProgress, type Region } from '../replication/progress-file';
import { StorePaths } from '../targets/host/store-layout';
import { writeFileAtomic } from './agent-files';
import { type CommandHandler } from './command-runner';
import { commitFile, type CommitRecord, viewResolver } from './failover-commands';
import {
  disksOf, itemDir, loadRecords, policyOf, removeRecord, replicaDiskId, type ReplicaRecord, saveRecord, type SourceRecord, str,
} from './item-records';
import { type ReplicaService } from './replica-service';
import { type SourceItem } from './source-item';
import { type AgentCommand } from './vault-channel';

/** What the reprotect handlers need from the agent. */
export interface ReprotectContext {
  readonly hypervisor: Hypervisor;
  readonly itemsDir: string;
  /** The lab root, where a flattened disk is kept (`disks/`). */
  readonly labDir: string;
  /** The replica store's folder (`<data-dir>/replicas`). */
  readonly replicasDir: string;
  readonly sources: Map<string, SourceItem>;
  /** The replica store, started on a primary host when it first becomes a replica. */
  ensureReplicas(): Promise<{ readonly service: ReplicaService; readonly endpoint: { readonly address: string; readonly port: number } }>;
  newSourceItem(record: SourceRecord): SourceItem;
  changed(): void;
  /** The VM inventory changed: tell the vault now (a heartbeat). @default nothing beyond `changed` */
  inventoryChanged?(): void;
  now(): number;
}

/** Block granularity of the seeded regions (the replicator's resync block). */
export const REPROTECT_BLOCK = 64 * 1024;

/** Sort, align to `block` and merge byte ranges within a disk. Pure. */
export function mergeRegions(ranges: readonly Region[], block: number, sizeBytes: number): Region[] {
  const aligned = ranges
    .filter((r) => r.length > 0)
    .map((r) => ({ start: Math.floor(r.offset / block) * block, end: Math.min(sizeBytes, Math.ceil((r.offset + r.length) / block) * block) }))
    .sort((a, b) => a.start - b.start);
  const out: { offset: number; length: number }[] = [];
  for (const r of aligned) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.offset + last.length) last.length = Math.max(last.length, r.end - last.offset);
    else out.push({ offset: r.start, length: r.end - r.start });
  }
  return out;
}

/** Bytes a region list covers. Pure. */
export function regionBytes(regions: readonly Region[]): number {
  return regions.reduce((n, r) => n + r.length, 0);
}

interface ReplicaSideRecord {
  readonly version: 1;
  /** The vault job it was made for: a record of an earlier reprotect is stale. */
  readonly job: string;
  /** Per disk: the extents written after the point, or null when unknown (full compare). */
  readonly disks: Readonly<Record<string, readonly Region[] | null>>;
}

function reprotectFile(itemsDir: string, uid: string, role: 'replica' | 'source'): string {
  return path.join(itemDir(itemsDir, uid), `reprotect.${role}.json`);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function getVm(hv: Hypervisor, name: string): Promise<VmInfo | undefined> {
  try {
    return await hv.get(name);
  } catch (e) {
    if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') return undefined;
    throw e;
  }
}

/** The write extents of a tracker's unreleased log plus its suspect extents: every block written after the last commit the replica has. */
async function logExtents(hv: Hypervisor, vm: string, diskId: string, expectedGeneration: string | undefined): Promise<Region[] | null> {
  const t = await hv.trackedDisk(vm, diskId);
  if (expectedGeneration === undefined || t.generation !== expectedGeneration) return null;
  await t.seal();
  const out: Region[] = [...t.currentSuspects(), ...t.recovery.suspectExtents].map((r) => ({ offset: r.offset, length: r.length }));
  for (const s of t.sealedSegments()) {
    const fh = await fs.open(s.path, 'r');
    try {
      await scanSegmentFile(fh, { onRecord: (r) => { if (r.type === 'write' && r.length > 0) out.push({ offset: r.offset, length: r.length }); } });
    } finally {
      await fh.close();
    }
  }
  return out;
}

/** What `reprotect.prepareSource` keeps: the regions first, then that the VM was moved. */
interface SourceSideRecord {
  readonly version: 1;
  readonly job: string;
  readonly stage: 'regions' | 'done';
  readonly delta: boolean;
  readonly regions: Record<string, Region[]>;
  readonly wasRunning: boolean;
  readonly nics: { name: string; network?: string }[];
  readonly tags: Record<string, string>;
}

/** The plain disk a flattened failover VM runs on, inside the lab root. */
function flatFile(ctx: ReprotectContext, uid: string, diskId: string): string {
  return path.join(ctx.labDir, 'disks', `${uid}-${diskId}.raw`);
}

/**
 * Turn the failover VM off and make each of its overlay disks a plain file:
 * the store's head (the committed point) hard-linked into the lab, with the
 * overlay's blocks written over it; the store's disk is then deleted. Reads
 * C (the overlay's blocks) and the later part of A (cycles committed after
 * the point). Repeatable until the VM is deleted: the link and the copy are
 * done again from the same overlay. Returns the regions to compare.
 */
async function flatten(
  ctx: ReprotectContext, c: AgentCommand, uid: string, vm: string, disks: readonly { id: string; sizeBytes: number }[],
  oldSide: Record<string, Region[] | null>, job: string,
): Promise<SourceSideRecord> {
  const replicas = await ctx.ensureReplicas();
  const commit = await readJson<CommitRecord>(commitFile(ctx.itemsDir, uid));
  const info = await getVm(ctx.hypervisor, vm);
  if (info === undefined) throw new NonRecoverableError('reprotect.vmGone', `the failover VM ${vm} is not on this host`, { hint: 'run the failover again' });
  const wasRunning = info.power !== 'Off';
  if (info.power !== 'Off') await ctx.hypervisor.shutdown(vm, { reason: 'reprotect: moving the VM onto a tracked disk' });
  const resolve = viewResolver(async () => replicas.service, ctx.itemsDir);
  const regions: Record<string, Region[]> = {};
  let delta = c.payload.delta !== false;
  for (const d of disks) {
    const disk = info.disks.find((x) => x.id === d.id);
    if (disk?.overlay === undefined) throw new NonRecoverableError('reprotect.notOnOverlay', `disk ${d.id} of VM ${vm} is not a failover overlay`, { hint: 'reprotect runs once per failover' });
    const id = replicaDiskId(uid, d.id);
    const pointId = /\/([^/]+)$/.exec(disk.overlay.base)?.[1] ?? '';
    const target = flatFile(ctx, uid, d.id);
    await fs.mkdir(path.dirname(target), { recursive: true });
    let written: Region[];
    const overlay = await CowOverlay.open(disk.path, await resolve(disk.overlay.base));
    try {
      written = overlay.writtenExtents();
      const replica = await replicas.service.target.openDisk({ diskId: id, sizeBytes: d.sizeBytes });
      // Cycles the old primary shipped after the commit (before its fence order arrived) are
      // undone by the rollback below; their extents are changed blocks too.
      const view = await replica.openView(pointId);
      try {
        if ('changedExtents' in view && typeof view.changedExtents === 'function') written = [...written, ...(view.changedExtents as () => Region[])()];
      } finally {
        await view.close();
      }
      // The store's head is the committed point: its file is the flattened disk's start (no copy).
      const mat = await replica.materialise(pointId);
      await fs.rm(target, { force: true });
      await fs.link(mat.location, target);
      const fh = await fs.open(target, 'r+');
      try {
        for (const w of overlay.writtenExtents()) await fh.write(await overlay.read(w.offset, w.length), 0, w.length, w.offset);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } finally {
      await overlay.close();
    }
    await replicas.service.target.deleteDisk(id);
    const shipped = commit?.disks[d.id]?.shippedAfter;
    const old = oldSide[d.id];
    if (shipped === undefined || old === null || old === undefined || !delta) {
      delta = false;
    } else {
      regions[d.id] = mergeRegions([...shipped, ...old, ...written], REPROTECT_BLOCK, d.sizeBytes);
    }
  }
  if (!delta) for (const d of disks) regions[d.id] = [{ offset: 0, length: d.sizeBytes }];
  return {
    version: 1, job, stage: 'regions', delta, regions, wasRunning,
    nics: info.nics.map((n) => ({ name: n.name, ...(n.network === undefined ? {} : { network: n.network }) })), tags: { ...info.tags },
  };
}

/** The reprotect handlers by command type. */
export function reprotectHandlers(ctx: ReprotectContext, withItem: <T>(c: AgentCommand, fn: () => Promise<T>) => Promise<T>): Readonly<Record<string, CommandHandler>> {
  const uidOf = (c: AgentCommand): string => str(c.payload, 'itemUid');

  return {
    'reprotect.prepareReplica': (c) => withItem(c, async () => {
      const uid = uidOf(c);
      const vm = str(c.payload, 'vm');
      const disks = disksOf(c.payload);
      const generations = (c.payload.pointGenerations ?? {}) as Record<string, string>;
      const { service, endpoint } = await ctx.ensureReplicas();
      const file = reprotectFile(ctx.itemsDir, uid, 'replica');
      const job = str(c.payload, 'job');
      let rec = await readJson<ReplicaSideRecord>(file);
      if (rec !== undefined && rec.job !== job) rec = undefined;
      if (rec === undefined) {
        const info = await getVm(ctx.hypervisor, vm);
        if (info === undefined) {
          throw new NonRecoverableError('reprotect.vmGone', `VM ${vm} is no longer on this host: its disk cannot become the replica`, {
            hint: 'disable protection and protect the VM again from the recovery site (a full copy)',
          });
        }
        // The vault says the workload runs elsewhere: fence now if its order has not arrived yet.
        if (info.fence === undefined) await ctx.hypervisor.fence(vm, `item ${str(c.payload, 'item')} failed over to ${str(c.payload, 'sourceHost')}; reprotect makes this disk its replica`);
        const extents: Record<string, Region[] | null> = {};
        for (const d of disks) {
          const tracked = info.disks.find((x) => x.id === d.id)?.tracked === true;
          extents[d.id] = tracked ? await logExtents(ctx.hypervisor, vm, d.id, generations[d.id]) : null;
        }
        // Replication of the old direction is over on this host.
        const src = ctx.sources.get(uid);
        ctx.sources.delete(uid);
        await src?.stop();
        for (const d of disks) {
          const disk = info.disks.find((x) => x.id === d.id);
          if (disk === undefined) throw new NonRecoverableError('hypervisor.diskNotFound', `VM ${vm} has no disk ${d.id}`);
          await ctx.hypervisor.disableTracking(vm, d.id);
          // The disk becomes the replica without a copy: the store's new, empty disk gets its bytes by a hard link.
          const id = replicaDiskId(uid, d.id);
          const replica = await service.target.openDisk({ diskId: id, sizeBytes: d.sizeBytes });
          const state = await replica.state();
          await replica.close();
          if (state.appliedSeq !== 0) throw new NonRecoverableError('reprotect.replicaExists', `the replica store already holds cycles of ${id}`, { hint: 'disable and re-enable protection' });
          const img = new StorePaths(ctx.replicasDir).disk(id).replica;
          const tmp = `${img}.adopt`;
          await fs.rm(tmp, { force: true });
          await fs.link(disk.path, tmp);
          await fs.rename(tmp, img);
        }
        rec = { version: 1, job, disks: extents };
        await fs.mkdir(itemDir(ctx.itemsDir, uid), { recursive: true, mode: 0o700 });
        await writeFileAtomic(file, `${JSON.stringify(rec)}\n`, 0o600);
        const given = info.disks.filter((d) => d.path.startsWith(`${path.join(ctx.labDir, 'disks')}${path.sep}`)).map((d) => d.path);
        await ctx.hypervisor.delete(vm);
        for (const g of given) await fs.rm(g, { force: true });
      }
      const existing = (await loadRecords(ctx.itemsDir)).find((r) => r.role === 'source' && r.itemUid === uid) as SourceRecord | undefined;
      const record: ReplicaRecord = {
        version: 1, role: 'replica', item: str(c.payload, 'item'), itemUid: uid, vm, disks, policy: policyOf(c.payload),
        createdAt: existing?.createdAt ?? new Date(ctx.now()).toISOString(), sourceHost: str(c.payload, 'sourceHost'), targetVm: {}, networkMappings: [],
      };
      await saveRecord(ctx.itemsDir, record);
      if (existing !== undefined) await fs.rm(path.join(ctx.itemsDir, `${uid}.source.json`), { force: true });
      ctx.changed();
      ctx.inventoryChanged?.();
      return { endpoint, extents: rec.disks as unknown as Record<string, unknown> };
    }),

    'reprotect.prepareSource': (c) => withItem(c, async () => {
      const uid = uidOf(c);
      const vm = str(c.payload, 'vm');
      const disks = disksOf(c.payload);
      const oldSide = (c.payload.extents ?? {}) as Record<string, Region[] | null>;
      const file = reprotectFile(ctx.itemsDir, uid, 'source');
      const job = str(c.payload, 'job');
      let rec = await readJson<SourceSideRecord>(file);
      if (rec !== undefined && rec.job !== job) rec = undefined;
      if (rec === undefined) {
        // Records of this host's earlier roles describe other failovers.
        for (const stale of ['failover.json', 'reprotect.replica.json']) await fs.rm(path.join(itemDir(ctx.itemsDir, uid), stale), { force: true });
        rec = await flatten(ctx, c, uid, vm, disks, oldSide, job);
        await fs.mkdir(itemDir(ctx.itemsDir, uid), { recursive: true, mode: 0o700 });
        // The regions are kept before the overlay (C's only record) goes with the VM.
        await writeFileAtomic(file, `${JSON.stringify(rec)}\n`, 0o600);
      }
      if (rec.stage === 'regions') {
        const info = await getVm(ctx.hypervisor, vm);
        if (info !== undefined && info.disks.some((d) => d.overlay !== undefined)) {
          await ctx.hypervisor.shutdown(vm, { turnOff: true, reason: 'reprotect: moving the VM onto a tracked disk' });
          await ctx.hypervisor.delete(vm);
        }
        await ctx.hypervisor.createFromDisks({
          name: vm, disks: disks.map((d) => ({ id: d.id, location: flatFile(ctx, uid, d.id) })), nics: rec.nics, tags: { ...rec.tags, 'lifeboat.failover.type': 'reprotected' },
        });
        // Tracked from the first write of the new direction, before the guest runs again.
        for (const d of disks) {
          const t = await ctx.hypervisor.enableTracking(vm, d.id);
          await writeProgress(path.join(itemDir(ctx.itemsDir, uid), `${d.id}.replication.json`), {
            version: 1, phase: 'resync', generation: t.generation, nextCycleSeq: 1, regions: rec.regions[d.id]!, doneBytes: 0,
            reason: rec.delta ? 'reprotect: blocks written on either side since the failover point' : 'reprotect: no record of the blocks written since the failover point; every block is compared',
            lastAppConsistentAt: undefined, stats: emptyStats,
          });
        }
        if (rec.wasRunning) await ctx.hypervisor.start(vm);
        await removeRecord(ctx.itemsDir, 'replica', uid);
        await fs.rm(commitFile(ctx.itemsDir, uid), { force: true });
        rec = { ...rec, stage: 'done' };
        await writeFileAtomic(file, `${JSON.stringify(rec)}\n`, 0o600);
      }
      const regions = rec;
      const t = c.payload.target as Record<string, unknown>;
      const existing = (await loadRecords(ctx.itemsDir)).find((r) => r.role === 'source' && r.itemUid === uid) as SourceRecord | undefined;
      const record: SourceRecord = {
        version: 1, role: 'source', item: str(c.payload, 'item'), itemUid: uid, vm, disks, policy: policyOf(c.payload),
        createdAt: existing?.createdAt ?? new Date(ctx.now()).toISOString(),
        target: { kind: 'host', host: String(t.host), address: String(t.address), port: Number(t.port), serverName: String(t.serverName ?? t.host) },
        timeZone: typeof c.payload.timeZone === 'string' ? c.payload.timeZone : 'UTC', started: true,
      };
      await saveRecord(ctx.itemsDir, record);
      let item = ctx.sources.get(uid);
      if (item === undefined) {
        item = ctx.newSourceItem(record);
        ctx.sources.set(uid, item);
      }
      await item.enableTracking();
      item.start(record);
      ctx.changed();
      ctx.inventoryChanged?.();
      const bytes = Object.values(regions.regions).reduce((n, r) => n + regionBytes(r), 0);
      return { delta: regions.delta, regionBytes: bytes };
    }),
  };
}
