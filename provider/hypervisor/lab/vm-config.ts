/**
 * `vm.json`, the configuration and state of one lab VM (docs/lab.md §2):
 * its codec, validation and atomic replacement. The file is the truth about
 * a VM; the driver keeps a copy in memory and writes every change through
 * `writeVmConfig` before acting on it.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidInputError, NonRecoverableError } from '../../errors';
import { writeFileAtomic } from '../../atomic-file';
import { type FenceInfo, type StopInfo } from '../hypervisor';
import { isPowerState, type PowerState } from '../power-state';
import { type WorkloadOptions } from './workload';

/** The version this code reads and writes. */
export const VM_CONFIG_VERSION = 1;

/** The file name inside a VM directory. */
export const VM_CONFIG_FILE = 'vm.json';

/**
 * The guest workload of a lab VM (provider/hypervisor/lab/workload.ts): the
 * options of `WorkloadOptions` except the disk size, plus the write rate.
 * Each disk runs its own stream, seeded from `seed` and the disk id
 * (`diskWorkloadOptions`).
 */
export interface LabWorkloadSpec extends Omit<WorkloadOptions, 'diskSize'> {
  /** Average write rate of each disk, bytes per second. @default 1 MiB per second */
  readonly bytesPerSecond?: number;
}

/** Where an overlay's base is: a file of the lab or a resolver location. */
export type OverlayBaseConfig = { readonly file: string } | { readonly location: string };

/** One disk in vm.json. */
export interface DiskConfig {
  readonly id: string;
  /** The file the guest uses, relative to the lab root with `/` separators. */
  readonly file: string;
  readonly sizeBytes: number;
  readonly tracked: boolean;
  /** The lab created the file inside the VM directory; it goes with the VM. */
  readonly owned: boolean;
  /** Set for a copy-on-write overlay disk (`file` is the overlay). @default absent */
  readonly overlay?: OverlayBaseConfig;
}

/** One NIC in vm.json. */
export interface NicConfig {
  readonly name: string;
  readonly network: string | null;
}

/** The content of vm.json (docs/lab.md §2). */
export interface VmConfig {
  readonly version: typeof VM_CONFIG_VERSION;
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly generation: number;
  /** The power state, written at every transition; anything but `Off` found at open means the driver died. */
  readonly power: PowerState;
  /** Bring the VM back up when the driver next opens with `startInterrupted`: it was running when the driver stopped. */
  readonly resumeOnOpen: boolean;
  readonly lastStop: StopInfo | null;
  readonly fence: FenceInfo | null;
  readonly testFailover: boolean;
  readonly tags: Readonly<Record<string, string>>;
  readonly disks: readonly DiskConfig[];
  readonly nics: readonly NicConfig[];
  /** `null`: an idle guest that never writes. */
  readonly workload: LabWorkloadSpec | null;
}

/**
 * Read and check a vm.json. Throws `NonRecoverableError`
 * `hypervisor.vmConfigCorrupt` (unreadable, not JSON, a field of the wrong
 * type; `where.file`, `where.path`) or `hypervisor.unknownVersion` (written
 * by a newer Lifeboat; nothing is changed), and lets `ENOENT` through.
 */
export async function readVmConfig(file: string): Promise<VmConfig> {
  const text = await fs.readFile(file, 'utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, '', `not JSON: ${(e as Error).message}`);
  }
  return parseVmConfig(raw, file);
}

/** Check a parsed vm.json; the errors of `readVmConfig`. Pure. */
export function parseVmConfig(raw: unknown, file: string): VmConfig {
  const o = obj(raw, file, '');
  if (o.version !== VM_CONFIG_VERSION) {
    if (typeof o.version === 'number' && o.version > VM_CONFIG_VERSION) {
      throw new NonRecoverableError('hypervisor.unknownVersion', `${file} has version ${o.version}; this Lifeboat reads version ${VM_CONFIG_VERSION}`, {
        where: { file, path: '/version' },
        hint: 'A newer Lifeboat wrote it: upgrade this host agent.',
      });
    }
    throw corrupt(file, '/version', `version ${JSON.stringify(o.version)} is not ${VM_CONFIG_VERSION}`);
  }
  const disks = arr(o.disks, file, '/disks').map((d, i): DiskConfig => {
    const p = `/disks/${i}`;
    const x = obj(d, file, p);
    const overlay = x.overlay === undefined ? undefined : overlayOf(x.overlay, file, `${p}/overlay`);
    return {
      id: str(x.id, file, `${p}/id`),
      file: str(x.file, file, `${p}/file`),
      sizeBytes: int(x.sizeBytes, file, `${p}/sizeBytes`),
      tracked: bool(x.tracked, file, `${p}/tracked`),
      owned: bool(x.owned, file, `${p}/owned`),
      ...(overlay === undefined ? {} : { overlay }),
    };
  });
  const nics = arr(o.nics, file, '/nics').map((n, i): NicConfig => {
    const x = obj(n, file, `/nics/${i}`);
    return { name: str(x.name, file, `/nics/${i}/name`), network: x.network === null ? null : str(x.network, file, `/nics/${i}/network`) };
  });
  const tagsRaw = obj(o.tags, file, '/tags');
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(tagsRaw)) tags[k] = str(v, file, `/tags/${k}`);
  if (!isPowerState(o.power)) throw corrupt(file, '/power', `${JSON.stringify(o.power)} is not a power state`);
  return {
    version: VM_CONFIG_VERSION,
    id: str(o.id, file, '/id'),
    name: str(o.name, file, '/name'),
    createdAt: int(o.createdAt, file, '/createdAt'),
    generation: int(o.generation, file, '/generation'),
    power: o.power,
    resumeOnOpen: bool(o.resumeOnOpen, file, '/resumeOnOpen'),
    lastStop: o.lastStop === null ? null : stopOf(o.lastStop, file),
    fence: o.fence === null ? null : fenceOf(o.fence, file),
    testFailover: bool(o.testFailover, file, '/testFailover'),
    tags,
    disks,
    nics,
    workload: o.workload === null ? null : (obj(o.workload, file, '/workload') as unknown as LabWorkloadSpec),
  };
}

/**
 * Replace `<dir>/vm.json` atomically: write a temporary file, `fdatasync`,
 * rename over the old one, `fsync` the directory. A crash leaves either the
 * old or the new file (and maybe a `vm.json.tmp-*`, which the driver ignores). Idempotent.
 */
export async function writeVmConfig(dir: string, config: VmConfig): Promise<void> {
  await writeFileAtomic(path.join(dir, VM_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, 0o644);
}

// --- checks ---

function corrupt(file: string, jsonPath: string, message: string): NonRecoverableError {
  return new NonRecoverableError('hypervisor.vmConfigCorrupt', `${file}${jsonPath === '' ? '' : ` at ${jsonPath}`}: ${message}`, {
    where: { file, path: jsonPath === '' ? '/' : jsonPath },
    hint: 'Restore the file from a backup, or delete the VM directory (its disks are the *.raw files in it).',
  });
}

function obj(v: unknown, file: string, p: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(file, p, 'expected an object');
  return v as Record<string, unknown>;
}

function arr(v: unknown, file: string, p: string): unknown[] {
  if (!Array.isArray(v)) throw corrupt(file, p, 'expected an array');
  return v;
}

function str(v: unknown, file: string, p: string): string {
  if (typeof v !== 'string') throw corrupt(file, p, 'expected a string');
  return v;
}

function int(v: unknown, file: string, p: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw corrupt(file, p, 'expected a non-negative integer');
  return v;
}

function bool(v: unknown, file: string, p: string): boolean {
  if (typeof v !== 'boolean') throw corrupt(file, p, 'expected true or false');
  return v;
}

function overlayOf(v: unknown, file: string, p: string): OverlayBaseConfig {
  const x = obj(v, file, p);
  if (typeof x.file === 'string') return { file: x.file };
  if (typeof x.location === 'string') return { location: x.location };
  throw corrupt(file, p, 'expected { file } or { location }');
}

function stopOf(v: unknown, file: string): StopInfo {
  const x = obj(v, file, '/lastStop');
  return { at: int(x.at, file, '/lastStop/at'), clean: bool(x.clean, file, '/lastStop/clean'), reason: str(x.reason, file, '/lastStop/reason') };
}

function fenceOf(v: unknown, file: string): FenceInfo {
  const x = obj(v, file, '/fence');
  return { at: int(x.at, file, '/fence/at'), reason: str(x.reason, file, '/fence/reason') };
}

/**
 * Check a workload spec given by a caller. Throws `InvalidInputError`
 * `hypervisor.invalidWorkload` with `where.path` under `jsonPath`. The
 * generator's own options are checked again, with its codes, when the guest
 * starts. Pure.
 */
export function checkWorkloadSpec(spec: LabWorkloadSpec, jsonPath: string): LabWorkloadSpec {
  const bad = (field: string, message: string): never => {
    throw new InvalidInputError('hypervisor.invalidWorkload', `workload ${field}: ${message}`, { where: { path: `${jsonPath}/${field}` } });
  };
  if (typeof spec !== 'object' || spec === null) bad('', 'expected an object');
  if (!Number.isInteger(spec.seed) || spec.seed < -(2 ** 31) || spec.seed >= 2 ** 32) bad('seed', `${spec.seed} is not a 32-bit integer`);
  if (spec.bytesPerSecond !== undefined && !(spec.bytesPerSecond > 0 && Number.isFinite(spec.bytesPerSecond))) {
    bad('bytesPerSecond', `${spec.bytesPerSecond} is not a positive number`);
  }
  return spec;
}
