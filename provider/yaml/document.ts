/**
 * The way back: a model as a protection document, and as YAML text. Loading
 * the text gives the same model (a property test checks it), so a model can
 * be exported, edited and loaded again.
 */

import { stringify } from 'yaml';
import { POLICY_DEFAULTS } from '../vault/control/specs';
import {
  ACTION_DEFAULTS, defaultGroupName, SITE_DEFAULTS, VAULT_DEFAULTS, type ProtectionDocument, type ProtectionModel, type RecoveryActionModel,
} from './model';

export interface ToDocumentOptions {
  /** Leave out values equal to their defaults (and targets equal to the association's), as a person would write the file. @default false */
  readonly omitDefaults?: boolean;
}

export interface StringifyProtectionOptions extends ToDocumentOptions {
  /** Path or URL of protection.schema.json for a `# yaml-language-server: $schema=…` first line. @default no such line */
  readonly schema?: string;
}

type Mutable = Record<string, unknown>;

/** Keep `value` unless defaults are omitted and it equals `fallback` (compared as JSON). */
function keep(omit: boolean, value: unknown, fallback: unknown): boolean {
  return !omit || JSON.stringify(value) !== JSON.stringify(fallback);
}

function put(o: Mutable, key: string, value: unknown, present = true): void {
  if (present && value !== undefined) o[key] = value;
}

function action(omit: boolean, a: RecoveryActionModel): Mutable {
  if (a.kind === 'manual') return { manual: a.manual };
  const o: Mutable = { script: a.script };
  put(o, 'timeoutSeconds', a.timeoutSeconds, keep(omit, a.timeoutSeconds, ACTION_DEFAULTS.timeoutSeconds));
  return o;
}

/**
 * The document of a model: the vault API shapes with names, lists in the
 * model's order. With `omitDefaults`, the minimal document that loads to the
 * same model. Pure.
 */
export function toProtectionDocument(model: ProtectionModel, options: ToDocumentOptions = {}): ProtectionDocument {
  const omit = options.omitDefaults === true;
  const d = POLICY_DEFAULTS;

  const vault: Mutable = { name: model.vault.name };
  put(vault, 'description', model.vault.description);
  for (const k of ['heartbeatIntervalSeconds', 'missedHeartbeatsBeforeDisconnected', 'certificateValidityDays'] as const) {
    put(vault, k, model.vault[k], keep(omit, model.vault[k], VAULT_DEFAULTS[k]));
  }

  const sites = model.sites.map((s) => {
    const o: Mutable = { name: s.name, kind: s.kind };
    put(o, 'description', s.description);
    put(o, 'hosts', [...s.hosts], keep(omit, s.hosts, []));
    put(o, 'clouds', s.clouds.map((c) => {
      const co: Mutable = { name: c.name };
      put(co, 'description', c.description);
      put(co, 'hosts', [...c.hosts], keep(omit, c.hosts, []));
      return co;
    }), s.kind === 'vmm-cloud');
    put(o, 'timeZone', s.timeZone, keep(omit, s.timeZone, SITE_DEFAULTS.timeZone));
    return o;
  });

  const policies = model.policies.map((p) => {
    const o: Mutable = { name: p.name };
    put(o, 'description', p.description);
    o.target = p.target;
    put(o, 'replicationFrequencySeconds', p.replicationFrequencySeconds, keep(omit, p.replicationFrequencySeconds, d.replicationFrequencySeconds));
    put(o, 'recoveryPointRetentionHours', p.recoveryPointRetentionHours, keep(omit, p.recoveryPointRetentionHours, d.recoveryPointRetentionHours));
    put(o, 'appConsistentSnapshotFrequencyHours', p.appConsistentSnapshotFrequencyHours, keep(omit, p.appConsistentSnapshotFrequencyHours, d.appConsistentSnapshotFrequencyHours));
    const init: Mutable = {};
    put(init, 'method', p.initialReplication.method, keep(omit, p.initialReplication.method, d.initialReplicationMethod));
    put(init, 'startTime', p.initialReplication.startTime);
    put(o, 'initialReplication', init, Object.keys(init).length > 0);
    put(o, 'compression', p.compression, keep(omit, p.compression, d.compression));
    put(o, 'authentication', p.authentication, keep(omit, p.authentication, d.authentication));
    put(o, 'replicationPort', p.replicationPort);
    put(o, 'deleteReplicaOnDisable', p.deleteReplicaOnDisable, keep(omit, p.deleteReplicaOnDisable, d.deleteReplicaOnDisable));
    const resync: Mutable = {};
    put(resync, 'automatic', p.resync.automatic, keep(omit, p.resync.automatic, d.resyncAutomatic));
    put(resync, 'window', { ...p.resync.window }, keep(omit, p.resync.window, d.resyncWindow));
    put(o, 'resync', resync, Object.keys(resync).length > 0);
    put(o, 'bandwidthLimitMbps', p.bandwidthLimitMbps);
    put(o, 'offHoursBandwidthLimitMbps', p.offHoursBandwidthLimitMbps);
    put(o, 'offHours', { ...p.offHours }, keep(omit, p.offHours, d.offHours));
    if (p.azure !== undefined) {
      const az: Mutable = { ...p.azure };
      if (!keep(omit, p.azure.container, d.azureContainer)) delete az.container;
      o.azure = az;
    }
    o.associations = p.associations.map((a) => (p.target === 'azure' && omit ? { source: a.source } : { source: a.source, target: a.target }));
    return o;
  });

  const networkMappings = model.mappings.map((m) => {
    const o: Mutable = { name: m.name };
    put(o, 'description', m.description);
    o.source = { ...m.source };
    o.target = { ...m.target };
    put(o, 'testNetwork', m.testNetwork);
    return o;
  });

  const protectedVms = model.protectedVms.map((v) => {
    const o: Mutable = { name: v.name, site: v.site };
    put(o, 'cloud', v.cloud);
    o.vm = v.vm;
    o.policy = v.policy;
    if (v.target !== undefined) {
      const policy = model.policies.find((p) => p.name === v.policy);
      const source = v.cloud === undefined ? v.site : `${v.site}/${v.cloud}`;
      const assoc = policy?.associations.find((a) => a.source === source) ?? policy?.associations.find((a) => a.source === v.site);
      const t: Mutable = {};
      put(t, 'site', v.target.site, !omit || assoc?.target !== v.target.site);
      put(t, 'host', v.target.host);
      put(o, 'target', t, Object.keys(t).length > 0);
    }
    put(o, 'disks', v.disks === undefined ? undefined : [...v.disks]);
    put(o, 'targetVm', structuredClone(v.targetVm), keep(omit, v.targetVm, {}));
    return o;
  });

  const recoveryPlans = model.plans.map((p) => {
    const o: Mutable = { name: p.name };
    put(o, 'description', p.description);
    o.groups = p.groups.map((g, j) => {
      const go: Mutable = {};
      put(go, 'name', g.name, keep(omit, g.name, defaultGroupName(j)));
      go.vms = [...g.vms];
      put(go, 'before', g.before.map((a) => action(omit, a)), keep(omit, g.before, []));
      put(go, 'after', g.after.map((a) => action(omit, a)), keep(omit, g.after, []));
      return go;
    });
    return o;
  });

  const doc: Mutable = { apiVersion: model.apiVersion, vault };
  put(doc, 'sites', sites, keep(omit, sites, []));
  put(doc, 'policies', policies, keep(omit, policies, []));
  put(doc, 'networkMappings', networkMappings, keep(omit, networkMappings, []));
  put(doc, 'protectedVms', protectedVms, keep(omit, protectedVms, []));
  put(doc, 'recoveryPlans', recoveryPlans, keep(omit, recoveryPlans, []));
  return doc as unknown as ProtectionDocument;
}

/** The model as the text of a protection file (YAML 1.2; strings quoted where YAML would read them otherwise). Pure. */
export function stringifyProtection(model: ProtectionModel, options: StringifyProtectionOptions = {}): string {
  const text = stringify(toProtectionDocument(model, options), { lineWidth: 0, version: '1.2' });
  return options.schema === undefined ? text : `# yaml-language-server: $schema=${options.schema}\n${text}`;
}
