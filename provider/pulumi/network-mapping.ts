/**
 * `NetworkMapping`: which recovery network a source network's VMs join after
 * failover (and which for a test failover). Replaced when its vault or name
 * changes; everything else updates in place.
 */

import * as pulumi from '@pulumi/pulumi';
import { type VaultObjectArgs } from './common-args';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

export type MappingTargetArgs =
  | { readonly site: string; readonly network: string }
  | { readonly azure: true; readonly network: string; readonly subnet?: string };

export interface NetworkMappingArgs extends VaultObjectArgs {
  readonly source: pulumi.Input<{ readonly site: string; readonly network: string }>;
  readonly target: pulumi.Input<MappingTargetArgs>;
  /** Network of test failovers. @default none */
  readonly testNetwork?: pulumi.Input<string>;
  readonly description?: pulumi.Input<string>;
}

export class NetworkMapping extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;

  constructor(name: string, args: NetworkMappingArgs, opts?: pulumi.CustomResourceOptions) {
    super(serializableProvider('networkMapping'), name, { uid: undefined, adopted: undefined, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION }, opts, 'lifeboat', 'NetworkMapping');
  }
}
