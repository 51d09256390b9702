/**
 * The server side of one connection (docs/replication-protocol.md §4–§7): the
 * handshake, the handles, request dispatch onto the backing target, WRITE
 * intake under the window, and the clean-up that a lost connection requires.
 */

import { type TLSSocket } from 'node:tls';
import { BugError, NonRecoverableError, ReplicaStateError } from '../../errors';
import { type Clock, type Timer } from '../../clock';
import { type CycleMeta, type DiskView, type PointKind } from '../../replication/target';
import { BufferPool } from './buffer-pool';
import { CycleSlot, type SlotHost } from './cycle-slot';
import { type DiskLoan, type DiskRegistry } from './disk-registry';
import { FrameChannel } from './frame-channel';
import {
  type ClientHello,
  type CompressionCodec,
  FLAG_COMPRESSED,
  type Frame,
  FRAME_HEAD_BYTES,
  FrameType,
  MIN_WINDOW_BYTES,
  PROTOCOL_NAME,
  type ServerHello,
  SUPPORTED_VERSIONS,
} from './protocol';
import { codeOf, connectionLost, protocolError, protocolVersion, type SessionEndReason } from './remote-errors';
import { toWireError } from './wire-errors';
import { fromWireNumber } from './wire-values';

/** Counters shared by the sessions of one server. */
export interface ServerCounters {
  bufferedBytes: number;
  peakBufferedBytes: number;
  abortedCycles: number;
  receivedWriteBytes: number;
  receivedPayloadBytes: number;
  framesReceived: number;
}

/** How a session ended, for the server's hook. */
export interface SessionEndInfo {
  /** Who the peer was (certificate subject and address). */
  readonly peer: string;
  readonly reason: SessionEndReason | 'protocolError';
  /** Cycles of this session aborted because it ended. */
  readonly abortedCycles: number;
}

/** What a session needs from its server. */
export interface SessionContext {
  readonly registry: DiskRegistry;
  readonly clock: Clock;
  readonly windowBytes: number;
  readonly maxChunkBytes: number;
  readonly compression: readonly CompressionCodec[];
  readonly idleTimeoutMs: number;
  readonly counters: ServerCounters;
  /** Called once, after the clean-up of §7.5. */
  onEnd(session: ServerSession, info: SessionEndInfo): void;
}

/** Room for the JSON of a WRITE frame (`{"offset":…,"length":…}`) in a pooled frame buffer. */
const WRITE_JSON_ALLOWANCE = 256;

type Handle =
  | { readonly kind: 'disk'; readonly loan: DiskLoan; closed: boolean }
  | { readonly kind: 'cycle'; readonly slot: CycleSlot }
  | { readonly kind: 'view'; readonly view: DiskView; readonly diskHandle: number; closed: boolean };

interface Reply {
  readonly json: object;
  readonly payload?: Buffer;
}

export class ServerSession implements SlotHost {
  private phase: 'hello' | 'ready' | 'ending' = 'hello';
  private window = 0;
  private maxChunk = 0;
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private buffered = 0;
  private aborted = 0;
  private readonly inflight = new Set<Promise<void>>();
  private lastFrameAt: number;
  private idleTimer: Timer | undefined;
  private endRun: Promise<void> | undefined;
  private readonly channel: FrameChannel;

  constructor(
    socket: TLSSocket,
    private readonly ctx: SessionContext,
    /** Who the peer is, for logs and hooks. */
    readonly peer: string,
    targetKind: string,
  ) {
    this.lastFrameAt = ctx.clock.now();
    this.channel = new FrameChannel(socket, {
      onFrame: (f) => this.onFrame(f),
      onClose: (e) => {
        void this.end(codeOf(e) === 'remote.protocolError' || codeOf(e) === 'remote.protocolVersion' ? 'protocolError' : 'network');
      },
    });
    const hello: ServerHello = {
      protocol: PROTOCOL_NAME,
      versions: SUPPORTED_VERSIONS,
      targetKind,
      compression: ctx.compression,
      windowBytes: ctx.windowBytes,
      maxChunkBytes: ctx.maxChunkBytes,
    };
    this.channel.send(FrameType.Hello, 0, 0, hello).catch(() => undefined);
    this.armIdle();
  }

  /** True once the session is ending (SlotHost). */
  get ending(): boolean {
    return this.phase === 'ending';
  }

  /** Raw WRITE bytes received and not yet applied or dropped (§7.1). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * End the session: tell the peer why (`notify`), close the connection, and
   * carry out §7.5 (drop queued work, wait for calls in progress, abort open
   * cycles, close views, return disks). Resolves when all that is done.
   * Idempotent.
   */
  end(reason: SessionEndInfo['reason'], notify?: unknown): Promise<void> {
    if (this.endRun !== undefined) return this.endRun;
    this.phase = 'ending';
    let done!: () => void;
    this.endRun = new Promise<void>((resolve) => {
      done = resolve;
    });
    if (notify !== undefined) this.channel.fail(notify);
    else if (reason === 'superseded') this.channel.fail(connectionLost('superseded', 'A newer session of this client took over the cycle'));
    else this.channel.destroy();
    void this.cleanUp(reason).then(done);
    return this.endRun;
  }

  // SlotHost

  settleBytes(bytes: number): void {
    this.buffered -= bytes;
    this.ctx.counters.bufferedBytes -= bytes;
  }

  sendCredit(handle: number, bytes: number, error: unknown): void {
    const json = error === undefined ? { bytes } : { bytes, error: toWireError(error) };
    this.channel.send(FrameType.Credit, 0, handle, json).catch(() => undefined);
  }

  violation(error: unknown): void {
    void this.end('protocolError', error);
  }

  finished(slot: CycleSlot, aborted: boolean): void {
    this.ctx.registry.letGo(slot.diskId, slot);
    if (aborted && this.phase === 'ending') {
      this.aborted++;
      this.ctx.counters.abortedCycles++;
    }
  }

  // Frames

  private onFrame(f: Frame): void {
    this.lastFrameAt = this.ctx.clock.now();
    this.ctx.counters.framesReceived++;
    if (f.type === FrameType.Write && this.phase === 'ready') {
      this.intake(f);
      return;
    }
    try {
      this.dispatchFrame(f);
    } finally {
      f.release?.();
    }
  }

  private dispatchFrame(f: Frame): void {
    if (this.phase === 'ending') return;
    if (f.type === FrameType.Error) {
      // The client refuses the session (e.g. no common version, §4).
      void this.end('protocolError');
      return;
    }
    if (this.phase === 'hello') {
      if (f.type !== FrameType.Hello) throw protocolError(`Expected HELLO, got frame type ${f.type}`);
      this.acceptHello(f.json);
      return;
    }
    switch (f.type) {
      case FrameType.Request:
        this.track(this.serve(f));
        return;
      case FrameType.Ping:
        this.channel.send(FrameType.Pong, 0, f.id, undefined).catch(() => undefined);
        return;
      default:
        throw protocolError(`Unexpected frame type ${f.type} from a client`);
    }
  }

  /** §4: check the client's choice against our offer. Throws to refuse. */
  private acceptHello(json: Readonly<Record<string, unknown>>): void {
    const h = json as Partial<ClientHello>;
    if (typeof h.version !== 'number' || !SUPPORTED_VERSIONS.includes(h.version)) {
      throw protocolVersion([typeof h.version === 'number' ? h.version : -1], SUPPORTED_VERSIONS);
    }
    if (h.compression !== 'none' && !this.ctx.compression.includes(h.compression as CompressionCodec)) {
      throw protocolError(`Compression ${String(h.compression)} was not offered`);
    }
    const w = h.windowBytes;
    const c = h.maxChunkBytes;
    if (!Number.isSafeInteger(w) || w! < MIN_WINDOW_BYTES || w! > this.ctx.windowBytes) throw protocolError(`Window of ${String(w)} bytes is outside the offer`);
    if (!Number.isSafeInteger(c) || c! < 1 || c! > this.ctx.maxChunkBytes || c! > w!) throw protocolError(`Chunk size of ${String(c)} bytes is outside the offer`);
    this.window = w!;
    this.maxChunk = c!;
    // WRITE frames are assembled into reused buffers: at most a window of them is in use (§7.1, §10).
    this.channel.usePool(new BufferPool(FRAME_HEAD_BYTES + WRITE_JSON_ALLOWANCE + c!, Math.ceil(w! / c!) + 2));
    this.phase = 'ready';
  }

  /** §7.1: queue a WRITE on its cycle, within the window. The frame is released once applied or dropped. */
  private intake(f: Frame): void {
    try {
      this.admit(f);
    } catch (e) {
      f.release?.();
      throw e;
    }
  }

  private admit(f: Frame): void {
    const h = this.handles.get(f.id);
    if (h === undefined || h.kind !== 'cycle') throw protocolError(`WRITE for unknown cycle handle ${f.id}`);
    const { offset, length } = f.json;
    if (!isCount(offset) || !isCount(length)) throw protocolError('WRITE needs a non-negative integer offset and length');
    if (length > this.maxChunk) throw protocolError(`WRITE of ${length} bytes exceeds the chunk size ${this.maxChunk}`);
    if ((f.flags & FLAG_COMPRESSED) === 0 && f.payload.length !== length) throw protocolError(`WRITE payload has ${f.payload.length} bytes, not ${length}`);
    this.buffered += length;
    const c = this.ctx.counters;
    c.bufferedBytes += length;
    c.receivedWriteBytes += length;
    c.receivedPayloadBytes += f.payload.length;
    if (this.buffered > c.peakBufferedBytes) c.peakBufferedBytes = this.buffered;
    if (this.buffered > this.window) throw protocolError(`The client exceeded the window of ${this.window} bytes`, { buffered: this.buffered });
    h.slot.enqueueWrite(offset, length, f.flags, f.payload, f.release);
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Answer one REQUEST: RESPONSE, or ERROR; a protocol violation ends the session. */
  private async serve(f: Frame): Promise<void> {
    let reply: Reply;
    try {
      if (f.id === 0) throw protocolError('REQUEST with id 0');
      reply = await this.dispatch(f.id, f.json);
    } catch (e) {
      const code = codeOf(e);
      if (code === 'remote.protocolError') {
        void this.end('protocolError', e);
        return;
      }
      await this.channel.send(FrameType.Error, 0, f.id, toWireError(e)).catch(() => undefined);
      return;
    }
    await this.channel.send(FrameType.Response, 0, f.id, reply.json, reply.payload).catch(() => undefined);
  }

  /** §6: one operation on the backing target. */
  private async dispatch(id: number, a: Readonly<Record<string, unknown>>): Promise<Reply> {
    const reg = this.ctx.registry;
    switch (a.op) {
      case 'target.openDisk': {
        const diskId = str(a, 'diskId');
        if (a.mustExist === true && !(await reg.exists(diskId))) {
          throw new NonRecoverableError('remote.diskDeleted', `Disk ${diskId} was deleted on the recovery site since it was opened`, {
            details: { diskId },
            hint: 'The replica is gone; disable and re-enable protection (or resynchronise) to rebuild it.',
          });
        }
        const loan = await reg.acquire({ diskId, sizeBytes: num(a, 'sizeBytes') });
        const disk = this.add({ kind: 'disk', loan, closed: false });
        return { json: { disk, diskId: loan.disk.diskId, sizeBytes: loan.disk.sizeBytes } };
      }
      case 'target.listDisks':
        return { json: { diskIds: [...(await reg.target.listDisks())] } };
      case 'target.deleteDisk':
        await reg.delete(str(a, 'diskId'));
        return { json: {} };
      case 'disk.state': {
        const s = await this.disk(a).disk.state();
        return { json: { ...s, generation: s.generation ?? null } };
      }
      case 'disk.beginCycle':
        return this.beginCycle(a);
      case 'disk.listPoints':
        return { json: { points: await this.disk(a).disk.listPoints() } };
      case 'disk.prunePoints':
        return { json: { points: await this.disk(a).disk.prunePoints(num(a, 'olderThan')) } };
      case 'disk.hashBlocks':
        return this.hashBlocks(id, a);
      case 'disk.openView': {
        const diskHandle = handleNumber(a, 'disk');
        const view = await this.disk(a).disk.openView(str(a, 'pointId'));
        const h = this.add({ kind: 'view', view, diskHandle, closed: false });
        return { json: { view: h, sizeBytes: view.sizeBytes, point: view.point } };
      }
      case 'disk.materialise': {
        const m = await this.disk(a).disk.materialise(str(a, 'pointId'));
        return { json: { location: m.location, zeroCopy: m.zeroCopy } };
      }
      case 'disk.close':
        await this.closeDisk(handleNumber(a, 'disk'));
        return { json: {} };
      case 'cycle.commit': {
        const point = await this.slot(a).commit();
        return { json: { point: point ?? null } };
      }
      case 'cycle.abort':
        await this.slot(a).abort();
        return { json: {} };
      case 'view.read':
        return this.read(id, a);
      case 'view.close': {
        const h = this.handleOf(a, 'view', 'view');
        if (!h.closed) {
          h.closed = true;
          await h.view.close();
        }
        return { json: {} };
      }
      default:
        throw protocolError(`Unknown operation ${JSON.stringify(a.op)}`);
    }
  }

  /** `disk.beginCycle`, superseding another session's open cycle on the disk (§7.5). */
  private async beginCycle(a: Readonly<Record<string, unknown>>): Promise<Reply> {
    const diskHandle = handleNumber(a, 'disk');
    const loan = this.disk(a);
    const meta = cycleMeta(a.meta);
    const holder = this.ctx.registry.holderOf(loan.diskId);
    if (holder !== undefined && holder.owner !== this) await holder.supersede();
    const writer = await loan.disk.beginCycle(meta);
    const handle = this.nextHandle++;
    const slot = new CycleSlot(this, handle, loan.diskId, diskHandle, writer, Math.max(1, Math.floor(this.window / 4)));
    this.handles.set(handle, { kind: 'cycle', slot });
    this.ctx.registry.hold(loan.diskId, slot);
    return { json: { cycle: handle } };
  }

  /** `disk.hashBlocks`: digests in DATA frames, the last piece in the RESPONSE (§6, §7.4). */
  private async hashBlocks(id: number, a: Readonly<Record<string, unknown>>): Promise<Reply> {
    const r = await this.disk(a).disk.hashBlocks(num(a, 'blockSize'), num(a, 'firstBlock'), num(a, 'count'));
    const digestBytes = r.digests[0]?.length ?? 32;
    if (r.digests.some((d) => d.length !== digestBytes)) throw new BugError('remote.digestSize', 'The backing target returned digests of different sizes');
    const all = Buffer.concat(r.digests as Buffer[]);
    const step = Math.max(digestBytes, this.maxChunk - (this.maxChunk % digestBytes));
    let at = 0;
    for (; all.length - at > step; at += step) await this.sendData(id, all.subarray(at, at + step));
    return { json: { blockSize: r.blockSize, firstBlock: r.firstBlock, count: r.digests.length, digestBytes }, payload: all.subarray(at) };
  }

  /** `view.read`: read and send one chunk at a time (§7.4). */
  private async read(id: number, a: Readonly<Record<string, unknown>>): Promise<Reply> {
    const h = this.handleOf(a, 'view', 'view');
    if (h.closed) throw closedError('replica.viewClosed', 'The view is closed');
    const offset = num(a, 'offset');
    const length = num(a, 'length');
    if (!(Number.isSafeInteger(length) && length > this.maxChunk)) {
      const b = await h.view.read(offset, length);
      return { json: { length: b.length }, payload: b };
    }
    let at = 0;
    for (; length - at > this.maxChunk; at += this.maxChunk) await this.sendData(id, await h.view.read(offset + at, this.maxChunk));
    const last = await h.view.read(offset + at, length - at);
    return { json: { length }, payload: last };
  }

  private async sendData(id: number, payload: Buffer): Promise<void> {
    if (this.phase === 'ending') throw connectionLost('network', 'The session ended during a read');
    await this.channel.send(FrameType.Data, 0, id, undefined, payload);
  }

  /** `disk.close`: abandon the cycles and views opened through the handle, return the disk. */
  private async closeDisk(n: number): Promise<void> {
    const h = this.handles.get(n);
    if (h === undefined || h.kind !== 'disk') throw protocolError(`Unknown disk handle ${n}`);
    if (h.closed) return;
    h.closed = true;
    await this.releaseDisk(n, h.loan);
  }

  private async releaseDisk(n: number, loan: DiskLoan): Promise<void> {
    const work: Promise<void>[] = [];
    for (const x of this.handles.values()) {
      if (x.kind === 'cycle' && x.slot.diskHandle === n) work.push(x.slot.shutdown());
      if (x.kind === 'view' && x.diskHandle === n && !x.closed) {
        x.closed = true;
        work.push(x.view.close().catch(() => undefined));
      }
    }
    await Promise.all(work);
    await this.ctx.registry.release(loan);
  }

  private async cleanUp(reason: SessionEndInfo['reason']): Promise<void> {
    this.idleTimer?.cancel();
    await Promise.allSettled([...this.inflight]);
    const work: Promise<void>[] = [];
    for (const h of this.handles.values()) if (h.kind === 'cycle') work.push(h.slot.shutdown());
    await Promise.all(work);
    for (const [n, h] of this.handles) {
      if (h.kind === 'disk' && !h.closed) {
        h.closed = true;
        await this.releaseDisk(n, h.loan);
      }
    }
    for (const h of this.handles.values()) if (h.kind === 'view' && !h.closed) await h.view.close().catch(() => undefined);
    this.handles.clear();
    this.ctx.onEnd(this, { peer: this.peer, reason, abortedCycles: this.aborted });
  }

  private armIdle(): void {
    const period = Math.max(1, Math.floor(this.ctx.idleTimeoutMs / 4));
    this.idleTimer = this.ctx.clock.setTimer(period, () => {
      if (this.phase === 'ending') return;
      if (this.ctx.clock.now() - this.lastFrameAt >= this.ctx.idleTimeoutMs) {
        void this.end('idleTimeout', connectionLost('idleTimeout', `No frame from the client for ${this.ctx.idleTimeoutMs} ms`));
        return;
      }
      this.armIdle();
    });
  }

  private add(h: Handle): number {
    const n = this.nextHandle++;
    this.handles.set(n, h);
    return n;
  }

  private handleOf<K extends Handle['kind']>(a: Readonly<Record<string, unknown>>, field: string, kind: K): Extract<Handle, { kind: K }> {
    const n = handleNumber(a, field);
    const h = this.handles.get(n);
    if (h === undefined || h.kind !== kind) throw protocolError(`Unknown ${kind} handle ${n}`);
    return h as Extract<Handle, { kind: K }>;
  }

  private disk(a: Readonly<Record<string, unknown>>): DiskLoan {
    const h = this.handleOf(a, 'disk', 'disk');
    if (h.closed) throw closedError('replica.diskClosed', 'The disk handle is closed');
    return h.loan;
  }

  private slot(a: Readonly<Record<string, unknown>>): CycleSlot {
    return this.handleOf(a, 'cycle', 'cycle').slot;
  }
}

function closedError(code: string, message: string): ReplicaStateError {
  return new ReplicaStateError(code, message, { hint: 'Open it again.' });
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function handleNumber(a: Readonly<Record<string, unknown>>, field: string): number {
  const n = a[field];
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) throw protocolError(`${field} must be a handle`);
  return n;
}

/** A number argument (§6); anything else reads as NaN so that the backing target's validation reports it. */
function num(a: Readonly<Record<string, unknown>>, field: string): number {
  return fromWireNumber(a[field]);
}

function str(a: Readonly<Record<string, unknown>>, field: string): string {
  const v = a[field];
  if (typeof v !== 'string') throw protocolError(`${field} must be a string`);
  return v;
}

/** The cycle's metadata as sent; the backing target validates its values. */
function cycleMeta(v: unknown): CycleMeta {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw protocolError('meta must be an object');
  const m = v as Record<string, unknown>;
  return {
    generation: m.generation as string,
    seq: num(m, 'seq'),
    time: num(m, 'time'),
    ...(m.point === undefined || m.point === null ? {} : { point: m.point as PointKind }),
    ...(m.skipUndoBeforeFirstPoint === undefined || m.skipUndoBeforeFirstPoint === null ? {} : { skipUndoBeforeFirstPoint: m.skipUndoBeforeFirstPoint as boolean }),
  };
}
