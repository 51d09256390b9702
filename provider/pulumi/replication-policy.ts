/**
 * `ReplicationPolicy`: how the VMs of its associated sites or clouds
 * replicate, with its associations (source → target). Replaced when its
 * vault, name or `target` kind changes; every other setting (frequency,
 * retention, associations…) updates in place, and the vault applies it to
 * the replicating items (`protection.update`).
 */

import * as pulumi from '@pulumi/pulumi';
import { type VaultObjectArgs } from './common-args';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

/** A daily window `HH:MM`–`HH:MM` in the source site's time zone. */
export interface TimeWindowArgs {
  readonly start: string;
  readonly end: string;
}

export interface AzureStorageArgs {
  readonly storageAccount: string;
  /** @default "lifeboat-replicas" */
  readonly container?: string;
  /** @default https://<storageAccount>.blob.core.windows.net */
  readonly endpoint?: string;
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
  readonly region?: string;
  /** Secret: the account key. Pass it as a Pulumi secret; the vault seals it and never answers it. @default none (or connectionString) */
  readonly accountKey?: string;
  /** Secret: a connection string instead of the key. @default none */
  readonly connectionString?: string;
}

/** A source site or cloud (`hq`, `vmm01/GoldCloud`) and its target (none for azure). */
export interface AssociationArgs {
  readonly source: string;
  readonly target?: string;
}

export interface ReplicationPolicyArgs extends VaultObjectArgs {
  readonly target: pulumi.Input<'secondary-site' | 'azure'>;
  readonly description?: pulumi.Input<string>;
  /** @default 300 */
  readonly replicationFrequencySeconds?: pulumi.Input<30 | 300 | 900>;
  /** 0–24; 0 keeps only the latest point. @default 24 */
  readonly recoveryPointRetentionHours?: pulumi.Input<number>;
  /** 0–12, not above the retention; 0 turns them off. @default 0 */
  readonly appConsistentSnapshotFrequencyHours?: pulumi.Input<number>;
  /** @default { method: "online" }, starting immediately */
  readonly initialReplication?: pulumi.Input<{ readonly method?: 'online' | 'offline'; readonly startTime?: string }>;
  /** @default false */
  readonly compression?: pulumi.Input<boolean>;
  /** @default "certificate" */
  readonly authentication?: pulumi.Input<'certificate' | 'kerberos'>;
  /** @default the port each recovery host registered */
  readonly replicationPort?: pulumi.Input<number>;
  /** @default false (the replica is kept) */
  readonly deleteReplicaOnDisable?: pulumi.Input<boolean>;
  /** @default { automatic: true, window: 18:30-07:30 } */
  readonly resync?: pulumi.Input<{ readonly automatic?: boolean; readonly window?: TimeWindowArgs }>;
  /** @default unlimited */
  readonly bandwidthLimitMbps?: pulumi.Input<number>;
  /** @default unlimited */
  readonly offHoursBandwidthLimitMbps?: pulumi.Input<number>;
  /** @default 18:00-07:00 */
  readonly offHours?: pulumi.Input<TimeWindowArgs>;
  /** Required for target azure, not allowed otherwise. @default none */
  readonly azure?: pulumi.Input<AzureStorageArgs>;
  /** @default [] */
  readonly associations?: pulumi.Input<readonly pulumi.Input<AssociationArgs>[]>;
}

export class ReplicationPolicy extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;
  declare readonly target: pulumi.Output<'secondary-site' | 'azure'>;
  declare readonly replicationFrequencySeconds: pulumi.Output<number | undefined>;
  declare readonly recoveryPointRetentionHours: pulumi.Output<number | undefined>;
  declare readonly appConsistentSnapshotFrequencyHours: pulumi.Output<number | undefined>;
  declare readonly associations: pulumi.Output<AssociationArgs[] | undefined>;

  constructor(name: string, args: ReplicationPolicyArgs, opts?: pulumi.CustomResourceOptions) {
    super(serializableProvider('replicationPolicy'), name, { uid: undefined, adopted: undefined, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION }, opts, 'lifeboat', 'ReplicationPolicy');
  }
}
