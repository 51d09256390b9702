/**
 * The recovery-site side of the agent (docs/agent.md §7): its replica store
 * (`HostReplicaTarget` in `<data-dir>/replicas`) served to primary-site
 * agents by a `ReplicaServer` over mutual TLS 1.3 with the certificate the
 * vault issued at registration. A peer must present a certificate of the
 * same vault CA, of the same vault (its OU is `<vault>/<site>`), and name (CN)
 * a host this recovery host keeps a replica for (the source host of one of
 * its replica relationships); others fail the handshake or are refused with
 * `remote.unauthorized`, naming the host, before any request is read.
 */

import { statfs } from 'node:fs/promises';
import { type Clock, systemClock } from '../clock';
import { LifeboatError } from '../errors';
import { HostReplicaTarget } from '../targets/host';
import { ReplicaServer } from '../targets/remote';
import { type AgentLogger } from './command-runner';
import { type ItemDisk, replicaDiskId } from './item-records';
import { type PeerCredentials } from './source-item';

export interface ReplicaServiceOptions {
  /** Folder of the replica store. */
  readonly root: string;
  readonly credentials: PeerCredentials;
  /** Only peers whose certificate's OU starts with `<vault>/` are served. */
  readonly vault: string;
  /**
   * The hosts that may connect: the source hosts of this host's replica
   * relationships (case-insensitive), asked at every connection so that a
   * relationship created since is honoured. A throw refuses the peer.
   * @default any host of the vault (the CA and the OU are still checked)
   */
  readonly sourceHosts?: () => Promise<readonly string[]>;
  /** Address to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  readonly log: AgentLogger;
}

/** A recovery host's replica store and its replication endpoint. */
export class ReplicaService {
  private constructor(
    readonly target: HostReplicaTarget,
    private readonly server: ReplicaServer,
    /** The port the endpoint listens on. */
    readonly port: number,
    private readonly root: string,
  ) {}

  /**
   * Open the store and listen. Throws the store's errors, or the listen
   * error (`EADDRINUSE` when the persisted port is taken); then nothing is
   * left open.
   */
  static async start(o: ReplicaServiceOptions): Promise<ReplicaService> {
    const target = await HostReplicaTarget.open({ root: o.root });
    const prefix = `${o.vault.toLowerCase()}/`;
    const server = new ReplicaServer({
      target,
      key: o.credentials.keyPem,
      cert: o.credentials.certPem,
      ca: o.credentials.caPem,
      host: o.host ?? '127.0.0.1',
      port: o.port ?? 0,
      clock: o.clock ?? systemClock,
      authorize: async (peer) => {
        const ou = peer.subject?.OU;
        const units = Array.isArray(ou) ? ou : ou === undefined ? [] : [ou];
        if (!units.some((u) => String(u).toLowerCase().startsWith(prefix))) return false;
        if (o.sourceHosts === undefined) return true;
        const name = String(peer.subject?.CN ?? '').toLowerCase();
        const allowed = (await o.sourceHosts()).some((h) => h.toLowerCase() === name);
        // The CA issued the certificate, so this is a host of the vault that replicates nothing here.
        if (!allowed) o.log('warn', `replication peer ${name || '(no name)'} refused: it is not the source host of any replica on this host`);
        return allowed;
      },
      onPeerRejected: (r) => o.log('warn', `replication peer refused: ${r.peer} (${r.reason})`),
    });
    let port: number;
    try {
      port = (await server.listen()).port;
    } catch (e) {
      await server.close().catch(() => undefined);
      await target.close();
      throw e;
    }
    return new ReplicaService(target, server, port, o.root);
  }

  /**
   * Create (or keep) the replica disks of an item: empty disks of the given
   * sizes, or the existing ones. Idempotent. Throws `replica.sizeMismatch`
   * for an existing disk of another size.
   */
  async createDisks(itemUid: string, disks: readonly ItemDisk[]): Promise<void> {
    const existing = new Set(await this.target.listDisks());
    for (const d of disks) {
      const id = replicaDiskId(itemUid, d.id);
      // An existing disk may be lent to a replication session: leave it open.
      if (existing.has(id)) {
        const disk = await this.target.openDisk({ diskId: id, sizeBytes: d.sizeBytes });
        if (disk.sizeBytes !== d.sizeBytes) {
          throw new LifeboatError('replica.sizeMismatch', 'nonRecoverable', `replica ${id} has ${disk.sizeBytes} bytes, the source disk ${d.sizeBytes}`);
        }
        continue;
      }
      const disk = await this.target.openDisk({ diskId: id, sizeBytes: d.sizeBytes });
      await disk.close();
    }
  }

  /** Delete an item's replica disks and their points. Idempotent. */
  async deleteDisks(itemUid: string, disks: readonly ItemDisk[]): Promise<void> {
    for (const d of disks) await this.target.deleteDisk(replicaDiskId(itemUid, d.id));
  }

  /** Room in the store's file system. */
  async storage(): Promise<{ readonly freeBytes: number; readonly totalBytes: number }> {
    const s = await statfs(this.root);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  }

  /** Sessions and refusals, for status. */
  stats(): ReturnType<ReplicaServer['stats']> {
    return this.server.stats();
  }

  /** Stop serving (sessions end, open cycles are aborted), then close the store. Idempotent. */
  async close(): Promise<void> {
    await this.server.close();
    await this.target.close();
  }
}
