/**
 * A point-in-time view of an Azure replica (docs/azure-target.md §8): reads of
 * the point's snapshot, which nothing later changes.
 */
import { type PageBlobClient } from '@azure/storage-blob';
import { InvalidInputError, ReplicaStateError } from '../../errors';
import { type DiskView, type RecoveryPointInfo } from '../../replication/target';
import { azureCall, isNotFound } from './azure-errors';

export class AzureDiskView implements DiskView {
  private closed = false;

  constructor(
    readonly sizeBytes: number,
    readonly point: RecoveryPointInfo,
    private readonly snapshot: PageBlobClient,
    private readonly readConcurrency: number,
    private readonly onClose: (v: AzureDiskView) => void,
  ) {}

  /**
   * Read bytes of the point. Throws `InvalidInputError`
   * `replica.readOutOfRange`, `ReplicaStateError` `replica.viewClosed`, or
   * `replica.pointNotFound` once the point was pruned or discarded, or a
   * classified Azure error.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    if (this.closed) {
      throw new ReplicaStateError('replica.viewClosed', `The view of point ${this.point.id} is closed`, { hint: 'Open a new view.' });
    }
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new InvalidInputError('replica.readOutOfRange', `Read [${offset}, ${offset + length}) is outside the disk (${this.sizeBytes} bytes)`, {
        details: { offset, length, sizeBytes: this.sizeBytes },
      });
    }
    if (length === 0) return Buffer.alloc(0);
    try {
      return await this.snapshot.downloadToBuffer(offset, length, { concurrency: this.readConcurrency, blockSize: 4 * 1024 * 1024 });
    } catch (e) {
      if (isNotFound(e)) {
        throw new ReplicaStateError('replica.pointNotFound', `Point ${this.point.id} no longer exists (pruned or discarded)`, {
          cause: e, hint: 'List the points again and open a view of a retained one.',
        });
      }
      return azureCall(`read point ${this.point.id}`, () => Promise.reject(e));
    }
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
  }
}
