/**
 * The provider of the named objects that are plain specs in the vault
 * (sites, replication policies, network mappings, recovery plans): check
 * with the object's schema, diff by hand, PUT to create and update, GET to
 * read (a deleted object is reported gone; a changed spec shows as changed
 * outputs), DELETE to delete.
 */

import { withAzureSecrets } from './policy-secrets';
import type * as pulumi from '@pulumi/pulumi';
import { isNotFound, type Collection, type JsonObject, type ObjectEnvelope } from '../client';
import { LifeboatError } from '../errors';
import { type SchemaName } from '../validation';
import { resolveConnection, type ResolvedConnection } from './connection';
import { type ProviderContext } from './provider-context';
import { CONTROL_KEYS, PROVIDER_KEY, pick, str, type Props } from './props';
import { checkBody, checkName } from './spec-check';
import { diffByRules } from './spec-diff';

/** What distinguishes one object kind. */
export interface ObjectKind {
  /** For messages: `site`, `replication policy`. */
  readonly title: string;
  readonly collection: Exclude<Collection, 'hosts' | 'protectedItems'>;
  readonly schema: SchemaName;
  /** Members of the API body. */
  readonly specKeys: readonly string[];
  /** Spec members whose change replaces the object (besides vault and name). */
  readonly identity: readonly string[];
  /** Members (or `member.sub`) holding names, compared case-insensitively. */
  readonly identifiers: readonly string[];
  /** Whether delete of an adopted object leaves it in the vault. */
  readonly releaseWhenAdopted: boolean;
}

/** Outputs computed by the provider. */
const OBJECT_OUTPUT_KEYS = ['uid', 'adopted'] as const;

/** The id of an object resource: `vault/collection/name`. */
export function objectId(vault: string, collection: string, name: string): string {
  return `${vault}/${collection}/${name}`;
}

/** The error of a create that finds the object already there. */
export function alreadyExists(title: string, where: string): LifeboatError {
  return new LifeboatError('pulumi.alreadyExists', 'invalidInput', `the ${title} ${where} already exists in the vault`, {
    hint: 'set `adopt: true` on the resource to take it over (it is then managed by this stack), or choose another name',
  });
}

/** Failures for inputs that are neither control keys, spec keys nor outputs. */
export function unknownInputs(news: Props, known: readonly string[]): pulumi.dynamic.CheckFailure[] {
  return Object.keys(news)
    .filter((k) => k !== PROVIDER_KEY && !known.includes(k) && news[k] !== undefined)
    .map((k) => ({ property: k, reason: `unknown input ${k}; valid: ${known.join(', ')}` }));
}

/** Failures of the common inputs `adopt` and `implVersion`. */
export function checkControl(news: Props): pulumi.dynamic.CheckFailure[] {
  const out: pulumi.dynamic.CheckFailure[] = [];
  if (news.adopt !== undefined && typeof news.adopt !== 'boolean') out.push({ property: 'adopt', reason: 'adopt must be true or false' });
  if (news.implVersion !== undefined && (typeof news.implVersion !== 'number' || !Number.isInteger(news.implVersion) || news.implVersion < 1)) {
    out.push({ property: 'implVersion', reason: 'implVersion must be an integer >= 1' });
  }
  return out;
}

/** A dynamic provider for one object kind, with the context of this call. */
export function objectProvider(kind: ObjectKind, ctx: ProviderContext): pulumi.dynamic.ResourceProvider<Props, Props> {
  const connect = (): ResolvedConnection => resolveConnection(ctx.sources);
  const outputs = (inputs: Props, env: ObjectEnvelope, adopted: boolean): Props => ({
    ...pick(inputs, CONTROL_KEYS),
    ...withAzureSecrets(pick(env.spec, kind.specKeys), inputs),
    uid: env.uid,
    adopted,
  });
  const get = async (c: ResolvedConnection, vault: string, name: string): Promise<ObjectEnvelope | undefined> => {
    try {
      return await c.client.getObject(vault, kind.collection, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
  const rules = {
    keys: [...CONTROL_KEYS.filter((k) => k !== 'adopt'), 'adopt', ...kind.specKeys],
    identity: ['vault', 'name', ...kind.identity],
    identifiers: ['vault', 'name', ...kind.identifiers],
  };

  return {
    async check(_olds, news) {
      const failures = [
        ...checkName('vault', news.vault),
        ...checkName('name', news.name),
        ...checkControl(news),
        ...unknownInputs(news, [...CONTROL_KEYS, ...kind.specKeys, ...OBJECT_OUTPUT_KEYS]),
        ...checkBody(kind.schema, pick(news, kind.specKeys)),
      ];
      return { inputs: news, failures };
    },
    async diff(_id, olds, news) {
      return diffByRules(olds, news, rules);
    },
    async create(inputs) {
      const c = connect();
      const vault = str(inputs, 'vault');
      const name = str(inputs, 'name');
      const existing = await get(c, vault, name);
      if (existing !== undefined && inputs.adopt !== true) throw alreadyExists(kind.title, `${vault}/${name}`);
      const env = await c.client.putObject(vault, kind.collection, name, pick(inputs, kind.specKeys) as JsonObject);
      return { id: objectId(vault, kind.collection, name), outs: outputs(inputs, env, existing !== undefined) };
    },
    async read(id, props) {
      const p = props ?? {};
      const env = await get(connect(), str(p, 'vault'), str(p, 'name'));
      // An empty id tells the engine the object is gone.
      if (env === undefined) return {};
      // The live spec also becomes the inputs, so a refresh records the drift and the next `up` shows it against the program.
      return { id, props: outputs(p, env, p.adopted === true), inputs: { ...pick(p, CONTROL_KEYS), ...withAzureSecrets(pick(env.spec, kind.specKeys), p) } };
    },
    async update(_id, olds, news) {
      const env = await connect().client.putObject(str(news, 'vault'), kind.collection, str(news, 'name'), pick(news, kind.specKeys) as JsonObject);
      return { outs: outputs(news, env, olds.adopted === true) };
    },
    async delete(_id, props) {
      if (props.adopted === true && kind.releaseWhenAdopted) {
        ctx.log(`released the adopted ${kind.title} ${str(props, 'vault')}/${str(props, 'name')}: it stays in the vault`);
        return;
      }
      try {
        await connect().client.deleteObject(str(props, 'vault'), kind.collection, str(props, 'name'));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
  };
}
