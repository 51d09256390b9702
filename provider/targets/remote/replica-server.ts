/**
 * `ReplicaServer`: serves a local `ReplicaTarget` (on a recovery-site agent,
 * its replica store) to primary-site agents over the agent-to-agent
 * replication endpoint, docs/replication-protocol.md. Mutual TLS 1.3 with
 * certificates of the vault's CA (§2); one session per connection (§4–§7).
 */

import { type AddressInfo } from 'node:net';
import { createServer, type DetailedPeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { type Clock, systemClock } from '../../clock';
import { InvalidInputError, type LifeboatError } from '../../errors';
import { type ReplicaTarget } from '../../replication/target';
import { DiskRegistry } from './disk-registry';
import { closeSoon } from './frame-channel';
import { encodeFrame } from './frame-codec';
import {
  type CompressionCodec,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CHUNK_BYTES,
  DEFAULT_WINDOW_BYTES,
  FrameType,
  MAX_FRAME_LENGTH,
  MIN_WINDOW_BYTES,
  type Pem,
  TCP_KEEPALIVE_MS,
  TLS_CIPHER_SUITES,
} from './protocol';
import { codeOf, connectionLost, unauthorized } from './remote-errors';
import { type ServerCounters, ServerSession, type SessionEndInfo } from './server-session';
import { toWireError } from './wire-errors';

/** A refused connection, for the server's hook. */
export interface PeerRejection {
  /** Certificate subject (if any) and address of the peer. */
  readonly peer: string;
  /** TLS error code (`ERR_SSL_…`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …) or `authorize`. */
  readonly reason: string;
}

export interface ReplicaServerOptions {
  /**
   * The store to serve. The server never closes it: its owner does, after
   * `close()`. Its cycle writers must not keep the `data` of a `write` once
   * the returned promise settled (the server reuses the buffer; the targets
   * of this repository copy what they queue).
   */
  readonly target: ReplicaTarget;
  /** This server's private key (PEM). */
  readonly key: Pem;
  /** This server's certificate, issued by the vault's CA (PEM; may include the chain). */
  readonly cert: Pem;
  /** The vault's CA certificate(s): the only roots a client certificate may chain to. */
  readonly ca: Pem | readonly Pem[];
  /**
   * Decide whether a client whose certificate verified against `ca` may use
   * this server, e.g. whether its subject, SAN or fingerprint is a host the
   * vault registered and has not revoked. A refusal (false or a throw) ends
   * the connection with `remote.unauthorized` before any request is read.
   * @default every certificate of the CA is accepted
   */
  readonly authorize?: (peer: DetailedPeerCertificate) => boolean | Promise<boolean>;
  /** Address to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one (see `listen()`'s result). @default 0 */
  readonly port?: number;
  /** Time for idle timeouts. @default systemClock */
  readonly clock?: Clock;
  /** Largest window offered to clients: the most WRITE bytes a session buffers (§7.1). @default 16 MiB */
  readonly windowBytes?: number;
  /** Largest chunk offered; also the size of DATA frames (§7). @default 1 MiB */
  readonly maxChunkBytes?: number;
  /** A session that sends nothing for this long is ended and its cycles aborted (§7.6). @default 120 s */
  readonly idleTimeoutMs?: number;
  /** Offer zstd compression of WRITE payloads (§8). @default true */
  readonly compression?: boolean;
  /** A session began (after TLS and authorization). @default none */
  readonly onSessionStart?: (peer: string) => void;
  /** A session ended and its clean-up is done (§7.5). @default none */
  readonly onSessionEnd?: (info: SessionEndInfo) => void;
  /** A connection was refused at the TLS handshake or by `authorize`. @default none */
  readonly onPeerRejected?: (rejection: PeerRejection) => void;
}

/** Counters of a server, for health reporting and tests. */
export interface ReplicaServerStats {
  /** Sessions open now. */
  readonly sessions: number;
  /** Sessions ever started. */
  readonly sessionsTotal: number;
  /** Connections refused at the handshake or by `authorize`. */
  readonly rejectedPeers: number;
  /** WRITE bytes received and not yet applied, over all sessions. */
  readonly bufferedBytes: number;
  /** The most WRITE bytes any one session has buffered at once (never above its window). */
  readonly peakBufferedBytes: number;
  /** Cycles aborted because their session ended (§7.5). */
  readonly abortedCycles: number;
  /** WRITE bytes received, raw (as written by the client). */
  readonly receivedWriteBytes: number;
  /** WRITE payload bytes received as sent (after compression, §8). */
  readonly receivedPayloadBytes: number;
  /** Frames received from clients, of every type. */
  readonly framesReceived: number;
}

export class ReplicaServer {
  private readonly server: Server;
  private readonly registry: DiskRegistry;
  private readonly clock: Clock;
  private readonly windowBytes: number;
  private readonly maxChunkBytes: number;
  private readonly sessions = new Set<ServerSession>();
  private readonly unauthenticated = new Set<TLSSocket>();
  private readonly counters: ServerCounters = {
    bufferedBytes: 0,
    peakBufferedBytes: 0,
    abortedCycles: 0,
    receivedWriteBytes: 0,
    receivedPayloadBytes: 0,
    framesReceived: 0,
  };
  private sessionsTotal = 0;
  private rejectedPeers = 0;
  private closing: Promise<void> | undefined;
  private bound: AddressInfo | undefined;

  /** Throws `InvalidInputError` for inconsistent sizes. Does not listen yet. */
  constructor(private readonly options: ReplicaServerOptions) {
    this.clock = options.clock ?? systemClock;
    this.windowBytes = options.windowBytes ?? DEFAULT_WINDOW_BYTES;
    this.maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
    const maxChunk = MAX_FRAME_LENGTH - 64 * 1024;
    if (!Number.isSafeInteger(this.maxChunkBytes) || this.maxChunkBytes < 1 || this.maxChunkBytes > maxChunk) {
      throw new InvalidInputError('remote.invalidOption', `maxChunkBytes must be 1 … ${maxChunk}, not ${this.maxChunkBytes}`, { where: { path: '/maxChunkBytes' } });
    }
    if (!Number.isSafeInteger(this.windowBytes) || this.windowBytes < Math.max(MIN_WINDOW_BYTES, this.maxChunkBytes)) {
      throw new InvalidInputError('remote.invalidOption', `windowBytes must be at least maxChunkBytes and ${MIN_WINDOW_BYTES}, not ${this.windowBytes}`, { where: { path: '/windowBytes' } });
    }
    this.registry = new DiskRegistry(options.target);
    this.server = createServer(
      {
        key: options.key,
        cert: options.cert,
        ca: Array.isArray(options.ca) ? [...(options.ca as readonly Pem[])] : (options.ca as Pem),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
        ciphers: TLS_CIPHER_SUITES,
        honorCipherOrder: true,
      },
      (socket) => void this.accept(socket),
    );
    this.server.on('tlsClientError', (e: Error, socket: TLSSocket) => {
      this.reject(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, codeOf(e) ?? e.message);
    });
  }

  /**
   * Start listening. Resolves with the bound address (and port, if 0 was
   * asked). Throws the listen error (e.g. `EADDRINUSE`) as a Node.js error.
   */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', onError);
        // Accept failures after this (EMFILE, ECONNABORTED) are transient and
        // per connection; they must not take the agent down.
        this.server.on('error', () => undefined);
        this.bound = this.server.address() as AddressInfo;
        resolve(this.bound);
      });
    });
  }

  /** The bound address, once listening. */
  get address(): AddressInfo | undefined {
    return this.bound;
  }

  stats(): ReplicaServerStats {
    return {
      sessions: this.sessions.size,
      sessionsTotal: this.sessionsTotal,
      rejectedPeers: this.rejectedPeers,
      ...this.counters,
    };
  }

  /**
   * Stop: refuse new connections, end every session (`remote.connectionLost`,
   * reason `serverClosing`) aborting its open cycles (§7.5), close the backing
   * disks the server opened. The target itself stays open. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const s of this.unauthenticated) refuse(s, closingError());
      await Promise.all([...this.sessions].map((s) => s.end('serverClosing', closingError())));
      if (this.bound !== undefined) await stopped;
      await this.registry.closeAll();
    })();
    return this.closing;
  }

  private async accept(socket: TLSSocket): Promise<void> {
    socket.on('error', () => undefined);
    if (this.closing !== undefined) {
      refuse(socket, closingError());
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    const cert = socket.getPeerCertificate(true);
    const peer = describePeer(cert, socket);
    this.unauthenticated.add(socket);
    let allowed: boolean;
    try {
      allowed = this.options.authorize === undefined ? true : await this.options.authorize(cert);
    } catch {
      allowed = false;
    }
    this.unauthenticated.delete(socket);
    if (socket.destroyed || this.closing !== undefined) return;
    if (!allowed) {
      this.reject(peer, 'authorize');
      refuse(socket, unauthorized(`This recovery-site agent does not accept ${peer}`));
      return;
    }
    const ctx = {
      registry: this.registry,
      clock: this.clock,
      windowBytes: this.windowBytes,
      maxChunkBytes: this.maxChunkBytes,
      compression: (this.options.compression ?? true) ? (['zstd'] as const satisfies readonly CompressionCodec[]) : [],
      idleTimeoutMs: this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      counters: this.counters,
      onEnd: (s: ServerSession, info: SessionEndInfo) => {
        this.sessions.delete(s);
        this.options.onSessionEnd?.(info);
      },
    };
    const session = new ServerSession(socket, ctx, peer, this.options.target.kind);
    this.sessions.add(session);
    this.sessionsTotal++;
    this.options.onSessionStart?.(peer);
  }

  private reject(peer: string, reason: string): void {
    this.rejectedPeers++;
    this.options.onPeerRejected?.({ peer, reason });
  }
}

/**
 * End a connection that has no session with an ERROR frame (id 0), so the
 * client can tell this refusal from a certificate refused by TLS (§2).
 */
function refuse(socket: TLSSocket, error: unknown): void {
  if (socket.destroyed) return;
  socket.write(encodeFrame(FrameType.Error, 0, 0, toWireError(error)));
  closeSoon(socket);
}

function closingError(): LifeboatError {
  return connectionLost('serverClosing', 'The replica server is shutting down');
}

function describePeer(cert: DetailedPeerCertificate, socket: TLSSocket): string {
  const subject = cert.subject?.CN ?? '(no subject)';
  return `${subject} at ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}
