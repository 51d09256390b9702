/**
 * What the schema cannot say about a protection file: names unique per list,
 * references that resolve within the file, and the vault's rules across
 * objects (docs/protection-file.md §6; the vault applies the same rules on
 * PUT, provider/vault/control/kinds.ts). Runs on unvalidated data, so that
 * one pass reports schema and reference problems together; an element of the
 * wrong shape is skipped, never guessed at.
 */

import { LifeboatError } from '../errors';
import { DailyWindow, parseTimeOfDay } from '../replication/window';
import { associationIndex, isObject, isResolved, listOf, NameTable, SiteTable, stringOf, type Json } from './names';
import type { CodedProblem } from './problem';

export interface CheckOptions {
  /** How a message names another place of the file (`line 4`). @default the JSON Pointer */
  readonly describe?: (path: string) => string;
}

class Checker {
  readonly out: CodedProblem[] = [];
  readonly sites: SiteTable;
  readonly policies: NameTable;
  readonly vms: NameTable;

  constructor(private readonly doc: Json, private readonly describe: (path: string) => string) {
    this.sites = new SiteTable(doc.sites);
    this.policies = new NameTable(doc.policies, '/policies');
    this.vms = new NameTable(doc.protectedVms, '/protectedVms');
  }

  add(code: string, path: string, message: string, allowed?: readonly unknown[]): void {
    this.out.push({ code, path, message, ...(allowed === undefined ? {} : { allowed }) });
  }

  duplicates(table: NameTable, title: string): void {
    for (const { later, first } of table.duplicates) {
      const same = later.name === first.name ? '' : ` ('${first.name}')`;
      this.add('protection.duplicateName', `${later.path}/name`, `duplicates the name of the ${title} at ${this.describe(first.path)}${same}; names are unique and compare case-insensitively`);
    }
  }

  /** Resolve a site or `site/cloud` reference at `path`; problems for one that does not resolve. */
  siteRef(path: string, ref: unknown): ReturnType<SiteTable['resolve']> {
    const text = stringOf(ref);
    if (text === undefined) return undefined;
    const r = this.sites.resolve(text);
    if (r !== undefined && !isResolved(r)) this.add('protection.unknownReference', path, r.message, r.allowed);
    return r;
  }

  window(path: string, w: unknown, timeZone?: string): void {
    if (!isObject(w)) return;
    const start = stringOf(w.start);
    const end = stringOf(w.end);
    if (start === undefined || end === undefined || parseTimeOfDay(start) === undefined || parseTimeOfDay(end) === undefined) return;
    const problem = refusal(() => new DailyWindow({ start, end, ...(timeZone === undefined ? {} : { timeZone }) }));
    if (problem !== undefined) this.add('protection.invalidWindow', path, problem.hint === undefined ? problem.message : `${problem.message}: ${problem.hint}`);
  }

  checkSites(): void {
    this.duplicates(this.sites.names, 'site');
    const hosts = new Map<string, { site: string; path: string }>();
    listOf(this.doc.sites).forEach((raw, i) => {
      if (!isObject(raw)) return;
      const path = `/sites/${i}`;
      const name = stringOf(raw.name) ?? path;
      const tz = stringOf(raw.timeZone);
      if (tz !== undefined && /^(UTC|[+-]([01][0-9]|2[0-3]):[0-5][0-9]|[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*)$/.test(tz)) {
        const problem = refusal(() => new DailyWindow({ start: '00:00', end: '01:00', timeZone: tz }));
        if (problem !== undefined) this.add('protection.unknownTimeZone', `${path}/timeZone`, `unknown time zone '${tz}'`);
      }
      const clouds = new NameTable(raw.clouds, `${path}/clouds`);
      for (const { later, first } of clouds.duplicates) {
        this.add('protection.duplicateName', `${later.path}/name`, `duplicates the name of the cloud at ${this.describe(first.path)}; cloud names are unique in a site and compare case-insensitively`);
      }
      if (raw.kind === 'vmm-cloud' && listOf(raw.clouds).length === 0) {
        this.add('protection.cloudsRequired', `${path}/clouds`, 'a vmm-cloud site needs at least one cloud');
      }
      const listed: [string, unknown][] = [[`${path}/hosts`, raw.hosts]];
      listOf(raw.clouds).forEach((c, j) => {
        if (isObject(c)) listed.push([`${path}/clouds/${j}/hosts`, c.hosts]);
      });
      for (const [at, list] of listed) {
        listOf(list).forEach((h, k) => {
          if (typeof h !== 'string') return;
          const prev = hosts.get(h.toLowerCase());
          if (prev === undefined) hosts.set(h.toLowerCase(), { site: name, path: `${at}/${k}` });
          else if (prev.site !== name) {
            this.add('protection.hostInTwoSites', `${at}/${k}`, `host '${h}' is already listed in site '${prev.site}' (${this.describe(prev.path)}); a host belongs to one site`);
          }
        });
      }
    });
  }

  checkPolicies(): void {
    this.duplicates(this.policies, 'policy');
    listOf(this.doc.policies).forEach((raw, i) => {
      if (!isObject(raw)) return;
      const path = `/policies/${i}`;
      const target = raw.target;
      if (target === 'secondary-site' && raw.authentication === 'kerberos') {
        this.add('protection.unsupported', `${path}/authentication`, 'kerberos authentication is not supported by this vault; hosts authenticate with vault-issued certificates', ['certificate']);
      }
      if (isObject(raw.resync)) this.window(`${path}/resync/window`, raw.resync.window);
      this.window(`${path}/offHours`, raw.offHours);
      const sources = new Map<string, number>();
      listOf(raw.associations).forEach((a, j) => {
        if (!isObject(a)) return;
        const at = `${path}/associations/${j}`;
        const source = this.siteRef(`${at}/source`, a.source);
        if (isResolved(source)) {
          const prev = sources.get(source.text.toLowerCase());
          if (prev !== undefined) this.add('protection.duplicateAssociation', `${at}/source`, `duplicates the source of association ${prev} (${this.describe(`${path}/associations/${prev}`)}); a source has one target per policy`);
          else sources.set(source.text.toLowerCase(), j);
        }
        if (target !== 'secondary-site') return;
        const dest = this.siteRef(`${at}/target`, a.target);
        if (isResolved(source) && isResolved(dest) && source.site === dest.site) {
          this.add('protection.sameSite', `${at}/target`, `the target must be another site than the source ('${source.site.name}')`);
        }
      });
    });
  }

  checkMappings(): void {
    const mappings = new NameTable(this.doc.networkMappings, '/networkMappings');
    this.duplicates(mappings, 'network mapping');
    const seen = new Map<string, string>();
    listOf(this.doc.networkMappings).forEach((raw, i) => {
      if (!isObject(raw)) return;
      const path = `/networkMappings/${i}`;
      const src = isObject(raw.source) ? raw.source : undefined;
      const dst = isObject(raw.target) ? raw.target : undefined;
      const source = src === undefined ? undefined : this.siteRef(`${path}/source/site`, src.site);
      const target = dst === undefined ? undefined : this.siteRef(`${path}/target/site`, dst.site);
      if (isResolved(source) && isResolved(target) && source.site === target.site) {
        this.add('protection.sameSite', `${path}/target/site`, `the target must be another site than the source ('${source.site.name}')`);
      }
      if (dst !== undefined && dst.azure === false) {
        this.add('protection.invalidValue', `${path}/target/azure`, 'must be true: it marks an Azure virtual network; for a site network give target.site instead', [true]);
      }
      const network = stringOf(src?.network);
      const targetKey = isResolved(target) ? target.text.toLowerCase() : dst?.azure === true ? '(azure)' : undefined;
      if (isResolved(source) && network !== undefined && targetKey !== undefined) {
        const key = `${source.text.toLowerCase()}\u0000${network.toLowerCase()}\u0000${targetKey}`;
        const prev = seen.get(key);
        if (prev !== undefined) {
          this.add('protection.duplicateMapping', `${path}/source`, `network '${network}' of '${source.text}' is already mapped to the same target by the mapping at ${this.describe(prev)}; a source network has one mapping per target`);
        } else seen.set(key, path);
      }
    });
  }

  checkProtectedVms(): void {
    this.duplicates(this.vms, 'protected VM');
    const protectedVms = new Map<string, string>();
    listOf(this.doc.protectedVms).forEach((raw, i) => {
      if (!isObject(raw)) return;
      const path = `/protectedVms/${i}`;
      const siteName = stringOf(raw.site);
      const cloudName = stringOf(raw.cloud);
      let site = siteName === undefined ? undefined : this.sites.names.get(siteName);
      let cloud: string | undefined;
      if (siteName !== undefined && site === undefined && this.sites.names.complete) {
        this.add('protection.unknownReference', `${path}/site`, `no site named '${siteName}' in this file`, this.sites.names.names());
      }
      if (site !== undefined) {
        const clouds = this.sites.clouds(site);
        if (site.value.kind === 'vmm-cloud' && cloudName === undefined) {
          this.add('protection.cloudRequired', `${path}/cloud`, `site '${site.name}' is a VMM site: name the VM's cloud`, clouds.names());
          site = undefined;
        } else if (site.value.kind === 'hyperv-site' && cloudName !== undefined) {
          this.add('protection.cloudNotAllowed', `${path}/cloud`, `site '${site.name}' is a Hyper-V site without clouds; leave cloud out`);
          site = undefined;
        } else if (cloudName !== undefined) {
          cloud = clouds.get(cloudName)?.name;
          if (cloud === undefined) {
            if (clouds.complete) this.add('protection.unknownReference', `${path}/cloud`, `site '${site.name}' has no cloud '${cloudName}'`, clouds.names());
            site = undefined;
          }
        }
      }
      const vm = stringOf(raw.vm);
      if (site !== undefined && vm !== undefined) {
        const key = `${site.name.toLowerCase()}\u0000${vm.toLowerCase()}`;
        const prev = protectedVms.get(key);
        if (prev !== undefined) this.add('protection.duplicateVm', `${path}/vm`, `VM '${vm}' of site '${site.name}' is already protected by the entry at ${this.describe(prev)}; a VM is protected once`);
        else protectedVms.set(key, path);
      }
      const policyName = stringOf(raw.policy);
      const policy = policyName === undefined ? undefined : this.policies.get(policyName);
      if (policyName !== undefined && policy === undefined && this.policies.complete) {
        this.add('protection.unknownReference', `${path}/policy`, `no policy named '${policyName}' in this file`, this.policies.names());
      }
      const target = isObject(raw.target) ? raw.target : undefined;
      const targetSite = target === undefined ? undefined : this.siteRef(`${path}/target/site`, target.site);
      if (site === undefined || policy === undefined) return;
      const a = associationIndex(policy.value, this.sites, site.name, cloud);
      const source = cloud === undefined ? site.name : `${site.name}/${cloud}`;
      if (a === undefined) {
        const candidates = this.policies.names().filter((n) => associationIndex(this.policies.get(n)!.value, this.sites, site.name, cloud) !== undefined);
        this.add('protection.notAssociated', `${path}/policy`, `policy '${policy.name}' has no association for source '${source}'; add one to the policy or choose a policy that has one`, candidates);
        return;
      }
      if (policy.value.target === 'azure') {
        if (target !== undefined && (target.site !== undefined || target.host !== undefined)) {
          this.add('protection.targetMismatch', `${path}/target`, `policy '${policy.name}' replicates to Azure; a target site or host does not apply`);
        }
        return;
      }
      const assoc = listOf(policy.value.associations)[a] as Json;
      const assocTarget = this.sites.resolve(stringOf(assoc.target) ?? '');
      if (isResolved(targetSite) && isResolved(assocTarget) && targetSite.site !== assocTarget.site) {
        this.add('protection.targetMismatch', `${path}/target/site`, `policy '${policy.name}' replicates '${source}' to '${assocTarget.text}'`, [assocTarget.text]);
      }
    });
  }

  checkPlans(): void {
    const plans = new NameTable(this.doc.recoveryPlans, '/recoveryPlans');
    this.duplicates(plans, 'recovery plan');
    listOf(this.doc.recoveryPlans).forEach((raw, i) => {
      if (!isObject(raw)) return;
      const seen = new Map<string, { group: number; path: string }>();
      listOf(raw.groups).forEach((g, j) => {
        if (!isObject(g)) return;
        listOf(g.vms).forEach((v, k) => {
          // An exact repeat within the group is the schema's (uniqueItems).
          if (typeof v !== 'string' || listOf(g.vms).indexOf(v) < k) return;
          const at = `/recoveryPlans/${i}/groups/${j}/vms/${k}`;
          const vm = this.vms.get(v);
          if (vm === undefined && this.vms.complete) {
            this.add('protection.unknownReference', at, `no protected VM named '${v}' in this file`, this.vms.names());
          }
          const key = (vm?.name ?? v).toLowerCase();
          const prev = seen.get(key);
          if (prev === undefined) seen.set(key, { group: j, path: at });
          else if (prev.group !== j) {
            this.add('protection.vmTwiceInPlan', at, `'${v}' is already in group ${prev.group} of this plan (${this.describe(prev.path)}); a VM belongs to one group of a plan`);
          } else {
            this.add('protection.vmTwiceInPlan', at, `'${v}' is already in this group (${this.describe(prev.path)}); names compare case-insensitively`);
          }
        });
      });
    });
  }
}

/** The refusal of a constructor of ours as a value; other errors are bugs and propagate. */
function refusal(make: () => unknown): LifeboatError | undefined {
  try {
    make();
    return undefined;
  } catch (e) {
    if (LifeboatError.isInstance(e) && e.category === 'invalidInput') return e;
    throw e;
  }
}

/**
 * Problems of names and references in a protection document (JSON data,
 * possibly not valid against the schema). Pure; never throws for bad data.
 * Paths are JSON Pointers into the document.
 */
export function checkProtection(data: unknown, options: CheckOptions = {}): CodedProblem[] {
  if (!isObject(data)) return [];
  const describe = options.describe ?? ((path: string) => path);
  const c = new Checker(data, describe);
  c.checkSites();
  c.checkPolicies();
  c.checkMappings();
  c.checkProtectedVms();
  c.checkPlans();
  return c.out;
}
