/**
 * The agent's persisted replication relationships (docs/agent.md §4): one
 * JSON file per item and role in `<data-dir>/items/`, written atomically
 * before the agent acts on it, so a restarted agent knows every relationship
 * it had and resumes it. Keyed by the item's uid (a re-created item with the
 * same name has a new uid, and is a new relationship).
 *
 * Also the payload views of the commands (docs/vault-api.md §9) and their
 * checks: a payload that lacks a field the agent needs is refused with
 * `InvalidInputError` `agent.badPayload` naming its JSON path.
 */

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidInputError } from '../errors';
import { writeFileAtomic } from './agent-files';

/** The policy as agents apply it: every default filled in by the vault (`effectivePolicy`). */
export interface AgentPolicy {
  readonly target: 'secondary-site' | 'azure';
  readonly replicationFrequencySeconds: number;
  readonly recoveryPointRetentionHours: number;
  readonly appConsistentSnapshotFrequencyHours: number;
  readonly initialReplication: { readonly method: 'online' | 'offline'; readonly startTime?: string };
  readonly compression: boolean;
  readonly deleteReplicaOnDisable: boolean;
  readonly resync: { readonly automatic: boolean; readonly window: { readonly start: string; readonly end: string } };
  readonly bandwidthLimitMbps?: number;
  readonly offHoursBandwidthLimitMbps?: number;
  readonly offHours: { readonly start: string; readonly end: string };
}

/** A disk of a relationship. */
export interface ItemDisk {
  readonly id: string;
  readonly sizeBytes: number;
}

/** Where a source replicates to: a recovery-site host's replication endpoint. */
export interface HostTargetSpec {
  readonly kind: 'host';
  /** The recovery host's name. */
  readonly host: string;
  readonly address: string;
  readonly port: number;
  /** Name the recovery host's certificate must carry. */
  readonly serverName: string;
}

/**
 * Where a source replicates to in scenario B: the page blobs of a storage
 * account (docs/azure-failover.md §3). No secret: the agent fetches the key
 * from the vault when it opens the target and keeps it in memory only.
 */
export interface AzureTargetSpec {
  readonly kind: 'azure';
  readonly storageAccount: string;
  readonly container: string;
  readonly endpoint?: string;
  /** Fingerprint of the credentials the vault holds; a new one (a rotated key) makes a new connection. */
  readonly credentialsFingerprint?: string;
}

interface RecordBase {
  readonly version: 1;
  readonly item: string;
  readonly itemUid: string;
  readonly vm: string;
  readonly disks: readonly ItemDisk[];
  readonly policy: AgentPolicy;
  readonly createdAt: string;
}

/** A relationship on the source host: tracking and replication of the VM's disks. */
export interface SourceRecord extends RecordBase {
  readonly role: 'source';
  readonly target: HostTargetSpec | AzureTargetSpec;
  /** Time zone of the source site, for the policy's windows. */
  readonly timeZone: string;
  /** `replication.start` was received: the replication loops run (and resume after a restart). */
  readonly started: boolean;
}

/** A relationship on the recovery host: the replica disks in its store. */
export interface ReplicaRecord extends RecordBase {
  readonly role: 'replica';
  readonly sourceHost: string;
  readonly targetVm: Readonly<Record<string, unknown>>;
  readonly networkMappings: readonly Readonly<Record<string, unknown>>[];
}

export type ItemRecord = SourceRecord | ReplicaRecord;

/** The replica store's disk id of an item's disk: unique per store across items. */
export function replicaDiskId(itemUid: string, diskId: string): string {
  return `${itemUid}/${diskId}`;
}

/** Folder of an item's per-disk files (progress). */
export function itemDir(itemsDir: string, itemUid: string): string {
  return path.join(itemsDir, safeName(itemUid));
}

function recordFile(itemsDir: string, role: ItemRecord['role'], itemUid: string): string {
  return path.join(itemsDir, `${safeName(itemUid)}.${role}.json`);
}

function safeName(uid: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(uid) || uid.includes('..')) {
    throw new InvalidInputError('agent.badPayload', `item uid ${JSON.stringify(uid)} is not a valid uid`, { where: { path: '/itemUid' } });
  }
  return uid;
}

/** Write (replace) a record. */
export async function saveRecord(itemsDir: string, record: ItemRecord): Promise<void> {
  await fs.mkdir(itemsDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(recordFile(itemsDir, record.role, record.itemUid), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** Remove a record and the item's folder. Idempotent. */
export async function removeRecord(itemsDir: string, role: ItemRecord['role'], itemUid: string): Promise<void> {
  await fs.rm(recordFile(itemsDir, role, itemUid), { force: true });
  if (role === 'source') await fs.rm(itemDir(itemsDir, itemUid), { recursive: true, force: true });
}

/** Every record in the folder. Throws `InvalidInputError` `agent.recordCorrupt` for a file that is not a record. */
export async function loadRecords(itemsDir: string): Promise<ItemRecord[]> {
  let names: string[];
  try {
    names = await fs.readdir(itemsDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: ItemRecord[] = [];
  for (const name of names.filter((n) => /\.(source|replica)\.json$/.test(n)).sort()) {
    const file = path.join(itemsDir, name);
    try {
      const r = JSON.parse(await fs.readFile(file, 'utf8')) as ItemRecord;
      if (r.version !== 1 || (r.role !== 'source' && r.role !== 'replica')) throw new Error(`version ${String(r.version)}, role ${String(r.role)}`);
      out.push(r);
    } catch (e) {
      throw new InvalidInputError('agent.recordCorrupt', `item record ${file} cannot be read: ${e instanceof Error ? e.message : String(e)}`, {
        where: { file },
        hint: 'restore the file, or remove it and disable and re-enable protection of the item',
      });
    }
  }
  return out;
}

// Payload checks ----------------------------------------------------------------

type Payload = Readonly<Record<string, unknown>>;

function bad(p: string, what: string): never {
  throw new InvalidInputError('agent.badPayload', `command payload: ${p} ${what}`, {
    where: { path: p },
    hint: 'the vault and the agent disagree on the command format: run the same Lifeboat version on both',
  });
}

export function str(payload: Payload, key: string): string {
  const v = payload[key];
  if (typeof v !== 'string' || v === '') bad(`/${key}`, 'must be a non-empty string');
  return v;
}

export function disksOf(payload: Payload): ItemDisk[] {
  const v = payload.disks;
  if (!Array.isArray(v) || v.length === 0) bad('/disks', 'must be a non-empty array');
  return v.map((d: unknown, i) => {
    const o = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
    if (typeof o.id !== 'string' || o.id === '') bad(`/disks/${i}/id`, 'must be a disk id');
    if (typeof o.sizeBytes !== 'number' || !Number.isSafeInteger(o.sizeBytes) || o.sizeBytes <= 0) bad(`/disks/${i}/sizeBytes`, 'must be a positive integer');
    return { id: o.id, sizeBytes: o.sizeBytes };
  });
}

export function policyOf(payload: Payload): AgentPolicy {
  const p = payload.policy;
  if (typeof p !== 'object' || p === null) bad('/policy', 'must be the effective policy');
  const o = p as Record<string, unknown>;
  if (typeof o.replicationFrequencySeconds !== 'number') bad('/policy/replicationFrequencySeconds', 'must be a number');
  if (typeof o.recoveryPointRetentionHours !== 'number') bad('/policy/recoveryPointRetentionHours', 'must be a number');
  return o as unknown as AgentPolicy;
}

export function hostTargetOf(payload: Payload): HostTargetSpec | AzureTargetSpec | { readonly kind: string } {
  const t = payload.target;
  if (typeof t !== 'object' || t === null) bad('/target', 'must be an object');
  const o = t as Record<string, unknown>;
  if (o.kind === 'azure') {
    if (typeof o.storageAccount !== 'string' || o.storageAccount === '') bad('/target/storageAccount', 'must be the storage account\'s name');
    return {
      kind: 'azure', storageAccount: o.storageAccount,
      container: typeof o.container === 'string' && o.container !== '' ? o.container : 'lifeboat-replicas',
      ...(typeof o.endpoint === 'string' && o.endpoint !== '' ? { endpoint: o.endpoint } : {}),
      ...(typeof o.credentialsFingerprint === 'string' ? { credentialsFingerprint: o.credentialsFingerprint } : {}),
    };
  }
  if (o.kind !== 'host') return { kind: String(o.kind) };
  if (typeof o.address !== 'string' || o.address === '') bad('/target/address', 'must be the recovery host\'s address');
  if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535) bad('/target/port', 'must be a port number');
  if (typeof o.host !== 'string' || o.host === '') bad('/target/host', 'must be the recovery host\'s name');
  return { kind: 'host', host: o.host, address: o.address, port: o.port, serverName: typeof o.serverName === 'string' && o.serverName !== '' ? o.serverName : o.host };
}
