/**
 * `RemoteReplicaTarget`: a `ReplicaTarget` reached over the agent-to-agent
 * replication endpoint (docs/replication-protocol.md), the client of
 * `ReplicaServer`. The primary-site agent replicates through it to a
 * recovery-site agent's replica store.
 *
 * One connection at a time, opened on first use and again after a loss
 * (§7.5): disks opened through this target survive reconnects (§6.1); cycle
 * writers and views do not.
 */

import { type PeerCertificate } from 'node:tls';
import { type Clock, systemClock } from '../../clock';
import { InvalidInputError, NonRecoverableError, ReplicaStateError } from '../../errors';
import {
  type BlockDigests,
  type CycleMeta,
  type CycleWriter,
  type DiskView,
  type MaterialisedDisk,
  type OpenDiskOptions,
  type RecoveryPointInfo,
  type ReplicaDisk,
  type ReplicaDiskState,
  type ReplicaTarget,
} from '../../replication/target';
import { ClientConnection, type ConnectionSettings } from './client-connection';
import {
  type CompressionCodec,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_CHUNK_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_WINDOW_BYTES,
  MAX_FRAME_LENGTH,
  MIN_WINDOW_BYTES,
  type Pem,
} from './protocol';
import { protocolError } from './remote-errors';
import { RemoteCycleWriter } from './remote-cycle-writer';
import { RemoteDiskView } from './remote-disk-view';
import { parseHandle, parseMaterialised, parsePoint, parsePoints, parseState, parseStrings, toWireNumber } from './wire-values';

export interface RemoteReplicaTargetOptions {
  /** Address of the recovery-site agent's replication endpoint. */
  readonly host: string;
  readonly port: number;
  /** The vault's CA certificate(s): the only roots the server's certificate may chain to. */
  readonly ca: Pem | readonly Pem[];
  /** This agent's private key (PEM). */
  readonly key: Pem;
  /** This agent's certificate, issued by the vault's CA at registration (PEM). */
  readonly cert: Pem;
  /** Name the server's certificate must carry (DNS or IP SAN). @default host */
  readonly serverName?: string;
  /**
   * Further check of the server's verified certificate, e.g. its fingerprint
   * against the one the vault recorded for the recovery-site host. A refusal
   * fails with `remote.unauthorized`. @default none
   */
  readonly authorizeServer?: (cert: PeerCertificate) => boolean;
  /** Expected `kind` of the server's backing target; another is refused (`remote.kindMismatch`). @default 'host' */
  readonly kind?: string;
  /** Time for timeouts and keep-alive. @default systemClock */
  readonly clock?: Clock;
  /** Limit for TCP, TLS and the server's HELLO (§7.6). @default 30 s */
  readonly connectTimeoutMs?: number;
  /** Limit for each answer, and for credit while writes wait on the window (§7.6). @default 120 s */
  readonly requestTimeoutMs?: number;
  /** Interval of PING frames (§7.6). @default 30 s */
  readonly keepAliveIntervalMs?: number;
  /** Most WRITE bytes in flight (§7.1); the server may lower it. @default 16 MiB */
  readonly windowBytes?: number;
  /** Largest WRITE chunk; the server may lower it. @default 1 MiB */
  readonly maxChunkBytes?: number;
  /** Compress WRITE payloads when the server offers it and it pays (§8). @default 'none' */
  readonly compression?: CompressionCodec | 'none';
}

export class RemoteReplicaTarget implements ReplicaTarget {
  readonly kind: string;
  private readonly settings: ConnectionSettings;
  private conn: ClientConnection | undefined;
  private connecting: Promise<ClientConnection> | undefined;
  private closed = false;

  /** Throws `InvalidInputError` for inconsistent options. Connects on first use. */
  constructor(options: RemoteReplicaTargetOptions) {
    this.kind = options.kind ?? 'host';
    const windowBytes = options.windowBytes ?? DEFAULT_WINDOW_BYTES;
    const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
    const maxChunk = MAX_FRAME_LENGTH - 64 * 1024;
    if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 1 || maxChunkBytes > maxChunk) {
      throw new InvalidInputError('remote.invalidOption', `maxChunkBytes must be 1 … ${maxChunk}, not ${maxChunkBytes}`, { where: { path: '/maxChunkBytes' } });
    }
    if (!Number.isSafeInteger(windowBytes) || windowBytes < Math.max(MIN_WINDOW_BYTES, maxChunkBytes)) {
      throw new InvalidInputError('remote.invalidOption', `windowBytes must be at least maxChunkBytes and ${MIN_WINDOW_BYTES}, not ${windowBytes}`, { where: { path: '/windowBytes' } });
    }
    this.settings = {
      host: options.host,
      port: options.port,
      ca: Array.isArray(options.ca) ? [...(options.ca as readonly Pem[])] : (options.ca as Pem),
      key: options.key,
      cert: options.cert,
      serverName: options.serverName ?? options.host,
      authorizeServer: options.authorizeServer,
      clock: options.clock ?? systemClock,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      keepAliveIntervalMs: options.keepAliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
      windowBytes,
      maxChunkBytes,
      compression: options.compression ?? 'none',
    };
  }

  /**
   * Open (creating if needed) the replica of a disk on the server. Throws the
   * server's errors (`replica.invalidSize`, `replica.sizeMismatch`, …) or the
   * connection's (§9).
   */
  async openDisk(options: OpenDiskOptions): Promise<ReplicaDisk> {
    const disk = new RemoteReplicaDisk(this, options);
    await disk.bind();
    return disk;
  }

  async listDisks(): Promise<readonly string[]> {
    const r = await (await this.session()).request('target.listDisks', {});
    return parseStrings(r.json.diskIds, 'diskIds');
  }

  async deleteDisk(diskId: string): Promise<void> {
    await (await this.session()).request('target.deleteDisk', { diskId });
  }

  /**
   * Close the connection; the server aborts open cycles and releases what
   * this client held (§7.5). Idempotent; later calls fail with
   * `replica.targetClosed`.
   */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connecting;
    const conn = this.conn ?? (pending === undefined ? undefined : await pending.catch(() => undefined));
    this.conn = undefined;
    await conn?.close();
  }

  /** The live connection, opening one if needed. */
  async session(): Promise<ClientConnection> {
    if (this.closed) throw targetClosed();
    if (this.conn !== undefined && this.conn.failure === undefined) return this.conn;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<ClientConnection> {
    const conn = await ClientConnection.open(this.settings);
    if (conn.targetKind !== this.kind) {
      await conn.close();
      throw new NonRecoverableError('remote.kindMismatch', `The replica server at ${this.settings.host}:${this.settings.port} serves a ${conn.targetKind} target, not ${this.kind}`, {
        details: { expected: this.kind, actual: conn.targetKind },
        hint: 'Point the replication policy at the right recovery-site endpoint.',
      });
    }
    if (this.closed) {
      await conn.close();
      throw targetClosed();
    }
    this.conn = conn;
    return conn;
  }
}

/** A disk on the server, reopened on each new connection (§6.1). */
class RemoteReplicaDisk implements ReplicaDisk {
  readonly diskId: string;
  readonly sizeBytes: number;
  private bound: { readonly conn: ClientConnection; readonly handle: number } | undefined;
  private binding: Promise<{ readonly conn: ClientConnection; readonly handle: number }> | undefined;
  private opened = false;
  private closed = false;

  constructor(
    private readonly target: RemoteReplicaTarget,
    private readonly options: OpenDiskOptions,
  ) {
    this.diskId = options.diskId;
    this.sizeBytes = options.sizeBytes;
  }

  /** This disk's handle on the live connection, opening it there if needed. */
  async bind(): Promise<{ readonly conn: ClientConnection; readonly handle: number }> {
    if (this.closed) throw diskClosed(this.diskId);
    const conn = await this.target.session();
    if (this.bound !== undefined && this.bound.conn === conn) return this.bound;
    this.binding ??= (async () => {
      const r = await conn.request('target.openDisk', { diskId: this.options.diskId, sizeBytes: toWireNumber(this.options.sizeBytes), mustExist: this.opened });
      const handle = parseHandle(r.json, 'disk');
      if (r.json.sizeBytes !== this.options.sizeBytes) throw protocolError('target.openDisk answered another size');
      this.opened = true;
      this.bound = { conn, handle };
      return this.bound;
    })().finally(() => {
      this.binding = undefined;
    });
    return this.binding;
  }

  async state(): Promise<ReplicaDiskState> {
    const { conn, handle } = await this.bind();
    return parseState((await conn.request('disk.state', { disk: handle })).json);
  }

  async beginCycle(meta: CycleMeta): Promise<CycleWriter> {
    const { conn, handle } = await this.bind();
    const r = await conn.request('disk.beginCycle', { disk: handle, meta: { ...meta, seq: toWireNumber(meta.seq), time: toWireNumber(meta.time) } });
    return new RemoteCycleWriter(conn, parseHandle(r.json, 'cycle'), { ...meta }, this.sizeBytes);
  }

  async listPoints(): Promise<readonly RecoveryPointInfo[]> {
    const { conn, handle } = await this.bind();
    return parsePoints((await conn.request('disk.listPoints', { disk: handle })).json.points);
  }

  async prunePoints(olderThan: number): Promise<readonly RecoveryPointInfo[]> {
    const { conn, handle } = await this.bind();
    return parsePoints((await conn.request('disk.prunePoints', { disk: handle, olderThan: toWireNumber(olderThan) })).json.points);
  }

  async hashBlocks(blockSize: number, firstBlock: number, count: number): Promise<BlockDigests> {
    const { conn, handle } = await this.bind();
    const pieces: Buffer[] = [];
    const r = await conn.request('disk.hashBlocks', { disk: handle, blockSize: toWireNumber(blockSize), firstBlock: toWireNumber(firstBlock), count: toWireNumber(count) }, (p) => pieces.push(p));
    pieces.push(r.payload);
    const all = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    const { digestBytes, count: n } = r.json;
    if (typeof digestBytes !== 'number' || typeof n !== 'number' || digestBytes < 1 || all.length !== digestBytes * n) {
      throw protocolError('disk.hashBlocks answered digests that do not add up');
    }
    const digests: Buffer[] = [];
    for (let i = 0; i < n; i++) digests.push(all.subarray(i * digestBytes, (i + 1) * digestBytes));
    return { blockSize: Number(r.json.blockSize), firstBlock: Number(r.json.firstBlock), digests };
  }

  async openView(pointId: string): Promise<DiskView> {
    const { conn, handle } = await this.bind();
    const r = await conn.request('disk.openView', { disk: handle, pointId });
    const size = r.json.sizeBytes;
    if (typeof size !== 'number') throw protocolError('disk.openView answered no size');
    return new RemoteDiskView(conn, parseHandle(r.json, 'view'), size, parsePoint(r.json.point));
  }

  async materialise(pointId: string): Promise<MaterialisedDisk> {
    const { conn, handle } = await this.bind();
    return parseMaterialised((await conn.request('disk.materialise', { disk: handle, pointId })).json);
  }

  /**
   * Release the server's handle; its open cycle, if any, is abandoned (rolled
   * back) as with a local disk. Idempotent; harmless after a lost connection.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const b = this.bound;
    this.bound = undefined;
    if (b === undefined || b.conn.failure !== undefined) return;
    try {
      await b.conn.request('disk.close', { disk: b.handle });
    } catch (e) {
      if (b.conn.failure === undefined) throw e;
    }
  }
}

function targetClosed(): ReplicaStateError {
  return new ReplicaStateError('replica.targetClosed', 'The remote replica target is closed', { hint: 'Open a new RemoteReplicaTarget.' });
}

function diskClosed(diskId: string): ReplicaStateError {
  return new ReplicaStateError('replica.diskClosed', `Disk ${diskId} is closed`, { details: { diskId }, hint: 'Open the disk again from its target.' });
}
