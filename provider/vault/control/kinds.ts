/**
 * The kinds of named objects an operator declares (DESIGN.md §4), with what
 * the vault checks beyond their JSON Schema: references to other objects
 * (which must exist, and which keep them "in use"), rules across fields and
 * objects, and which fields may not change once created. Each check reports
 * field problems (JSON path, message, allowed values) in the API's error
 * shape.
 */

import { InvalidInputError, LifeboatError } from '../../errors';
import { DailyWindow } from '../../replication/window';
import type { JsonObject, ObjectKind, ObjectRef, StoredObject } from '../store/records';
import type { SqliteStore } from '../store/sqlite/sqlite-store';
import type { SchemaName } from '../../validation/schemas';
import type { FieldProblem } from '../../validation/problems';
import {
  parseSiteRef, sameName, type NetworkMappingSpec, type ProtectedItemSpec, type RecoveryPlanSpec, type ReplicationPolicySpec, type SiteSpec,
} from './specs';

/** A reference found in a spec, with where it is. */
export interface SpecRef extends ObjectRef {
  /** JSON Pointer of the referring value. */
  readonly path: string;
  /** For a `site/cloud` reference: the cloud that must exist in the site. */
  readonly cloud?: string;
}

export interface KindDefinition {
  readonly kind: ObjectKind;
  /** URL segment of the collection, e.g. `replicationPolicies`. */
  readonly collection: string;
  /** For messages: `replication policy`. */
  readonly title: string;
  /** Schema of the PUT body. */
  readonly schema: SchemaName;
  /** References of a (schema-valid) spec. */
  refs(spec: JsonObject): SpecRef[];
  /** Rules beyond the schema and the references; `existing` is set on update. */
  check?(store: SqliteStore, vault: string, spec: JsonObject, existing: StoredObject | undefined): FieldProblem[];
  /** Changes refused on update because something depends on the old value (409). */
  conflicts?(store: SqliteStore, vault: string, spec: JsonObject, existing: StoredObject): FieldProblem[];
}

function windowProblem(path: string, w: { start: string; end: string } | undefined, timeZone?: string): FieldProblem[] {
  if (w === undefined) return [];
  try {
    new DailyWindow({ start: w.start, end: w.end, ...(timeZone === undefined ? {} : { timeZone }) });
    return [];
  } catch (e) {
    if (LifeboatError.isInstance(e) && e instanceof InvalidInputError) return [{ path, message: e.message, ...(e.hint === undefined ? {} : { expected: e.hint }) }];
    throw e;
  }
}

function siteRef(path: string, ref: string): SpecRef {
  const { site, cloud } = parseSiteRef(ref);
  return { kind: 'site', name: site, path, ...(cloud === undefined ? {} : { cloud }) };
}

/** Items (name, spec) that use a policy. */
function itemsOfPolicy(store: SqliteStore, vault: string, policy: string): StoredObject[] {
  return store.referrers(vault, 'replicationPolicy', policy)
    .filter((r) => r.kind === 'protectedItem')
    .map((r) => store.getObject(vault, 'protectedItem', r.name))
    .filter((o): o is StoredObject => o !== undefined);
}

/** The association of a policy whose source is the item's site (or site/cloud). */
export function associationFor(policy: ReplicationPolicySpec, site: string, cloud: string | undefined): { source: string; target?: string } | undefined {
  const list = policy.associations ?? [];
  const exact = list.find((a) => {
    const s = parseSiteRef(a.source);
    return sameName(s.site, site) && s.cloud !== undefined && sameName(s.cloud, cloud);
  });
  return exact ?? list.find((a) => {
    const s = parseSiteRef(a.source);
    return sameName(s.site, site) && s.cloud === undefined;
  });
}

const site: KindDefinition = {
  kind: 'site',
  collection: 'sites',
  title: 'site',
  schema: 'site',
  refs: () => [],
  check: (_store, _vault, raw) => {
    const spec = raw as unknown as SiteSpec;
    const out: FieldProblem[] = [];
    if (spec.timeZone !== undefined) {
      for (const p of windowProblem('/timeZone', { start: '00:00', end: '01:00' }, spec.timeZone)) out.push({ ...p, message: `unknown time zone '${spec.timeZone}'` });
    }
    const seen = new Map<string, number>();
    (spec.clouds ?? []).forEach((c, i) => {
      const prev = seen.get(c.name.toLowerCase());
      if (prev !== undefined) out.push({ path: `/clouds/${i}/name`, message: `duplicates the name of cloud ${prev}; cloud names are unique in a site` });
      seen.set(c.name.toLowerCase(), i);
    });
    if (spec.kind === 'vmm-cloud' && (spec.clouds ?? []).length === 0) {
      out.push({ path: '/clouds', message: 'a vmm-cloud site needs at least one cloud' });
    }
    return out;
  },
  conflicts: (store, vault, raw, existing) => {
    const spec = raw as unknown as SiteSpec;
    const old = existing.spec as unknown as SiteSpec;
    const users = store.referrers(vault, 'site', existing.name);
    const out: FieldProblem[] = [];
    if (spec.kind !== old.kind && users.length > 0) {
      out.push({ path: '/kind', message: `cannot change from ${old.kind} while ${users.map((u) => `${u.kind} ${u.name}`).join(', ')} refer to the site`, allowed: [old.kind] });
    }
    const kept = new Set((spec.clouds ?? []).map((c) => c.name.toLowerCase()));
    for (const c of old.clouds ?? []) {
      if (kept.has(c.name.toLowerCase())) continue;
      const using = cloudUsers(store, vault, existing.name, c.name);
      if (using.length > 0) out.push({ path: '/clouds', message: `cloud '${c.name}' is used by ${using.join(', ')}; it cannot be removed` });
    }
    return out;
  },
};

/** Objects that refer to `site/cloud`. */
function cloudUsers(store: SqliteStore, vault: string, siteName: string, cloud: string): string[] {
  const out: string[] = [];
  for (const r of store.referrers(vault, 'site', siteName)) {
    const o = store.getObject(vault, r.kind, r.name);
    if (o === undefined) continue;
    const def = r.kind === 'host' ? undefined : KINDS.find((k) => k.kind === r.kind);
    const refs = def === undefined ? (sameName(String(o.spec.cloud ?? ''), cloud) ? [{ cloud }] : []) : def.refs(o.spec).filter((x) => x.kind === 'site' && sameName(x.name, siteName) && sameName(x.cloud, cloud));
    if (refs.length > 0) out.push(`${r.kind} ${r.name}`);
  }
  return out;
}

const replicationPolicy: KindDefinition = {
  kind: 'replicationPolicy',
  collection: 'replicationPolicies',
  title: 'replication policy',
  schema: 'replication-policy',
  refs: (raw) => {
    const spec = raw as unknown as ReplicationPolicySpec;
    const out: SpecRef[] = [];
    (spec.associations ?? []).forEach((a, i) => {
      out.push(siteRef(`/associations/${i}/source`, a.source));
      if (spec.target === 'secondary-site' && a.target !== undefined) out.push(siteRef(`/associations/${i}/target`, a.target));
    });
    return out;
  },
  check: (_store, _vault, raw) => {
    const spec = raw as unknown as ReplicationPolicySpec;
    const out: FieldProblem[] = [];
    if (spec.authentication === 'kerberos') {
      out.push({ path: '/authentication', message: 'kerberos authentication is not supported by this vault; hosts authenticate with vault-issued certificates', allowed: ['certificate'] });
    }
    out.push(...windowProblem('/resync/window', spec.resync?.window), ...windowProblem('/offHours', spec.offHours));
    const sources = new Map<string, number>();
    (spec.associations ?? []).forEach((a, i) => {
      const key = a.source.toLowerCase();
      const prev = sources.get(key);
      if (prev !== undefined) out.push({ path: `/associations/${i}/source`, message: `duplicates the source of association ${prev}; a source has one target per policy` });
      sources.set(key, i);
      if (spec.target === 'secondary-site' && a.target !== undefined && sameName(parseSiteRef(a.source).site, parseSiteRef(a.target).site)) {
        out.push({ path: `/associations/${i}/target`, message: 'the target must be another site than the source' });
      }
    });
    return out;
  },
  conflicts: (store, vault, raw, existing) => {
    const spec = raw as unknown as ReplicationPolicySpec;
    const old = existing.spec as unknown as ReplicationPolicySpec;
    const items = itemsOfPolicy(store, vault, existing.name);
    if (items.length === 0) return [];
    const out: FieldProblem[] = [];
    if (spec.target !== old.target) {
      out.push({ path: '/target', message: `cannot change while protected items use the policy (${items.map((i) => i.name).join(', ')}); replace those items`, allowed: [old.target] });
    }
    for (const item of items) {
      const s = item.spec as unknown as ProtectedItemSpec;
      const before = associationFor(old, s.site, s.cloud);
      const after = associationFor(spec, s.site, s.cloud);
      if (after === undefined) {
        out.push({ path: '/associations', message: `protected item '${item.name}' (site ${s.site}${s.cloud === undefined ? '' : `/${s.cloud}`}) uses an association this change removes; disable its protection first` });
      } else if (before !== undefined && spec.target === 'secondary-site' && !sameName(before.target, after.target)) {
        out.push({ path: '/associations', message: `protected item '${item.name}' replicates to ${before.target ?? '?'}; its association's target cannot change while it is protected` });
      }
    }
    return out;
  },
};

const networkMapping: KindDefinition = {
  kind: 'networkMapping',
  collection: 'networkMappings',
  title: 'network mapping',
  schema: 'network-mapping',
  refs: (raw) => {
    const spec = raw as unknown as NetworkMappingSpec;
    return [siteRef('/source/site', spec.source.site), ...(spec.target.site === undefined ? [] : [siteRef('/target/site', spec.target.site)])];
  },
  check: (_store, _vault, raw) => {
    const spec = raw as unknown as NetworkMappingSpec;
    if (spec.target.site !== undefined && sameName(parseSiteRef(spec.source.site).site, parseSiteRef(spec.target.site).site)) {
      return [{ path: '/target/site', message: 'the target must be another site than the source' }];
    }
    return [];
  },
};

const protectedItem: KindDefinition = {
  kind: 'protectedItem',
  collection: 'protectedItems',
  title: 'protected item',
  schema: 'protected-item',
  refs: (raw) => {
    const spec = raw as unknown as ProtectedItemSpec;
    return [
      { kind: 'site', name: spec.site, path: '/site', ...(spec.cloud === undefined ? {} : { cloud: spec.cloud }) },
      { kind: 'replicationPolicy', name: spec.policy, path: '/policy' },
      ...(spec.target?.site === undefined ? [] : [siteRef('/target/site', spec.target.site)]),
      ...(spec.target?.host === undefined ? [] : [{ kind: 'host' as const, name: spec.target.host, path: '/target/host' }]),
    ];
  },
  check: (store, vault, raw, existing) => {
    const spec = raw as unknown as ProtectedItemSpec;
    const out: FieldProblem[] = [];
    const siteObj = store.getObject(vault, 'site', spec.site);
    const policyObj = store.getObject(vault, 'replicationPolicy', spec.policy);
    if (siteObj !== undefined) {
      const s = siteObj.spec as unknown as SiteSpec;
      if (s.kind === 'vmm-cloud' && spec.cloud === undefined) {
        out.push({ path: '/cloud', message: `site '${siteObj.name}' is a VMM site: name the VM's cloud`, allowed: (s.clouds ?? []).map((c) => c.name) });
      }
      if (s.kind === 'hyperv-site' && spec.cloud !== undefined) {
        out.push({ path: '/cloud', message: `site '${siteObj.name}' is a Hyper-V site without clouds; leave cloud out` });
      }
    }
    if (siteObj !== undefined && policyObj !== undefined) {
      const p = policyObj.spec as unknown as ReplicationPolicySpec;
      const assoc = associationFor(p, spec.site, spec.cloud);
      if (assoc === undefined) {
        const candidates = store.listObjects(vault, 'replicationPolicy')
          .filter((o) => associationFor(o.spec as unknown as ReplicationPolicySpec, spec.site, spec.cloud) !== undefined)
          .map((o) => o.name);
        out.push({
          path: '/policy',
          message: `policy '${policyObj.name}' has no association for source '${spec.site}${spec.cloud === undefined ? '' : `/${spec.cloud}`}'; add one to the policy or choose a policy that has one`,
          allowed: candidates,
        });
      } else if (p.target === 'azure') {
        if (spec.target !== undefined && (spec.target.site !== undefined || spec.target.host !== undefined)) {
          out.push({ path: '/target', message: `policy '${policyObj.name}' replicates to Azure; a target site or host does not apply` });
        }
      } else if (spec.target?.site !== undefined && !sameName(parseSiteRef(spec.target.site).site, parseSiteRef(assoc.target ?? '').site)) {
        out.push({ path: '/target/site', message: `policy '${policyObj.name}' replicates ${assoc.source} to ${assoc.target ?? '?'}`, allowed: [assoc.target] });
      }
      if (spec.target?.host !== undefined && p.target === 'secondary-site') {
        const host = store.getObject(vault, 'host', spec.target.host);
        const targetSite = parseSiteRef(spec.target.site ?? assoc?.target ?? '').site;
        if (host !== undefined && !sameName(String(host.spec.site), targetSite)) {
          out.push({ path: '/target/host', message: `host '${host.name}' is in site ${String(host.spec.site)}, not in the target site ${targetSite}` });
        }
      }
    }
    if (existing === undefined) {
      const twin = store.listObjects(vault, 'protectedItem').find((o) => {
        const s = o.spec as unknown as ProtectedItemSpec;
        return sameName(s.site, spec.site) && s.vm.toLowerCase() === spec.vm.toLowerCase();
      });
      if (twin !== undefined) out.push({ path: '/vm', message: `VM '${spec.vm}' of site '${spec.site}' is already protected by item '${twin.name}'` });
    }
    return out;
  },
  conflicts: (store, vault, raw, existing) => {
    const spec = raw as unknown as ProtectedItemSpec;
    const old = existing.spec as unknown as ProtectedItemSpec;
    const out: FieldProblem[] = [];
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null).toLowerCase() === JSON.stringify(b ?? null).toLowerCase();
    for (const field of ['site', 'cloud', 'vm', 'target', 'disks'] as const) {
      if (!same(spec[field], old[field])) {
        out.push({ path: `/${field}`, message: `cannot change once the item exists (it identifies what is replicated where); delete the item and create it again, which re-seeds the replica`, allowed: [old[field] ?? null] });
      }
    }
    if (!sameName(spec.policy, old.policy)) {
      const a = store.getObject(vault, 'replicationPolicy', spec.policy);
      const b = store.getObject(vault, 'replicationPolicy', old.policy);
      if (a !== undefined && b !== undefined && a.spec.target !== b.spec.target) {
        out.push({ path: '/policy', message: `policy '${a.name}' replicates to ${String(a.spec.target)}, the item's replica is on ${String(b.spec.target)}; replace the item to change the target kind` });
      }
    }
    return out;
  },
};

const recoveryPlan: KindDefinition = {
  kind: 'recoveryPlan',
  collection: 'recoveryPlans',
  title: 'recovery plan',
  schema: 'recovery-plan',
  refs: (raw) => {
    const spec = raw as unknown as RecoveryPlanSpec;
    return spec.groups.flatMap((g, i) => g.vms.map((vm, j) => ({ kind: 'protectedItem' as const, name: vm, path: `/groups/${i}/vms/${j}` })));
  },
  check: (_store, _vault, raw) => {
    const spec = raw as unknown as RecoveryPlanSpec;
    const out: FieldProblem[] = [];
    const seen = new Map<string, string>();
    spec.groups.forEach((g, i) => g.vms.forEach((vm, j) => {
      const prev = seen.get(vm.toLowerCase());
      if (prev !== undefined) out.push({ path: `/groups/${i}/vms/${j}`, message: `'${vm}' is already in ${prev}; an item belongs to one group of a plan` });
      seen.set(vm.toLowerCase(), `group ${i}`);
    }));
    return out;
  },
};

/** The kinds operators PUT, in dependency order (a kind refers only to kinds before it). */
export const KINDS: readonly KindDefinition[] = [site, replicationPolicy, networkMapping, protectedItem, recoveryPlan];

/** The definition of a kind by its collection segment. */
export function kindByCollection(collection: string): KindDefinition | undefined {
  return KINDS.find((k) => k.collection === collection);
}

export function kindDefinition(kind: ObjectKind): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind);
}

const TITLES: Readonly<Record<ObjectKind, string>> = {
  vault: 'vault', site: 'site', host: 'host', replicationPolicy: 'replication policy', networkMapping: 'network mapping',
  protectedItem: 'protected item', recoveryPlan: 'recovery plan',
};

/** `replication policy` for `replicationPolicy`. */
export function titleOf(kind: ObjectKind): string {
  return TITLES[kind];
}

/**
 * Problems of references that do not resolve: a missing object (with the
 * existing names as `allowed`) or a missing cloud of a site.
 */
export function referenceProblems(store: SqliteStore, vault: string, refs: readonly SpecRef[]): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const r of refs) {
    const target = store.getObject(vault, r.kind, r.name);
    if (target === undefined) {
      out.push({
        path: r.path,
        message: `no ${titleOf(r.kind)} named '${r.name}' in vault '${vault}'`,
        allowed: store.listObjects(vault, r.kind).map((o) => o.name),
      });
      continue;
    }
    if (r.cloud !== undefined) {
      const clouds = ((target.spec as unknown as SiteSpec).clouds ?? []).map((c) => c.name);
      if (!clouds.some((c) => sameName(c, r.cloud))) {
        out.push({ path: r.path, message: `site '${target.name}' has no cloud '${r.cloud}'`, allowed: clouds.map((c) => `${target.name}/${c}`) });
      }
    }
  }
  return out;
}
