/**
 * The client's `DiskView` (docs/replication-protocol.md §6, §7.4): reads
 * arrive in DATA chunks copied once into the result. A view belongs to its
 * connection: after a reconnect it fails with `remote.connectionLost` and
 * must be opened again.
 */

import { type DiskView, type RecoveryPointInfo } from '../../replication/target';
import { ReplicaStateError } from '../../errors';
import { type ClientConnection } from './client-connection';
import { protocolError } from './remote-errors';
import { toWireNumber } from './wire-values';

export class RemoteDiskView implements DiskView {
  private closed = false;

  constructor(
    private readonly conn: ClientConnection,
    /** The server's view handle. */
    private readonly handle: number,
    readonly sizeBytes: number,
    readonly point: RecoveryPointInfo,
  ) {}

  /**
   * Read `length` bytes at `offset` as they were at the point. Throws the
   * backing view's errors (`InvalidInputError` for a range outside the disk,
   * `replica.viewClosed`), or `remote.connectionLost`/`remote.timeout`.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    if (this.closed) throw new ReplicaStateError('replica.viewClosed', `The view of point ${this.point.id} is closed`, { hint: 'Open the view again.' });
    let out: Buffer | undefined;
    let at = 0;
    const put = (piece: Buffer): void => {
      if (!Number.isSafeInteger(length) || at + piece.length > length) throw protocolError(`view.read returned more than the ${length} bytes asked`);
      out ??= Buffer.allocUnsafe(length);
      piece.copy(out, at);
      at += piece.length;
    };
    const r = await this.conn.request('view.read', { view: this.handle, offset: toWireNumber(offset), length: toWireNumber(length) }, put);
    if (out === undefined && r.payload.length === length && r.json.length === length) return r.payload;
    put(r.payload);
    if (at !== length || r.json.length !== length) throw protocolError(`view.read returned ${at} bytes, not ${length}`);
    return out ?? Buffer.alloc(0);
  }

  /** Release the server's view. Idempotent; harmless after a lost connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.conn.failure !== undefined) return;
    try {
      await this.conn.request('view.close', { view: this.handle });
    } catch (e) {
      if (this.conn.failure === undefined) throw e;
    }
  }
}
