import assert from 'node:assert/strict';
import { ManualClock, systemClock } from '../../../../provider/clock';
import { LifeboatError, NonRecoverableError, RecoverableError } from '../../../../provider/errors';
import { ClientConnection, type ConnectionSettings } from '../../../../provider/targets/remote/client-connection';
import { FrameType } from '../../../../provider/targets/remote/protocol';
import { KiB, MiB } from '../../../../provider/units';
import { client, pattern, serve, type Served } from './harness';
import { MemoryReplicaTarget } from './memory-target';
import { fakeServer, type RawPeer } from './raw-peer';
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

function settings(certs: TestCerts, port: number, extra: Partial<ConnectionSettings> = {}): ConnectionSettings {
  return {
    host: '127.0.0.1',
    port,
    ca: certs.ca,
    key: certs.client.key,
    cert: certs.client.cert,
    serverName: '127.0.0.1',
    authorizeServer: undefined,
    clock: systemClock,
    connectTimeoutMs: 30_000,
    requestTimeoutMs: 120_000,
    keepAliveIntervalMs: 30_000,
    windowBytes: 16 * MiB,
    maxChunkBytes: 1 * MiB,
    compression: 'none',
    ...extra,
  };
}

describe('ClientConnection (docs/replication-protocol.md §2, §4, §7.6)', function () {
  this.timeout(30_000);
  let certs: TestCerts;
  let served: Served | undefined;

  before(async () => {
    certs = await testCerts();
  });

  afterEach(async () => {
    await served?.server.close();
    served = undefined;
  });

  it('a client without a certificate is refused at the handshake: remote.unauthorized, never retried', async () => {
    const backing = new MemoryReplicaTarget();
    let seen!: (reason: string) => void;
    const rejection$ = new Promise<string>((r) => {
      seen = r;
    });
    served = await serve(backing, certs, { onPeerRejected: (r) => seen(r.reason) });
    const e = await rejection(ClientConnection.open(settings(certs, served.port, { key: undefined, cert: undefined })));
    assert.ok(e instanceof NonRecoverableError, `${e.code}: ${e.message}`);
    assert.equal(e.code, 'remote.unauthorized');
    assert.equal(e.category, 'nonRecoverable');
    assert.equal(served.server.stats().sessionsTotal, 0);
    assert.equal(backing.counts.openDisk, 0);
    assert.match(await rejection$, /CERTIFICATE/, 'the server refused it in the TLS handshake');
    assert.equal(served.server.stats().rejectedPeers, 1);
  });

  it('refuses a server that offers no version it speaks, and tells it so', async () => {
    let seen!: (f: RawPeer) => void;
    const peer = new Promise<RawPeer>((r) => {
      seen = r;
    });
    const fake = await fakeServer(certs, (p) => {
      p.send(FrameType.Hello, 0, { protocol: 'lifeboat-replication', versions: [2, 99], targetKind: 'host', compression: [], windowBytes: MiB, maxChunkBytes: 64 * KiB });
      seen(p);
    });
    try {
      const e = await rejection(ClientConnection.open(settings(certs, fake.port)));
      assert.ok(e instanceof NonRecoverableError);
      assert.equal(e.code, 'remote.protocolVersion');
      assert.deepEqual(e.details.offered, [2, 99]);
      const answer = (await (await peer).next())!;
      assert.equal(answer.type, FrameType.Error);
      assert.equal(answer.json.code, 'remote.protocolVersion');
    } finally {
      fake.server.close();
    }
  });

  it('refuses a peer that is not a replication server', async () => {
    const fake = await fakeServer(certs, (p) => p.send(FrameType.Hello, 0, { protocol: 'something-else', versions: [1] }));
    try {
      const e = await rejection(ClientConnection.open(settings(certs, fake.port)));
      assert.equal(e.code, 'remote.protocolError');
    } finally {
      fake.server.close();
    }
  });

  it('times out without a HELLO (connect timeout), recoverably', async () => {
    const clock = new ManualClock();
    const fake = await fakeServer(certs, () => undefined);
    try {
      const opening = ClientConnection.open(settings(certs, fake.port, { clock, connectTimeoutMs: 5_000 }));
      const caught = rejection(opening);
      await clock.advance(5_000);
      const e = await caught;
      assert.ok(e instanceof RecoverableError);
      assert.equal(e.code, 'remote.timeout');
    } finally {
      fake.server.close();
    }
  });

  it('cannot connect: remote.unreachable, recoverable', async () => {
    const fake = await fakeServer(certs, () => undefined);
    const port = fake.port;
    await new Promise<void>((r) => fake.server.close(() => r()));
    const e = await rejection(ClientConnection.open(settings(certs, port)));
    assert.ok(e instanceof RecoverableError);
    assert.equal(e.code, 'remote.unreachable');
  });

  it('a request without an answer times out (injected clock); the session ends and the open cycle is aborted', async () => {
    const backing = new MemoryReplicaTarget();
    served = await serve(backing, certs);
    const clock = new ManualClock();
    const t = client(served.port, certs, { clock, requestTimeoutMs: 60_000 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    try {
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1, point: 'crashConsistent' });
      backing.hooks.beforeWrite = () => gate;
      await w.write(0, pattern(4 * KiB, 1));
      const committing = rejection(w.commit());
      await clock.advance(59_000);
      await clock.advance(1_000);
      const e = await committing;
      assert.ok(e instanceof RecoverableError);
      assert.equal(e.code, 'remote.timeout');
      release();
      await served.sessionsEnded(1);
      assert.equal(served.ended[0]!.abortedCycles, 1);
      assert.equal(backing.counts.commits, 0, 'the commit queued behind the stuck write was never applied');
      assert.equal(backing.disks.get('d')!.appliedSeq, 0);
      const again = await rejection(w.write(0, Buffer.alloc(1)));
      assert.equal(again.code, 'remote.connectionLost');
      assert.equal(again.details.reason, 'timeout');
    } finally {
      release();
      await t.close();
    }
  });

  it('sends keep-alive pings that keep an otherwise idle session alive', async () => {
    const backing = new MemoryReplicaTarget();
    const serverClock = new ManualClock();
    served = await serve(backing, certs, { clock: serverClock, idleTimeoutMs: 60_000 });
    const clock = new ManualClock();
    const t = client(served.port, certs, { clock, keepAliveIntervalMs: 20_000 });
    try {
      await t.listDisks();
      for (let i = 0; i < 6; i++) {
        const frames = served.server.stats().framesReceived;
        await clock.advance(20_000);
        // Wait for the PING to arrive before the server's time moves on.
        while (served.server.stats().framesReceived === frames) await new Promise((r) => setImmediate(r));
        await serverClock.advance(20_000);
      }
      assert.equal(served.server.stats().sessions, 1);
      assert.equal(served.server.stats().sessionsTotal, 1, 'two minutes of pings and no reconnect');
    } finally {
      await t.close();
    }
  });
});
