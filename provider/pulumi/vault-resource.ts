/**
 * `Vault`: a Lifeboat vault (PUT /v1/vaults/{name}), its registration key
 * (a Pulumi secret) and CA certificate. Replaced only when its name changes.
 * Delete removes the vault, which the vault refuses (`vault.notEmpty`) while
 * it holds objects or registered hosts; an adopted vault is released.
 */

import * as pulumi from '@pulumi/pulumi';
import { type AdoptableArgs } from './common-args';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

export interface VaultArgs extends AdoptableArgs {
  readonly description?: pulumi.Input<string>;
  /** How often agents send heartbeats, 5–600 s. @default 30 */
  readonly heartbeatIntervalSeconds?: pulumi.Input<number>;
  /** Missed heartbeats before a host is Disconnected, 2–20. @default 3 */
  readonly missedHeartbeatsBeforeDisconnected?: pulumi.Input<number>;
  /** Validity of agent certificates, 1–825 days. @default 365 */
  readonly certificateValidityDays?: pulumi.Input<number>;
}

export class Vault extends pulumi.dynamic.Resource {
  /** Name of the vault (pass it as `vault` to the other resources). */
  declare readonly name: pulumi.Output<string>;
  declare readonly uid: pulumi.Output<string>;
  declare readonly adopted: pulumi.Output<boolean>;
  /** The key hosts register with (`lbr_…`); a secret in state and in outputs. */
  declare readonly registrationKey: pulumi.Output<string>;
  /** The vault CA certificate (PEM). */
  declare readonly certificateAuthority: pulumi.Output<string>;
  declare readonly description: pulumi.Output<string | undefined>;
  declare readonly heartbeatIntervalSeconds: pulumi.Output<number | undefined>;
  declare readonly missedHeartbeatsBeforeDisconnected: pulumi.Output<number | undefined>;
  declare readonly certificateValidityDays: pulumi.Output<number | undefined>;

  constructor(name: string, args: VaultArgs = {}, opts: pulumi.CustomResourceOptions = {}) {
    super(
      serializableProvider('vault'),
      name,
      { uid: undefined, adopted: undefined, registrationKey: undefined, certificateAuthority: undefined, ...args, name: args.name ?? name, implVersion: args.implVersion ?? IMPL_VERSION },
      { ...opts, additionalSecretOutputs: [...(opts.additionalSecretOutputs ?? []), 'registrationKey'] },
      'lifeboat',
      'Vault',
    );
  }
}
