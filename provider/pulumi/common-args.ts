/** Inputs every Lifeboat resource takes. */

import type * as pulumi from '@pulumi/pulumi';

export interface AdoptableArgs {
  /**
   * Name of the object in the vault; changing it replaces the resource.
   * Compared case-insensitively. @default the resource's name
   */
  readonly name?: pulumi.Input<string>;
  /**
   * Take over an object that already exists under this name instead of
   * failing (`pulumi import` does not work for dynamic resources). Delete of
   * an adopted vault or site releases it (it stays); other adopted objects
   * are deleted like created ones. @default false
   */
  readonly adopt?: pulumi.Input<boolean>;
  /**
   * Version of the provider code that last wrote the resource. Leave it: a
   * release that raises it updates existing resources once. @default IMPL_VERSION
   */
  readonly implVersion?: pulumi.Input<number>;
}

export interface VaultObjectArgs extends AdoptableArgs {
  /** Name of the vault the object lives in (e.g. a `Vault`'s `name` output); changing it replaces the resource. */
  readonly vault: pulumi.Input<string>;
}
