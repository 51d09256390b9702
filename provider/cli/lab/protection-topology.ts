/**
 * A lab topology from a protection file (docs/operations.md §2.1): the
 * vault as the file names it, its sites with their hosts, one agent per
 * host (`recovery` when its site is the target of an association, else
 * `primary`) and one demo VM per protected VM on the hosts of its site,
 * round robin, its NIC on the source network of the site's network mapping.
 * Policies, mappings, protected items and plans are left to the stack.
 */

import { crc32 } from 'node:zlib';
import { InvalidInputError } from '../../errors';
import { type WorkloadPattern } from '../../hypervisor/lab';
import { toProtectionDocument, type ProtectionModel, type SiteModel } from '../../yaml';
import { LAB_NETWORK, type LabHostSpec, type LabObjectSpec, type LabTopology, type LabVmSpec } from './lab-topology';

const PATTERNS: readonly WorkloadPattern[] = ['random', 'hotSpot', 'bursts'];

/** What the lab hypervisor accepts as a VM name and a disk id (docs/lab.md §1); the file allows more. */
const LAB_VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const LAB_DISK_ID = /^[A-Za-z0-9_-]{1,64}$/;

function siteOfRef(ref: string): string {
  return ref.split('/')[0]!.toLowerCase();
}

function withoutName(o: object): Record<string, unknown> {
  const { name: _name, ...rest } = o as Record<string, unknown>;
  return rest;
}

/** The hosts of a site a VM may run on: its cloud's when it names one, else every host of the site. */
function hostsFor(site: SiteModel, cloud: string | undefined): readonly string[] {
  if (cloud !== undefined) return site.clouds.find((c) => c.name.toLowerCase() === cloud.toLowerCase())?.hosts ?? [];
  return [...new Set([...site.hosts, ...site.clouds.flatMap((c) => c.hosts)])];
}

/**
 * The topology of `model` (a valid protection file's, from provider/yaml),
 * read from `file` (absolute). Pure. Throws `InvalidInputError`
 * `lab.noHostForVm` when a protected VM's site (or cloud) lists no host to
 * run it on, `lab.noHosts` when no site lists any host,
 * `lab.unsupportedName` for a VM name or disk id the lab hypervisor cannot
 * create (docs/lab.md §1), before anything starts.
 */
export function topologyFromProtection(model: ProtectionModel, file: string): LabTopology {
  // The bodies the stack will PUT, so that adopting them finds nothing to change.
  const doc = toProtectionDocument(model);
  const vault: LabObjectSpec = { name: model.vault.name, spec: withoutName(doc.vault) };
  const sites: LabObjectSpec[] = (doc.sites ?? []).map((s) => ({ name: s.name, spec: withoutName(s) }));

  const recoverySites = new Set(model.policies.flatMap((p) => (p.target === 'secondary-site' ? p.associations.map((a) => siteOfRef(a.target)) : [])));
  const hosts = new Map<string, { name: string; site: string; role: 'primary' | 'recovery'; vms: LabVmSpec[] }>();
  for (const site of model.sites) {
    for (const h of hostsFor(site, undefined)) {
      if (!hosts.has(h.toLowerCase())) hosts.set(h.toLowerCase(), { name: h, site: site.name, role: recoverySites.has(site.name.toLowerCase()) ? 'recovery' : 'primary', vms: [] });
    }
  }
  if (hosts.size === 0) {
    throw new InvalidInputError('lab.noHosts', `${file} lists no host in any site: the lab runs one agent per host`, {
      where: { file, path: '/sites' }, hint: 'list the hosts of each site (sites[].hosts) so the lab can start their agents',
    });
  }

  const next = new Map<string, number>();
  model.protectedVms.forEach((pv, i) => {
    const unsupported = (what: string, at: string, valid: string): InvalidInputError => new InvalidInputError('lab.unsupportedName', `protected VM '${pv.name}': the lab cannot create ${what}`, {
      where: { file, path: `/protectedVms/${i}/${at}` }, hint: `${valid}; rename it in a copy of the file for the lab`,
    });
    if (!LAB_VM_NAME.test(pv.vm)) throw unsupported(`a VM named '${pv.vm}'`, 'vm', 'lab VM names are a letter or digit and up to 63 of A-Z a-z 0-9 . _ -');
    const badDisk = (pv.disks ?? []).findIndex((d) => !LAB_DISK_ID.test(d));
    if (badDisk >= 0) throw unsupported(`a disk with id '${pv.disks![badDisk]}'`, `disks/${badDisk}`, 'lab disk ids are 1 to 64 of A-Z a-z 0-9 _ -');
    const site = model.sites.find((s) => s.name === pv.site)!;
    const candidates = hostsFor(site, pv.cloud);
    if (candidates.length === 0) {
      throw new InvalidInputError('lab.noHostForVm', `protected VM '${pv.name}' runs on site '${pv.site}'${pv.cloud === undefined ? '' : ` (cloud '${pv.cloud}')`}, which lists no host to create VM '${pv.vm}' on`, {
        where: { file, path: `/protectedVms/${i}` }, hint: `list at least one host in site '${pv.site}'`,
      });
    }
    const key = `${site.name}/${pv.cloud ?? ''}`;
    const k = next.get(key) ?? 0;
    next.set(key, k + 1);
    const host = hosts.get(candidates[k % candidates.length]!.toLowerCase())!;
    if (host.vms.some((v) => v.name.toLowerCase() === pv.vm.toLowerCase())) return;
    const mapping = model.mappings.find((m) => m.source.site.toLowerCase() === site.name.toLowerCase());
    host.vms.push({
      name: pv.vm,
      seed: crc32(`${site.name}/${pv.vm}`),
      pattern: PATTERNS[i % PATTERNS.length]!,
      network: mapping?.source.network ?? LAB_NETWORK,
      ...(pv.disks === undefined || pv.disks.length === 0 ? {} : { disks: [...pv.disks] }),
    });
  });

  const hostSpecs: LabHostSpec[] = [...hosts.values()];
  return { vault, sites, policies: [], networkMappings: [], hosts: hostSpecs, objects: 'createOnly', protectionFile: file };
}
