/**
 * `ProtectedVm`: a VM protected by a replication policy. Create returns once
 * protection is enabled (or, with `waitForInitialReplication`, once the VM
 * is Protected). Replaced when its identity changes (vault, name, site,
 * cloud, VM, target, disks, or a policy of another target kind), which means
 * a full re-seed; the preview shows how many GiB in `replacementReason`.
 * Delete disables protection and waits for it; it refuses a failed-over VM.
 */

import * as pulumi from '@pulumi/pulumi';
import { type VaultObjectArgs } from './common-args';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

export interface TargetVmArgs {
  readonly name?: string;
  readonly cpuCount?: number;
  readonly memoryMiB?: number;
  readonly azureVmSize?: string;
  readonly publicIp?: boolean;
  readonly networkAdapters?: readonly { readonly network?: string; readonly ipAddress?: string }[];
}

export interface ProtectedVmArgs extends VaultObjectArgs {
  /** Source site of the VM. */
  readonly site: pulumi.Input<string>;
  /** Cloud of a vmm-cloud site. @default none */
  readonly cloud?: pulumi.Input<string>;
  /** Name of the VM on its host. */
  readonly vm: pulumi.Input<string>;
  /** Name of the replication policy (associated with the site). */
  readonly policy: pulumi.Input<string>;
  /** Secondary site: target site and host. @default the association's target, the host with most room */
  readonly target?: pulumi.Input<{ readonly site?: string; readonly host?: string }>;
  /** Disks to replicate. @default every disk */
  readonly disks?: pulumi.Input<readonly string[]>;
  /** Settings of the VM after failover. @default the source VM's */
  readonly targetVm?: pulumi.Input<TargetVmArgs>;
  /**
   * The policy's target kind; moving to a policy of another kind replaces the
   * item. @default asked from the vault when the policy changes
   */
  readonly targetKind?: pulumi.Input<'secondary-site' | 'azure'>;
  /**
   * Also wait for initial replication to finish (state Protected), logging
   * progress; on timeout the resource is kept with its id and the next `up`
   * waits for the same job. @default return once protection is enabled
   */
  readonly waitForInitialReplication?: pulumi.Input<{ readonly timeoutMinutes?: number }>;
  /** Deadline of enabling and of disabling protection (customTimeouts are not forwarded to dynamic providers). @default 10 */
  readonly operationTimeoutMinutes?: pulumi.Input<number>;
}

export class ProtectedVm extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;
  declare readonly site: pulumi.Output<string>;
  declare readonly vm: pulumi.Output<string>;
  declare readonly policy: pulumi.Output<string>;
  /** NotProtected … Protected … FailedOver (provider/states.ts). */
  declare readonly replicationState: pulumi.Output<string>;
  /** Normal | Warning | Critical. */
  declare readonly health: pulumi.Output<string>;
  declare readonly initialReplicationPercent: pulumi.Output<number | undefined>;
  declare readonly lastReplicatedTime: pulumi.Output<string | undefined>;
  declare readonly rpoSeconds: pulumi.Output<number | undefined>;
  /** primary | recovery. */
  declare readonly activeLocation: pulumi.Output<string | undefined>;
  declare readonly sourceHost: pulumi.Output<string | undefined>;
  declare readonly targetHost: pulumi.Output<string | undefined>;
  /** Total size of the replicated disks: what a replacement re-seeds. */
  declare readonly diskSizeBytes: pulumi.Output<number>;
  /** Id of the protection.enable job that protected the VM. */
  declare readonly enableJob: pulumi.Output<string | undefined>;
  /** Set by the preview of a replacement: why, and how many GiB it re-seeds. */
  declare readonly replacementReason: pulumi.Output<string | undefined>;

  constructor(name: string, args: ProtectedVmArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = {
      uid: undefined, adopted: undefined, replicationState: undefined, health: undefined, initialReplicationPercent: undefined, lastReplicatedTime: undefined,
      rpoSeconds: undefined, activeLocation: undefined, sourceHost: undefined, targetHost: undefined, diskSizeBytes: undefined, enableJob: undefined, replacementReason: undefined,
    };
    super(serializableProvider('protectedVm'), name, { ...outputs, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION }, opts, 'lifeboat', 'ProtectedVm');
  }
}
