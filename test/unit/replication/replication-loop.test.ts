/**
 * The replication schedule on a manual clock, over the real tracker, driver
 * and host store: start time, copy frequency, retry of recoverable errors,
 * resync inside its window or on request, Critical on non-recoverable errors.
 */
import { strict as assert } from 'node:assert';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '../../../provider/clock';
import { NonRecoverableError, RecoverableError } from '../../../provider/errors';
import { KiB, MINUTE, SECOND } from '../../../provider/units';
import { ReplicationLoop, type LoopStatus } from '../../../provider/replication/replication-loop';
import { DiskReplicator } from '../../../provider/replication/replicator';
import { type CycleMeta } from '../../../provider/replication/target';
import { DelegatingReplicaDisk } from './delegating-replica';
import { TrackedDisk } from '../../../provider/replication/tracker';
import { DailyWindow } from '../../../provider/replication/window';
import { HostReplicaTarget } from '../../../provider/targets/host';

const SIZE = 256 * KiB;

/** Fails `beginCycle` with the queued errors, in order, then works. */
class FlakyReplica extends DelegatingReplicaDisk {
  readonly failures: Error[] = [];
  override beginCycle(meta: CycleMeta) {
    const e = this.failures.shift();
    return e === undefined ? this.inner.beginCycle(meta) : Promise.reject(e);
  }
}

interface Rig {
  readonly clock: ManualClock;
  readonly tracker: TrackedDisk;
  readonly replica: FlakyReplica;
  readonly loop: ReplicationLoop;
  readonly statuses: LoopStatus[];
  close(): Promise<void>;
}

async function rig(options: { initialStartAt?: number; resyncWindow?: DailyWindow; start?: number; onStatus?: (s: LoopStatus, loop: ReplicationLoop) => void } = {}): Promise<Rig> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lifeboat-loop-'));
  const clock = new ManualClock(options.start);
  await fsp.mkdir(path.join(root, 'replica'));
  const tracker = await TrackedDisk.create({ diskPath: path.join(root, 'd.raw'), diskId: 'd', sizeBytes: SIZE, clock });
  await tracker.write(0, Buffer.alloc(40 * KiB, 7));
  const target = await HostReplicaTarget.open({ root: path.join(root, 'replica') });
  const replica = new FlakyReplica(await target.openDisk({ diskId: 'd', sizeBytes: SIZE }));
  const replicator = await DiskReplicator.open({ source: tracker, replica, progressFile: path.join(root, 'd.replication.json'), clock, batchBytes: 64 * KiB });
  const statuses: LoopStatus[] = [];
  const loop = new ReplicationLoop({
    replicator, source: tracker, clock, frequencyMs: 30 * SECOND,
    initialStartAt: options.initialStartAt, resyncWindow: options.resyncWindow,
    retry: { jitterRatio: 0 },
    onStatus: (s) => {
      statuses.push(s);
      options.onStatus?.(s, loop);
    },
  });
  return {
    clock, tracker, replica, loop, statuses,
    async close() {
      await loop.stop();
      await tracker.close();
      await target.close();
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
}

/** Wait (on real time, bounded) until the loop's status satisfies `pred`: file I/O runs outside the manual clock. */
async function until(r: Rig, pred: (s: LoopStatus) => boolean, what: string): Promise<LoopStatus> {
  for (let i = 0; i < 2000; i++) {
    const s = r.loop.status();
    if (pred(s)) return s;
    await new Promise((res) => setTimeout(res, 5));
  }
  assert.fail(`timed out waiting for ${what}; status: ${JSON.stringify(r.loop.status())}`);
}

/** Wait until the loop sleeps on the clock, so that advancing it fires the next step. */
async function asleep(r: Rig): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (r.clock.pendingTimers > 0) return;
    await new Promise((res) => setTimeout(res, 5));
  }
  assert.fail(`the loop never went to sleep; status: ${JSON.stringify(r.loop.status())}`);
}

/** Advance the clock once the loop sleeps. */
async function tick(r: Rig, ms: number): Promise<void> {
  await asleep(r);
  await r.clock.advance(ms);
}

async function points(r: Rig): Promise<number> {
  return (await r.replica.listPoints()).length;
}

describe('replication/replication-loop', function () {
  this.timeout(60_000);
  let r: Rig | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it('waits for the initial replication start time, then protects the disk', async () => {
    const start = Date.UTC(2026, 10, 23, 12);
    r = await rig({ start, initialStartAt: start + 10 * MINUTE });
    r.loop.start();
    await tick(r, 5 * MINUTE);
    assert.equal(r.loop.status().state, 'WaitingForInitialReplication');
    assert.match(r.loop.status().reason ?? '', /starts at 2026-11-23T12:10/);
    assert.equal(await points(r), 0);
    await tick(r, 5 * MINUTE);
    const s = await until(r, (x) => x.state === 'Protected', 'Protected');
    assert.equal(s.health, 'Normal');
    assert.equal(await points(r), 1);
    assert.ok(r.statuses.some((x) => x.state === 'InitialReplicationInProgress'));
  });

  it('ships a cycle every copy frequency and reports churn and the log budget', async () => {
    r = await rig();
    r.loop.start();
    await until(r, (x) => x.state === 'Protected', 'Protected');
    for (let i = 1; i <= 3; i++) {
      await r.tracker.write(i * 4096, Buffer.alloc(4096, i));
      const before = await points(r);
      await tick(r, 30 * SECOND);
      for (let k = 0; k < 2000 && (await points(r)) === before; k++) await new Promise((res) => setTimeout(res, 5));
      assert.equal(await points(r), before + 1, `cycle ${i} records a point`);
    }
    const s = await until(r, (x) => x.lastPointAt === r!.clock.now(), 'the status of the last cycle');
    assert.ok((s.churnBytesPerSecond ?? 0) > 0, 'churn is measured');
    assert.equal(s.logBudgetPercent, 0, `shipped segments are released: ${JSON.stringify(s)}`);
    assert.equal(s.health, 'Normal');
  });

  it('retries a recoverable error on the back-off schedule with health Warning, then recovers', async () => {
    r = await rig();
    r.loop.start();
    await until(r, (x) => x.state === 'Protected', 'Protected');
    r.replica.failures.push(new RecoverableError('net.down', 'the recovery host is unreachable'), new RecoverableError('net.down', 'the recovery host is unreachable'));
    await r.tracker.write(0, Buffer.alloc(512, 9));
    await tick(r, 30 * SECOND);
    let s = await until(r, (x) => x.health === 'Warning', 'Warning');
    assert.equal(s.lastError?.code, 'net.down');
    assert.match(s.reason ?? '', /retrying at/);
    const n = await points(r);
    // First retry after 1 minute (fails again), the second after 2 more.
    await tick(r, 1 * MINUTE);
    await until(r, () => r!.replica.failures.length === 0, 'the second attempt');
    assert.equal(await points(r), n, 'no point while failing');
    await tick(r, 2 * MINUTE);
    s = await until(r, (x) => x.health === 'Normal' && x.state === 'Protected', 'recovery');
    assert.equal(await points(r), n + 1);
    assert.equal(s.lastError, undefined);
  });

  it('waits for the resync window when delta replication cannot continue, and resyncs inside it', async () => {
    const start = Date.UTC(2026, 10, 23, 12); // noon UTC; the window is 22:00–06:00 UTC
    r = await rig({ start, resyncWindow: new DailyWindow({ start: '22:00', end: '06:00', timeZone: 'UTC' }) });
    r.loop.start();
    await until(r, (x) => x.state === 'Protected', 'Protected');
    await r.tracker.write(0, Buffer.alloc(512, 1));
    const lost = await r.tracker.seal();
    await fsp.rm(lost!.path);
    await tick(r, 30 * SECOND);
    const s = await until(r, (x) => x.state === 'ResynchronizationRequired', 'ResynchronizationRequired');
    assert.equal(s.health, 'Warning');
    assert.match(s.reason ?? '', /resync window/);
    await tick(r, 9 * 60 * MINUTE); // 21:00: still outside
    assert.equal(r.loop.status().state, 'ResynchronizationRequired');
    await tick(r, 61 * MINUTE);
    await until(r, (x) => x.state === 'Protected' && x.health === 'Normal', 'Protected after the resync');
    const view = await r.replica.openView((await r.replica.listPoints()).at(-1)!.id);
    assert.ok((await view.read(0, SIZE)).equals(await r.tracker.read(0, SIZE)), 'the resynced replica equals the source');
    await view.close();
  });

  it('starts a resync at once on an operator request, window or not', async () => {
    const start = Date.UTC(2026, 10, 23, 12);
    let firstPointAt: number | undefined;
    let asked = false;
    r = await rig({
      start,
      resyncWindow: new DailyWindow({ start: '22:00', end: '06:00', timeZone: 'UTC' }),
      // Asked the moment a delta cycle reports its point: the loop is busy, not asleep.
      onStatus: (s, loop) => {
        if (s.state !== 'Protected' || s.lastPointAt === undefined || asked) return;
        firstPointAt ??= s.lastPointAt;
        if (s.lastPointAt !== firstPointAt) {
          asked = true;
          loop.requestResync('checking the replica');
        }
      },
    });
    r.loop.start();
    await until(r, (x) => x.state === 'Protected', 'Protected');
    await r.tracker.write(0, Buffer.alloc(512, 5));
    await tick(r, 30 * SECOND);
    await until(r, () => r!.statuses.some((x) => x.state === 'Resynchronizing'), 'Resynchronizing without another interval');
    await until(r, (x) => x.state === 'Protected' && r!.statuses.some((y) => y.state === 'Resynchronizing'), 'Protected again');
  });

  it('stops retrying on a non-recoverable error: health Critical', async () => {
    r = await rig();
    r.loop.start();
    await until(r, (x) => x.state === 'Protected', 'Protected');
    r.replica.failures.push(new NonRecoverableError('auth.denied', 'the recovery host refused our certificate', { hint: 're-register the host' }));
    await r.tracker.write(0, Buffer.alloc(512, 3));
    await tick(r, 30 * SECOND);
    const s = await until(r, (x) => x.health === 'Critical', 'Critical');
    assert.equal(s.lastError?.code, 'auth.denied');
    assert.equal(s.lastError?.hint, 're-register the host');
    const n = await points(r);
    await tick(r, 60 * MINUTE);
    assert.equal(await points(r), n, 'no retry');
  });
});
