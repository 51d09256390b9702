/**
 * `failover.checkDisks` on the recovery host (docs/failover.md §4a): the data
 * check of a test failover. Each disk of the test VM, read as its guest reads
 * it (the copy-on-write overlay over the view its VM was given), is compared
 * with the recovery point the vault says the VM runs from, read through a
 * view of the replica store opened for this check. Blocks the guest wrote are
 * left out (they are the guest's, not the point's). The SHA-256 of the point
 * over the whole disk is returned, so an operator can compare it with the
 * source's content at that cut.
 *
 * What it catches: a VM that runs from another point than the one recorded,
 * an overlay or a view that reads wrong, and undo data that fails its CRC
 * (the view verifies every record it reads). It reads every byte of the
 * point twice; it never writes.
 */

import { createHash } from 'node:crypto';
import { InvalidInputError, LifeboatError, NonRecoverableError } from '../errors';
import { type Hypervisor, type VmInfo } from '../hypervisor/hypervisor';
import { CowOverlay } from '../hypervisor/lab';
import { type CommandContext, type CommandHandler } from './command-runner';
import { viewResolver } from './failover-commands';
import { loadRecords, replicaDiskId, type ReplicaRecord, str } from './item-records';
import { type ReplicaService } from './replica-service';
import { type AgentCommand } from './vault-channel';

/** Bytes compared at a time. */
const CHUNK = 1024 * 1024;

export interface CheckContext {
  readonly hypervisor: Hypervisor;
  readonly itemsDir: string;
  readonly replicas: ReplicaService | undefined;
  now(): number;
}

/** What the check found for one disk. */
export interface DiskCheck {
  readonly id: string;
  readonly bytes: number;
  /** The point the vault recorded for this disk. */
  readonly pointId: string;
  /** The point the VM's overlay is over (differs from `pointId` only when something is wrong). */
  readonly vmPointId: string;
  /** SHA-256 (hex) of the point's content over the whole disk. */
  readonly sha256: string;
  /** The VM's disk equals the point outside the blocks its guest wrote. */
  readonly matchesPoint: boolean;
  readonly mismatchedBytes: number;
  /** The first differing offset, if any. */
  readonly firstMismatch?: number;
  /** Bytes of the blocks the guest wrote since the VM was made (left out of the compare). */
  readonly guestWrittenBytes: number;
}

/** The point id of an overlay base `view:<uid>/<disk>/<point>`. */
function pointOfBase(base: string): string {
  return /\/([^/]+)$/.exec(base)?.[1] ?? '';
}

/** True if [offset, offset + length) meets one of the sorted extents. */
function overlaps(extents: readonly { offset: number; length: number }[], offset: number, length: number): boolean {
  return extents.some((e) => e.offset < offset + length && offset < e.offset + e.length);
}

/** Compare one disk; `written` are the guest's extents. */
async function checkDisk(
  id: string, point: { read(o: number, l: number): Promise<Buffer> }, vm: { read(o: number, l: number): Promise<Buffer> },
  size: number, written: readonly { offset: number; length: number }[], onChunk: (done: number) => void,
): Promise<Omit<DiskCheck, 'pointId' | 'vmPointId' | 'guestWrittenBytes'>> {
  const hash = createHash('sha256');
  let mismatched = 0;
  let first: number | undefined;
  for (let at = 0; at < size; at += CHUNK) {
    const n = Math.min(CHUNK, size - at);
    const [a, b] = await Promise.all([point.read(at, n), vm.read(at, n)]);
    hash.update(a);
    if (!a.equals(b)) {
      // Find the differing 4 KiB pieces that the guest did not write.
      for (let o = 0; o < n; o += 4096) {
        const l = Math.min(4096, n - o);
        if (overlaps(written, at + o, l)) continue;
        if (!a.subarray(o, o + l).equals(b.subarray(o, o + l))) {
          mismatched += l;
          first ??= at + o;
        }
      }
    }
    onChunk(at + n);
  }
  return { id, bytes: size, sha256: hash.digest('hex'), matchesPoint: mismatched === 0, mismatchedBytes: mismatched, ...(first === undefined ? {} : { firstMismatch: first }) };
}

/** The handler of `failover.checkDisks`; `withItem` serialises it with the item's other commands. */
export function failoverCheckHandlers(ctx: CheckContext, withItem: <T>(c: AgentCommand, fn: () => Promise<T>) => Promise<T>): Readonly<Record<string, CommandHandler>> {
  return {
    'failover.checkDisks': (c: AgentCommand, cc: CommandContext) => withItem(c, async () => {
      const uid = str(c.payload, 'itemUid');
      const vmName = str(c.payload, 'vmName');
      const points = c.payload.points;
      if (typeof points !== 'object' || points === null || Array.isArray(points)) {
        throw new InvalidInputError('agent.badPayload', 'command payload: /points must map each disk id to its point id', { where: { path: '/points' } });
      }
      const replicas = ctx.replicas;
      if (replicas === undefined) throw new NonRecoverableError('agent.notRecoveryHost', `${c.type}: this host keeps no replicas (it runs with --role primary)`);
      const record = (await loadRecords(ctx.itemsDir)).find((r): r is ReplicaRecord => r.role === 'replica' && r.itemUid === uid);
      if (record === undefined) throw new NonRecoverableError('agent.noRelationship', `${c.type}: this host has no replica of item ${String(c.payload.item)} (${uid})`);
      let vm: VmInfo;
      try {
        vm = await ctx.hypervisor.get(vmName);
      } catch (e) {
        if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') {
          throw new NonRecoverableError('failover.testVmGone', `the test VM ${vmName} is not on this host`, { hint: 'run the test failover again' });
        }
        throw e;
      }
      if (vm.tags['lifeboat.itemUid'] !== uid) throw new NonRecoverableError('agent.notFailoverVm', `VM ${vmName} on this host was not made by a failover of item ${String(c.payload.item)}`);
      const resolve = viewResolver(async () => replicas, ctx.itemsDir);
      const total = record.disks.reduce((s, d) => s + d.sizeBytes, 0);
      let before = 0;
      const out: DiskCheck[] = [];
      for (const d of record.disks) {
        const pointId = (points as Record<string, unknown>)[d.id];
        if (typeof pointId !== 'string') throw new InvalidInputError('agent.badPayload', `command payload: /points has no point for disk ${d.id}`, { where: { path: `/points/${d.id}` } });
        const disk = vm.disks.find((x) => x.id === d.id);
        if (disk?.overlay === undefined) throw new NonRecoverableError('failover.notOverlay', `disk ${d.id} of VM ${vmName} is not a test-failover overlay`);
        const replica = await replicas.target.openDisk({ diskId: replicaDiskId(uid, d.id), sizeBytes: d.sizeBytes });
        const view = await replica.openView(pointId);
        try {
          // A second handle on the overlay the VM runs on: its bitmap is the guest's writes up to now.
          const overlay = await CowOverlay.open(disk.path, await resolve(disk.overlay.base));
          try {
            const written = overlay.writtenExtents();
            const r = await checkDisk(d.id, view, overlay, d.sizeBytes, written, (done) => {
              cc.progress(total === 0 ? 100 : Math.floor(((before + done) * 100) / total), `checking disk ${d.id}`);
            });
            out.push({ ...r, pointId, vmPointId: pointOfBase(disk.overlay.base), guestWrittenBytes: written.reduce((s, w) => s + w.length, 0) });
          } finally {
            await overlay.close();
          }
        } finally {
          await view.close();
        }
        before += d.sizeBytes;
      }
      return { vm: vmName, checkedAt: new Date(ctx.now()).toISOString(), disks: out as unknown as Record<string, unknown>[] };
    }),
  };
}
