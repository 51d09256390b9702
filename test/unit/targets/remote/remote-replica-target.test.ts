import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { InvalidInputError, LifeboatError, RecoverableError } from '../../../../provider/errors';
import { ReplicaStateError } from '../../../../provider/targets/host/replica-state-error';
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
      // some writes reach the server and the commit never does.
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
      assert.ok(applied > 0 && applied < 8, `some writes of the cycle reached the store (${applied})`);
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
});
