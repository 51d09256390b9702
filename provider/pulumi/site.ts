/**
 * `Site`: a Hyper-V site or a VMM server with its clouds. Replaced when its
 * vault, name or kind changes; everything else updates in place. An adopted
 * site is released on delete (hosts registered outside the stack belong to it).
 */

import * as pulumi from '@pulumi/pulumi';
import { type VaultObjectArgs } from './common-args';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

export interface CloudArgs {
  readonly name: string;
  readonly description?: string;
  readonly hosts?: readonly string[];
}

export interface SiteArgs extends VaultObjectArgs {
  readonly kind: pulumi.Input<'hyperv-site' | 'vmm-cloud'>;
  readonly description?: pulumi.Input<string>;
  /** Host names expected in the site (informational). @default [] */
  readonly hosts?: pulumi.Input<readonly pulumi.Input<string>[]>;
  /** Clouds of a vmm-cloud site. @default [] */
  readonly clouds?: pulumi.Input<readonly CloudArgs[]>;
  /** IANA name, UTC or a fixed offset, for policy windows. @default "UTC" */
  readonly timeZone?: pulumi.Input<string>;
}

export class Site extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;
  declare readonly kind: pulumi.Output<'hyperv-site' | 'vmm-cloud'>;
  declare readonly hosts: pulumi.Output<string[] | undefined>;
  declare readonly clouds: pulumi.Output<CloudArgs[] | undefined>;
  declare readonly timeZone: pulumi.Output<string | undefined>;

  constructor(name: string, args: SiteArgs, opts?: pulumi.CustomResourceOptions) {
    super(serializableProvider('site'), name, { uid: undefined, adopted: undefined, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION }, opts, 'lifeboat', 'Site');
  }
}
