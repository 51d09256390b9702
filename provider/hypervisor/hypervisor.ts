/**
 * The `Hypervisor` contract (DESIGN.md §2): the only way the host agent
 * touches VMs. Drivers live in provider/hypervisor/<kind>/ (`lab/` now,
 * `nbd/` later) and implement every method with the contract stated here;
 * docs/lab.md describes the lab driver's files.
 *
 * Terms:
 * - **VM**: a named machine with disks and NICs, addressed by name (unique
 *   per host); `id` tells apart two VMs that had the same name over time.
 * - **guest**: what runs inside a powered-on VM and writes its disks.
 * - **guest flush**: the guest makes every write it completed durable;
 *   writes completed before an acknowledged flush must survive anything
 *   (planned failover relies on it: no acknowledged flushed write is lost).
 * - **tracked disk**: a disk whose every guest write passes the replication
 *   tracker (provider/replication/tracker.ts). The driver owns the
 *   `TrackedDisk` and lends it to the replication side.
 * - **fenced**: kept off on purpose (a returning old primary while its
 *   replica runs elsewhere): a fenced VM refuses to start until unfenced.
 *
 * Concurrency: a driver serialises the operations of one VM (they run one at
 * a time in call order); operations on different VMs may run concurrently.
 * `list` and `get` never wait for an operation and may show a transitional
 * power state.
 *
 * Errors (stable codes; docs/lab.md §6):
 * - `NonRecoverableError` `hypervisor.vmNotFound` for an unknown name;
 * - `VmStateError` (a `NonRecoverableError`) when the VM's state forbids
 *   the request: `hypervisor.fenced`, `hypervisor.notOff`,
 *   `hypervisor.notRunning`, `hypervisor.vmExists`, …; retrying the same
 *   request in the same state cannot succeed;
 * - `InvalidInputError` for bad names, paths and options (`where.path`);
 * - `RecoverableError` for I/O failures (`hypervisor.ioFailed`, tracker
 *   codes such as `tracker.noSpace`).
 */

import { NonRecoverableError, type LifeboatErrorOptions } from '../errors';
import { type TrackedDisk } from '../replication/tracker';
import { type PowerRefusal, type PowerState } from './power-state';

/** A disk of a VM. */
export interface VmDisk {
  /** Disk id within the VM: 1 to 64 of `A-Z a-z 0-9 _ -` (the tracker's disk id). */
  readonly id: string;
  /** Absolute path of the file the guest reads and writes (an overlay file for an overlay disk). */
  readonly path: string;
  /** Virtual size in bytes, a multiple of 512. */
  readonly sizeBytes: number;
  /** Every guest write passes the replication tracker. Never true for an overlay disk. */
  readonly tracked: boolean;
  /**
   * Set for a copy-on-write overlay disk (test failover): the guest's
   * writes land in `path`, reads of unwritten blocks come from `base`, and
   * `base` is never written. @default absent: a plain raw disk
   */
  readonly overlay?: { readonly base: string };
}

/** A network adapter. */
export interface VmNic {
  /** NIC name within the VM (`nic0`). */
  readonly name: string;
  /** The network it is connected to; `undefined` when disconnected. */
  readonly network: string | undefined;
}

/** Why and when a VM was fenced. */
export interface FenceInfo {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly reason: string;
}

/** How the guest last stopped. */
export interface StopInfo {
  /** Milliseconds since the epoch. */
  readonly at: number;
  /**
   * True when every write the guest completed was flushed before it stopped
   * (shutdown with guest flush); false after a turn-off, a guest I/O error
   * or a host agent that died while the VM ran.
   */
  readonly clean: boolean;
  readonly reason: string;
}

/** A VM as a driver reports it. */
export interface VmInfo {
  /** Stable id (a UUID), new for every VM created, even under an old name. */
  readonly id: string;
  readonly name: string;
  readonly power: PowerState;
  /** Running with its guest paused and flushed for an app-consistent point. Only ever true while `Running`. */
  readonly quiesced: boolean;
  /** Set while fenced; a fenced VM is `Off` (or `ShuttingDown` on its way there). */
  readonly fence: FenceInfo | undefined;
  readonly disks: readonly VmDisk[];
  readonly nics: readonly VmNic[];
  /** Increases by at least one with every persisted change of the VM (configuration or power). */
  readonly generation: number;
  /** Created by a test failover: disposable, on overlay disks, attached to a test network. */
  readonly testFailover: boolean;
  /** Free-form notes, e.g. `lifeboat.failover.origin`. Keys 1–128 characters. */
  readonly tags: Readonly<Record<string, string>>;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** How the guest last stopped; `undefined` if it never ran. */
  readonly lastStop: StopInfo | undefined;
}

/** Where a disk of a VM created from disks comes from. */
export interface DiskSource {
  /** Disk id in the new VM. */
  readonly id: string;
  /**
   * The disk: an absolute path of a raw disk file (the lab requires it to
   * be inside its lab root), or a location the driver knows how to open
   * (the lab: `scheme:rest`, given to its `resolveLocation`; only for
   * overlay disks).
   */
  readonly location: string;
  /**
   * Put a copy-on-write overlay over `location` instead of using it: the VM
   * never writes `location`, and creating the overlay costs the same for any
   * disk size (test failover). @default false: the VM uses `location` itself
   */
  readonly overlay?: boolean;
}

/** A NIC of a VM being created. */
export interface NicSpec {
  readonly name: string;
  /** @default disconnected */
  readonly network?: string;
}

export interface CreateFromDisksOptions {
  /** The new VM's name. */
  readonly name: string;
  /** Its disks, in order. At least one. */
  readonly disks: readonly DiskSource[];
  /** @default none */
  readonly nics?: readonly NicSpec[];
  /** Mark the VM as a test-failover VM. @default false */
  readonly testFailover?: boolean;
  /** @default {} */
  readonly tags?: Readonly<Record<string, string>>;
}

export interface ShutdownOptions {
  /**
   * Turn the VM off without a guest flush: writes the guest completed but
   * did not flush are not made durable by this call (the lab's writes
   * still sit in the page cache of the host). @default false: guest flush
   */
  readonly turnOff?: boolean;
  /** Recorded in `lastStop.reason`. @default 'shutdown requested' or 'turned off' */
  readonly reason?: string;
}

/** Resumes a quiesced guest. Idempotent; harmless after the VM stopped. */
export type ResumeFunction = () => Promise<void>;

/** A checkpoint made by a driver that supports them. */
export interface CheckpointInfo {
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** A hypervisor driver. Every method states its idempotence and what a failure leaves behind. */
export interface Hypervisor {
  /** `lab`, later `nbd`. */
  readonly kind: string;

  /** Every VM, by name. Never waits for an operation in progress. */
  list(): Promise<readonly VmInfo[]>;

  /** One VM. Throws `hypervisor.vmNotFound`. Never waits for an operation in progress. */
  get(name: string): Promise<VmInfo>;

  /**
   * Power on: open every disk (tracked ones through their `TrackedDisk`)
   * and start the guest. Idempotent: a running VM is returned as is.
   * Throws `VmStateError` `hypervisor.fenced` for a fenced VM. If it fails,
   * the VM is `Off` and whatever it opened for the guest is closed.
   */
  start(name: string): Promise<VmInfo>;

  /**
   * Power off: stop the guest (in-flight writes finish), flush every disk
   * unless `turnOff`, close the guest's handles; `Off`. A tracked disk's
   * `TrackedDisk` stays open for replication. Idempotent: an `Off` VM is
   * returned as is. If the flush fails the VM is still `Off`, `lastStop`
   * is not clean, and the error is thrown.
   */
  shutdown(name: string, options?: ShutdownOptions): Promise<VmInfo>;

  /**
   * A new VM (`Off`) from existing disks: for failover, a recovery host
   * runs the materialised replica (`overlay: false`) or a test VM over a
   * point (`overlay: true`); NICs attached to the given networks.
   * Idempotent: if a VM of that name exists with the same disks, NICs and
   * test flag, it is returned; otherwise `VmStateError`
   * `hypervisor.vmExists`. `InvalidInputError` `hypervisor.diskNotFound`
   * for a location that does not exist; `VmStateError`
   * `hypervisor.diskInUse` for a disk another VM writes or reads. If it
   * fails, no VM was created.
   */
  createFromDisks(options: CreateFromDisksOptions): Promise<VmInfo>;

  /**
   * Delete an `Off` VM: its configuration, the files the driver created
   * for it (its own disks, overlays, tracking logs), never a disk file it
   * was given by `createFromDisks` without an overlay. Returns false if
   * there was no such VM (idempotent). `VmStateError` `hypervisor.notOff`
   * otherwise. If it fails part-way the VM is gone from `list` and the
   * leftovers are removed by the next open of the driver.
   */
  delete(name: string): Promise<boolean>;

  /**
   * Connect a NIC to a network (`undefined`: disconnect), in any power
   * state. Idempotent. `InvalidInputError` `hypervisor.nicNotFound`.
   */
  attachNetwork(name: string, nic: string, network: string | undefined): Promise<VmInfo>;

  /**
   * Pause the guest for an app-consistent point: once this resolves, no
   * guest write is in flight, none starts until every resume function
   * handed out has been called, and every completed write was flushed.
   * Quiesces nest (each caller resumes its own). Matches the replication
   * driver's `QuiesceHook`. `VmStateError` `hypervisor.notRunning` unless
   * `Running`. If it fails, the guest is resumed.
   */
  quiesce(name: string): Promise<ResumeFunction>;

  /**
   * Fence: stop the VM if it runs (with a guest flush), then mark it so that
   * `start` refuses it until `unfence`. Idempotent (the first reason is
   * kept). A failure before the mark leaves the VM unfenced.
   */
  fence(name: string, reason: string): Promise<VmInfo>;

  /** Remove the fence; the VM stays `Off`. Idempotent. */
  unfence(name: string, reason: string): Promise<VmInfo>;

  /** Merge `tags` into the VM's tags; a value of `undefined` removes the key. Idempotent. */
  setTags(name: string, tags: Readonly<Record<string, string | undefined>>): Promise<VmInfo>;

  /**
   * Start tracking a disk (`TrackedDisk.create`: a new generation; the
   * disk's content now is the base the log applies to) and return the
   * tracker; a running guest's writes pass it from then on (the guest is
   * paused for the switch). Idempotent: a tracked disk's open tracker is
   * returned (opened, with recovery, if needed). `VmStateError`
   * `hypervisor.overlayNotTrackable`. If it fails, the disk is not tracked.
   */
  enableTracking(name: string, diskId: string): Promise<TrackedDisk>;

  /**
   * The `TrackedDisk` of a tracked disk, opened with recovery
   * (`TrackedDisk.open`) if it is not open; the same instance for every
   * caller, in any power state, until `disableTracking`, `delete`,
   * `reopenTracking`, `close`, or a guest I/O error that stopped the
   * tracker (the driver then closes it and the next call reopens it). The
   * caller must not close it. Its
   * `recovery` report is the one of the open, e.g. `uncleanStop` after the
   * host agent died. `VmStateError` `hypervisor.diskNotTracked`.
   */
  trackedDisk(name: string, diskId: string): Promise<TrackedDisk>;

  /**
   * Close a tracker that stopped after an error (`tracker.failed`) and open
   * it again, which recovers as after an unclean stop; a running guest is
   * paused meanwhile. Returns the new instance; the old one must not be
   * used. `VmStateError` `hypervisor.diskNotTracked`.
   */
  reopenTracking(name: string, diskId: string): Promise<TrackedDisk>;

  /**
   * Stop tracking a disk: close its tracker cleanly and delete its log (the
   * disk file stays); a running guest writes the plain file from then on.
   * Idempotent. If it fails after the close, the disk is still tracked and
   * the next `trackedDisk` reopens it.
   */
  disableTracking(name: string, diskId: string): Promise<void>;

  /**
   * Make a checkpoint, for drivers that support them (absent otherwise: the
   * lab has none). What failure leaves is the driver's to state.
   */
  checkpoint?(name: string, checkpointName: string): Promise<CheckpointInfo>;

  /**
   * Stop the driver: running guests are shut down with a guest flush and
   * remembered as running, every tracker is closed cleanly. Idempotent;
   * every later call fails with `hypervisor.closed`.
   */
  close(): Promise<void>;
}

/**
 * The VM's state forbids the request; retrying the same request in the same
 * state cannot succeed. `details.refusal` holds the power refusal when one
 * caused it.
 */
export class VmStateError extends NonRecoverableError {
  constructor(code: string, message: string, options?: LifeboatErrorOptions) {
    super(code, message, options);
  }

  /** The error for a refused power transition of VM `name`. */
  static fromRefusal(name: string, refusal: PowerRefusal, hint?: string): VmStateError {
    const code = refusal.code === 'power.fenced' ? 'hypervisor.fenced' : 'hypervisor.transitionRefused';
    return new VmStateError(code, `VM ${name}: ${refusal.message}`, {
      details: { refusal },
      hint: hint ?? (refusal.code === 'power.fenced' ? 'Unfence the VM only when no other copy of it runs (after reprotect or failback).' : undefined),
    });
  }
}

/** `hypervisor.vmNotFound` for `name`. */
export function vmNotFound(name: string): NonRecoverableError {
  return new NonRecoverableError('hypervisor.vmNotFound', `VM ${name} does not exist on this host`, {
    details: { vm: name },
    hint: 'Check the VM name; list the host\'s VMs with `lifeboat vms`.',
  });
}
