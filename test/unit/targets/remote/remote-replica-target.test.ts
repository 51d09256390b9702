import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BugError, InvalidInputError, LifeboatError, NonRecoverableError, RecoverableError, ReplicaStateError } from '../../../../provider/errors';
import { type RemoteReplicaTarget } from '../../../../provider/targets/remote/remote-replica-target';
import { KiB, MiB } from '../../../../provider/units';
import { FaultProxy } from './fault-proxy';
import { client, pattern, serve, type Served } from './harness';
import { MemoryReplicaTarget } from './memory-target';
import { testCerts, type TestCerts } from './test-certs';

async function rejection(p: Promise<unknown>): Promise<LifeboatError> {
  try {
    await p;
  } catch (e) {
    assert.ok(LifeboatError.isInstance(e), `expected a LifeboatError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('RemoteReplicaTarget over ReplicaServer (docs/replication-protocol.md)', function () {
  this.timeout(30_000);
  let certs: TestCerts;
  let backing: MemoryReplicaTarget;
  let served: Served;
  const clients: RemoteReplicaTarget[] = [];

  before(async () => {
    certs = await testCerts();
  });

  beforeEach(async () => {
    backing = new MemoryReplicaTarget();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await served?.server.close();
  });

  function connectClient(extra: Parameters<typeof client>[2] = {}): RemoteReplicaTarget {
    const c = client(served.port, certs, extra);
    clients.push(c);
    return c;
  }

  it('carries every operation of the contract, byte for byte (§6)', async () => {
    served = await serve(backing, certs, { maxChunkBytes: 64 * KiB, windowBytes: 256 * KiB });
    const t = connectClient();
    assert.equal(t.kind, 'memory');
    const size = 2 * MiB;
    const disk = await t.openDisk({ diskId: 'vm1/disk0', sizeBytes: size });
    assert.deepEqual(await disk.state(), { diskId: 'vm1/disk0', sizeBytes: size, generation: undefined, appliedSeq: 0, points: [] });
    assert.deepEqual(await t.listDisks(), ['vm1/disk0']);

    const model = Buffer.alloc(size);
    const w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 1000, point: 'crashConsistent' });
    const writes: Array<[number, Buffer]> = [[0, pattern(size, 1)], [7, pattern(3, 2)], [100_000, pattern(300 * KiB + 5, 3)], [size - 1, Buffer.from([0xab])]];
    for (const [o, b] of writes) {
      await w.write(o, b);
      b.copy(model, o);
    }
    const p1 = await w.commit();
    assert.deepEqual(p1, { id: 'p-1', seq: 1, generation: 'g1', time: 1000, kind: 'crashConsistent' });
    assert.ok(backing.disks.get('vm1/disk0')!.bytes.equals(model), 'the server applied exactly the writes');

    const view = await disk.openView(p1!.id);
    assert.equal(view.sizeBytes, size);
    assert.deepEqual(view.point, p1);
    assert.ok((await view.read(0, size)).equals(model), 'a read larger than a chunk comes back whole');
    assert.ok((await view.read(12_345, 100)).equals(model.subarray(12_345, 12_445)));
    assert.equal((await view.read(5, 0)).length, 0);

    const digests = await disk.hashBlocks(4 * KiB, 3, 500);
    assert.equal(digests.blockSize, 4 * KiB);
    assert.equal(digests.firstBlock, 3);
    assert.equal(digests.digests.length, 500);
    for (let i = 0; i < 500; i++) {
      const at = (3 + i) * 4 * KiB;
      assert.ok(digests.digests[i]!.equals(createHash('sha256').update(model.subarray(at, at + 4 * KiB)).digest()));
    }

    const w2 = await disk.beginCycle({ generation: 'g1', seq: 2, time: 2000, point: 'appConsistent' });
    await w2.write(0, Buffer.alloc(4096, 7));
    const p2 = (await w2.commit())!;
    assert.deepEqual((await disk.state()).points, [p1, p2]);
    assert.ok((await view.read(0, 4096)).equals(model.subarray(0, 4096)), 'the view stays at its point');
    await view.close();
    await view.close();

    assert.deepEqual(await disk.prunePoints(1500), [p1]);
    assert.deepEqual(await disk.listPoints(), [p2]);
    assert.deepEqual(await disk.materialise(p2.id), { location: 'memory:vm1/disk0', zeroCopy: true });

    await disk.close();
    await disk.close();
    await t.deleteDisk('vm1/disk0');
    assert.deepEqual(await t.listDisks(), []);
  });

  it('applies calls in the order they are made, even when the caller does not await each', async () => {
    served = await serve(backing, certs, { maxChunkBytes: 16 * KiB, windowBytes: 64 * KiB });
    const t = connectClient({ compression: 'zstd' });
    const disk = await t.openDisk({ diskId: 'd', sizeBytes: 1 * MiB });
    const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1, point: 'crashConsistent' });
    const text = Buffer.from('compressible '.repeat(40_000)).subarray(0, 256 * KiB);
    const calls = [
      w.write(0, pattern(256 * KiB, 1)),
      w.write(100 * KiB, text),
      w.write(0, Buffer.from('later wins')),
      w.write(200 * KiB, pattern(100 * KiB, 2)),
    ];
    const committed = w.commit();
    await Promise.all(calls);
    assert.ok((await committed) !== undefined);
    const expected = Buffer.alloc(1 * MiB);
    pattern(256 * KiB, 1).copy(expected, 0);
    text.copy(expected, 100 * KiB);
    Buffer.from('later wins').copy(expected, 0);
    pattern(100 * KiB, 2).copy(expected, 200 * KiB);
    assert.ok(backing.disks.get('d')!.bytes.equals(expected));
  });

  it('refuses a write outside the disk locally and keeps the cycle usable', async () => {
    served = await serve(backing, certs);
    const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
    const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
    const e = await rejection(w.write(64 * KiB - 1, Buffer.alloc(2)));
    assert.ok(e instanceof InvalidInputError);
    assert.equal(e.code, 'replica.writeOutOfRange');
    await w.write(64 * KiB - 1, Buffer.from([1]));
    await w.commit();
    assert.equal(backing.disks.get('d')!.bytes[64 * KiB - 1], 1);
    const after = await rejection(w.write(0, Buffer.from([1])));
    assert.ok(after instanceof ReplicaStateError);
    assert.equal(after.code, 'replica.cycleClosed');
  });

  it('a connection cut mid-cycle leaves the replica at the previous point; the retry succeeds (§7.5)', async () => {
    served = await serve(backing, certs);
    const proxy = new FaultProxy(served.port);
    const proxyPort = await proxy.listen();
    try {
      const t = client(proxyPort, certs);
      clients.push(t);
      const size = 1 * MiB;
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: size });
      const first = await disk.beginCycle({ generation: 'g', seq: 1, time: 1, point: 'crashConsistent' });
      await first.write(0, pattern(size, 10));
      await first.commit();
      const before = Buffer.from(backing.disks.get('d')!.bytes);

      // Eight 64 KiB writes then the commit; the relay cuts after ~200 KiB, so
      // the commit never reaches the server.
      let applied = 0;
      backing.hooks.beforeWrite = () => {
        applied++;
      };
      proxy.cutAfter(200 * KiB);
      const meta = { generation: 'g', seq: 2, time: 2, point: 'crashConsistent' as const };
      const cycle = async (): Promise<void> => {
        const w = await disk.beginCycle(meta);
        for (let i = 0; i < 8; i++) await w.write(i * 64 * KiB, pattern(64 * KiB, 20 + i));
        await w.commit();
      };
      const e = await rejection(cycle());
      assert.ok(e instanceof RecoverableError, `${e.code}: ${e.message}`);
      assert.equal(e.code, 'remote.connectionLost');
      await served.sessionsEnded(1);
      assert.equal(served.ended[0]!.abortedCycles, 1);
      // How many writes got through before the cut depends on TCP (a reset may
      // drop data not yet read); the next test cuts at an exact write.
      assert.ok(applied < 8, `the cycle did not reach the store whole (${applied} writes)`);
      const mem = backing.disks.get('d')!;
      assert.equal(mem.appliedSeq, 1);
      assert.equal(mem.open, undefined);
      assert.ok(mem.bytes.equals(before), 'the replica is at the previous point');

      proxy.cutAfter(undefined);
      await cycle();
      const expected = Buffer.from(before);
      for (let i = 0; i < 8; i++) pattern(64 * KiB, 20 + i).copy(expected, i * 64 * KiB);
      assert.equal(mem.appliedSeq, 2);
      assert.ok(mem.bytes.equals(expected), 'the retried cycle applied whole');
      assert.equal(proxy.connections, 2);
    } finally {
      await proxy.close();
    }
  });

  it('a connection cut by a hook at the third applied write: the cycle is rolled back, the retry succeeds (§7.5)', async () => {
    served = await serve(backing, certs, { maxChunkBytes: 16 * KiB });
    const proxy = new FaultProxy(served.port);
    const proxyPort = await proxy.listen();
    try {
      const t = client(proxyPort, certs);
      clients.push(t);
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: 1 * MiB });
      const meta = { generation: 'g', seq: 1, time: 1, point: 'appConsistent' as const };
      backing.hooks.beforeWrite = (_o, _l, nth) => {
        if (nth === 3) proxy.cutNow();
      };
      const w = await disk.beginCycle(meta);
      let caught: unknown;
      try {
        for (let i = 0; i < 32; i++) await w.write(i * 16 * KiB, pattern(16 * KiB, i));
        await w.commit();
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof RecoverableError, String(caught));
      assert.equal(caught.code, 'remote.connectionLost');
      await served.sessionsEnded(1);
      // Writes already received when the cut happened may still reach the
      // store's open cycle; the abort discards them.
      assert.ok(backing.counts.writes >= 3 && backing.counts.writes < 32, `${backing.counts.writes} writes reached the store`);
      assert.equal(backing.counts.aborts, 1);
      assert.equal(backing.counts.commits, 0);
      assert.ok(backing.disks.get('d')!.bytes.equals(Buffer.alloc(1 * MiB)), 'the replica is as before the cycle');
      backing.hooks.beforeWrite = undefined;
      const again = await disk.beginCycle(meta);
      for (let i = 0; i < 32; i++) await again.write(i * 16 * KiB, pattern(16 * KiB, i));
      assert.equal((await again.commit())!.kind, 'appConsistent');
      assert.ok(backing.disks.get('d')!.bytes.subarray(16 * KiB * 31, 16 * KiB * 32).equals(pattern(16 * KiB, 31)));
    } finally {
      await proxy.close();
    }
  });

  describe('errors keep their class, code and category (§9)', () => {
    it('a ReplicaStateError of the store arrives as a ReplicaStateError', async () => {
      served = await serve(backing, certs);
      const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const w = await disk.beginCycle({ generation: 'g', seq: 5, time: 1 });
      await w.commit();
      const e = await rejection(disk.beginCycle({ generation: 'g', seq: 5, time: 2 }));
      assert.ok(e instanceof ReplicaStateError, e.name);
      assert.ok(e instanceof NonRecoverableError);
      assert.equal(e.code, 'cycle.alreadyApplied');
      assert.equal(e.category, 'nonRecoverable');
      assert.equal(e.hint, 'Resume after appliedSeq.');
      assert.deepEqual(e.details, { seq: 5 });
      const open = await disk.beginCycle({ generation: 'g', seq: 6, time: 2 });
      const twice = await rejection(disk.beginCycle({ generation: 'g', seq: 7, time: 3 }));
      assert.ok(twice instanceof ReplicaStateError);
      assert.equal(twice.code, 'replica.cycleOpen');
      await open.abort();
    });

    it('an InvalidInputError arrives with its location', async () => {
      served = await serve(backing, certs);
      const e = await rejection(connectClient().openDisk({ diskId: 'd', sizeBytes: 1000 }));
      assert.ok(e instanceof InvalidInputError);
      assert.equal(e.code, 'replica.invalidSize');
      assert.equal(e.category, 'invalidInput');
      assert.deepEqual(e.where, { path: '/sizeBytes' });
      assert.equal(e.hint, 'Use a multiple of 512.');
    });

    it('a refused write is reported by the next call with its own code; abort and retry succeed (§7.3)', async () => {
      served = await serve(backing, certs, { maxChunkBytes: 16 * KiB });
      const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 1 * MiB });
      backing.hooks.beforeWrite = (_o, _l, nth) => {
        if (nth === 3) throw new RecoverableError('replica.lowDisk', 'No space left', { hint: 'Free space.' });
      };
      const meta = { generation: 'g', seq: 1, time: 1, point: 'crashConsistent' as const };
      const w = await disk.beginCycle(meta);
      let caught: unknown;
      try {
        for (let i = 0; i < 16; i++) await w.write(i * 16 * KiB, pattern(16 * KiB, i));
        await w.commit();
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof RecoverableError, String(caught));
      assert.equal(caught.code, 'replica.lowDisk');
      assert.equal(caught.hint, 'Free space.');
      await w.abort();
      assert.equal(backing.counts.commits, 0);
      backing.hooks.beforeWrite = undefined;
      const again = await disk.beginCycle(meta);
      for (let i = 0; i < 16; i++) await again.write(i * 16 * KiB, pattern(16 * KiB, i));
      assert.ok((await again.commit()) !== undefined);
      assert.ok(backing.disks.get('d')!.bytes.subarray(0, 16 * KiB).equals(pattern(16 * KiB, 0)));
    });

    it('anything else thrown by the store arrives as a bug (remote.serverError)', async () => {
      served = await serve(backing, certs);
      const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      backing.hooks.beforeCommit = () => {
        throw new TypeError('undefined is not a function');
      };
      const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
      const e = await rejection(w.commit());
      assert.ok(e instanceof BugError);
      assert.equal(e.code, 'remote.serverError');
      assert.match(e.message, /undefined is not a function/);
    });

    it('a disk deleted on the server while the client was disconnected is not silently recreated (§6.1)', async () => {
      served = await serve(backing, certs);
      const proxy = new FaultProxy(served.port);
      const proxyPort = await proxy.listen();
      try {
        const t = client(proxyPort, certs);
        clients.push(t);
        const disk = await t.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
        const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
        await w.commit();
        await connectClient().deleteDisk('d');
        proxy.cutAfter(0);
        assert.equal((await rejection(disk.state())).code, 'remote.connectionLost');
        proxy.cutAfter(undefined);
        const e = await rejection(disk.state());
        assert.ok(e instanceof NonRecoverableError);
        assert.equal(e.code, 'remote.diskDeleted');
        assert.deepEqual(await backing.listDisks(), []);
      } finally {
        await proxy.close();
      }
    });
  });

  it('compresses WRITE payloads when asked and when it pays (§8)', async () => {
    served = await serve(backing, certs, { maxChunkBytes: 64 * KiB });
    const t = connectClient({ compression: 'zstd' });
    const disk = await t.openDisk({ diskId: 'd', sizeBytes: 4 * MiB });
    const text = Buffer.from('The quick brown fox jumps over the lazy dog. '.repeat(50_000)).subarray(0, 2 * MiB);
    const noise = pattern(1 * MiB, 77);
    const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
    await w.write(0, text);
    await w.commit();
    const afterText = served.server.stats();
    assert.equal(afterText.receivedWriteBytes, 2 * MiB);
    assert.ok(afterText.receivedPayloadBytes < MiB / 8, `compressible data travels small (${afterText.receivedPayloadBytes} bytes)`);
    const w2 = await disk.beginCycle({ generation: 'g', seq: 2, time: 2 });
    await w2.write(2 * MiB, noise);
    await w2.commit();
    const afterNoise = served.server.stats();
    assert.equal(afterNoise.receivedPayloadBytes - afterText.receivedPayloadBytes, 1 * MiB, 'incompressible data travels raw');
    const bytes = backing.disks.get('d')!.bytes;
    assert.ok(bytes.subarray(0, 2 * MiB).equals(text));
    assert.ok(bytes.subarray(2 * MiB, 3 * MiB).equals(noise));
  });

  it('does not compress unless asked', async () => {
    served = await serve(backing, certs);
    const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 1 * MiB });
    const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
    await w.write(0, Buffer.alloc(512 * KiB, 1));
    await w.commit();
    assert.equal(served.server.stats().receivedPayloadBytes, 512 * KiB);
  });

  it('refuses a server whose target is of another kind', async () => {
    served = await serve(backing, certs);
    const e = await rejection(connectClient({ kind: 'host' }).listDisks());
    assert.ok(e instanceof NonRecoverableError);
    assert.equal(e.code, 'remote.kindMismatch');
  });

  it('fails calls after close with replica.targetClosed, and closes idempotently', async () => {
    served = await serve(backing, certs);
    const t = connectClient();
    const disk = await t.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
    await t.close();
    await t.close();
    assert.equal((await rejection(t.listDisks())).code, 'replica.targetClosed');
    assert.equal((await rejection(disk.state())).code, 'replica.targetClosed');
    await served.sessionsEnded(1);
    assert.equal(backing.counts.diskCloses, 1, 'the server returned the disk when the client left');
  });
});
