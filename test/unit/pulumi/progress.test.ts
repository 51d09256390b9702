import { strict as assert } from 'node:assert';
import { gib, progressLine, sampleOf } from '../../../provider/pulumi/progress';
import { replacementText, isFailedOver } from '../../../provider/pulumi/protected-vm-provider';

const GiB = 1024 ** 3;

describe('pulumi/progress', () => {
  it('formats GiB with two decimals from 1 GiB, three significant digits below', () => {
    assert.equal(gib(4 * GiB), '4.00');
    assert.equal(gib(2 * 1024 * 1024), '0.00195');
    assert.equal(gib(0), '0.00');
  });

  it('a line with percent, GiB and the rate measured between samples', () => {
    const status = { replicationState: 'InitialReplicationInProgress' as const, health: 'Normal' as const, initialReplicationPercent: 50, disks: [{ id: 'd', sizeBytes: 2 * GiB }] };
    const now = sampleOf(status, 10_000);
    assert.deepEqual(now, { at: 10_000, percent: 50, copiedBytes: GiB, totalBytes: 2 * GiB });
    const before = { at: 0, percent: 0, copiedBytes: 0, totalBytes: 2 * GiB };
    assert.equal(progressLine('web01', now, before), 'web01: initial replication 50 % (1.00 of 2.00 GiB, 102.4 MiB/s)');
    assert.equal(progressLine('web01', now, undefined), 'web01: initial replication 50 % (1.00 of 2.00 GiB)');
  });

  it('the replacement text names the keys and the GiB', () => {
    assert.equal(replacementText(['vm'], 4 * GiB), 'changing vm replaces the protection: it is disabled and enabled again, a full re-seed of 4.00 GiB');
  });

  it('failed over: active on the recovery site or in a failover state', () => {
    assert.equal(isFailedOver({ replicationState: 'Protected', health: 'Normal', activeLocation: 'primary' }), false);
    assert.equal(isFailedOver({ replicationState: 'FailedOver', health: 'Normal' }), true);
    assert.equal(isFailedOver({ replicationState: 'Protected', health: 'Normal', activeLocation: 'recovery' }), true);
  });
});
