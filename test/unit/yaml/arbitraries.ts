/**
 * Random valid protection models for property tests: every rule of the
 * schema and of checkProtection respected (unique names, references that
 * resolve, associations per source, one group per VM in a plan), names that
 * YAML would misread unquoted (`1.5`, `yes`, `null`), free text with YAML's
 * special characters.
 */

import fc from 'fast-check';
import type {
  AssociationModel, CloudModel, NetworkMappingModel, PolicyModel, ProtectedVmModel, ProtectionModel, RecoveryActionModel, RecoveryPlanModel, SiteModel,
} from '../../../provider/yaml';

type Gen = fc.GeneratorValue;

const TRICKY = ['1.5', 'yes', 'no', 'null', 'true', '0x1F', '1e3', '0o17', '007', 'on', 'Off', 'NaN', 'inf', '2026-01-01', 'a.b', 'x_y', 'A-1'];

const nameChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-');
const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789');

/** common.schema.json#/$defs/name */
export const nameArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...TRICKY),
  fc.tuple(alnum, fc.string({ unit: nameChars, maxLength: 10 }), alnum).map(([a, m, b]) => `${a}${m}${b}`),
  alnum,
);

/** Free text: descriptions, manual steps. */
export const textArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('a: b', '# not a comment', '- item', "'quoted'", '"double"', 'line\nbreak', ' leading space', 'trailing ', 'tab\there', '{ flow: map }', '*alias', '&anchor', '!tag', '%', '@', '`', 'ünïcödé ✓', 'null', '~', '123', ''),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

const hostArb = fc.tuple(alnum, fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'), maxLength: 8 }), alnum)
  .map(([a, m, b]) => `${a}${m}${b}`);

const vmNameArb = fc.oneof(nameArb, fc.constantFrom('Web Server (01)', 'db 01', 'App_(x)'));
const networkArb = fc.oneof(nameArb, fc.constantFrom('VM Network', 'Prod/DR', 'net (a)'));
const timeArb = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
const windowArb = fc.tuple(timeArb, timeArb).filter(([a, b]) => a !== b).map(([start, end]) => ({ start, end }));
const zoneArb = fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', '+02:00', '-05:30', 'Asia/Kolkata');
const dateArb = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) }).map((t) => new Date(t).toISOString().replace('.000Z', 'Z'));
const mbpsArb = fc.oneof(fc.integer({ min: 1, max: 100000 }), fc.double({ min: 0.001, max: 100000, noNaN: true, noDefaultInfinity: true }));

// Builders given to fc.gen take only small arguments: it caches by arguments and compares them deeply.
const namesOf = (min: number, max: number): fc.Arbitrary<string[]> => fc.uniqueArray(nameArb, { minLength: min, maxLength: max, selector: (s) => s.toLowerCase() });
const hostsOf = (max: number): fc.Arbitrary<string[]> => fc.uniqueArray(hostArb, { maxLength: max, selector: (h) => h.toLowerCase() });
const actionsOf = (max: number): fc.Arbitrary<RecoveryActionModel[]> => fc.array(actionArb, { maxLength: max });

function uniqueNames(g: Gen, min: number, max: number, taken: Set<string> = new Set()): string[] {
  const names = g(namesOf, min, max);
  return names.filter((n) => {
    if (taken.has(n.toLowerCase())) return false;
    taken.add(n.toLowerCase());
    return true;
  });
}

/** One element of a list built during generation (by index: fc.gen caches arguments and compares them deeply). */
function pick<T>(g: Gen, list: readonly T[]): T {
  return list[g(fc.nat, { max: list.length - 1 })]!;
}

/** A random subset in random order, by indexes (see `pick`). */
function subset<T>(g: Gen, list: readonly T[], minLength: number, maxLength: number): T[] {
  const indexes = g(fc.shuffledSubarray, [...list.keys()], { minLength, maxLength: Math.min(maxLength, list.length) });
  return indexes.map((i) => list[i]!);
}

function maybe<T>(g: Gen, arb: fc.Arbitrary<T>): T | undefined {
  return g(fc.boolean) ? g(() => arb) : undefined;
}

function opt<K extends string, T>(key: K, value: T | undefined): { [P in K]?: T } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: T };
}

function byName<T extends { readonly name: string }>(list: T[]): T[] {
  return list.sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0));
}

function genSites(g: Gen): SiteModel[] {
  const hosts = g(hostsOf, 12);
  let next = 0;
  const take = (): string[] => {
    const n = g(fc.integer, { min: 0, max: 3 });
    const out = hosts.slice(next, next + n);
    next += out.length;
    return out;
  };
  return byName(uniqueNames(g, 1, 4).map((name): SiteModel => {
    const kind = pick<SiteModel['kind']>(g, ['hyperv-site', 'vmm-cloud']);
    const clouds: CloudModel[] = kind === 'hyperv-site' ? [] : uniqueNames(g, 1, 3).map((c) => ({ name: c, ...opt('description', maybe(g, textArb)), hosts: take() }));
    return { name, kind, ...opt('description', maybe(g, textArb)), hosts: take(), clouds, timeZone: g(() => zoneArb) };
  }));
}

/** Every `site` and `site/cloud` reference of the sites. */
function siteRefs(sites: readonly SiteModel[]): { ref: string; site: string; cloud?: string }[] {
  return sites.flatMap((s) => [{ ref: s.name, site: s.name }, ...s.clouds.map((c) => ({ ref: `${s.name}/${c.name}`, site: s.name, cloud: c.name }))]);
}

function genPolicies(g: Gen, sites: readonly SiteModel[]): PolicyModel[] {
  const refs = siteRefs(sites);
  return byName(uniqueNames(g, 0, 3).map((name): PolicyModel => {
    const target = sites.length < 2 ? 'azure' : pick<PolicyModel['target']>(g, ['secondary-site', 'azure']);
    const retention = g(fc.integer, { min: 0, max: 24 });
    const sources = subset(g, refs, 0, 3);
    const associations: AssociationModel[] = sources.map((s) => {
      if (target === 'azure') return { source: s.ref, target: 'azure' };
      const others = refs.filter((r) => r.site !== s.site);
      return { source: s.ref, target: pick(g, others).ref };
    });
    return {
      name,
      ...opt('description', maybe(g, textArb)),
      target,
      replicationFrequencySeconds: pick<PolicyModel['replicationFrequencySeconds']>(g, [30, 300, 900]),
      recoveryPointRetentionHours: retention,
      appConsistentSnapshotFrequencyHours: g(fc.integer, { min: 0, max: Math.min(12, retention) }),
      initialReplication: { method: pick<'online' | 'offline'>(g, ['online', 'offline']), ...opt('startTime', maybe(g, dateArb)) },
      compression: g(fc.boolean),
      authentication: 'certificate',
      ...opt('replicationPort', maybe(g, fc.integer({ min: 1, max: 65535 }))),
      deleteReplicaOnDisable: g(fc.boolean),
      resync: { automatic: g(fc.boolean), window: g(() => windowArb) },
      ...opt('bandwidthLimitMbps', maybe(g, mbpsArb)),
      ...opt('offHoursBandwidthLimitMbps', maybe(g, mbpsArb)),
      offHours: g(() => windowArb),
      ...(target === 'azure' ? {
        azure: {
          storageAccount: g(fc.string, { unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 3, maxLength: 24 }),
          container: g(fc.constantFrom, 'lifeboat-replicas', 'replicas', 'dr-2026'),
          ...opt('region', maybe(g, fc.constantFrom('westeurope', 'eastus2'))),
          ...opt('endpoint', maybe(g, fc.constantFrom('http://127.0.0.1:10000/devstoreaccount1', 'https://example.blob.core.windows.net'))),
          ...opt('subscriptionId', maybe(g, fc.uuid())),
          ...opt('resourceGroup', maybe(g, fc.constantFrom('rg-dr', 'DR_(prod).1'))),
        },
      } : {}),
      associations,
    };
  }));
}

function genMappings(g: Gen, sites: readonly SiteModel[]): NetworkMappingModel[] {
  const refs = siteRefs(sites);
  const seen = new Set<string>();
  const out: NetworkMappingModel[] = [];
  for (const name of uniqueNames(g, 0, 3)) {
    const source = { site: pick(g, refs).ref, network: g(() => networkArb) };
    const others = refs.filter((r) => r.site !== source.site.split('/')[0]);
    const target: NetworkMappingModel['target'] = others.length === 0 || g(fc.boolean)
      ? { azure: true, network: g(() => networkArb), ...opt('subnet', maybe(g, fc.constantFrom('default', 'sub-1'))) }
      : { site: pick(g, others).ref, network: g(() => networkArb) };
    const key = `${source.site}|${source.network}|${'site' in target ? target.site : '(azure)'}`.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name, ...opt('description', maybe(g, textArb)), source, target, ...opt('testNetwork', maybe(g, networkArb)) });
  }
  return byName(out);
}

/** The association of a policy for a VM's source, by the vault's rule (cloud first, then the whole site). */
function associationOf(p: PolicyModel, site: string, cloud: string | undefined): AssociationModel | undefined {
  return p.associations.find((a) => cloud !== undefined && a.source === `${site}/${cloud}`) ?? p.associations.find((a) => a.source === site);
}

function genVms(g: Gen, sites: readonly SiteModel[], policies: readonly PolicyModel[]): ProtectedVmModel[] {
  const out: ProtectedVmModel[] = [];
  const seen = new Set<string>();
  for (const name of uniqueNames(g, 0, 5)) {
    const site = pick(g, sites);
    const cloud = site.kind === 'vmm-cloud' ? pick(g, site.clouds).name : undefined;
    const usable = policies.filter((p) => associationOf(p, site.name, cloud) !== undefined);
    if (usable.length === 0) continue;
    const policy = pick(g, usable);
    const vm = g(() => vmNameArb);
    if (seen.has(`${site.name}|${vm}`.toLowerCase())) continue;
    seen.add(`${site.name}|${vm}`.toLowerCase());
    const assoc = associationOf(policy, site.name, cloud)!;
    out.push({
      name,
      site: site.name,
      ...opt('cloud', cloud),
      vm,
      policy: policy.name,
      targetKind: policy.target,
      ...(policy.target === 'secondary-site' ? { target: { site: assoc.target, ...opt('host', maybe(g, hostArb)) } } : {}),
      ...opt('disks', maybe(g, fc.uniqueArray(fc.tuple(alnum, fc.string({ unit: nameChars, maxLength: 12 })).map(([a, b]) => `${a}${b}`), { minLength: 1, maxLength: 3 }))),
      targetVm: {
        ...opt('name', maybe(g, vmNameArb)),
        ...opt('cpuCount', maybe(g, fc.integer({ min: 1, max: 240 }))),
        ...opt('memoryMiB', maybe(g, fc.integer({ min: 32, max: 12582912 }))),
        ...(policy.target === 'azure' ? { ...opt('azureVmSize', maybe(g, fc.constantFrom('Standard_D2s_v5'))), ...opt('publicIp', maybe(g, fc.boolean())) } : {}),
        ...opt('networkAdapters', maybe(g, fc.array(fc.tuple(fc.option(networkArb, { nil: undefined }), fc.option(fc.ipV4(), { nil: undefined }))
          .map(([network, ipAddress]) => ({ ...opt('network', network), ...opt('ipAddress', ipAddress) })), { maxLength: 2 }))),
      },
    });
  }
  return byName(out);
}

const actionArb: fc.Arbitrary<RecoveryActionModel> = fc.oneof(
  fc.tuple(fc.constantFrom('checks/db.sh', 'a b.ps1', 'run.sh --fast'), fc.integer({ min: 1, max: 86400 })).map(([script, timeoutSeconds]) => ({ kind: 'script' as const, script, timeoutSeconds })),
  textArb.filter((t) => t.length > 0).map((manual) => ({ kind: 'manual' as const, manual })),
);

function genPlans(g: Gen, vms: readonly ProtectedVmModel[]): RecoveryPlanModel[] {
  if (vms.length === 0) return [];
  return byName(uniqueNames(g, 0, 2).map((name): RecoveryPlanModel => {
    const chosen = subset(g, vms.map((v) => v.name), 1, vms.length);
    const groups: RecoveryPlanModel['groups'][number][] = [];
    let rest = chosen;
    while (rest.length > 0) {
      const n = g(fc.integer, { min: 1, max: rest.length });
      const j = groups.length;
      groups.push({
        name: g(fc.boolean) ? `Group ${j + 1}` : g(() => fc.string({ minLength: 1, maxLength: 63 })),
        vms: rest.slice(0, n),
        before: g(actionsOf, 2),
        after: g(actionsOf, 2),
      });
      rest = rest.slice(n);
    }
    return { name, ...opt('description', maybe(g, textArb)), groups };
  }));
}

/** A random valid model, in the loader's normal form. */
export const modelArb: fc.Arbitrary<ProtectionModel> = fc.gen().map((g) => {
  const sites = genSites(g);
  const policies = genPolicies(g, sites);
  const vms = genVms(g, sites, policies);
  return {
    apiVersion: 'lifeboat/v1',
    vault: {
      name: g(() => nameArb),
      ...opt('description', maybe(g, textArb)),
      heartbeatIntervalSeconds: g(fc.integer, { min: 5, max: 600 }),
      missedHeartbeatsBeforeDisconnected: g(fc.integer, { min: 2, max: 20 }),
      certificateValidityDays: g(fc.integer, { min: 1, max: 825 }),
    },
    sites,
    policies,
    mappings: genMappings(g, sites),
    protectedVms: vms,
    plans: genPlans(g, vms),
  };
});
