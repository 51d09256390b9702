/**
 * The client side of one connection (docs/replication-protocol.md §2, §4–§7):
 * connecting with mutual TLS, the version handshake, requests multiplexed by
 * id with timeouts, the WRITE window, keep-alive, and failing everything
 * pending when the connection is lost.
 */

import { isIP } from 'node:net';
import { checkServerIdentity, connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { type Clock, type Timer } from '../../clock';
import { BugError, LifeboatError } from '../../errors';
import { BufferPool } from './buffer-pool';
import { FrameChannel } from './frame-channel';
import { PayloadCompressor } from './payload-compression';
import {
  type ClientHello,
  type CompressionCodec,
  type Frame,
  FrameType,
  MIN_WINDOW_BYTES,
  type Operation,
  type Pem,
  PROTOCOL_NAME,
  SUPPORTED_VERSIONS,
  TCP_KEEPALIVE_MS,
  TLS_CIPHER_SUITES,
} from './protocol';
import {
  classifySocketError,
  connectionLost,
  protocolError,
  protocolVersion,
  SERVER_REFUSED_CODE,
  timedOut,
  unauthorized,
} from './remote-errors';
import { fromWireError } from './wire-errors';

/** Everything a connection needs, defaults resolved (see RemoteReplicaTargetOptions). */
export interface ConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly ca: Pem | Pem[];
  /** Client key and certificate; without them the server refuses the handshake (§2). */
  readonly key: Pem | undefined;
  readonly cert: Pem | undefined;
  readonly serverName: string;
  readonly authorizeServer: ((cert: PeerCertificate) => boolean) | undefined;
  readonly clock: Clock;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveIntervalMs: number;
  readonly windowBytes: number;
  readonly maxChunkBytes: number;
  readonly compression: CompressionCodec | 'none';
}

/** A RESPONSE: its metadata, and the bytes of its DATA frames and its own payload. */
export interface Response {
  readonly json: Readonly<Record<string, unknown>>;
  readonly payload: Buffer;
}

interface Pending {
  readonly what: string;
  readonly resolve: (r: Response) => void;
  readonly reject: (e: LifeboatError) => void;
  readonly onData: ((payload: Buffer) => void) | undefined;
  timer: Timer;
}

interface Waiter {
  readonly n: number;
  readonly resolve: () => void;
  readonly reject: (e: LifeboatError) => void;
}

const MAX_ID = 0xffffffff;

export class ClientConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly cycles = new Map<number, (e: LifeboatError) => void>();
  private waiters: Waiter[] = [];
  /** Chunk buffers whose bytes have left through the socket, for reuse (§10). */
  private readonly pool: BufferPool;
  private nextId = 1;
  private inFlight = 0;
  private creditTimer: Timer | undefined;
  private keepAlive: Timer | undefined;
  private dead: LifeboatError | undefined;
  private readonly closedPromise: Promise<void>;
  private markClosed!: () => void;
  /** Payload encoder of this session (§8). */
  readonly compressor: PayloadCompressor;

  private constructor(
    private readonly socket: TLSSocket,
    private readonly channel: FrameChannel,
    private readonly s: ConnectionSettings,
    /** `kind` of the server's backing target. */
    readonly targetKind: string,
    /** Negotiated window (§7.1). */
    readonly windowBytes: number,
    /** Negotiated chunk size. */
    readonly maxChunkBytes: number,
    compression: CompressionCodec | 'none',
  ) {
    this.compressor = new PayloadCompressor(compression);
    this.pool = new BufferPool(maxChunkBytes, Math.ceil(windowBytes / maxChunkBytes) + 1);
    this.closedPromise = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.armKeepAlive();
  }

  /**
   * Connect, verify the server, read its HELLO and answer it (§4). Throws
   * `remote.unreachable`, `remote.timeout`, `remote.connectionLost`
   * (recoverable), `remote.unauthorized`, `remote.protocolVersion`,
   * `remote.protocolError` (non-recoverable). On failure nothing stays open.
   */
  static open(s: ConnectionSettings): Promise<ClientConnection> {
    const endpoint = `${s.host}:${s.port}`;
    return new Promise((resolve, reject) => {
      let conn: ClientConnection | undefined;
      let settled = false;
      let tcpUp = false;
      let secured = false;
      const socket = connect({
        host: s.host,
        port: s.port,
        ca: s.ca,
        ...(s.key === undefined || s.cert === undefined ? {} : { key: s.key, cert: s.cert }),
        minVersion: 'TLSv1.3',
        ciphers: TLS_CIPHER_SUITES,
        ...(isIP(s.serverName) === 0 ? { servername: s.serverName } : {}),
        checkServerIdentity: (_host, cert) => {
          const wrongName = checkServerIdentity(s.serverName, cert);
          if (wrongName !== undefined) return wrongName;
          if (s.authorizeServer !== undefined && !s.authorizeServer(cert)) {
            return Object.assign(new Error(`The server certificate of ${endpoint} is not the one expected`), { code: SERVER_REFUSED_CODE });
          }
          return undefined;
        },
      });
      socket.setNoDelay(true);
      socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
      socket.once('connect', () => {
        tcpUp = true;
      });
      socket.once('secureConnect', () => {
        secured = true;
      });
      const timer = s.clock.setTimer(s.connectTimeoutMs, () => channel.destroy(timedOut(`connecting to ${endpoint}`, s.connectTimeoutMs)));
      // Every failure before the HELLO ends here, through the channel's close.
      const settleFailure = (e: unknown): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        reject(e !== undefined ? (LifeboatError.isInstance(e) ? e : classifySocketError(e, endpoint, tcpUp)) : closedBeforeHello(endpoint, secured));
      };
      const channel = new FrameChannel(socket, {
        onFrame: (f) => {
          if (conn !== undefined) {
            conn.onFrame(f);
            return;
          }
          if (f.type === FrameType.Error && f.id === 0) {
            channel.destroy(fromWireError(f.json, endpoint));
            return;
          }
          if (f.type !== FrameType.Hello) throw protocolError(`Expected HELLO from the server, got frame type ${f.type}`);
          const choice = negotiate(f.json, s);
          conn = new ClientConnection(socket, channel, s, String(f.json.targetKind), choice.windowBytes, choice.maxChunkBytes, choice.compression);
          channel.send(FrameType.Hello, 0, 0, choice).catch(() => undefined);
          settled = true;
          timer.cancel();
          resolve(conn);
        },
        onClose: (e) => {
          if (conn !== undefined) conn.onClose(e);
          else settleFailure(e);
        },
      });
    });
  }

  /** Why the connection is unusable, once it is. */
  get failure(): LifeboatError | undefined {
    return this.dead;
  }

  /**
   * Send a REQUEST and wait for its answer (§5, §6). `onData` receives the
   * payload of each DATA frame, in order; a throw from it is a protocol
   * error. Rejects with the server's error rebuilt (§9), `remote.timeout`, or
   * the connection's failure.
   */
  request(op: Operation, args: object, onData?: (payload: Buffer) => void): Promise<Response> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.allocateId();
    return new Promise<Response>((resolve, reject) => {
      this.pending.set(id, { what: op, resolve, reject, onData, timer: this.armRequestTimer(id, op) });
      this.channel.send(FrameType.Request, 0, id, { op, ...args }).catch(() => undefined);
    });
  }

  /**
   * Wait until `n` more WRITE bytes fit in the window (§7.1), then count them
   * as in flight. Rejects with the connection's failure, or `remote.timeout`
   * if no credit arrives within the request timeout.
   */
  acquire(n: number): Promise<void> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    if (n > this.windowBytes) return Promise.reject(new BugError('remote.chunkOverWindow', `A chunk of ${n} bytes cannot fit a window of ${this.windowBytes}`));
    if (this.waiters.length === 0 && this.inFlight + n <= this.windowBytes) {
      this.inFlight += n;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ n, resolve, reject });
      if (this.creditTimer === undefined) this.armCreditTimer();
    });
  }

  /** Give back window bytes acquired but not sent. */
  release(n: number): void {
    this.inFlight -= n;
    this.pump(false);
  }

  /**
   * Queue one WRITE chunk (§5) on the socket without waiting for it to leave
   * (the window, acquired first, bounds what waits there): the chunk is
   * copied into a buffer of the connection's pool, or `compressed` (which
   * the connection then owns) is sent as is. Resolves when the socket wants
   * more; `raw` may be reused at once. Rejects with the connection's failure
   * if it is gone; a loss later on is reported through `watchCycle`.
   */
  async queueWrite(cycle: number, offset: number, raw: Buffer, flags: number, compressed: Buffer | undefined): Promise<void> {
    if (this.dead !== undefined) throw this.dead;
    let payload = compressed;
    let pooled: Buffer | undefined;
    if (payload === undefined) {
      pooled = this.pool.take();
      raw.copy(pooled);
      payload = pooled.subarray(0, raw.length);
    }
    const sent = this.channel.send(FrameType.Write, flags, cycle, { offset, length: raw.length }, payload);
    if (pooled !== undefined) {
      const back = pooled;
      sent.then(
        () => this.pool.give(back),
        () => undefined,
      );
    } else {
      sent.catch(() => undefined);
    }
    try {
      await this.channel.writable();
    } catch (e) {
      throw this.dead ?? connectionLost('network', `Connection lost while writing: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }

  /** Receive a cycle's write failure (§7.3) and the connection's loss (§7.5); returns the way to stop. */
  watchCycle(cycle: number, onFailure: (e: LifeboatError) => void): () => void {
    this.cycles.set(cycle, onFailure);
    return () => {
      if (this.cycles.get(cycle) === onFailure) this.cycles.delete(cycle);
    };
  }

  /** Close the connection; pending work fails with `remote.connectionLost` (reason `clientClosing`). */
  async close(): Promise<void> {
    this.kill(connectionLost('clientClosing', 'The replication connection was closed by this agent'));
    await this.closedPromise;
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.Response: {
        const p = this.take(f.id);
        p.resolve({ json: f.json, payload: f.payload });
        return;
      }
      case FrameType.Data: {
        const p = this.pending.get(f.id);
        if (p === undefined || p.onData === undefined) throw protocolError(`DATA for request ${f.id}, which expects none`);
        p.onData(f.payload);
        p.timer.cancel();
        p.timer = this.armRequestTimer(f.id, p.what);
        return;
      }
      case FrameType.Error: {
        const err = fromWireError(f.json, `${this.s.host}:${this.s.port}`);
        if (f.id === 0) this.kill(err);
        else this.take(f.id).reject(err);
        return;
      }
      case FrameType.Credit: {
        const bytes = f.json.bytes;
        if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.inFlight) throw protocolError(`CREDIT of ${String(bytes)} bytes does not match what is in flight`);
        if (f.json.error !== undefined) this.cycles.get(f.id)?.(fromWireError(f.json.error, `${this.s.host}:${this.s.port}`));
        this.inFlight -= bytes;
        this.pump(bytes > 0);
        return;
      }
      case FrameType.Pong:
        this.take(f.id).resolve({ json: f.json, payload: f.payload });
        return;
      default:
        throw protocolError(`Unexpected frame type ${f.type} from the server`);
    }
  }

  private onClose(e: unknown): void {
    const endpoint = `${this.s.host}:${this.s.port}`;
    this.kill(
      e === undefined
        ? connectionLost('network', `The replica server at ${endpoint} closed the connection`)
        : LifeboatError.isInstance(e)
          ? e
          : classifySocketError(e, endpoint, true),
    );
    this.markClosed();
  }

  /** Fail everything pending with `err` and drop the connection. */
  private kill(err: LifeboatError): void {
    if (this.dead !== undefined) return;
    this.dead = err;
    this.keepAlive?.cancel();
    this.creditTimer?.cancel();
    this.creditTimer = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      p.timer.cancel();
      p.reject(err);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
    const cycles = [...this.cycles.values()];
    this.cycles.clear();
    for (const c of cycles) c(err);
    this.channel.destroy(err);
    if (this.socket.destroyed) this.markClosed();
  }

  private take(id: number): Pending {
    const p = this.pending.get(id);
    if (p === undefined) throw protocolError(`Answer to unknown request ${id}`);
    this.pending.delete(id);
    p.timer.cancel();
    return p;
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === MAX_ID ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private armRequestTimer(id: number, what: string): Timer {
    return this.s.clock.setTimer(this.s.requestTimeoutMs, () => {
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      p.reject(timedOut(what, this.s.requestTimeoutMs));
      // The server's state is unknown now: drop the session so it aborts open cycles (§7.6).
      this.kill(connectionLost('timeout', `Request ${what} timed out; the connection was closed`));
    });
  }

  private armCreditTimer(): void {
    this.creditTimer = this.s.clock.setTimer(this.s.requestTimeoutMs, () => {
      this.creditTimer = undefined;
      const err = timedOut('credit for written data', this.s.requestTimeoutMs);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(err);
      this.kill(connectionLost('timeout', 'No credit from the replica server in time; the connection was closed'));
    });
  }

  /** Admit waiting writers that now fit; `progress` restarts the credit timer. */
  private pump(progress: boolean): void {
    while (this.waiters.length > 0 && this.inFlight + this.waiters[0]!.n <= this.windowBytes) {
      const w = this.waiters.shift()!;
      this.inFlight += w.n;
      w.resolve();
    }
    if (this.waiters.length === 0) {
      this.creditTimer?.cancel();
      this.creditTimer = undefined;
    } else if (progress || this.creditTimer === undefined) {
      this.creditTimer?.cancel();
      this.armCreditTimer();
    }
  }

  private armKeepAlive(): void {
    this.keepAlive = this.s.clock.setTimer(this.s.keepAliveIntervalMs, () => {
      if (this.dead !== undefined) return;
      const id = this.allocateId();
      this.pending.set(id, { what: 'PING', resolve: () => undefined, reject: () => undefined, onData: undefined, timer: this.armRequestTimer(id, 'PING') });
      this.channel.send(FrameType.Ping, 0, id, undefined).catch(() => undefined);
      this.armKeepAlive();
    });
  }
}

/**
 * The server closed the connection cleanly before its HELLO. Right after a
 * completed TLS handshake that is how a Node.js server with
 * `rejectUnauthorized` refuses a certificate it cannot verify (it closes
 * without a TLS alert), while every other refusal of ours sends an ERROR
 * frame first (§2); so it reads as `remote.unauthorized`. Before the
 * handshake completed it is a network failure.
 */
function closedBeforeHello(endpoint: string, secured: boolean): LifeboatError {
  if (secured) {
    return unauthorized(`The replica server at ${endpoint} closed the connection right after the TLS handshake: it did not accept this agent's certificate`);
  }
  return connectionLost('network', `The replica server at ${endpoint} closed the connection before its HELLO`);
}

/** §4: pick a version, a codec and sizes from the server's offer. Throws to refuse. */
function negotiate(h: Readonly<Record<string, unknown>>, s: ConnectionSettings): ClientHello {
  if (h.protocol !== PROTOCOL_NAME) throw protocolError(`The server speaks ${JSON.stringify(h.protocol)}, not ${PROTOCOL_NAME}`);
  const offered = Array.isArray(h.versions) ? h.versions.filter((v): v is number => typeof v === 'number') : [];
  const common = SUPPORTED_VERSIONS.filter((v) => offered.includes(v));
  if (common.length === 0) throw protocolVersion(offered, SUPPORTED_VERSIONS);
  const w = h.windowBytes;
  const c = h.maxChunkBytes;
  if (typeof w !== 'number' || !Number.isSafeInteger(w) || w < MIN_WINDOW_BYTES) throw protocolError(`The server offers a window of ${String(w)} bytes`);
  if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 1) throw protocolError(`The server offers chunks of ${String(c)} bytes`);
  const codecs = Array.isArray(h.compression) ? h.compression : [];
  const windowBytes = Math.min(s.windowBytes, w);
  return {
    version: Math.max(...common),
    compression: s.compression !== 'none' && codecs.includes(s.compression) ? s.compression : 'none',
    windowBytes,
    maxChunkBytes: Math.min(s.maxChunkBytes, c, windowBytes),
  };
}
