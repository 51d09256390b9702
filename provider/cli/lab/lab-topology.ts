/**
 * What the lab sets up (docs/operations.md §2): one vault `lab` with a
 * primary and a recovery Hyper-V site, a secondary-site policy between them,
 * two primary hosts and one recovery host, and demo VMs with seeded
 * workloads on the primary hosts. Pure data.
 */

import { type WorkloadPattern } from '../../hypervisor/lab';

export const LAB_VAULT = 'lab';
export const PRIMARY_SITE = 'primary';
export const RECOVERY_SITE = 'recovery';
export const LAB_POLICY = 'lab-policy';

export interface LabHostSpec {
  readonly name: string;
  readonly role: 'primary' | 'recovery';
  readonly site: string;
  /** Demo VMs created (and started) on the host the first time. */
  readonly vms: readonly { readonly name: string; readonly seed: number; readonly pattern: WorkloadPattern }[];
}

export const LAB_HOSTS: readonly LabHostSpec[] = [
  { name: 'primary-1', role: 'primary', site: PRIMARY_SITE, vms: [{ name: 'web01', seed: 101, pattern: 'random' }, { name: 'db01', seed: 102, pattern: 'hotSpot' }] },
  { name: 'primary-2', role: 'primary', site: PRIMARY_SITE, vms: [{ name: 'app01', seed: 201, pattern: 'bursts' }] },
  { name: 'recovery-1', role: 'recovery', site: RECOVERY_SITE, vms: [] },
];

/** The lab's policy: every 30 s, one hour of points, replication to the recovery site. */
export const LAB_POLICY_SPEC = {
  description: 'the lab policy: primary → recovery every 30 s',
  target: 'secondary-site',
  replicationFrequencySeconds: 30,
  recoveryPointRetentionHours: 1,
  associations: [{ source: PRIMARY_SITE, target: RECOVERY_SITE }],
} as const;
