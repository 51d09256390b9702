/**
 * `loadProtection(file)`: a YAML protection file (docs/protection-file.md)
 * turned into Lifeboat resources with their dependencies, for a Pulumi
 * program (Pulumi YAML programs cannot use dynamic providers):
 *
 * ```ts
 * import { loadProtection } from 'lifeboat';
 * export const protection = loadProtection('protection.yaml');
 * ```
 */

import * as pulumi from '@pulumi/pulumi';
import { formatProblems, validateProtectionFileSync, type ProtectionModel } from '../yaml';
import { NetworkMapping } from './network-mapping';
import { ProtectedVm } from './protected-vm';
import { RecoveryPlan } from './recovery-plan';
import { ReplicationPolicy } from './replication-policy';
import { Site } from './site';
import { Vault } from './vault-resource';

/** Which kinds of existing objects to take over (`adopt: true` on their resources). */
export interface AdoptOptions {
  /** @default false */
  readonly vault?: boolean;
  /** @default false */
  readonly sites?: boolean;
  /** @default false */
  readonly policies?: boolean;
  /** @default false */
  readonly networkMappings?: boolean;
  /** @default false */
  readonly protectedVms?: boolean;
  /** @default false */
  readonly recoveryPlans?: boolean;
}

export interface LoadProtectionOptions {
  /** Take over existing objects: `true` for every kind, or per kind. @default false */
  readonly adopt?: boolean | AdoptOptions;
  /** Passed to every ProtectedVm: also wait for initial replication. @default return once protection is enabled */
  readonly waitForInitialReplication?: { readonly timeoutMinutes?: number };
  /** Passed to every ProtectedVm: deadline of enabling and disabling, minutes. @default 10 */
  readonly operationTimeoutMinutes?: number;
  /**
   * Options of every resource (e.g. `protect`, `provider`, `parent` of the
   * vault). `dependsOn` given here is added to the computed dependencies.
   * @default {}
   */
  readonly resourceOptions?: pulumi.CustomResourceOptions;
}

/** The resources of a protection file, by their names in the file. */
export interface Protection {
  readonly vault: Vault;
  readonly sites: Readonly<Record<string, Site>>;
  readonly policies: Readonly<Record<string, ReplicationPolicy>>;
  readonly networkMappings: Readonly<Record<string, NetworkMapping>>;
  readonly protectedVms: Readonly<Record<string, ProtectedVm>>;
  readonly recoveryPlans: Readonly<Record<string, RecoveryPlan>>;
}

function adoptOf(options: LoadProtectionOptions, kind: keyof AdoptOptions): boolean {
  const a = options.adopt;
  return a === true || (typeof a === 'object' && a[kind] === true);
}

/**
 * The model of a protection file, or a `pulumi.RunError` (printed without a
 * stack trace) listing every problem with file:line:column, JSON path and
 * what would be valid. Reads only.
 */
export function readProtectionModel(file: string): ProtectionModel {
  const result = validateProtectionFileSync(file);
  if (result.model === undefined) {
    const n = result.problems.length;
    throw new pulumi.RunError(`${file}: ${n} problem${n === 1 ? '' : 's'}\n${formatProblems(result.problems)}\n(\`lifeboat validate ${file}\` checks the file without deploying)`);
  }
  return result.model;
}

/** Site name of a site reference (`vmm01/GoldCloud` → `vmm01`). */
function siteOf(ref: string): string {
  const i = ref.indexOf('/');
  return i < 0 ? ref : ref.slice(0, i);
}

/**
 * Create the resources of the protection file `file` (relative to the
 * program's folder): the vault; its sites; policies after the sites they
 * associate; network mappings after their sites; protected VMs after their
 * site, policy, target site and the mappings of their site (so destroy
 * disables protection before any of these go); recovery plans after their
 * VMs. Every resource is a child of the vault. Throws `pulumi.RunError` for
 * an invalid file (nothing is created). Resource names are the file's names.
 */
export function loadProtection(file: string, options: LoadProtectionOptions = {}): Protection {
  const model = readProtectionModel(file);
  const base = options.resourceOptions ?? {};
  const extra = base.dependsOn === undefined ? [] : Array.isArray(base.dependsOn) ? base.dependsOn : [base.dependsOn];
  const opts = (parent: pulumi.Resource | undefined, deps: readonly pulumi.Resource[]): pulumi.CustomResourceOptions => ({
    ...base,
    ...(parent === undefined ? {} : { parent }),
    dependsOn: [...(extra as pulumi.Input<pulumi.Resource>[]), ...deps],
  });
  const lower = (s: string): string => s.toLowerCase();

  const m = model.vault;
  const vault = new Vault(m.name, {
    name: m.name,
    ...(m.description === undefined ? {} : { description: m.description }),
    heartbeatIntervalSeconds: m.heartbeatIntervalSeconds,
    missedHeartbeatsBeforeDisconnected: m.missedHeartbeatsBeforeDisconnected,
    certificateValidityDays: m.certificateValidityDays,
    adopt: adoptOf(options, 'vault'),
  }, opts(undefined, []));
  const v = vault.name;

  const sites: Record<string, Site> = {};
  const siteByKey = new Map<string, Site>();
  for (const s of model.sites) {
    const site = new Site(s.name, {
      vault: v, name: s.name, kind: s.kind, hosts: s.hosts, timeZone: s.timeZone,
      ...(s.description === undefined ? {} : { description: s.description }),
      ...(s.clouds.length === 0 ? {} : { clouds: s.clouds.map((c) => ({ name: c.name, hosts: c.hosts, ...(c.description === undefined ? {} : { description: c.description }) })) }),
      adopt: adoptOf(options, 'sites'),
    }, opts(vault, []));
    sites[s.name] = site;
    siteByKey.set(lower(s.name), site);
  }
  const sitesOf = (refs: readonly string[]): Site[] => [...new Set(refs.filter((r) => r !== 'azure').map((r) => lower(siteOf(r))))]
    .map((k) => siteByKey.get(k))
    .filter((x): x is Site => x !== undefined);

  const policies: Record<string, ReplicationPolicy> = {};
  const policyByKey = new Map<string, ReplicationPolicy>();
  for (const p of model.policies) {
    const { name, associations, ...settings } = p;
    const policy = new ReplicationPolicy(name, {
      ...settings,
      vault: v,
      name,
      associations: associations.map((a) => (p.target === 'azure' ? { source: a.source } : { source: a.source, target: a.target })),
      adopt: adoptOf(options, 'policies'),
    }, opts(vault, sitesOf(associations.flatMap((a) => [a.source, a.target]))));
    policies[name] = policy;
    policyByKey.set(lower(name), policy);
  }

  const networkMappings: Record<string, NetworkMapping> = {};
  for (const n of model.mappings) {
    const targetSite = 'site' in n.target ? [n.target.site] : [];
    networkMappings[n.name] = new NetworkMapping(n.name, {
      vault: v, name: n.name, source: n.source, target: n.target,
      ...(n.testNetwork === undefined ? {} : { testNetwork: n.testNetwork }),
      ...(n.description === undefined ? {} : { description: n.description }),
      adopt: adoptOf(options, 'networkMappings'),
    }, opts(vault, sitesOf([n.source.site, ...targetSite])));
  }

  const protectedVms: Record<string, ProtectedVm> = {};
  const vmByKey = new Map<string, ProtectedVm>();
  for (const p of model.protectedVms) {
    const policy = policyByKey.get(lower(p.policy));
    const mappings = model.mappings.filter((n) => lower(siteOf(n.source.site)) === lower(p.site)).map((n) => networkMappings[n.name]!);
    const vm = new ProtectedVm(p.name, {
      vault: v, name: p.name, site: p.site, vm: p.vm, policy: p.policy, targetKind: p.targetKind,
      ...(p.cloud === undefined ? {} : { cloud: p.cloud }),
      ...(p.target === undefined ? {} : { target: p.target }),
      ...(p.disks === undefined ? {} : { disks: p.disks }),
      ...(Object.keys(p.targetVm).length === 0 ? {} : { targetVm: p.targetVm }),
      ...(options.waitForInitialReplication === undefined ? {} : { waitForInitialReplication: options.waitForInitialReplication }),
      ...(options.operationTimeoutMinutes === undefined ? {} : { operationTimeoutMinutes: options.operationTimeoutMinutes }),
      adopt: adoptOf(options, 'protectedVms'),
    }, opts(vault, [...sitesOf([p.site, ...(p.target === undefined ? [] : [p.target.site])]), ...(policy === undefined ? [] : [policy]), ...mappings]));
    protectedVms[p.name] = vm;
    vmByKey.set(lower(p.name), vm);
  }

  const recoveryPlans: Record<string, RecoveryPlan> = {};
  for (const r of model.plans) {
    recoveryPlans[r.name] = new RecoveryPlan(r.name, {
      vault: v, name: r.name,
      ...(r.description === undefined ? {} : { description: r.description }),
      groups: r.groups.map((g) => ({
        name: g.name,
        vms: g.vms,
        before: g.before.map((a) => (a.kind === 'script' ? { script: a.script, timeoutSeconds: a.timeoutSeconds } : { manual: a.manual })),
        after: g.after.map((a) => (a.kind === 'script' ? { script: a.script, timeoutSeconds: a.timeoutSeconds } : { manual: a.manual })),
      })),
      adopt: adoptOf(options, 'recoveryPlans'),
    }, opts(vault, r.groups.flatMap((g) => g.vms.map((n) => vmByKey.get(lower(n)))).filter((x): x is ProtectedVm => x !== undefined)));
  }

  return { vault, sites, policies, networkMappings, protectedVms, recoveryPlans };
}
