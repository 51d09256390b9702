/**
 * The provider of `Vault`: the vault's settings (PUT /v1/vaults/{name}), its
 * registration key and CA certificate as outputs. The key is a Pulumi
 * secret (the resource lists it in additionalSecretOutputs), so the state
 * holds it encrypted only.
 */

import type * as pulumi from '@pulumi/pulumi';
import { isNotFound, type JsonObject, type ObjectEnvelope } from '../client';
import { resolveConnection, type ResolvedConnection } from './connection';
import { alreadyExists, checkControl, unknownInputs } from './object-provider';
import { type ProviderContext } from './provider-context';
import { pick, str, type Props } from './props';
import { checkBody, checkName } from './spec-check';
import { diffByRules } from './spec-diff';

/** Settings of vault.schema.json besides the name. */
export const VAULT_SPEC_KEYS = ['description', 'heartbeatIntervalSeconds', 'missedHeartbeatsBeforeDisconnected', 'certificateValidityDays'] as const;
const VAULT_CONTROL_KEYS = ['name', 'adopt', 'implVersion'] as const;
/** Outputs the provider computes; `registrationKey` is secret. */
export const VAULT_OUTPUT_KEYS = ['uid', 'adopted', 'registrationKey', 'certificateAuthority'] as const;

/** The provider of Vault for one call's context. */
export function vaultProvider(ctx: ProviderContext): pulumi.dynamic.ResourceProvider<Props, Props> {
  const connect = (): ResolvedConnection => resolveConnection(ctx.sources);
  const get = async (c: ResolvedConnection, name: string): Promise<ObjectEnvelope | undefined> => {
    try {
      return await c.client.getVault(name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
  const outputs = async (c: ResolvedConnection, inputs: Props, env: ObjectEnvelope, adopted: boolean): Promise<Props> => ({
    ...pick(inputs, VAULT_CONTROL_KEYS),
    ...pick(env.spec, VAULT_SPEC_KEYS),
    uid: env.uid,
    adopted,
    registrationKey: await c.client.registrationKey(env.name),
    certificateAuthority: await c.client.certificateAuthority(env.name),
  });
  const rules = { keys: [...VAULT_CONTROL_KEYS, ...VAULT_SPEC_KEYS], identity: ['name'], identifiers: ['name'] };

  return {
    async check(_olds, news) {
      const failures = [
        ...checkName('name', news.name),
        ...checkControl(news),
        ...unknownInputs(news, [...VAULT_CONTROL_KEYS, ...VAULT_SPEC_KEYS, ...VAULT_OUTPUT_KEYS]),
        ...checkBody('vault', pick(news, VAULT_SPEC_KEYS)),
      ];
      return { inputs: news, failures };
    },
    async diff(_id, olds, news) {
      return diffByRules(olds, news, rules);
    },
    async create(inputs) {
      const c = connect();
      const name = str(inputs, 'name');
      const existing = await get(c, name);
      if (existing !== undefined && inputs.adopt !== true) throw alreadyExists('vault', name);
      const env = await c.client.putVault(name, pick(inputs, VAULT_SPEC_KEYS) as JsonObject);
      return { id: name, outs: await outputs(c, inputs, env, existing !== undefined) };
    },
    async read(id, props) {
      const p = props ?? {};
      const c = connect();
      const env = await get(c, str(p, 'name'));
      if (env === undefined) return {};
      return { id, props: await outputs(c, p, env, p.adopted === true), inputs: { ...pick(p, VAULT_CONTROL_KEYS), ...pick(env.spec, VAULT_SPEC_KEYS) } };
    },
    async update(_id, olds, news) {
      const c = connect();
      const env = await c.client.putVault(str(news, 'name'), pick(news, VAULT_SPEC_KEYS) as JsonObject);
      return { outs: await outputs(c, news, env, olds.adopted === true) };
    },
    async delete(_id, props) {
      const name = str(props, 'name');
      if (props.adopted === true) {
        ctx.log(`released the adopted vault ${name}: it stays, with its hosts and objects`);
        return;
      }
      try {
        await connect().client.request('DELETE', `/v1/vaults/${encodeURIComponent(name)}`);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
  };
}
