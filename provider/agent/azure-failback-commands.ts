/**
 * Failback from Azure (docs/azure-failover.md §5): the agent commands of the
 * `failback.fromAzure` job.
 *
 * - `azure.prepareFailback` (azure-role host): fence the Azure-side VM (a
 *   shutdown with a guest flush), read C — every block it wrote since it
 *   started, from its tracker — and write exactly those blocks into the page
 *   blobs as one cycle: the new head P' equals the VM's disk. Answers C.
 * - `azure.failbackSource` (the original primary host): bring the old VM's
 *   disk (fenced since the failover) to P' by reading from the blob only the
 *   blocks of U = B ∪ C (B: the old primary's writes that never reached the
 *   blob, from its tracker, valid in the failover point's generation), or,
 *   when B or C is unknown or the commit rolled back, every block whose
 *   SHA-256 differs from the blob's checksum index. Then track the disk in a
 *   new generation, seed its replication with a block-compare resync over U
 *   (which finds nothing to send: the protection to Azure resumes without a
 *   full copy), unfence and start the VM.
 *
 * Both are idempotent: their result is recorded in the item's folder before
 * they answer, and a rerun after a crash in the middle redoes the work (the
 * blob cycle is written again; the primary falls back to the checksum
 * compare once its tracking was dropped, which is always correct).
 */

import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, NonRecoverableError } from '../errors';
import { type Hypervisor, type NicSpec, type VmInfo } from '../hypervisor/hypervisor';
import { emptyStats, type Region, writeProgress } from '../replication/progress-file';
import { scanSegmentFile } from '../replication/segment-reader';
import { type AzureReplicaDisk } from '../targets/azure-blob';
import { writeFileAtomic } from './agent-files';
import { type AzureCredentialsSource, openAzureTarget } from './azure-target';
import { type CommandHandler } from './command-runner';
import {
  type AzureTargetSpec, disksOf, hostTargetOf, type ItemDisk, itemDir, loadRecords, policyOf, replicaDiskId, saveRecord, type SourceRecord, str,
} from './item-records';
import { mergeRegions, REPROTECT_BLOCK, regionBytes } from './reprotect-commands';
import { type SourceItem } from './source-item';
import { type AgentCommand } from './vault-channel';

/** What the failback handlers need from the agent. */
export interface AzureFailbackContext {
  readonly hypervisor: Hypervisor;
  readonly itemsDir: string;
  /** The lab root: disks a failback creates go to `<labDir>/disks/`. */
  readonly labDir: string;
  readonly credentials: AzureCredentialsSource;
  readonly sources: Map<string, SourceItem>;
  newSourceItem(record: SourceRecord): SourceItem;
  changed(): void;
  inventoryChanged?(): void;
  now(): number;
}

const COPY_CHUNK = 4 * 1024 * 1024;

async function getVm(hv: Hypervisor, name: string): Promise<VmInfo | undefined> {
  try {
    return await hv.get(name);
  } catch (e) {
    if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') return undefined;
    throw e;
  }
}

/** Every extent of a tracker's log and its suspects; null when the disk is not tracked or in another generation. */
async function writtenExtents(hv: Hypervisor, vm: string, diskId: string, expectedGeneration: string | undefined | null): Promise<Region[] | null> {
  let t;
  try {
    t = await hv.trackedDisk(vm, diskId);
  } catch (e) {
    if (LifeboatError.isInstance(e)) return null;
    throw e;
  }
  if (expectedGeneration !== null && (expectedGeneration === undefined || t.generation !== expectedGeneration)) return null;
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

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function azureSpecOf(c: AgentCommand): AzureTargetSpec {
  const t = hostTargetOf({ target: c.payload.azure });
  if (t.kind !== 'azure') throw new NonRecoverableError('agent.badPayload', `${c.type}: /azure must be the item's storage account`);
  return t as AzureTargetSpec;
}

interface AzureSideRecord {
  readonly version: 1;
  readonly job: string;
  readonly regions: Record<string, Region[]>;
  readonly points: Record<string, string>;
}

interface SourceSideResult {
  readonly version: 1;
  readonly job: string;
  readonly delta: boolean;
  /** The VM was made from the whole blob (it was not on this host). */
  readonly created?: boolean;
  /** The regions the resumed protection's first resync compares, once the disk is written but not yet tracked. */
  readonly seeded?: Record<string, Region[]>;
  readonly regionBytes: number;
  readonly bytesReceived: number;
  readonly comparedBlocks: number;
}

/** Open the item's blobs, run `fn`, close. */
async function withDisks<T>(ctx: AzureFailbackContext, c: AgentCommand, fn: (disks: Map<string, AzureReplicaDisk>) => Promise<T>): Promise<T> {
  const target = await openAzureTarget(str(c.payload, 'item'), azureSpecOf(c), ctx.credentials);
  const opened = new Map<string, AzureReplicaDisk>();
  try {
    for (const d of disksOf(c.payload)) opened.set(d.id, await target.openDisk({ diskId: replicaDiskId(str(c.payload, 'itemUid'), d.id), sizeBytes: d.sizeBytes }));
    return await fn(opened);
  } finally {
    for (const d of opened.values()) await d.close().catch(() => undefined);
    await target.close().catch(() => undefined);
  }
}

/** The failback handlers by command type; `withItem` serialises an item's commands. */
export function azureFailbackHandlers(ctx: AzureFailbackContext, withItem: <T>(c: AgentCommand, fn: () => Promise<T>) => Promise<T>): Readonly<Record<string, CommandHandler>> {
  return {
    'azure.prepareFailback': (c) => withItem(c, async () => {
      const uid = str(c.payload, 'itemUid');
      const vmName = str(c.payload, 'vmName');
      const job = str(c.payload, 'job');
      const file = path.join(itemDir(ctx.itemsDir, uid), 'azure-failback.json');
      const done = await readJson<AzureSideRecord>(file);
      if (done?.job === job) return { regions: done.regions, points: done.points };
      const vm = await getVm(ctx.hypervisor, vmName);
      if (vm === undefined) throw new NonRecoverableError('failback.vmGone', `the Azure-side VM ${vmName} is not on this host`, { hint: 'its disk holds the workload\'s data: find it before failing back' });
      // The mark goes on before the guest stops, so nothing restarts it; the flush makes every acknowledged write durable.
      await ctx.hypervisor.fence(vmName, `failback of item ${String(c.payload.item)} to the primary site`);
      ctx.inventoryChanged?.();
      const disks = disksOf(c.payload);
      const regions: Record<string, Region[]> = {};
      for (const d of disks) {
        const written = await writtenExtents(ctx.hypervisor, vmName, d.id, null);
        if (written === null) throw new NonRecoverableError('failback.notTracked', `disk ${d.id} of the Azure-side VM ${vmName} is not tracked`, { hint: 'the failover VM was not made by this agent' });
        regions[d.id] = mergeRegions(written, REPROTECT_BLOCK, d.sizeBytes);
      }
      const points: Record<string, string> = {};
      await withDisks(ctx, c, async (blobs) => {
        for (const d of disks) {
          const blob = blobs.get(d.id)!;
          const state = await blob.state();
          if (state.generation === undefined) throw new NonRecoverableError('failback.noReplica', `the page blob of disk ${d.id} holds no cycle`);
          const w = await blob.beginCycle({ generation: state.generation, seq: state.appliedSeq + 1, time: ctx.now(), point: 'crashConsistent' });
          const local = vm.disks.find((x) => x.id === d.id)!;
          const fh = await fs.open(local.path, 'r');
          try {
            for (const r of regions[d.id]!) {
              for (let at = r.offset; at < r.offset + r.length; at += COPY_CHUNK) {
                const n = Math.min(COPY_CHUNK, r.offset + r.length - at);
                const buf = Buffer.alloc(n);
                await fh.read(buf, 0, n, at);
                await w.write(at, buf);
              }
            }
            const p = await w.commit();
            points[d.id] = p?.id ?? '';
          } catch (e) {
            await w.abort().catch(() => undefined);
            throw e;
          } finally {
            await fh.close();
          }
        }
      });
      await fs.mkdir(itemDir(ctx.itemsDir, uid), { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, `${JSON.stringify({ version: 1, job, regions, points } satisfies AzureSideRecord)}\n`, 0o600);
      ctx.changed();
      return { regions, points, regionBytes: Object.values(regions).reduce((n, r) => n + regionBytes(r), 0) };
    }),

    'azure.failbackSource': (c) => withItem(c, async () => {
      const uid = str(c.payload, 'itemUid');
      const vmName = str(c.payload, 'vm');
      const job = str(c.payload, 'job');
      const disks: ItemDisk[] = disksOf(c.payload);
      const file = path.join(itemDir(ctx.itemsDir, uid), 'azure-failback.source.json');
      let result = await readJson<SourceSideResult>(file);
      if (result?.job !== job) result = undefined;
      let vm = await getVm(ctx.hypervisor, vmName);
      if (vm !== undefined && c.payload.alternate === true && vm.tags['lifeboat.itemUid'] !== uid) {
        throw new NonRecoverableError('failback.vmExists', `host already has a VM ${vmName} that is not item ${String(c.payload.item)}'s; failing back here would overwrite its disks`, {
          hint: 'fail back to another host of the site (lifeboat failback ITEM --host HOST), or remove or rename that VM first',
        });
      }
      if (result === undefined && vm === undefined) {
        // No VM to bring up to date (an alternate host, or the original VM was deleted): make it from the whole blob.
        const made = await createFromBlobs(ctx, c, uid, vmName, disks, job);
        await trackAndSeed(ctx, uid, vmName, disks, made.seeded!, 'failback from Azure: a VM made from the whole blob; every block is compared');
        result = made;
        await writeFileAtomic(file, `${JSON.stringify(result)}\n`, 0o600);
        vm = await ctx.hypervisor.get(vmName);
      }
      if (vm === undefined) throw new NonRecoverableError('failback.vmGone', `VM ${vmName} is no longer on this host`, { hint: 'fail back again: the VM is created from the blobs' });
      if (result === undefined) {
        const fromAzure = (c.payload.regions ?? {}) as Record<string, Region[] | null>;
        const generations = (c.payload.pointGenerations ?? {}) as Record<string, string | undefined>;
        const delta = c.payload.delta === true;
        const plan = new Map<string, Region[] | null>();
        for (const d of disks) {
          const b = await writtenExtents(ctx.hypervisor, vmName, d.id, generations[d.id]);
          const cc = fromAzure[d.id];
          plan.set(d.id, delta && b !== null && Array.isArray(cc) ? mergeRegions([...b, ...cc], REPROTECT_BLOCK, d.sizeBytes) : null);
        }
        // The disk is rewritten outside the tracker: its log describes nothing any more.
        for (const d of disks) if (vm.disks.find((x) => x.id === d.id)?.tracked === true) await ctx.hypervisor.disableTracking(vmName, d.id);
        let received = 0;
        let compared = 0;
        const seeded: Record<string, Region[]> = {};
        await withDisks(ctx, c, async (blobs) => {
          for (const d of disks) {
            const blob = blobs.get(d.id)!;
            const points = await blob.listPoints();
            const head = points[points.length - 1];
            if (head === undefined) throw new NonRecoverableError('failback.noPoint', `the page blob of disk ${d.id} has no recovery point`);
            const local = vm.disks.find((x) => x.id === d.id)!;
            let regions = plan.get(d.id) ?? null;
            const fh = await fs.open(local.path, 'r+');
            try {
              if (regions === null) {
                // Fallback: the blob's checksum index against the local blocks; only differing blocks cross.
                const n = Math.ceil(d.sizeBytes / REPROTECT_BLOCK);
                const remote = await blob.hashBlocks(REPROTECT_BLOCK, 0, n);
                const differing: Region[] = [];
                for (let i = 0; i < n; i++) {
                  const len = Math.min(REPROTECT_BLOCK, d.sizeBytes - i * REPROTECT_BLOCK);
                  const buf = Buffer.alloc(len);
                  await fh.read(buf, 0, len, i * REPROTECT_BLOCK);
                  compared++;
                  if (!createHash('sha256').update(buf).digest().equals(remote.digests[i]!)) differing.push({ offset: i * REPROTECT_BLOCK, length: len });
                }
                regions = mergeRegions(differing, REPROTECT_BLOCK, d.sizeBytes);
              }
              const view = await blob.openView(head.id);
              try {
                for (const r of regions) {
                  for (let at = r.offset; at < r.offset + r.length; at += COPY_CHUNK) {
                    const n = Math.min(COPY_CHUNK, r.offset + r.length - at);
                    const data = await view.read(at, n);
                    await fh.write(data, 0, n, at);
                    received += n;
                  }
                }
              } finally {
                await view.close();
              }
              await fh.sync();
            } finally {
              await fh.close();
            }
            seeded[d.id] = regions;
          }
        });
        await trackAndSeed(ctx, uid, vmName, disks, seeded, 'failback from Azure: the blocks written on either side since the failover point');
        result = {
          version: 1, job, delta: [...plan.values()].every((r) => r !== null),
          regionBytes: Object.values(seeded).reduce((n, r) => n + regionBytes(r), 0), bytesReceived: received, comparedBlocks: compared,
        };
        await writeFileAtomic(file, `${JSON.stringify(result)}\n`, 0o600);
      }
      // The relationship to Azure again (same blobs), started at once.
      const existing = (await loadRecords(ctx.itemsDir)).find((r) => r.role === 'source' && r.itemUid === uid) as SourceRecord | undefined;
      const record: SourceRecord = {
        version: 1, role: 'source', item: str(c.payload, 'item'), itemUid: uid, vm: vmName, disks, policy: policyOf(c.payload),
        createdAt: existing?.createdAt ?? new Date(ctx.now()).toISOString(), target: azureSpecOf(c),
        timeZone: typeof c.payload.timeZone === 'string' ? c.payload.timeZone : 'UTC', started: true,
      };
      await saveRecord(ctx.itemsDir, record);
      let item = ctx.sources.get(uid);
      if (item !== undefined) {
        await item.stop();
        ctx.sources.delete(uid);
      }
      item = ctx.newSourceItem(record);
      ctx.sources.set(uid, item);
      await item.enableTracking();
      item.start(record);
      await ctx.hypervisor.unfence(vmName, 'failed back from Azure');
      if ((await ctx.hypervisor.get(vmName)).power === 'Off') await ctx.hypervisor.start(vmName);
      ctx.changed();
      ctx.inventoryChanged?.();
      return { delta: result.delta, created: result.created === true, regionBytes: result.regionBytes, bytesReceived: result.bytesReceived, comparedBlocks: result.comparedBlocks };
    }),
  };
}

/**
 * Track every disk of the VM from the first write of the resumed protection,
 * and seed its replication with a resync over `seeded` (which finds the disk
 * equal to the blob); the old failover record goes.
 */
async function trackAndSeed(ctx: AzureFailbackContext, uid: string, vmName: string, disks: readonly ItemDisk[], seeded: Record<string, Region[]>, reason: string): Promise<void> {
  await fs.mkdir(itemDir(ctx.itemsDir, uid), { recursive: true, mode: 0o700 });
  for (const d of disks) {
    const t = await ctx.hypervisor.enableTracking(vmName, d.id);
    await writeProgress(path.join(itemDir(ctx.itemsDir, uid), `${d.id}.replication.json`), {
      version: 1, phase: 'resync', generation: t.generation, nextCycleSeq: 1, regions: seeded[d.id]!, doneBytes: 0, reason, lastAppConsistentAt: undefined, stats: emptyStats,
    });
  }
  await fs.rm(path.join(itemDir(ctx.itemsDir, uid), 'failover.json'), { force: true });
}

/**
 * The full path of `azure.failbackSource` (docs/azure-failover.md §5): copy
 * the blobs' head into new disk files (`<lab>/disks/<uid>-<disk>.raw`, zero
 * spans skipped, renamed into place once complete), create the VM on them
 * with the payload's NICs, then track it anew with a resync over the whole
 * disk (it compares digests against the blobs' index and sends nothing).
 * Throws `failback.cannotCreateVm` when the hypervisor refuses the VM.
 */
async function createFromBlobs(ctx: AzureFailbackContext, c: AgentCommand, uid: string, vmName: string, disks: readonly ItemDisk[], job: string): Promise<SourceSideResult> {
  let received = 0;
  const files = new Map<string, string>();
  await withDisks(ctx, c, async (blobs) => {
    for (const d of disks) {
      const blob = blobs.get(d.id)!;
      const head = (await blob.listPoints()).at(-1);
      if (head === undefined) throw new NonRecoverableError('failback.noPoint', `the page blob of disk ${d.id} has no recovery point`);
      const file = path.join(ctx.labDir, 'disks', `${uid}-${d.id}.raw`);
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const view = await blob.openView(head.id);
      const fh = await fs.open(`${file}.part`, 'w', 0o600);
      try {
        await fh.truncate(d.sizeBytes);
        for (let at = 0; at < d.sizeBytes; at += COPY_CHUNK) {
          const data = await view.read(at, Math.min(COPY_CHUNK, d.sizeBytes - at));
          received += data.length;
          if (data.some((b) => b !== 0)) await fh.write(data, 0, data.length, at);
        }
        await fh.sync();
      } finally {
        await fh.close();
        await view.close();
      }
      await fs.rename(`${file}.part`, file);
      files.set(d.id, file);
    }
  });
  try {
    await ctx.hypervisor.createFromDisks({
      name: vmName,
      disks: disks.map((d) => ({ id: d.id, location: files.get(d.id)! })),
      nics: Array.isArray(c.payload.nics) ? (c.payload.nics as NicSpec[]) : [],
      tags: { 'lifeboat.item': str(c.payload, 'item'), 'lifeboat.itemUid': uid, 'lifeboat.failback': 'created from the blobs' },
    });
  } catch (e) {
    throw new NonRecoverableError('failback.cannotCreateVm', `VM ${vmName} is not on this host and could not be created from the blobs: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e, hint: 'fail back to another host of the site (lifeboat failback ITEM --host HOST), or fix the cause and fail back again',
    });
  }
  const whole = Object.fromEntries(disks.map((d) => [d.id, [{ offset: 0, length: d.sizeBytes }]]));
  // The disks are complete and the VM exists: a rerun finds it and compares checksums.
  return { version: 1, job, delta: false, created: true, regionBytes: disks.reduce((n, d) => n + d.sizeBytes, 0), bytesReceived: received, comparedBlocks: 0, seeded: whole };
}
