/**
 * The names a protection file declares (sites with their clouds, policies,
 * protected VMs, plans, mappings) and how references resolve to them. Names
 * compare case-insensitively and the first spelling is kept, as in the
 * vault (docs/vault-api.md §3). Works on unvalidated data: an element
 * without a string name is skipped and makes its table incomplete, so that
 * a reference is not called dangling when it may name that element.
 */

import { parseSiteRef } from '../vault/control/specs';

export type Json = Readonly<Record<string, unknown>>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The elements of a list, or none if it is not a list. */
export function listOf(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

export function stringOf(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** One declared name: its spelling, where it is declared, and the element. */
export interface Declared {
  readonly name: string;
  /** JSON Pointer of the element (`/sites/0`). */
  readonly path: string;
  readonly value: Json;
}

/** A duplicate declaration: the later one and the first. */
export interface Duplicate {
  readonly later: Declared;
  readonly first: Declared;
}

/** Names of one list, first spelling kept. */
export class NameTable {
  private readonly byKey = new Map<string, Declared>();
  /** Declarations after the first of the same name, in order. */
  readonly duplicates: Duplicate[] = [];
  /** False when an element has no string name (a reference might name it). */
  readonly complete: boolean;

  /** Names of the elements of `list` (at JSON Pointer `path`); `key` is the name field. @default key 'name' */
  constructor(list: unknown, path: string, key = 'name') {
    let complete = true;
    listOf(list).forEach((v, i) => {
      const name = isObject(v) ? stringOf(v[key]) : undefined;
      if (name === undefined || !isObject(v)) {
        complete = false;
        return;
      }
      const d: Declared = { name, path: `${path}/${i}`, value: v };
      const first = this.byKey.get(name.toLowerCase());
      if (first === undefined) this.byKey.set(name.toLowerCase(), d);
      else this.duplicates.push({ later: d, first });
    });
    this.complete = complete;
  }

  /** The declaration a name refers to. */
  get(name: string): Declared | undefined {
    return this.byKey.get(name.toLowerCase());
  }

  /** Declared names (first spellings), in file order. */
  names(): string[] {
    return [...this.byKey.values()].map((d) => d.name);
  }
}


/** A site or `site/cloud` reference, resolved to the declared spellings. */
export interface ResolvedSiteRef {
  readonly site: Declared;
  readonly cloud?: string;
  /** `hq` or `vmm01/GoldCloud` as declared. */
  readonly text: string;
}

/** Why a site reference does not resolve, with the names that would. */
export interface SiteRefFailure {
  readonly message: string;
  readonly allowed: readonly string[];
}

/** The sites of a file with their clouds. */
export class SiteTable {
  readonly names: NameTable;

  constructor(sites: unknown) {
    this.names = new NameTable(sites, '/sites');
  }

  /** The clouds of a declared site (names as declared). */
  clouds(site: Declared): NameTable {
    return new NameTable(site.value.clouds, `${site.path}/clouds`);
  }

  /** Every `site` and `site/cloud` reference that resolves. */
  refs(): string[] {
    const out: string[] = [];
    for (const s of this.names.names()) {
      out.push(s);
      const d = this.names.get(s)!;
      for (const c of this.clouds(d).names()) out.push(`${s}/${c}`);
    }
    return out;
  }

  /**
   * Resolve `hq` or `vmm01/GoldCloud`: the result, a failure saying why, or
   * `undefined` when it cannot be decided (a site without a name exists).
   */
  resolve(ref: string): ResolvedSiteRef | SiteRefFailure | undefined {
    const { site, cloud } = parseSiteRef(ref);
    const d = this.names.get(site);
    if (d === undefined) {
      return this.names.complete ? { message: `no site named '${site}' in this file`, allowed: this.names.names() } : undefined;
    }
    if (cloud === undefined) return { site: d, text: d.name };
    const clouds = this.clouds(d);
    if (d.value.kind === 'hyperv-site') {
      return { message: `site '${d.name}' is a Hyper-V site, which has no clouds`, allowed: [d.name] };
    }
    const c = clouds.get(cloud);
    if (c === undefined) {
      return clouds.complete ? { message: `site '${d.name}' has no cloud '${cloud}'`, allowed: clouds.names().map((n) => `${d.name}/${n}`) } : undefined;
    }
    return { site: d, cloud: c.name, text: `${d.name}/${c.name}` };
  }
}

export function isResolved(r: ResolvedSiteRef | SiteRefFailure | undefined): r is ResolvedSiteRef {
  return r !== undefined && 'site' in r;
}

/**
 * The association of a policy whose source is a VM's site: one naming its
 * cloud first, else one naming the whole site (the vault's rule,
 * provider/vault/control/kinds.ts `associationFor`). Compares against the
 * resolved spellings; associations whose source does not resolve are skipped.
 */
export function associationIndex(policy: Json, sites: SiteTable, site: string, cloud: string | undefined): number | undefined {
  const list = listOf(policy.associations);
  let wholeSite: number | undefined;
  for (const [i, a] of list.entries()) {
    const source = isObject(a) ? stringOf(a.source) : undefined;
    if (source === undefined) continue;
    const r = sites.resolve(source);
    if (!isResolved(r) || r.site.name.toLowerCase() !== site.toLowerCase()) continue;
    if (r.cloud !== undefined && cloud !== undefined && r.cloud.toLowerCase() === cloud.toLowerCase()) return i;
    if (r.cloud === undefined) wholeSite ??= i;
  }
  return wholeSite;
}
