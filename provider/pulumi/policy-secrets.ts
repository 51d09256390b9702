/**
 * The storage secret of an `azure` ReplicationPolicy (docs/azure-failover.md
 * §2) in the dynamic provider's outputs. The vault never answers it, so the
 * outputs built from the vault's spec would lack it and every `up` would see
 * a change: the provider keeps the program's value in the outputs instead
 * (Pulumi marks them secret as the program's input was: pass
 * `pulumi.secret(...)`, or a secret config value).
 */

import { type Props } from './props';

const SECRET_FIELDS = ['accountKey', 'connectionString'] as const;

/** `spec` with the azure secret fields of `inputs` put back into its `azure` object. */
export function withAzureSecrets(spec: Props, inputs: Props): Props {
  const given = inputs.azure;
  const answered = spec.azure;
  if (typeof given !== 'object' || given === null || typeof answered !== 'object' || answered === null) return spec;
  const kept = Object.fromEntries(SECRET_FIELDS.filter((k) => (given as Record<string, unknown>)[k] !== undefined).map((k) => [k, (given as Record<string, unknown>)[k]]));
  return Object.keys(kept).length === 0 ? spec : { ...spec, azure: { ...(answered as Record<string, unknown>), ...kept } };
}
