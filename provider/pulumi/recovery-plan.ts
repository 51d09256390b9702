/**
 * `RecoveryPlan`: ordered groups of protected VMs failed over together, with
 * scripts and manual steps before and after each group. Replaced when its
 * vault or name changes; everything else updates in place.
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
}

export class RecoveryPlan extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;

  constructor(name: string, args: RecoveryPlanArgs, opts?: pulumi.CustomResourceOptions) {
    super(serializableProvider('recoveryPlan'), name, { uid: undefined, adopted: undefined, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION }, opts, 'lifeboat', 'RecoveryPlan');
  }
}
