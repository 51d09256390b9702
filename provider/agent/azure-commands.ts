/**
 * The `azure` role's commands (docs/azure-failover.md §4): what Azure does
 * for a failover in scenario B, played in the lab by an agent registered in
 * a site of kind `azure`.
 *
 * - `azure.startVm`: open the page blobs read-only (docs/azure-target.md
 *   §8a: the source may still be writing them — a test failover, or an
 *   unplanned one whose primary is not fenced yet — and a recovery here would
 *   undo its cycle in flight), resolve the point per disk among the
 *   snapshots, export it as a standalone fixed-VHD blob (the blob a managed
 *   disk is imported from), download that blob into a local disk file (as
 *   Azure creates the managed disk), create the VM on it, and, for a real
 *   failover, start tracking every disk before the VM starts (so the failback
 *   knows every block the VM wrote); then start it. Answers the points and
 *   the export URLs.
 * - `azure.removeVm`: turn the VM off, delete it, its disks and its exports.
 * - `azure.commit`: the chosen point becomes the replica's only one
 *   (`materialise` rolls the page blob back when it is older, then older
 *   snapshots are pruned).
 *
 * Idempotent: a VM already made for the same item and point is answered as
 * is; an export of the same name is replaced; removing what is gone is not
 * an error. Failure: a half-downloaded disk is deleted before the next try
 * (the VM is created only after the download completed).
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, NonRecoverableError } from '../errors';
import { type Hypervisor, type NicSpec, type VmInfo } from '../hypervisor/hypervisor';
import { type LabCreateFromDisksOptions, type LabWorkloadSpec } from '../hypervisor/lab';
import { type RecoveryPointInfo } from '../replication/target';
import { type AzureBlobReplicaTarget, type AzureReadOnlyDisk, type AzureReplicaDisk, containerClientOf, MAX_PAGE_WRITE } from '../targets/azure-blob';
import { type AzureCredentialsSource, azureConfigOf, openAzureTarget } from './azure-target';
import { type CommandHandler } from './command-runner';
import { pointSpecOf, resolvePoints } from './failover-commands';
import { disksOf, hostTargetOf, type AzureTargetSpec, replicaDiskId, str } from './item-records';
import { type AgentCommand } from './vault-channel';

/** What the azure handlers need from the agent. */
export interface AzureCommandContext {
  readonly hypervisor: Hypervisor;
  /** The lab root: downloaded disks go to `<labDir>/azure-disks/<vm>/`. */
  readonly labDir: string;
  readonly credentials: AzureCredentialsSource;
  /** The lab guest of failed-over VMs (its seed is derived from the item). @default none: an idle guest */
  readonly guestWorkload?: Omit<LabWorkloadSpec, 'seed'>;
  changed(): void;
  inventoryChanged?(): void;
}

/** The name of a disk's export blob for a failover VM (`exports/<name>.vhd`). */
export function exportName(vmName: string, diskId: string): string {
  return `${vmName}--${diskId}`;
}

function pointJson(p: RecoveryPointInfo): Record<string, unknown> {
  return { id: p.id, time: new Date(p.time).toISOString(), kind: p.kind, generation: p.generation, seq: p.seq };
}

function azureSpecOf(c: AgentCommand): AzureTargetSpec {
  const t = hostTargetOf({ target: c.payload.azure });
  if (t.kind !== 'azure') throw new NonRecoverableError('agent.badPayload', `${c.type}: /azure must be the item's storage account`);
  return t as AzureTargetSpec;
}

/** The azure handlers by command type; `withItem` serialises an item's commands. */
export function azureHandlers(ctx: AzureCommandContext, withItem: <T>(c: AgentCommand, fn: () => Promise<T>) => Promise<T>): Readonly<Record<string, CommandHandler>> {
  const getVm = async (name: string): Promise<VmInfo | undefined> => {
    try {
      return await ctx.hypervisor.get(name);
    } catch (e) {
      if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') return undefined;
      throw e;
    }
  };

  const withTarget = async <T>(c: AgentCommand, fn: (t: AzureBlobReplicaTarget, disks: { id: string; disk: AzureReplicaDisk; points: readonly RecoveryPointInfo[] }[]) => Promise<T>): Promise<T> => {
    const spec = azureSpecOf(c);
    const item = str(c.payload, 'item');
    const uid = str(c.payload, 'itemUid');
    const target = await openAzureTarget(item, spec, ctx.credentials);
    const opened: AzureReplicaDisk[] = [];
    try {
      const disks = [];
      for (const d of disksOf(c.payload)) {
        const disk = await target.openDisk({ diskId: replicaDiskId(uid, d.id), sizeBytes: d.sizeBytes });
        opened.push(disk);
        disks.push({ id: d.id, disk, points: await disk.listPoints() });
      }
      return await fn(target, disks);
    } finally {
      for (const d of opened) await d.close().catch(() => undefined);
      await target.close().catch(() => undefined);
    }
  };

  const withReadOnlyDisks = async <T>(c: AgentCommand, fn: (t: AzureBlobReplicaTarget, disks: { id: string; disk: AzureReadOnlyDisk; points: readonly RecoveryPointInfo[] }[]) => Promise<T>): Promise<T> => {
    const target = await openAzureTarget(str(c.payload, 'item'), azureSpecOf(c), ctx.credentials);
    try {
      const disks = [];
      for (const d of disksOf(c.payload)) {
        const disk = await target.openDiskReadOnly({ diskId: replicaDiskId(str(c.payload, 'itemUid'), d.id), sizeBytes: d.sizeBytes });
        disks.push({ id: d.id, disk, points: await disk.listPoints() });
      }
      return await fn(target, disks);
    } finally {
      // Closing the target closes its read-only disks.
      await target.close().catch(() => undefined);
    }
  };

  const diskDir = (vmName: string): string => path.join(ctx.labDir, 'azure-disks', vmName);

  return {
    'azure.startVm': (c) => withItem(c, async () => {
      const name = str(c.payload, 'vmName');
      const uid = str(c.payload, 'itemUid');
      const test = c.payload.test === true;
      const nics = Array.isArray(c.payload.nics) ? (c.payload.nics as NicSpec[]) : [];
      const spec = azureSpecOf(c);
      return withReadOnlyDisks(c, async (target, disks) => {
        const chosen = resolvePoints(pointSpecOf(c.payload.point), disks);
        const first = chosen.get(disks[0]!.id)!;
        const exports: Record<string, string> = {};
        let vm = await getVm(name);
        if (vm !== undefined && (vm.tags['lifeboat.itemUid'] !== uid || vm.tags['lifeboat.failover.point'] !== first.id)) {
          throw new NonRecoverableError('agent.vmExists', `a VM ${name} already exists on this host (${vm.tags['lifeboat.itemUid'] === uid ? `from point ${String(vm.tags['lifeboat.failover.point'])}` : 'not from this item'})`, {
            hint: 'remove it first (a point change removes the previous failover VM)',
          });
        }
        if (vm === undefined) {
          const dir = diskDir(name);
          await fs.rm(dir, { recursive: true, force: true });
          await fs.mkdir(dir, { recursive: true, mode: 0o700 });
          const creds = await ctx.credentials(str(c.payload, 'item'));
          const container = containerClientOf(azureConfigOf(spec, creds));
          for (const d of disks) {
            const p = chosen.get(d.id)!;
            const exp = await d.disk.exportPoint(p.id, exportName(name, d.id));
            exports[d.id] = exp.location;
            await download(container.getPageBlobClient(blobNameOf(exp.location, spec.container)), path.join(dir, `${d.id}.raw`), d.disk.sizeBytes);
          }
          const options: LabCreateFromDisksOptions = {
            name,
            disks: disks.map((d) => ({ id: d.id, location: path.join(dir, `${d.id}.raw`) })),
            nics,
            testFailover: test,
            // The lab's guest keeps working in "Azure" (seeded by the item), so failback has writes to bring back.
            ...(ctx.guestWorkload === undefined ? {} : { workload: { ...ctx.guestWorkload, seed: seedOf(uid) } }),
            tags: {
              'lifeboat.item': str(c.payload, 'item'),
              'lifeboat.itemUid': uid,
              'lifeboat.failover.point': first.id,
              'lifeboat.failover.type': test ? 'test' : 'failover',
              'lifeboat.azure': 'true',
            },
          };
          await ctx.hypervisor.createFromDisks(options);
          // Tracking starts before the first guest write: failback sends exactly what the VM wrote. A test VM never fails back.
          if (!test) for (const d of disks) await ctx.hypervisor.enableTracking(name, d.id);
        } else {
          for (const d of disks) exports[d.id] = `${target.containerUrl}/exports/${exportName(name, d.id)}.vhd`;
        }
        vm = await ctx.hypervisor.start(name);
        ctx.changed();
        ctx.inventoryChanged?.();
        return {
          vm: vm.name,
          power: vm.power,
          point: pointJson(first),
          disks: Object.fromEntries([...chosen].map(([id, p]) => [id, pointJson(p)])),
          points: disks[0]!.points.map(pointJson),
          exports,
        };
      });
    }),

    'azure.removeVm': (c) => withItem(c, async () => {
      const name = str(c.payload, 'vmName');
      const uid = str(c.payload, 'itemUid');
      const vm = await getVm(name);
      let removed = false;
      if (vm !== undefined) {
        if (vm.tags['lifeboat.itemUid'] !== uid) {
          throw new NonRecoverableError('agent.notFailoverVm', `VM ${name} on this host was not made by a failover of item ${String(c.payload.item)}`, { hint: 'remove it by hand if it is not needed' });
        }
        await ctx.hypervisor.shutdown(name, { turnOff: true, reason: 'failover VM removed' });
        for (const d of vm.disks) if (d.tracked) await ctx.hypervisor.disableTracking(name, d.id);
        await ctx.hypervisor.delete(name);
        removed = true;
      }
      await fs.rm(diskDir(name), { recursive: true, force: true });
      const target = await openAzureTarget(str(c.payload, 'item'), azureSpecOf(c), ctx.credentials);
      try {
        for (const d of disksOf(c.payload)) await target.deleteExport(exportName(name, d.id));
      } finally {
        await target.close();
      }
      ctx.changed();
      ctx.inventoryChanged?.();
      return { removed };
    }),

    'azure.commit': (c) => withItem(c, async () => withTarget(c, async (_t, disks) => {
      const chosen = resolvePoints(pointSpecOf(c.payload.point), disks);
      let rolledBack = false;
      for (const d of disks) {
        const p = chosen.get(d.id)!;
        if (d.points[d.points.length - 1]?.id !== p.id) {
          await d.disk.materialise(p.id);
          rolledBack = true;
        }
        await d.disk.prunePoints(p.time);
      }
      const left = await disks[0]!.disk.listPoints();
      return { points: left.map(pointJson), rolledBack };
    })),
  };
}

function seedOf(uid: string): number {
  let h = 2166136261;
  for (const ch of uid) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

function blobNameOf(url: string, container: string): string {
  const p = decodeURIComponent(new URL(url).pathname);
  const at = p.indexOf(`/${container}/`);
  if (at < 0) throw new NonRecoverableError('agent.badLocation', `export ${url} is not in container ${container}`);
  return p.slice(at + container.length + 2);
}

/** Download the first `sizeBytes` of a page blob (the VHD's data; the footer is left out) into a sparse file. */
async function download(blob: ReturnType<ReturnType<typeof containerClientOf>['getPageBlobClient']>, file: string, sizeBytes: number): Promise<void> {
  const tmp = `${file}.part`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.truncate(sizeBytes);
    for (let at = 0; at < sizeBytes; at += MAX_PAGE_WRITE) {
      const n = Math.min(MAX_PAGE_WRITE, sizeBytes - at);
      const data = await blob.downloadToBuffer(at, n);
      if (data.some((b) => b !== 0)) await fh.write(data, 0, data.length, at);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}
