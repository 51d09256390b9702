/**
 * The lab's state file, `<lab-dir>/lab.json` (docs/operations.md §2): which
 * processes the lab started (pid, role, data folder, log), the vault's
 * endpoint and where its admin token is. Written atomically by `lab up`
 * after every process started; read by `lab status`, `lab down` and by the
 * other commands to find the vault when no flag or variable names it.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidInputError } from '../../errors';
import { writeFileAtomic } from '../../agent/agent-files';
import { type LabTopology } from './lab-topology';

/** The lab's folder when `--dir` is not given: `.lab` in the current folder. */
export const DEFAULT_LAB_DIR = '.lab';

/** One process of the lab. */
export interface LabProcess {
  /** `vault`, or the host's name. */
  readonly name: string;
  readonly kind: 'vault' | 'agent' | 'azurite';
  /** Agents: `primary`, `recovery` or `azure`. */
  readonly role?: 'primary' | 'recovery' | 'azure';
  /** Agents: the site. */
  readonly site?: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** ISO time. */
  readonly startedAt: string;
}

export interface LabState {
  readonly version: 1;
  readonly dir: string;
  /** Base URL of the vault server. */
  readonly vaultUrl: string;
  /** The vault's port: kept across `down` and `up`, since agents know the URL. */
  readonly vaultPort: number;
  /** Name of the lab's vault object. */
  readonly vaultName: string;
  /** The admin token file (mode 0600); the token itself is never printed. */
  readonly adminTokenFile: string;
  readonly processes: readonly LabProcess[];
  /** `--frequency-ms` of the first `up` (test only), kept for restarts. @default none */
  readonly frequencyMs?: number;
  /** The topology of a lab started from a protection file (`up --protection`). @default none: the demo topology */
  readonly topology?: LabTopology;
  /** The Azure-target variant (`up --azure`): Azurite's blob port, kept across restarts. @default none */
  readonly azurite?: { readonly port: number };
  /** ISO time of the last `lab up`. */
  readonly upAt: string;
  /** ISO time of the last `lab down`, if it came after the last `up`. */
  readonly downAt?: string;
}

export function labStateFile(dir: string): string {
  return path.join(path.resolve(dir), 'lab.json');
}

/** The state, or `undefined` when the folder has none. Throws `InvalidInputError` `lab.stateCorrupt`. */
export async function readLabState(dir: string): Promise<LabState | undefined> {
  const file = labStateFile(dir);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const s = JSON.parse(text) as LabState;
    if (s.version !== 1 || typeof s.vaultUrl !== 'string' || !Array.isArray(s.processes)) throw new Error('not a lab state of version 1');
    return s;
  } catch (e) {
    throw new InvalidInputError('lab.stateCorrupt', `${file} is not a lab state file: ${e instanceof Error ? e.message : String(e)}`, {
      where: { file },
      hint: 'stop what it started by hand (see the logs in the folder), then remove the file and run `lifeboat lab up` again',
    });
  }
}

export async function writeLabState(state: LabState): Promise<void> {
  await writeFileAtomic(labStateFile(state.dir), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
