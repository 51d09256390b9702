/**
 * The protection file as a typed model: every default applied, every
 * reference resolved to the spelling its object was declared with, lists in
 * a stable order (by name, case-insensitively; the order of hosts,
 * associations, groups and actions is kept, as it means something or is
 * shown). A Pulumi program turns it into resources; the objects keep the
 * field names of the vault API bodies (schemas/), so each maps onto its
 * request body without renaming.
 */

import { BugError } from '../errors';
import {
  effectivePolicy, type EffectivePolicy, type NetworkMappingSpec, type ProtectedItemSpec, type RecoveryPlanSpec,
  type ReplicationPolicySpec, type SiteSpec, type VaultSpec,
} from '../vault/control/specs';
import { associationIndex, isResolved, NameTable, SiteTable } from './names';

/** The only file format version this release reads. */
export const PROTECTION_API_VERSION = 'lifeboat/v1';

interface Named {
  readonly name: string;
}

/** A protection file that is valid against schemas/protection.schema.json. */
export interface ProtectionDocument {
  readonly apiVersion: typeof PROTECTION_API_VERSION;
  readonly vault: VaultSpec & Named;
  readonly sites?: readonly (SiteSpec & Named)[];
  readonly policies?: readonly (ReplicationPolicySpec & Named)[];
  readonly networkMappings?: readonly (NetworkMappingSpec & Named)[];
  readonly protectedVms?: readonly (ProtectedItemSpec & Named)[];
  readonly recoveryPlans?: readonly (RecoveryPlanSpec & Named)[];
}

/** Defaults of vault.schema.json (a test keeps them equal to the schema's `default`s). */
export const VAULT_DEFAULTS = {
  heartbeatIntervalSeconds: 30,
  missedHeartbeatsBeforeDisconnected: 3,
  certificateValidityDays: 365,
} as const;

/** Defaults of site.schema.json and recovery-plan.schema.json (kept equal to the schemas by a test). */
export const SITE_DEFAULTS = { timeZone: 'UTC' } as const;
export const ACTION_DEFAULTS = { timeoutSeconds: 300 } as const;

/** Display name of the group at 0-based `index` when it has none (recovery-plan.schema.json: `Group <n>`). */
export function defaultGroupName(index: number): string {
  return `Group ${index + 1}`;
}

export interface VaultModel {
  readonly name: string;
  readonly description?: string;
  readonly heartbeatIntervalSeconds: number;
  readonly missedHeartbeatsBeforeDisconnected: number;
  readonly certificateValidityDays: number;
}

export interface CloudModel {
  readonly name: string;
  readonly description?: string;
  readonly hosts: readonly string[];
}

export interface SiteModel {
  readonly name: string;
  readonly kind: 'hyperv-site' | 'vmm-cloud';
  readonly description?: string;
  readonly hosts: readonly string[];
  /** Empty for a hyperv-site. */
  readonly clouds: readonly CloudModel[];
  readonly timeZone: string;
}

/** A source paired with its target; `target` is a site (`dr`, `vmm02/Gold`) or `azure` for an Azure policy. */
export interface AssociationModel {
  readonly source: string;
  readonly target: string;
}

/** A policy with every default applied (the vault's `effectivePolicy`) and its associations. */
export interface PolicyModel extends EffectivePolicy {
  readonly name: string;
  readonly description?: string;
  readonly associations: readonly AssociationModel[];
}

export type MappingTargetModel =
  | { readonly site: string; readonly network: string }
  | { readonly azure: true; readonly network: string; readonly subnet?: string };

export interface NetworkMappingModel {
  readonly name: string;
  readonly description?: string;
  readonly source: { readonly site: string; readonly network: string };
  readonly target: MappingTargetModel;
  readonly testNetwork?: string;
}

export type TargetVmModel = NonNullable<ProtectedItemSpec['targetVm']>;

export interface ProtectedVmModel {
  readonly name: string;
  readonly site: string;
  /** For a VM of a vmm-cloud site. */
  readonly cloud?: string;
  readonly vm: string;
  readonly policy: string;
  /** The policy's target kind: what decides whether a policy change replaces the item. */
  readonly targetKind: 'secondary-site' | 'azure';
  /** Secondary-site only: the target site (the association's when the file gives none) and host. */
  readonly target?: { readonly site: string; readonly host?: string };
  /** Disks to replicate; absent means every disk of the VM. */
  readonly disks?: readonly string[];
  readonly targetVm: TargetVmModel;
}

export type RecoveryActionModel =
  | { readonly kind: 'script'; readonly script: string; readonly timeoutSeconds: number }
  | { readonly kind: 'manual'; readonly manual: string };

export interface RecoveryGroupModel {
  readonly name: string;
  /** Names of protected VMs as declared. */
  readonly vms: readonly string[];
  readonly before: readonly RecoveryActionModel[];
  readonly after: readonly RecoveryActionModel[];
}

export interface RecoveryPlanModel {
  readonly name: string;
  readonly description?: string;
  readonly groups: readonly RecoveryGroupModel[];
}

/** A loaded protection file. Plain data: compare with deepEqual, serialise with JSON. */
export interface ProtectionModel {
  readonly apiVersion: typeof PROTECTION_API_VERSION;
  readonly vault: VaultModel;
  readonly sites: readonly SiteModel[];
  readonly policies: readonly PolicyModel[];
  readonly mappings: readonly NetworkMappingModel[];
  readonly protectedVms: readonly ProtectedVmModel[];
  readonly plans: readonly RecoveryPlanModel[];
}

function byName<T extends Named>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => {
    const x = a.name.toLowerCase();
    const y = b.name.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

function described(d: { readonly description?: string }): { readonly description?: string } {
  return d.description === undefined ? {} : { description: d.description };
}

function unresolved(what: string): never {
  throw new BugError('protection.unresolved', `${what} does not resolve in a checked protection file`);
}

/**
 * The model of a document that passed the schema and `checkProtection`
 * without problems. Pure. Throws `BugError('protection.unresolved')` if a
 * reference does not resolve, which the checks exclude.
 */
export function buildModel(doc: ProtectionDocument): ProtectionModel {
  const sites = new SiteTable(doc.sites);
  const policies = new NameTable(doc.policies, '/policies');
  const vms = new NameTable(doc.protectedVms, '/protectedVms');
  const siteRef = (ref: string): string => {
    const r = sites.resolve(ref);
    return isResolved(r) ? r.text : unresolved(`site '${ref}'`);
  };
  const siteName = (name: string): string => sites.names.get(name)?.name ?? unresolved(`site '${name}'`);

  const vault: VaultModel = {
    name: doc.vault.name,
    ...described(doc.vault),
    heartbeatIntervalSeconds: doc.vault.heartbeatIntervalSeconds ?? VAULT_DEFAULTS.heartbeatIntervalSeconds,
    missedHeartbeatsBeforeDisconnected: doc.vault.missedHeartbeatsBeforeDisconnected ?? VAULT_DEFAULTS.missedHeartbeatsBeforeDisconnected,
    certificateValidityDays: doc.vault.certificateValidityDays ?? VAULT_DEFAULTS.certificateValidityDays,
  };

  const siteModels = (doc.sites ?? []).map((s): SiteModel => ({
    name: s.name,
    kind: s.kind,
    ...described(s),
    hosts: [...(s.hosts ?? [])],
    clouds: (s.clouds ?? []).map((c) => ({ name: c.name, ...described(c), hosts: [...(c.hosts ?? [])] })),
    timeZone: s.timeZone ?? SITE_DEFAULTS.timeZone,
  }));

  const policyModels = (doc.policies ?? []).map((p): PolicyModel => ({
    name: p.name,
    ...described(p),
    ...effectivePolicy(p),
    associations: (p.associations ?? []).map((a) => ({
      source: siteRef(a.source),
      target: p.target === 'azure' ? 'azure' : siteRef(a.target ?? unresolved('an association without a target')),
    })),
  }));

  const mappingModels = (doc.networkMappings ?? []).map((m): NetworkMappingModel => ({
    name: m.name,
    ...described(m),
    source: { site: siteRef(m.source.site), network: m.source.network },
    target: m.target.site !== undefined
      ? { site: siteRef(m.target.site), network: m.target.network }
      : { azure: true, network: m.target.network, ...(m.target.subnet === undefined ? {} : { subnet: m.target.subnet }) },
    ...(m.testNetwork === undefined ? {} : { testNetwork: m.testNetwork }),
  }));

  const vmModels = (doc.protectedVms ?? []).map((v): ProtectedVmModel => {
    const site = siteName(v.site);
    const cloud = v.cloud === undefined ? undefined : sites.clouds(sites.names.get(site)!).get(v.cloud)?.name ?? unresolved(`cloud '${v.cloud}'`);
    const policy = policies.get(v.policy) ?? unresolved(`policy '${v.policy}'`);
    const spec = policy.value as unknown as ReplicationPolicySpec;
    let target: ProtectedVmModel['target'];
    if (spec.target === 'secondary-site') {
      const a = associationIndex(policy.value, sites, site, cloud) ?? unresolved(`the association of '${v.name}'`);
      const assocTarget = (spec.associations ?? [])[a]?.target ?? unresolved(`the target of '${v.name}'`);
      target = {
        site: siteRef(v.target?.site ?? assocTarget),
        ...(v.target?.host === undefined ? {} : { host: v.target.host }),
      };
    }
    return {
      name: v.name,
      site,
      ...(cloud === undefined ? {} : { cloud }),
      vm: v.vm,
      policy: policy.name,
      targetKind: spec.target,
      ...(target === undefined ? {} : { target }),
      ...(v.disks === undefined ? {} : { disks: [...v.disks] }),
      targetVm: v.targetVm ?? {},
    };
  });

  const action = (a: RecoveryPlanSpec['groups'][number]['before'] & object): RecoveryActionModel[] => a.map((x) => (
    x.script !== undefined
      ? { kind: 'script', script: x.script, timeoutSeconds: x.timeoutSeconds ?? ACTION_DEFAULTS.timeoutSeconds }
      : { kind: 'manual', manual: x.manual ?? unresolved('an action without script or manual') }
  ));
  const planModels = (doc.recoveryPlans ?? []).map((p): RecoveryPlanModel => ({
    name: p.name,
    ...described(p),
    groups: p.groups.map((g, j) => ({
      name: g.name ?? defaultGroupName(j),
      vms: g.vms.map((n) => vms.get(n)?.name ?? unresolved(`protected VM '${n}'`)),
      before: action(g.before ?? []),
      after: action(g.after ?? []),
    })),
  }));

  // A copy, so that the model shares nothing with the document or the defaults' constants.
  return structuredClone({
    apiVersion: PROTECTION_API_VERSION,
    vault,
    sites: byName(siteModels),
    policies: byName(policyModels),
    mappings: byName(mappingModels),
    protectedVms: byName(vmModels),
    plans: byName(planModels),
  });
}
