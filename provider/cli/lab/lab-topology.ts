/**
 * What a lab runs (docs/operations.md §2): the vault, its sites, the hosts
 * (one agent each) and the demo VMs on them. The fixed demo topology lives
 * here; `topologyFromProtection` (protection-topology.ts) derives one from a
 * protection file. Pure data.
 */

import { type WorkloadPattern } from '../../hypervisor/lab';

export const LAB_VAULT = 'lab';
export const PRIMARY_SITE = 'primary';
export const RECOVERY_SITE = 'recovery';
export const LAB_POLICY = 'lab-policy';

/** The network a demo VM's NIC joins when nothing names one. */
export const LAB_NETWORK = 'lab-net';

/** A demo VM: created (and started) on its host the first time. */
export interface LabVmSpec {
  readonly name: string;
  readonly seed: number;
  readonly pattern: WorkloadPattern;
  /** The network of its NIC. @default LAB_NETWORK */
  readonly network?: string;
  /** Its disks' ids. @default ['disk0'] */
  readonly disks?: readonly string[];
}

export interface LabHostSpec {
  readonly name: string;
  readonly role: 'primary' | 'recovery' | 'azure';
  readonly site: string;
  readonly vms: readonly LabVmSpec[];
}

/** A vault object the lab creates: a name and the API body PUT for it. */
export interface LabObjectSpec {
  readonly name: string;
  readonly spec: Readonly<Record<string, unknown>>;
}

export interface LabTopology {
  /** The vault's name and settings. */
  readonly vault: LabObjectSpec;
  readonly sites: readonly LabObjectSpec[];
  /** Replication policies the lab configures itself (the demo's; a protection file's are the stack's). */
  readonly policies: readonly LabObjectSpec[];
  /** Network mappings the lab configures itself (the demo's, so that failover works out of the box). @default none (a lab.json of an older version) */
  readonly networkMappings?: readonly LabObjectSpec[];
  readonly hosts: readonly LabHostSpec[];
  /**
   * `converge`: the lab PUTs its objects at every `up` (the demo lab owns
   * them). `createOnly`: it creates the vault and sites only when absent,
   * since a Pulumi stack adopts and owns them afterwards.
   */
  readonly objects: 'converge' | 'createOnly';
  /** The protection file the topology came from (absolute path). @default none: the demo topology */
  readonly protectionFile?: string;
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

/** The demo's mapping: its VMs' network to the recovery site's, test failovers on an isolated network. */
export const LAB_NETWORK_MAPPING_SPEC = {
  description: 'the lab network: lab-net at the primary site → dr-net at the recovery site, test failovers on dr-test',
  source: { site: PRIMARY_SITE, network: LAB_NETWORK },
  target: { site: RECOVERY_SITE, network: 'dr-net' },
  testNetwork: 'dr-test',
} as const;

/** The fixed demo: vault `lab`, sites `primary` and `recovery`, `lab-policy`, three demo VMs. */
export const DEMO_TOPOLOGY: LabTopology = {
  vault: { name: LAB_VAULT, spec: { description: 'the Lifeboat lab', heartbeatIntervalSeconds: 10 } },
  sites: [
    { name: PRIMARY_SITE, spec: { kind: 'hyperv-site', description: 'lab primary site', hosts: LAB_HOSTS.filter((h) => h.role === 'primary').map((h) => h.name) } },
    { name: RECOVERY_SITE, spec: { kind: 'hyperv-site', description: 'lab recovery site', hosts: LAB_HOSTS.filter((h) => h.role === 'recovery').map((h) => h.name) } },
  ],
  policies: [{ name: LAB_POLICY, spec: LAB_POLICY_SPEC }],
  networkMappings: [{ name: LAB_NETWORK, spec: LAB_NETWORK_MAPPING_SPEC }],
  hosts: LAB_HOSTS,
  objects: 'converge',
};
