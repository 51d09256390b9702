/**
 * `RecoveryPlan`: ordered groups of protected VMs failed over together, with
 * scripts and manual steps before and after each group. Replaced when its
 * vault or name changes; everything else updates in place. With
 * `activeLocation`, where its VMs run is declared too (docs/pulumi.md §11).
 */

import * as pulumi from '@pulumi/pulumi';
import { type VaultObjectArgs } from './common-args';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

/** A script (with its timeout, @default 300 s) or a manual step. */
export type RecoveryActionArgs = { readonly script: string; readonly timeoutSeconds?: number } | { readonly manual: string };

export interface RecoveryGroupArgs {
  /** @default "Group <n>" */
  readonly name?: string;
  /** Names of protected items (ProtectedVm names). */
  readonly vms: readonly string[];
  /** @default [] */
  readonly before?: readonly RecoveryActionArgs[];
  /** @default [] */
  readonly after?: readonly RecoveryActionArgs[];
}

export interface RecoveryPlanArgs extends VaultObjectArgs {
  readonly groups: pulumi.Input<readonly RecoveryGroupArgs[]>;
  readonly description?: pulumi.Input<string>;
  /**
   * Where the plan's VMs should run. Changing it from `primary` to
   * `recovery` runs a planned failover of the plan, its commit and its
   * reprotect (replication then runs the other way); back to `primary` is
   * the failback. @default not managed: the output shows where they run
   */
  readonly activeLocation?: pulumi.Input<'primary' | 'recovery'>;
  /** Deadline of moving the plan, minutes. @default 30 */
  readonly operationTimeoutMinutes?: pulumi.Input<number>;
}

export class RecoveryPlan extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;
  /** Where the plan's VMs run, as the vault saw at the last `up` or `refresh`: `primary`, `recovery`, or `mixed`. */
  declare readonly activeLocation: pulumi.Output<'primary' | 'recovery' | 'mixed'>;
  /** No item's failover waits for its commit or reprotect (or is under way), and the items are on one side. */
  declare readonly locationSettled: pulumi.Output<boolean>;

  constructor(name: string, args: RecoveryPlanArgs, opts?: pulumi.CustomResourceOptions) {
    super(serializableProvider('recoveryPlan'), name, { uid: undefined, adopted: undefined, activeLocation: undefined, locationSettled: undefined, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION }, opts, 'lifeboat', 'RecoveryPlan');
  }
}
