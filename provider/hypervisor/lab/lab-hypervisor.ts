/**
 * The lab hypervisor (DESIGN.md §2, docs/lab.md): VMs are directories of a
 * lab root holding `vm.json` and raw sparse disk files; a running VM is a
 * seeded guest workload (workload.ts) writing each disk through the
 * replication tracker when the disk is tracked, straight to the file when
 * it is not, or into a copy-on-write overlay for a test-failover VM.
 *
 * The driver is the only writer of its lab root (`lab.lock`), keeps every
 * VM's vm.json in memory and writes each change through to the file before
 * acting on it, and owns every `TrackedDisk` it opens: trackers stay open
 * while their VM is off, so the replication side keeps shipping, and close
 * only with tracking disabled, the VM deleted, or the driver closed.
 */

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { type Clock, systemClock } from '../../clock';
import { describe, InvalidInputError, LifeboatError, NonRecoverableError, RecoverableError } from '../../errors';
import { syncDirectory } from '../../atomic-file';
import { TrackedDisk, type TrackedDiskOptions } from '../../replication/tracker';
import {
  type CreateFromDisksOptions,
  type Hypervisor,
  type NicSpec,
  type ResumeFunction,
  type ShutdownOptions,
  type VmDisk,
  type VmInfo,
  vmNotFound,
  VmStateError,
} from '../hypervisor';
import { type PowerState, powerTransition } from '../power-state';
import { CowOverlay, openFileBase, type OverlayBase } from './cow-overlay';
import { DEFAULT_LAB_BYTES_PER_SECOND, DiskRunner, type DiskRunnerStats, diskWorkloadOptions } from './disk-runner';
import { type GuestDisk, overlayGuestDisk, PlainDisk, trackedGuestDisk } from './guest-disk';
import { GuestJournal, type GuestJournalState, readGuestJournal } from './guest-journal';
import {
  checkDiskId,
  checkName,
  checkNetwork,
  diskFiles,
  isResolverLocation,
  labLayout,
  type LabLayout,
  labRelative,
  realPath,
  resolveInsideLab,
  vmDir,
} from './lab-paths';
import { LabLock } from './lab-lock';
import {
  checkWorkloadSpec,
  type DiskConfig,
  type LabWorkloadSpec,
  type NicConfig,
  readVmConfig,
  VM_CONFIG_FILE,
  VM_CONFIG_VERSION,
  type VmConfig,
  writeVmConfig,
} from './vm-config';
import { type WorkloadOptions, workloadOps } from './workload';

export interface LabHypervisorOptions {
  /** The lab root; created if missing. Every file the driver touches is inside it. */
  readonly labRoot: string;
  /** Stamps times and paces workloads. @default systemClock */
  readonly clock?: Clock;
  /**
   * Opens overlay bases given as `scheme:rest` (e.g. a point-in-time view
   * of a replica, for test failover); called again at every start of the
   * VM. @default none: only files of the lab can be bases
   */
  readonly resolveLocation?: (location: string) => Promise<OverlayBase>;
  /**
   * At open, start the VMs that were running when the driver last stopped
   * (closed, or died); fenced VMs stay off. @default false
   */
  readonly startInterrupted?: boolean;
  /** Activity-log geometry of every tracker opened. @default the tracker's defaults */
  readonly tracker?: Pick<TrackedDiskOptions, 'activityLogExtentSize' | 'activityLogSlots'>;
  /** Copy-on-write block size of new overlays. @default 64 KiB */
  readonly overlayBlockSize?: number;
  /** Told when a guest stopped on its own after an I/O error (the VM is then `Off`). Must not throw. @default none */
  readonly onGuestStopped?: (vm: string, diskId: string, error: unknown) => void;
}

/** What `open` found and did. */
export interface LabOpenReport {
  /** VMs found powered on: the driver died while they ran. They are now `Off`, `lastStop` not clean. */
  readonly interrupted: readonly string[];
  /** VMs started because of `startInterrupted`. */
  readonly restarted: readonly string[];
  /** VMs whose restart failed, with the error. */
  readonly restartFailures: readonly { readonly name: string; readonly error: unknown }[];
  /** VM directories whose vm.json could not be used; left alone, not listed, their names stay taken. */
  readonly unreadable: readonly { readonly name: string; readonly error: unknown }[];
  /** Leftovers of creates and deletes cut short, removed. */
  readonly removedLeftovers: number;
  /**
   * VMs that were running when the previous driver stopped and are not
   * fenced, still off (without `startInterrupted`, or when their restart
   * failed): the caller starts them once it knows it may (a host agent asks
   * its vault first which VMs failed over elsewhere, docs/failover.md §6).
   */
  readonly resumable: readonly string[];
}

/** A disk of a new lab VM. */
export interface NewDiskSpec {
  readonly id: string;
  /** A positive multiple of 512; the file is created sparse (all zeros). */
  readonly sizeBytes: number;
}

export interface CreateVmOptions {
  readonly name: string;
  /** At least one. */
  readonly disks: readonly NewDiskSpec[];
  /** @default none */
  readonly nics?: readonly NicSpec[];
  /** @default none: an idle guest that never writes */
  readonly workload?: LabWorkloadSpec;
  /** @default {} */
  readonly tags?: Readonly<Record<string, string>>;
}

export interface LabCreateFromDisksOptions extends CreateFromDisksOptions {
  /** The guest of the new VM. @default none: an idle guest */
  readonly workload?: LabWorkloadSpec;
}

/** The guest side of one disk, for tests and status. */
export interface LabDiskStatus {
  readonly diskId: string;
  /** The disk's workload stream; `undefined` for an idle guest. */
  readonly workload: WorkloadOptions | undefined;
  /** Where the stream stands (docs/lab.md §5). */
  readonly journal: GuestJournalState;
  /** What the guest did since the driver opened, while it ran. */
  readonly stats: DiskRunnerStats;
}

/** The state of one VM in memory. */
interface VmRuntime {
  config: VmConfig;
  readonly dir: string;
  /** Serialises the VM's operations. */
  tail: Promise<unknown>;
  deleted: boolean;
  /** Open trackers, in any power state. */
  readonly trackers: Map<string, TrackedDisk>;
  /** While powered on: what the guest writes through. */
  readonly guestDisks: Map<string, GuestDisk>;
  readonly journals: Map<string, GuestJournal>;
  readonly runners: Map<string, DiskRunner>;
  /** Outstanding quiesces; the guest runs only at 0. */
  quiesceCount: number;
  /** Bumped at every power-off, so resume functions of an earlier run do nothing. */
  runEpoch: number;
  /** Counters kept across runs since the driver opened. */
  readonly stats: Map<string, DiskRunnerStats>;
}

const TAG_KEY = /^[^\p{Cc}]{1,128}$/u;
const MAX_TAG_VALUE = 1024;

/** The lab hypervisor. Open with `LabHypervisor.open`. */
export class LabHypervisor implements Hypervisor {
  readonly kind = 'lab';
  private readonly vms = new Map<string, VmRuntime>();
  /** Names taken by creates in progress. */
  private readonly reserved = new Set<string>();
  /** Directories whose vm.json is unusable, with why: their names stay taken. */
  private readonly broken = new Map<string, unknown>();
  private readonly clock: Clock;
  private closing: Promise<void> | undefined;
  private report: LabOpenReport = { interrupted: [], restarted: [], restartFailures: [], unreadable: [], removedLeftovers: 0, resumable: [] };

  private constructor(
    private readonly o: LabHypervisorOptions,
    /** The lab's paths (the root is a real path). */
    readonly layout: LabLayout,
    private readonly lock: LabLock,
  ) {
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Open a lab root (created if missing): take `lab.lock`, remove leftovers
   * of cut-short creates and deletes, load every vm.json, power off the VMs
   * the previous driver left running (they were interrupted) and, with
   * `startInterrupted`, start them again. Throws `hypervisor.labInUse`
   * while another live driver holds the lab. If it fails, the lock is
   * released.
   */
  static async open(options: LabHypervisorOptions): Promise<LabHypervisor> {
    await fs.mkdir(options.labRoot, { recursive: true });
    const layout = labLayout(await realPath(options.labRoot));
    await fs.mkdir(layout.vmsDir, { recursive: true });
    const lock = await LabLock.acquire(layout.lockFile);
    const hv = new LabHypervisor(options, layout, lock);
    try {
      await hv.load();
    } catch (e) {
      await hv.closeTrackers();
      await lock.release();
      throw e;
    }
    return hv;
  }

  /** What the open found and did. */
  get openReport(): LabOpenReport {
    return this.report;
  }

  // --- Hypervisor ---

  async list(): Promise<readonly VmInfo[]> {
    this.assertOpen();
    return [...this.vms.values()].map((rt) => this.info(rt)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<VmInfo> {
    this.assertOpen();
    return this.info(this.runtime(name));
  }

  async start(name: string): Promise<VmInfo> {
    return this.withVm(name, async (rt) => {
      if (rt.config.power === 'Running') return this.info(rt);
      await this.startLocked(rt, 'start requested');
      return this.info(rt);
    });
  }

  async shutdown(name: string, options: ShutdownOptions = {}): Promise<VmInfo> {
    return this.withVm(name, async (rt) => {
      if (rt.config.power === 'Off') return this.info(rt);
      const turnOff = options.turnOff ?? false;
      await this.stopLocked(rt, { flush: !turnOff, reason: options.reason ?? (turnOff ? 'turned off' : 'shutdown requested') });
      return this.info(rt);
    });
  }

  async createFromDisks(options: LabCreateFromDisksOptions): Promise<VmInfo> {
    this.assertOpen();
    const name = checkName(options.name, '/name');
    if (!Array.isArray(options.disks) || options.disks.length === 0) {
      throw new InvalidInputError('hypervisor.noDisks', `VM ${name} needs at least one disk`, { where: { path: '/disks' } });
    }
    const ids = new Set<string>();
    const sources: { id: string; overlay: boolean; file?: string; location?: string; sizeBytes: number }[] = [];
    for (const [i, d] of options.disks.entries()) {
      const id = checkDiskId(d.id, `/disks/${i}/id`);
      if (ids.has(id)) throw new InvalidInputError('hypervisor.duplicateDisk', `disk id ${id} appears twice`, { where: { path: `/disks/${i}/id` } });
      ids.add(id);
      const overlay = d.overlay ?? false;
      if (typeof d.location === 'string' && isResolverLocation(d.location)) {
        if (!overlay) {
          throw new InvalidInputError('hypervisor.notAFile', `disk ${id}: ${d.location} is not a file; only an overlay disk can be put over it`, {
            where: { path: `/disks/${i}/location` },
          });
        }
        sources.push({ id, overlay, location: d.location, sizeBytes: await this.resolvedSize(d.location, `/disks/${i}/location`) });
      } else {
        const real = await resolveInsideLab(this.layout, d.location, `/disks/${i}/location`);
        sources.push({ id, overlay, file: labRelative(this.layout, real), sizeBytes: await diskFileSize(real, `/disks/${i}/location`) });
      }
    }
    const nics = checkNics(options.nics ?? []);
    const tags = checkTags(options.tags ?? {});
    const workload = options.workload === undefined ? null : checkWorkloadSpec(options.workload, '/workload');
    const testFailover = options.testFailover ?? false;
    const wanted = JSON.stringify({ disks: sources.map((s) => ({ id: s.id, overlay: s.overlay, source: s.file ?? s.location })), nics, testFailover });
    const existing = this.vms.get(name);
    if (existing !== undefined) {
      if (specOf(existing.config) === wanted) return this.info(existing);
      throw vmExists(name);
    }
    if (workload !== null) checkDiskWorkloads(workload, sources);
    this.checkNotInUse(sources);
    const final = vmDir(this.layout, name);
    const rel = labRelative(this.layout, final);
    return this.createVm(name, async (tmp) => {
      const disks: DiskConfig[] = [];
      for (const s of sources) {
        if (s.overlay) {
          await CowOverlay.create({ file: diskFiles(tmp, s.id).overlay, sizeBytes: s.sizeBytes, blockSize: this.o.overlayBlockSize });
          disks.push({
            id: s.id, file: `${rel}/${s.id}.cow`, sizeBytes: s.sizeBytes, tracked: false, owned: true,
            overlay: s.file !== undefined ? { file: s.file } : { location: s.location! },
          });
        } else {
          disks.push({ id: s.id, file: s.file!, sizeBytes: s.sizeBytes, tracked: false, owned: false });
        }
      }
      return this.newConfig(name, { disks, nics, tags, workload, testFailover });
    });
  }

  async delete(name: string): Promise<boolean> {
    this.assertOpen();
    if (!this.vms.has(checkName(name, '/name'))) return false;
    try {
      return await this.withVm(name, async (rt) => {
        if (rt.config.power !== 'Off') {
          throw new VmStateError('hypervisor.notOff', `VM ${name} is ${rt.config.power}; only an Off VM can be deleted`, {
            hint: 'Shut the VM down first.',
          });
        }
        await this.closeTrackersOf(rt);
        const doomed = path.join(this.layout.vmsDir, `.deleting-${name}-${randomUUID()}`);
        await fs.rename(rt.dir, doomed);
        await syncDirectory(this.layout.vmsDir);
        rt.deleted = true;
        this.vms.delete(name);
        await fs.rm(doomed, { recursive: true, force: true });
        return true;
      });
    } catch (e) {
      if (LifeboatError.isInstance(e) && e.code === 'hypervisor.vmNotFound') return false;
      throw e;
    }
  }

  async attachNetwork(name: string, nic: string, network: string | undefined): Promise<VmInfo> {
    checkName(nic, '/nic', 'NIC name');
    const net = network === undefined ? null : checkNetwork(network, '/network');
    return this.withVm(name, async (rt) => {
      const i = rt.config.nics.findIndex((n) => n.name === nic);
      if (i < 0) {
        throw new InvalidInputError('hypervisor.nicNotFound', `VM ${name} has no NIC ${nic} (it has: ${rt.config.nics.map((n) => n.name).join(', ') || 'none'})`, {
          where: { path: '/nic' },
        });
      }
      if (rt.config.nics[i]!.network === net) return this.info(rt);
      await this.persist(rt, { nics: rt.config.nics.map((n, j) => (j === i ? { name: n.name, network: net } : n)) });
      return this.info(rt);
    });
  }

  async quiesce(name: string): Promise<ResumeFunction> {
    return this.withVm(name, async (rt) => {
      if (rt.config.power !== 'Running') {
        throw new VmStateError('hypervisor.notRunning', `VM ${name} is ${rt.config.power}; only a running VM can be quiesced`);
      }
      rt.quiesceCount++;
      if (rt.quiesceCount === 1) {
        try {
          await this.pauseGuest(rt);
          await this.flushGuest(rt);
        } catch (e) {
          rt.quiesceCount--;
          if (rt.quiesceCount === 0 && rt.config.power === 'Running') this.resumeGuest(rt);
          throw e;
        }
      }
      const epoch = rt.runEpoch;
      let resumed = false;
      return async () => {
        if (resumed) return;
        resumed = true;
        await this.serialise(rt, async () => {
          if (rt.deleted || rt.runEpoch !== epoch) return;
          rt.quiesceCount--;
          if (rt.quiesceCount === 0 && rt.config.power === 'Running') this.resumeGuest(rt);
        });
      };
    });
  }

  async fence(name: string, reason: string): Promise<VmInfo> {
    const why = checkReason(reason);
    return this.withVm(name, async (rt) => {
      if (rt.config.fence !== null) return this.info(rt);
      // The mark first: an agent that dies while stopping the VM must not bring it back.
      await this.persist(rt, { fence: { at: this.clock.now(), reason: why }, resumeOnOpen: false });
      if (rt.config.power !== 'Off') await this.stopLocked(rt, { flush: true, reason: `fenced: ${why}` });
      return this.info(rt);
    });
  }

  async unfence(name: string, reason: string): Promise<VmInfo> {
    checkReason(reason);
    return this.withVm(name, async (rt) => {
      if (rt.config.fence !== null) await this.persist(rt, { fence: null });
      return this.info(rt);
    });
  }

  async setTags(name: string, tags: Readonly<Record<string, string | undefined>>): Promise<VmInfo> {
    const next = (rt: VmRuntime): Record<string, string> => {
      const out: Record<string, string> = { ...rt.config.tags };
      for (const [k, v] of Object.entries(tags)) {
        if (v === undefined) delete out[k];
        else out[k] = v;
      }
      return checkTags(out);
    };
    return this.withVm(name, async (rt) => {
      const tagsNext = next(rt);
      if (JSON.stringify(tagsNext) !== JSON.stringify(rt.config.tags)) await this.persist(rt, { tags: tagsNext });
      return this.info(rt);
    });
  }

  async enableTracking(name: string, diskId: string): Promise<TrackedDisk> {
    return this.withVm(name, async (rt) => {
      const d = this.disk(rt, diskId);
      if (d.overlay !== undefined) {
        throw new VmStateError('hypervisor.overlayNotTrackable', `disk ${diskId} of VM ${name} is a copy-on-write overlay (test failover) and cannot be protected`);
      }
      if (d.tracked) return this.openTracker(rt, d);
      return this.switchDisk(rt, diskId, async () => {
        const opts = this.trackerOptions(rt, d);
        // Files of a create that died before vm.json said "tracked" mean nothing.
        await TrackedDisk.remove(opts);
        const td = await TrackedDisk.create(opts);
        try {
          await this.persist(rt, { disks: rt.config.disks.map((x) => (x.id === diskId ? { ...x, tracked: true } : x)) });
        } catch (e) {
          await td.close().catch(() => undefined);
          await TrackedDisk.remove(opts).catch(() => undefined);
          throw e;
        }
        rt.trackers.set(diskId, td);
        return td;
      });
    });
  }

  async trackedDisk(name: string, diskId: string): Promise<TrackedDisk> {
    return this.withVm(name, async (rt) => this.openTracker(rt, this.trackedConfig(rt, diskId)));
  }

  async reopenTracking(name: string, diskId: string): Promise<TrackedDisk> {
    return this.withVm(name, async (rt) => {
      const d = this.trackedConfig(rt, diskId);
      return this.switchDisk(rt, diskId, async () => {
        const old = rt.trackers.get(diskId);
        rt.trackers.delete(diskId);
        await old?.close().catch(() => undefined);
        return this.openTracker(rt, d);
      });
    });
  }

  async disableTracking(name: string, diskId: string): Promise<void> {
    await this.withVm(name, async (rt) => {
      const d = this.disk(rt, diskId);
      if (!d.tracked) return;
      await this.switchDisk(rt, diskId, async () => {
        const td = rt.trackers.get(diskId);
        rt.trackers.delete(diskId);
        await td?.close();
        await TrackedDisk.remove(this.trackerOptions(rt, d));
        await this.persist(rt, { disks: rt.config.disks.map((x) => (x.id === diskId ? { ...x, tracked: false } : x)) });
      });
    });
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      const errors: unknown[] = [];
      for (const rt of this.vms.values()) {
        await this.serialise(rt, async () => {
          if (rt.deleted || rt.config.power === 'Off') return;
          await this.stopLocked(rt, { flush: true, reason: 'the host agent stopped', resumeOnOpen: true });
        }).catch((e: unknown) => errors.push(e));
      }
      await this.closeTrackers().catch((e: unknown) => errors.push(e));
      await this.lock.release();
      if (errors.length > 0) throw errors[0];
    })();
    return this.closing;
  }

  // --- lab-only ---

  /**
   * A new VM (`Off`) with new, sparse (all-zero) disks in its directory.
   * Idempotent: a VM of that name with the same disks and NICs is returned;
   * otherwise `VmStateError` `hypervisor.vmExists`. If it fails, no VM was
   * created. `InvalidInputError` for bad names, sizes, workloads.
   */
  async create(options: CreateVmOptions): Promise<VmInfo> {
    this.assertOpen();
    const name = checkName(options.name, '/name');
    if (!Array.isArray(options.disks) || options.disks.length === 0) {
      throw new InvalidInputError('hypervisor.noDisks', `VM ${name} needs at least one disk`, { where: { path: '/disks' } });
    }
    const ids = new Set<string>();
    for (const [i, d] of options.disks.entries()) {
      const id = checkDiskId(d.id, `/disks/${i}/id`);
      if (ids.has(id)) throw new InvalidInputError('hypervisor.duplicateDisk', `disk id ${id} appears twice`, { where: { path: `/disks/${i}/id` } });
      ids.add(id);
      if (!Number.isSafeInteger(d.sizeBytes) || d.sizeBytes <= 0 || d.sizeBytes % 512 !== 0) {
        throw new InvalidInputError('hypervisor.invalidDiskSize', `disk ${id}: size ${d.sizeBytes} is not a positive multiple of 512`, {
          where: { path: `/disks/${i}/sizeBytes` },
        });
      }
    }
    const nics = checkNics(options.nics ?? []);
    const tags = checkTags(options.tags ?? {});
    const workload = options.workload === undefined ? null : checkWorkloadSpec(options.workload, '/workload');
    if (workload !== null) checkDiskWorkloads(workload, options.disks);
    const rel = labRelative(this.layout, vmDir(this.layout, name));
    const existing = this.vms.get(name);
    if (existing !== undefined) {
      const same = JSON.stringify(existing.config.disks.map((d) => [d.id, d.file, d.sizeBytes, d.owned, d.overlay === undefined]))
        === JSON.stringify(options.disks.map((d) => [d.id, `${rel}/${d.id}.raw`, d.sizeBytes, true, true]))
        && JSON.stringify(existing.config.nics) === JSON.stringify(nics);
      if (same) return this.info(existing);
      throw vmExists(name);
    }
    return this.createVm(name, async (tmp) => {
      for (const d of options.disks) {
        const fh = await fs.open(diskFiles(tmp, d.id).raw, 'wx');
        try {
          await fh.truncate(d.sizeBytes);
        } finally {
          await fh.close();
        }
      }
      const disks: DiskConfig[] = options.disks.map((d) => ({ id: d.id, file: `${rel}/${d.id}.raw`, sizeBytes: d.sizeBytes, tracked: false, owned: true }));
      return this.newConfig(name, { disks, nics, tags, workload, testFailover: false });
    });
  }

  /**
   * The guest side of a disk: its workload stream and guest journal (read
   * from the file while the VM is off). Throws `hypervisor.vmNotFound`,
   * `hypervisor.diskNotFound`, `guestJournal.corrupt`.
   */
  async diskStatus(name: string, diskId: string): Promise<LabDiskStatus> {
    this.assertOpen();
    const rt = this.runtime(name);
    const d = this.disk(rt, diskId);
    const open = rt.journals.get(diskId);
    const journal = open !== undefined ? open.state : await readGuestJournal(diskFiles(rt.dir, diskId).journal);
    const live = rt.runners.get(diskId)?.stats;
    const kept = rt.stats.get(diskId) ?? { writes: 0, bytes: 0, flushes: 0 };
    return {
      diskId,
      workload: rt.config.workload === null ? undefined : diskWorkloadOptions(rt.config.workload, diskId, d.sizeBytes),
      journal,
      stats: live === undefined ? kept : { writes: kept.writes + live.writes, bytes: kept.bytes + live.bytes, flushes: kept.flushes + live.flushes },
    };
  }

  // --- internals ---

  private async load(): Promise<void> {
    const interrupted: string[] = [];
    const unreadable: { name: string; error: unknown }[] = [];
    let removedLeftovers = 0;
    for (const entry of await fs.readdir(this.layout.vmsDir, { withFileTypes: true })) {
      const full = path.join(this.layout.vmsDir, entry.name);
      if (entry.name.startsWith('.creating-') || entry.name.startsWith('.deleting-')) {
        await fs.rm(full, { recursive: true, force: true });
        removedLeftovers++;
        continue;
      }
      if (!entry.isDirectory()) continue;
      try {
        checkName(entry.name, '/name');
        const config = await readVmConfig(path.join(full, VM_CONFIG_FILE));
        if (config.name !== entry.name) {
          throw new NonRecoverableError('hypervisor.vmConfigCorrupt', `${full}/${VM_CONFIG_FILE} names VM ${config.name}, not ${entry.name}`, {
            where: { file: path.join(full, VM_CONFIG_FILE), path: '/name' },
          });
        }
        if (config.workload !== null) checkDiskWorkloads(checkWorkloadSpec(config.workload, '/workload'), config.disks);
        for (const [i, d] of config.disks.entries()) {
          checkDiskId(d.id, `/disks/${i}/id`);
          await resolveInsideLab(this.layout, d.file, `/disks/${i}/file`);
          if (d.overlay !== undefined && 'file' in d.overlay) await resolveInsideLab(this.layout, d.overlay.file, `/disks/${i}/overlay/file`);
        }
        this.vms.set(entry.name, newRuntime(config, full));
      } catch (e) {
        unreadable.push({ name: entry.name, error: e });
        this.broken.set(entry.name, e);
      }
    }
    for (const rt of this.vms.values()) {
      if (rt.config.power === 'Off') continue;
      interrupted.push(rt.config.name);
      await this.setPower(rt, 'Off', 'the host agent stopped while the VM ran', {
        lastStop: { at: this.clock.now(), clean: false, reason: 'the host agent stopped while the VM ran' },
        resumeOnOpen: rt.config.fence === null,
      });
    }
    const restarted: string[] = [];
    const restartFailures: { name: string; error: unknown }[] = [];
    if (this.o.startInterrupted === true) {
      for (const rt of this.vms.values()) {
        if (!rt.config.resumeOnOpen || rt.config.fence !== null) continue;
        try {
          await this.serialise(rt, () => this.startLocked(rt, 'restarted: it was running when the host agent stopped'));
          restarted.push(rt.config.name);
        } catch (e) {
          restartFailures.push({ name: rt.config.name, error: e });
        }
      }
    }
    const resumable = [...this.vms.values()]
      .filter((rt) => rt.config.power === 'Off' && rt.config.resumeOnOpen && rt.config.fence === null)
      .map((rt) => rt.config.name);
    this.report = { interrupted, restarted, restartFailures, unreadable, removedLeftovers, resumable };
  }

  /** Off → Starting → Running; on failure back to Off with everything the guest opened closed. Under the VM lock. */
  private async startLocked(rt: VmRuntime, reason: string): Promise<void> {
    await this.setPower(rt, 'Starting', reason, {});
    try {
      for (const d of rt.config.disks) {
        rt.guestDisks.set(d.id, await this.openGuestDisk(rt, d));
      }
      const spec = rt.config.workload;
      if (spec !== null) {
        for (const d of rt.config.disks) {
          const journal = await GuestJournal.open(diskFiles(rt.dir, d.id).journal);
          rt.journals.set(d.id, journal);
          rt.runners.set(d.id, this.newRunner(rt, d, journal));
        }
      }
      rt.quiesceCount = 0;
      await this.setPower(rt, 'Running', 'every disk opened and the guest started', { resumeOnOpen: false });
    } catch (e) {
      await this.releaseGuest(rt);
      await this.setPower(rt, 'Off', `the start failed: ${describe(e)}`, {}).catch(() => undefined);
      throw classifyIo(e, `start VM ${rt.config.name}`);
    }
    this.resumeGuest(rt);
  }

  /** Running → ShuttingDown → Off: stop the guest, flush (unless turning off), close. Under the VM lock. */
  private async stopLocked(rt: VmRuntime, o: { readonly flush: boolean; readonly reason: string; readonly resumeOnOpen?: boolean }): Promise<void> {
    await this.setPower(rt, 'ShuttingDown', o.reason, {});
    let failure: unknown;
    try {
      await this.pauseGuest(rt);
      if (o.flush) await this.flushGuest(rt);
    } catch (e) {
      failure = e;
    }
    await this.releaseGuest(rt);
    await this.setPower(rt, 'Off', o.reason, {
      lastStop: { at: this.clock.now(), clean: o.flush && failure === undefined, reason: failure === undefined ? o.reason : `${o.reason}; the flush failed: ${describe(failure)}` },
      resumeOnOpen: o.resumeOnOpen ?? false,
    });
    if (failure !== undefined) throw classifyIo(failure, `flush VM ${rt.config.name}`);
  }

  /**
   * The guest stopped on an I/O error of one disk: power the VM off without
   * a flush. A tracker that failed is closed (once the guest no longer uses
   * it) so that the next use reopens it, which recovers.
   */
  private onGuestError(rt: VmRuntime, diskId: string, runner: DiskRunner, error: unknown): void {
    void this.serialise(rt, async () => {
      if (!rt.deleted && rt.config.power === 'Running' && rt.runners.get(diskId) === runner) {
        await this.crashGuest(rt, `the guest stopped after an I/O error on disk ${diskId}: ${describe(error)}`);
        try {
          this.o.onGuestStopped?.(rt.config.name, diskId, error);
        } catch {
          // The hook must not throw; there is nothing to undo if it does.
        }
      }
      const td = rt.trackers.get(diskId);
      if (td !== undefined && isTrackerError(error) && !rt.guestDisks.has(diskId)) {
        rt.trackers.delete(diskId);
        await td.close().catch(() => undefined);
      }
    }).catch(() => undefined);
  }

  /** Running → Off without a flush, `lastStop` not clean. Never throws. Under the VM lock. */
  private async crashGuest(rt: VmRuntime, reason: string): Promise<void> {
    await this.pauseGuest(rt).catch(() => undefined);
    await this.releaseGuest(rt);
    await this.setPower(rt, 'Off', reason, { lastStop: { at: this.clock.now(), clean: false, reason } }).catch(() => undefined);
  }

  private newRunner(rt: VmRuntime, d: DiskConfig, journal: GuestJournal): DiskRunner {
    const spec = rt.config.workload!;
    const runner: DiskRunner = new DiskRunner({
      disk: rt.guestDisks.get(d.id)!,
      journal,
      workload: diskWorkloadOptions(spec, d.id, d.sizeBytes),
      bytesPerSecond: spec.bytesPerSecond ?? DEFAULT_LAB_BYTES_PER_SECOND,
      clock: this.clock,
      onError: (e) => this.onGuestError(rt, d.id, runner, e),
    });
    return runner;
  }

  private async pauseGuest(rt: VmRuntime): Promise<void> {
    await Promise.all([...rt.runners.values()].map((r) => r.pause()));
  }

  private resumeGuest(rt: VmRuntime): void {
    if (rt.quiesceCount > 0) return;
    for (const r of rt.runners.values()) r.start();
  }

  /** Flush every disk of a paused guest, recording it in the guest journals. */
  private async flushGuest(rt: VmRuntime): Promise<void> {
    for (const [id, disk] of rt.guestDisks) {
      const runner = rt.runners.get(id);
      if (runner !== undefined) await runner.flush();
      else await disk.flush();
    }
  }

  /** Close the guest's handles (not trackers) and journals; forget the runners. Never throws. */
  private async releaseGuest(rt: VmRuntime): Promise<void> {
    for (const [id, r] of rt.runners) {
      const kept = rt.stats.get(id) ?? { writes: 0, bytes: 0, flushes: 0 };
      const s = r.stats;
      rt.stats.set(id, { writes: kept.writes + s.writes, bytes: kept.bytes + s.bytes, flushes: kept.flushes + s.flushes });
    }
    rt.runners.clear();
    for (const g of rt.guestDisks.values()) await g.close().catch(() => undefined);
    rt.guestDisks.clear();
    for (const j of rt.journals.values()) await j.close();
    rt.journals.clear();
    rt.quiesceCount = 0;
    rt.runEpoch++;
  }

  /**
   * Run `change` with the guest of one disk paused and its handle closed
   * (when running), then reopen the disk as the configuration now says and
   * resume. If `change` fails, the old kind of handle is reopened. Under the
   * VM lock.
   */
  private async switchDisk<T>(rt: VmRuntime, diskId: string, change: () => Promise<T>): Promise<T> {
    const running = rt.guestDisks.has(diskId);
    const runner = rt.runners.get(diskId);
    if (running) {
      await runner?.pause();
      if (runner !== undefined) await runner.flush();
      else await rt.guestDisks.get(diskId)!.flush();
      await rt.guestDisks.get(diskId)!.close();
      rt.guestDisks.delete(diskId);
    }
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await change() };
    } catch (e) {
      outcome = { ok: false, error: e };
    }
    if (running) {
      try {
        const g = await this.openGuestDisk(rt, this.disk(rt, diskId));
        rt.guestDisks.set(diskId, g);
        runner?.setDisk(g);
        if (rt.quiesceCount === 0) runner?.start();
      } catch (e) {
        // The guest cannot continue without its disk.
        await this.crashGuest(rt, `disk ${diskId} could not be reopened for the guest: ${describe(e)}`);
        throw classifyIo(e, `reopen disk ${diskId} of VM ${rt.config.name}`);
      }
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  private async openGuestDisk(rt: VmRuntime, d: DiskConfig): Promise<GuestDisk> {
    const file = path.join(this.layout.root, d.file);
    if (d.tracked) return trackedGuestDisk(await this.openTracker(rt, d));
    if (d.overlay !== undefined) {
      const base = 'file' in d.overlay ? await openFileBase(path.join(this.layout.root, d.overlay.file)) : await this.resolve(d.overlay.location);
      return overlayGuestDisk(await CowOverlay.open(file, base));
    }
    return PlainDisk.open(file);
  }

  private async openTracker(rt: VmRuntime, d: DiskConfig): Promise<TrackedDisk> {
    const open = rt.trackers.get(d.id);
    if (open !== undefined) return open;
    const td = await TrackedDisk.open(this.trackerOptions(rt, d));
    rt.trackers.set(d.id, td);
    return td;
  }

  private trackerOptions(rt: VmRuntime, d: DiskConfig): TrackedDiskOptions {
    return { ...this.o.tracker, diskPath: path.join(this.layout.root, d.file), diskId: d.id, logDir: rt.dir, clock: this.clock };
  }

  private async closeTrackersOf(rt: VmRuntime): Promise<void> {
    let failure: unknown;
    for (const [id, td] of rt.trackers) {
      rt.trackers.delete(id);
      await td.close().catch((e: unknown) => {
        failure ??= e;
      });
    }
    if (failure !== undefined) throw failure;
  }

  private async closeTrackers(): Promise<void> {
    let failure: unknown;
    for (const rt of this.vms.values()) {
      await this.closeTrackersOf(rt).catch((e: unknown) => {
        failure ??= e;
      });
    }
    if (failure !== undefined) throw failure;
  }

  private async resolve(location: string): Promise<OverlayBase> {
    if (this.o.resolveLocation === undefined) {
      throw new InvalidInputError('hypervisor.noResolver', `no resolver for location ${location}: this lab hypervisor opens only files of its lab root`, {
        hint: 'Give LabHypervisor.open a resolveLocation for this kind of location.',
      });
    }
    return this.o.resolveLocation(location);
  }

  private async resolvedSize(location: string, jsonPath: string): Promise<number> {
    const base = await this.resolve(location).catch((e: unknown) => {
      if (LifeboatError.isInstance(e)) throw e;
      throw new InvalidInputError('hypervisor.diskNotFound', `location ${location} cannot be opened: ${describe(e)}`, { where: { path: jsonPath }, cause: e });
    });
    try {
      return base.sizeBytes;
    } finally {
      await base.close();
    }
  }

  /** A writable disk must be nobody else's; a base must be nobody's writable disk. */
  private checkNotInUse(sources: readonly { readonly id: string; readonly overlay: boolean; readonly file?: string }[]): void {
    for (const s of sources) {
      if (s.file === undefined) continue;
      for (const rt of this.vms.values()) {
        for (const d of rt.config.disks) {
          const writes = d.overlay === undefined && d.file === s.file;
          const reads = d.overlay !== undefined && 'file' in d.overlay && d.overlay.file === s.file;
          if (writes || (!s.overlay && reads)) {
            throw new VmStateError('hypervisor.diskInUse', `disk file ${s.file} is used by VM ${rt.config.name} (disk ${d.id})`, {
              hint: writes ? 'Delete that VM first, or give this VM its own copy of the disk.' : 'Delete the test-failover VM that reads it first.',
            });
          }
        }
      }
    }
  }

  /** Build a VM in a hidden directory and rename it into place: a failed create leaves nothing. */
  private async createVm(name: string, build: (tmp: string) => Promise<VmConfig>): Promise<VmInfo> {
    if (this.reserved.has(name) || this.broken.has(name) || this.vms.has(name)) throw vmExists(name);
    this.reserved.add(name);
    const tmp = path.join(this.layout.vmsDir, `.creating-${name}-${randomUUID()}`);
    try {
      await fs.mkdir(tmp);
      const config = await build(tmp);
      await writeVmConfig(tmp, config);
      const final = vmDir(this.layout, name);
      try {
        await fs.rename(tmp, final);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw vmExists(name);
        throw e;
      }
      await syncDirectory(this.layout.vmsDir);
      const rt = newRuntime(config, final);
      this.vms.set(name, rt);
      return this.info(rt);
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw classifyIo(e, `create VM ${name}`);
    } finally {
      this.reserved.delete(name);
    }
  }

  private newConfig(
    name: string,
    c: Pick<VmConfig, 'disks' | 'nics' | 'tags' | 'workload' | 'testFailover'>,
  ): VmConfig {
    return {
      version: VM_CONFIG_VERSION,
      id: randomUUID(),
      name,
      createdAt: this.clock.now(),
      generation: 1,
      power: 'Off',
      resumeOnOpen: false,
      lastStop: null,
      fence: null,
      ...c,
    };
  }

  /** The one place a power state changes: checked by the table, then persisted. */
  private async setPower(rt: VmRuntime, to: PowerState, reason: string, extra: Partial<VmConfig>): Promise<void> {
    const t = powerTransition(rt.config.power, to, reason, { fenced: rt.config.fence !== null });
    if (!t.ok) throw VmStateError.fromRefusal(rt.config.name, t);
    await this.persist(rt, { ...extra, power: to });
  }

  /** Write a change of vm.json through, then keep it. */
  private async persist(rt: VmRuntime, change: Partial<VmConfig>): Promise<void> {
    const next: VmConfig = { ...rt.config, ...change, generation: rt.config.generation + 1 };
    try {
      await writeVmConfig(rt.dir, next);
    } catch (e) {
      throw classifyIo(e, `write the configuration of VM ${rt.config.name}`);
    }
    rt.config = next;
  }

  private info(rt: VmRuntime): VmInfo {
    const c = rt.config;
    return {
      id: c.id,
      name: c.name,
      power: c.power,
      quiesced: c.power === 'Running' && rt.quiesceCount > 0,
      fence: c.fence ?? undefined,
      disks: c.disks.map((d): VmDisk => ({
        id: d.id,
        path: path.join(this.layout.root, d.file),
        sizeBytes: d.sizeBytes,
        tracked: d.tracked,
        ...(d.overlay === undefined ? {} : { overlay: { base: 'file' in d.overlay ? path.join(this.layout.root, d.overlay.file) : d.overlay.location } }),
      })),
      nics: c.nics.map((n) => ({ name: n.name, network: n.network ?? undefined })),
      generation: c.generation,
      testFailover: c.testFailover,
      tags: { ...c.tags },
      createdAt: c.createdAt,
      lastStop: c.lastStop ?? undefined,
    };
  }

  private disk(rt: VmRuntime, diskId: string): DiskConfig {
    const d = rt.config.disks.find((x) => x.id === diskId);
    if (d === undefined) {
      throw new InvalidInputError('hypervisor.diskNotFound', `VM ${rt.config.name} has no disk ${diskId} (it has: ${rt.config.disks.map((x) => x.id).join(', ')})`, {
        where: { path: '/diskId' },
      });
    }
    return d;
  }

  private trackedConfig(rt: VmRuntime, diskId: string): DiskConfig {
    const d = this.disk(rt, diskId);
    if (!d.tracked) {
      throw new VmStateError('hypervisor.diskNotTracked', `disk ${diskId} of VM ${rt.config.name} is not tracked`, {
        hint: 'Enable tracking first (protection.enable does).',
      });
    }
    return d;
  }

  private runtime(name: string): VmRuntime {
    checkName(name, '/name');
    const rt = this.vms.get(name);
    if (rt !== undefined) return rt;
    const broken = this.broken.get(name);
    if (broken !== undefined) {
      throw new NonRecoverableError('hypervisor.vmConfigCorrupt', `VM ${name} cannot be used: ${describe(broken)}`, {
        cause: broken,
        hint: LifeboatError.isInstance(broken) ? broken.hint : undefined,
      });
    }
    throw vmNotFound(name);
  }

  /** Run `fn` after every earlier operation of the VM. */
  private withVm<T>(name: string, fn: (rt: VmRuntime) => Promise<T>): Promise<T> {
    this.assertOpen();
    const rt = this.runtime(name);
    return this.serialise(rt, async () => {
      if (rt.deleted) throw vmNotFound(name);
      return fn(rt);
    });
  }

  private serialise<T>(rt: VmRuntime, fn: () => Promise<T>): Promise<T> {
    const run = rt.tail.then(fn);
    rt.tail = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new InvalidInputError('hypervisor.closed', 'the lab hypervisor is closed');
  }
}

function newRuntime(config: VmConfig, dir: string): VmRuntime {
  return {
    config,
    dir,
    tail: Promise.resolve(),
    deleted: false,
    trackers: new Map(),
    guestDisks: new Map(),
    journals: new Map(),
    runners: new Map(),
    quiesceCount: 0,
    runEpoch: 0,
    stats: new Map(),
  };
}

function isTrackerError(e: unknown): boolean {
  return LifeboatError.isInstance(e) && e.code.startsWith('tracker.');
}

/** What `createFromDisks` compares to decide that a request repeats an earlier one. */
function specOf(c: VmConfig): string {
  return JSON.stringify({
    disks: c.disks.map((d) => ({
      id: d.id,
      overlay: d.overlay !== undefined,
      source: d.overlay === undefined ? d.file : 'file' in d.overlay ? d.overlay.file : d.overlay.location,
    })),
    nics: c.nics,
    testFailover: c.testFailover,
  });
}

function checkNics(nics: readonly NicSpec[]): NicConfig[] {
  const names = new Set<string>();
  return nics.map((n, i) => {
    const name = checkName(n.name, `/nics/${i}/name`, 'NIC name');
    if (names.has(name)) throw new InvalidInputError('hypervisor.duplicateNic', `NIC ${name} appears twice`, { where: { path: `/nics/${i}/name` } });
    names.add(name);
    return { name, network: n.network === undefined ? null : checkNetwork(n.network, `/nics/${i}/network`) };
  });
}

function checkTags(tags: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(tags).sort()) {
    const v = tags[k];
    if (!TAG_KEY.test(k) || typeof v !== 'string' || v.length > MAX_TAG_VALUE) {
      throw new InvalidInputError('hypervisor.invalidTag', `tag ${JSON.stringify(k)}: keys are 1–128 printable characters, values strings of at most ${MAX_TAG_VALUE}`, {
        where: { path: `/tags/${k}` },
      });
    }
    out[k] = v;
  }
  return out;
}

/**
 * The workload must make sense on every disk (alignment within the disk
 * size…): checked when the VM is made, not when its guest first writes.
 * Throws `InvalidInputError` `hypervisor.invalidWorkload`.
 */
function checkDiskWorkloads(spec: LabWorkloadSpec, disks: readonly { readonly id: string; readonly sizeBytes: number }[]): void {
  for (const d of disks) {
    try {
      workloadOps(diskWorkloadOptions(spec, d.id, d.sizeBytes)).next();
    } catch (e) {
      throw new InvalidInputError('hypervisor.invalidWorkload', `the workload cannot run on disk ${d.id} (${d.sizeBytes} bytes): ${describe(e)}`, {
        cause: e,
        where: LifeboatError.isInstance(e) && e.where?.path !== undefined ? { path: `/workload${e.where.path}` } : { path: '/workload' },
      });
    }
  }
}

function checkReason(reason: string): string {
  if (typeof reason !== 'string' || reason.trim() === '') {
    throw new InvalidInputError('hypervisor.noReason', 'a reason is required (it is recorded on the VM)', { where: { path: '/reason' } });
  }
  return reason;
}

function vmExists(name: string): VmStateError {
  return new VmStateError('hypervisor.vmExists', `a different VM named ${name} exists`, {
    hint: 'Choose another name, or delete the existing VM first.',
  });
}

/** Size of a raw disk file given by a caller. */
async function diskFileSize(file: string, jsonPath: string): Promise<number> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw classifyIo(e, `stat ${file}`);
    throw new InvalidInputError('hypervisor.diskNotFound', `disk file ${file} does not exist`, { where: { path: jsonPath }, cause: e });
  }
  if (!st.isFile() || st.size <= 0 || st.size % 512 !== 0) {
    throw new InvalidInputError('hypervisor.notADisk', `${file} is not a raw disk file (a regular file whose size is a positive multiple of 512)`, {
      where: { path: jsonPath },
    });
  }
  return st.size;
}

/** Our errors as they are; a missing file is non-recoverable; other system errors recoverable. */
function classifyIo(e: unknown, what: string): unknown {
  if (LifeboatError.isInstance(e) || !(e instanceof Error)) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new NonRecoverableError('hypervisor.fileMissing', `cannot ${what}: ${e.message}`, {
      cause: e,
      hint: 'A file of the VM is missing from its lab directory; restore it or delete the VM.',
    });
  }
  if (code === undefined) return e;
  return new RecoverableError(code === 'ENOSPC' ? 'hypervisor.noSpace' : 'hypervisor.ioFailed', `cannot ${what}: ${e.message}`, {
    cause: e,
    hint: code === 'ENOSPC' ? 'Free space in the lab root, then retry.' : 'Check the storage of the lab root, then retry.',
  });
}
