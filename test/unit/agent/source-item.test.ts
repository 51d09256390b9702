import { strict as assert } from 'node:assert';
import { aggregateState, batchBytesFor, copyBatchBytesFor } from '../../../provider/agent/source-item';

describe('agent/source-item', () => {
  it('an item is as far as its least advanced disk', () => {
    assert.equal(aggregateState(['Protected', 'Protected']), 'Protected');
    assert.equal(aggregateState(['Protected', 'InitialReplicationInProgress']), 'InitialReplicationInProgress');
    assert.equal(aggregateState(['Resynchronizing', 'ResynchronizationRequired', 'Protected']), 'ResynchronizationRequired');
    assert.equal(aggregateState(['Protected', 'Resynchronizing']), 'Resynchronizing');
    assert.equal(aggregateState(['WaitingForInitialReplication', 'InitialReplicationInProgress']), 'WaitingForInitialReplication');
  });

  it('persists a copy cursor at least every sixteenth of a disk, in whole 64 KiB blocks, at most every 64 MiB', () => {
    const KiB = 1024;
    const MiB = 1024 * KiB;
    assert.equal(batchBytesFor(512 * KiB), 64 * KiB);
    assert.equal(batchBytesFor(4 * MiB), 256 * KiB);
    assert.equal(batchBytesFor(5 * MiB), 320 * KiB);
    assert.equal(batchBytesFor(100 * 1024 * MiB), 64 * MiB);
    for (const size of [1, 4097, 3 * MiB + 512, 7 * 1024 * MiB]) {
      const b = batchBytesFor(size);
      assert.equal(b % (64 * KiB), 0);
      assert.ok(b >= 64 * KiB && b <= 64 * MiB);
    }
  });

  it('an initial copy past its first cycle steps at least every eighth of a disk, at most every 256 MiB, never less than a batch', () => {
    const KiB = 1024;
    const MiB = 1024 * KiB;
    assert.equal(copyBatchBytesFor(8 * MiB), MiB);
    assert.equal(copyBatchBytesFor(2048 * MiB), 256 * MiB);
    assert.equal(copyBatchBytesFor(100 * 1024 * MiB), 256 * MiB);
    for (const size of [1, 4097, 3 * MiB + 512, 7 * 1024 * MiB]) {
      const c = copyBatchBytesFor(size);
      assert.equal(c % (64 * KiB), 0);
      assert.ok(c >= batchBytesFor(size) && c <= 256 * MiB);
    }
  });
});
