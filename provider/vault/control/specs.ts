/**
 * TypeScript views of the request bodies that schemas/ defines. The vault
 * validates every body against its schema first, so these are reads of valid
 * documents; each field is documented in the schema (editors show it).
 * `effectivePolicy` fills in the defaults the schema declares.
 */

export interface TimeWindowSpec {
  readonly start: string;
  readonly end: string;
}

export interface VaultSpec {
  readonly description?: string;
  readonly heartbeatIntervalSeconds?: number;
  readonly missedHeartbeatsBeforeDisconnected?: number;
  readonly certificateValidityDays?: number;
}

export interface SiteSpec {
  readonly kind: 'hyperv-site' | 'vmm-cloud';
  readonly description?: string;
  readonly hosts?: readonly string[];
  readonly clouds?: readonly { readonly name: string; readonly description?: string; readonly hosts?: readonly string[] }[];
  readonly timeZone?: string;
}

export interface AzureStorageSpec {
  readonly storageAccount: string;
  readonly container?: string;
  readonly endpoint?: string;
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
  readonly region?: string;
}

export interface AssociationSpec {
  readonly source: string;
  readonly target?: string;
}

export interface ReplicationPolicySpec {
  readonly description?: string;
  readonly target: 'secondary-site' | 'azure';
  readonly replicationFrequencySeconds?: 30 | 300 | 900;
  readonly recoveryPointRetentionHours?: number;
  readonly appConsistentSnapshotFrequencyHours?: number;
  readonly initialReplication?: { readonly method?: 'online' | 'offline'; readonly startTime?: string };
  readonly compression?: boolean;
  readonly authentication?: 'certificate' | 'kerberos';
  readonly replicationPort?: number;
  readonly deleteReplicaOnDisable?: boolean;
  readonly resync?: { readonly automatic?: boolean; readonly window?: TimeWindowSpec };
  readonly bandwidthLimitMbps?: number;
  readonly offHoursBandwidthLimitMbps?: number;
  readonly offHours?: TimeWindowSpec;
  readonly azure?: AzureStorageSpec;
  readonly associations?: readonly AssociationSpec[];
}

export interface NetworkMappingSpec {
  readonly description?: string;
  readonly source: { readonly site: string; readonly network: string };
  readonly target: { readonly site?: string; readonly network: string; readonly azure?: boolean; readonly subnet?: string };
  readonly testNetwork?: string;
}

export interface ProtectedItemSpec {
  readonly site: string;
  readonly cloud?: string;
  readonly vm: string;
  readonly policy: string;
  readonly target?: { readonly site?: string; readonly host?: string };
  readonly disks?: readonly string[];
  readonly targetVm?: {
    readonly name?: string;
    readonly cpuCount?: number;
    readonly memoryMiB?: number;
    readonly azureVmSize?: string;
    readonly publicIp?: boolean;
    readonly networkAdapters?: readonly { readonly network?: string; readonly ipAddress?: string }[];
  };
}

export interface RecoveryPlanAction {
  readonly script?: string;
  readonly timeoutSeconds?: number;
  readonly manual?: string;
}

export interface RecoveryPlanSpec {
  readonly description?: string;
  readonly groups: readonly {
    readonly name?: string;
    readonly vms: readonly string[];
    readonly before?: readonly RecoveryPlanAction[];
    readonly after?: readonly RecoveryPlanAction[];
  }[];
}

/** A policy with every default of replication-policy.schema.json applied. */
export interface EffectivePolicy {
  readonly target: 'secondary-site' | 'azure';
  readonly replicationFrequencySeconds: 30 | 300 | 900;
  readonly recoveryPointRetentionHours: number;
  readonly appConsistentSnapshotFrequencyHours: number;
  readonly initialReplication: { readonly method: 'online' | 'offline'; readonly startTime?: string };
  readonly compression: boolean;
  readonly authentication: 'certificate' | 'kerberos';
  readonly replicationPort?: number;
  readonly deleteReplicaOnDisable: boolean;
  readonly resync: { readonly automatic: boolean; readonly window: TimeWindowSpec };
  readonly bandwidthLimitMbps?: number;
  readonly offHoursBandwidthLimitMbps?: number;
  readonly offHours: TimeWindowSpec;
  readonly azure?: AzureStorageSpec & { readonly container: string };
}

/** Defaults of the schema (`default` annotations); a test keeps the two equal. */
export const POLICY_DEFAULTS = {
  replicationFrequencySeconds: 300,
  recoveryPointRetentionHours: 24,
  appConsistentSnapshotFrequencyHours: 0,
  initialReplicationMethod: 'online',
  compression: false,
  authentication: 'certificate',
  deleteReplicaOnDisable: false,
  resyncAutomatic: true,
  resyncWindow: { start: '18:30', end: '07:30' },
  offHours: { start: '18:00', end: '07:00' },
  azureContainer: 'lifeboat-replicas',
} as const;

/** The policy as agents apply it: every default filled in. */
export function effectivePolicy(p: ReplicationPolicySpec): EffectivePolicy {
  const d = POLICY_DEFAULTS;
  return {
    target: p.target,
    replicationFrequencySeconds: p.replicationFrequencySeconds ?? d.replicationFrequencySeconds,
    recoveryPointRetentionHours: p.recoveryPointRetentionHours ?? d.recoveryPointRetentionHours,
    appConsistentSnapshotFrequencyHours: p.appConsistentSnapshotFrequencyHours ?? d.appConsistentSnapshotFrequencyHours,
    initialReplication: {
      method: p.initialReplication?.method ?? d.initialReplicationMethod,
      ...(p.initialReplication?.startTime === undefined ? {} : { startTime: p.initialReplication.startTime }),
    },
    compression: p.compression ?? d.compression,
    authentication: p.authentication ?? d.authentication,
    ...(p.replicationPort === undefined ? {} : { replicationPort: p.replicationPort }),
    deleteReplicaOnDisable: p.deleteReplicaOnDisable ?? d.deleteReplicaOnDisable,
    resync: { automatic: p.resync?.automatic ?? d.resyncAutomatic, window: p.resync?.window ?? d.resyncWindow },
    ...(p.bandwidthLimitMbps === undefined ? {} : { bandwidthLimitMbps: p.bandwidthLimitMbps }),
    ...(p.offHoursBandwidthLimitMbps === undefined ? {} : { offHoursBandwidthLimitMbps: p.offHoursBandwidthLimitMbps }),
    offHours: p.offHours ?? d.offHours,
    ...(p.azure === undefined ? {} : { azure: { ...p.azure, container: p.azure.container ?? d.azureContainer } }),
  };
}

/** Split `site/cloud` into its parts. */
export function parseSiteRef(ref: string): { readonly site: string; readonly cloud?: string } {
  const i = ref.indexOf('/');
  return i < 0 ? { site: ref } : { site: ref.slice(0, i), cloud: ref.slice(i + 1) };
}

/** Case-insensitive name equality. */
export function sameName(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
}
