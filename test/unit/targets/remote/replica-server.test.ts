import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { ManualClock } from '../../../../provider/clock';
import { LifeboatError, NonRecoverableError, RecoverableError } from '../../../../provider/errors';
import { FrameType, SUPPORTED_VERSIONS } from '../../../../provider/targets/remote/protocol';
import { type PeerRejection } from '../../../../provider/targets/remote/replica-server';
import { type RemoteReplicaTarget } from '../../../../provider/targets/remote/remote-replica-target';
import { KiB, MiB } from '../../../../provider/units';
import { client, pattern, serve, type Served } from './harness';
import { MemoryReplicaTarget } from './memory-target';
import { RawPeer } from './raw-peer';
import { opensslTestCerts, testCerts, type TestCerts } from './test-certs';

async function rejection(p: Promise<unknown>): Promise<LifeboatError> {
  try {
    await p;
  } catch (e) {
    assert.ok(LifeboatError.isInstance(e), `expected a LifeboatError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

/** Resolve on the next turn of the event loop. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ReplicaServer (docs/replication-protocol.md)', function () {
  this.timeout(30_000);
  let certs: TestCerts;
  let backing: MemoryReplicaTarget;
  let served: Served | undefined;
  let rejected: PeerRejection[];
  let nextRejection: Promise<PeerRejection>;
  let onRejected: (r: PeerRejection) => void;
  const clients: RemoteReplicaTarget[] = [];

  before(async () => {
    certs = await testCerts();
  });

  beforeEach(() => {
    backing = new MemoryReplicaTarget();
    rejected = [];
    nextRejection = new Promise((resolve) => {
      onRejected = resolve;
    });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await served?.server.close();
    served = undefined;
  });

  async function start(extra: Parameters<typeof serve>[2] = {}): Promise<Served> {
    served = await serve(backing, certs, {
      onPeerRejected: (r) => {
        rejected.push(r);
        onRejected(r);
      },
      ...extra,
    });
    return served;
  }

  function connectClient(extra: Parameters<typeof client>[2] = {}): RemoteReplicaTarget {
    const c = client(served!.port, certs, extra);
    clients.push(c);
    return c;
  }

  describe('authentication (§2)', () => {
    it('refuses a client whose certificate another CA issued, at the handshake', async () => {
      const s = await start();
      const t = connectClient({ key: certs.foreignClient.key, cert: certs.foreignClient.cert });
      const e = await rejection(t.openDisk({ diskId: 'd', sizeBytes: 64 * KiB }));
      assert.ok(e instanceof NonRecoverableError, `${e.code}: ${e.message}`);
      assert.equal(e.code, 'remote.unauthorized');
      const r = await nextRejection;
      assert.notEqual(r.reason, 'authorize', 'refused by TLS itself');
      assert.equal(s.server.stats().sessionsTotal, 0);
      assert.equal(backing.counts.openDisk, 0, 'nothing reached the store');
    });

    it('lets the authorize hook refuse a valid certificate, and sees its subject', async () => {
      const seen: string[] = [];
      const s = await start({
        authorize: (cert) => {
          seen.push(String(cert.subject.CN));
          return cert.subject.CN === 'other-host';
        },
      });
      const e = await rejection(connectClient().openDisk({ diskId: 'd', sizeBytes: 64 * KiB }));
      assert.ok(e instanceof NonRecoverableError);
      assert.equal(e.code, 'remote.unauthorized');
      assert.equal((await nextRejection).reason, 'authorize');
      assert.equal(backing.counts.openDisk, 0);

      const other = connectClient({ key: certs.otherClient.key, cert: certs.otherClient.cert });
      await other.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      assert.deepEqual(seen, ['primary-host', 'other-host']);
      assert.equal(s.server.stats().sessionsTotal, 1);
      assert.equal(s.server.stats().rejectedPeers, 1);
    });

    it('an authorize hook that throws refuses too', async () => {
      await start({
        authorize: () => {
          throw new Error('registry unavailable');
        },
      });
      const e = await rejection(connectClient().listDisks());
      assert.equal(e.code, 'remote.unauthorized');
    });

    it('works with certificates made by openssl, and refuses a foreign one there too', async () => {
      const o = await opensslTestCerts();
      const s = await serve(backing, o);
      served = s;
      const ok = client(s.port, o, { serverName: 'localhost' });
      clients.push(ok);
      await ok.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const foreign = client(s.port, o, { key: o.foreignClient.key, cert: o.foreignClient.cert });
      clients.push(foreign);
      assert.equal((await rejection(foreign.listDisks())).code, 'remote.unauthorized');
    });

    it('the client refuses a server whose certificate names another host', async () => {
      await start({ key: certs.wrongNameServer.key, cert: certs.wrongNameServer.cert });
      const e = await rejection(connectClient().listDisks());
      assert.ok(e instanceof NonRecoverableError);
      assert.equal(e.code, 'remote.unauthorized');
      assert.equal(served!.server.stats().sessionsTotal, 0);
    });

    it('the server chooses AES-128-GCM for a client that prefers AES-256 (§2)', async () => {
      const s = await start();
      const socket = connect({
        host: '127.0.0.1', port: s.port, ca: certs.ca, key: certs.client.key, cert: certs.client.cert, minVersion: 'TLSv1.3',
        ciphers: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256',
      });
      try {
        await once(socket, 'secureConnect');
        assert.equal(socket.getCipher().name, 'TLS_AES_128_GCM_SHA256');
      } finally {
        socket.destroy();
      }
    });

    it('the client offers AES-128-GCM first, so a server that follows the client gets it (§2)', async () => {
      const plain = createServer({ key: certs.server.key, cert: certs.server.cert, ca: certs.ca, requestCert: true, minVersion: 'TLSv1.3', honorCipherOrder: false });
      const chosen = new Promise<string>((resolve) => plain.once('secureConnection', (socket: TLSSocket) => {
        resolve(socket.getCipher().name);
        socket.destroy();
      }));
      plain.listen(0, '127.0.0.1');
      await once(plain, 'listening');
      try {
        const c = client((plain.address() as AddressInfo).port, certs);
        clients.push(c);
        // The server never says HELLO: the request fails; the handshake is what is looked at.
        const failed = rejection(c.listDisks());
        assert.equal(await chosen, 'TLS_AES_128_GCM_SHA256');
        assert.ok(LifeboatError.isInstance(await failed));
      } finally {
        plain.close();
      }
    });

    it('the client refuses a server its CA did not issue, and one its own hook rejects', async () => {
      await start();
      const foreignTrust = connectClient({ ca: certs.foreignCa });
      assert.equal((await rejection(foreignTrust.listDisks())).code, 'remote.unauthorized');
      const pinned = connectClient({ authorizeServer: () => false });
      assert.equal((await rejection(pinned.listDisks())).code, 'remote.unauthorized');
      const right = connectClient({ serverName: 'localhost', authorizeServer: (cert) => cert.subject.CN === 'recovery-host' });
      assert.deepEqual(await right.listDisks(), []);
    });
  });

  describe('flow control (§7.1)', () => {
    it('a cycle far larger than the window completes, and the server never buffers more than the window', async () => {
      const windowBytes = 64 * KiB;
      const chunk = 16 * KiB;
      const s = await start({ windowBytes, maxChunkBytes: chunk });
      // Every 16th write of the store waits until the window is full, so the
      // client is really held back by credit, not by a fast store.
      backing.hooks.beforeWrite = async (_o, _l, nth) => {
        if (nth % 16 !== 1) return;
        while (s.server.stats().bufferedBytes < windowBytes) await turn();
      };
      const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 8 * MiB });
      const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
      const total = 4 * MiB;
      for (let at = 0; at < total; at += 64 * KiB) await w.write(at, pattern(64 * KiB, at));
      await w.commit();
      const st = s.server.stats();
      assert.equal(st.peakBufferedBytes, windowBytes, 'the window was filled and never exceeded');
      assert.equal(st.receivedWriteBytes, total);
      assert.equal(st.bufferedBytes, 0);
      assert.equal(backing.counts.writes, total / chunk);
      const bytes = backing.disks.get('d')!.bytes;
      for (let at = 0; at < total; at += 64 * KiB) assert.ok(bytes.subarray(at, at + 64 * KiB).equals(pattern(64 * KiB, at)));
    });

    it('ends the session of a client that ignores the window, aborting its cycle', async () => {
      const s = await start({ windowBytes: 8 * KiB, maxChunkBytes: 4 * KiB });
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      backing.hooks.beforeWrite = () => gate;
      const peer = await RawPeer.connect(s.port, certs);
      assert.equal((await peer.next())!.type, FrameType.Hello);
      peer.send(FrameType.Hello, 0, { version: 1, compression: 'none', windowBytes: 8 * KiB, maxChunkBytes: 4 * KiB });
      peer.send(FrameType.Request, 1, { op: 'target.openDisk', diskId: 'd', sizeBytes: 64 * KiB, mustExist: false });
      const opened = (await peer.next())!;
      peer.send(FrameType.Request, 2, { op: 'disk.beginCycle', disk: opened.json.disk, meta: { generation: 'g', seq: 1, time: 1 } });
      const begun = (await peer.next())!;
      const cycle = begun.json.cycle as number;
      for (let i = 0; i < 3; i++) peer.send(FrameType.Write, cycle, { offset: i * 4 * KiB, length: 4 * KiB }, Buffer.alloc(4 * KiB, i));
      const err = (await peer.next())!;
      assert.equal(err.type, FrameType.Error);
      assert.equal(err.id, 0);
      assert.equal(err.json.code, 'remote.protocolError');
      await peer.closed;
      release();
      await s.sessionsEnded(1);
      assert.equal(s.ended[0]!.reason, 'protocolError');
      assert.equal(s.ended[0]!.abortedCycles, 1);
      assert.equal(backing.counts.commits, 0);
      assert.equal(backing.disks.get('d')!.appliedSeq, 0);
    });
  });

  describe('versions (§4, §11)', () => {
    it('offers its versions first and refuses a client that picks another', async () => {
      const s = await start();
      const peer = await RawPeer.connect(s.port, certs);
      const hello = (await peer.next())!;
      assert.equal(hello.type, FrameType.Hello);
      assert.deepEqual(hello.json.versions, [...SUPPORTED_VERSIONS]);
      assert.equal(hello.json.protocol, 'lifeboat-replication');
      assert.equal(hello.json.targetKind, 'memory');
      peer.send(FrameType.Hello, 0, { version: 99, compression: 'none', windowBytes: 64 * KiB, maxChunkBytes: 4 * KiB });
      peer.send(FrameType.Request, 1, { op: 'target.openDisk', diskId: 'd', sizeBytes: 64 * KiB, mustExist: false });
      const err = (await peer.next())!;
      assert.equal(err.type, FrameType.Error);
      assert.equal(err.json.code, 'remote.protocolVersion');
      assert.equal(err.json.category, 'nonRecoverable');
      assert.equal(await peer.next(), undefined, 'then the connection closes');
      assert.equal(backing.counts.openDisk, 0, 'the request after the refused HELLO was not served');
    });

    it('refuses any frame other than HELLO before the handshake', async () => {
      const s = await start();
      const peer = await RawPeer.connect(s.port, certs);
      await peer.next();
      peer.send(FrameType.Request, 1, { op: 'target.listDisks' });
      const err = (await peer.next())!;
      assert.equal(err.json.code, 'remote.protocolError');
      await peer.closed;
    });
  });

  describe('sessions (§7.5, §7.6)', () => {
    it('ends an idle session, aborting its open cycle; the client reconnects on its next call', async () => {
      const clock = new ManualClock();
      const s = await start({ clock, idleTimeoutMs: 10_000 });
      const t = connectClient();
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
      await w.write(0, pattern(8 * KiB, 1));
      await clock.advance(9_000);
      assert.equal(s.server.stats().sessions, 1, 'not idle yet');
      await clock.advance(1_000);
      await s.sessionsEnded(1);
      assert.equal(s.ended[0]!.reason, 'idleTimeout');
      assert.equal(s.ended[0]!.abortedCycles, 1);
      const e = await rejection(w.commit());
      assert.ok(e instanceof RecoverableError);
      assert.equal(e.code, 'remote.connectionLost');
      assert.equal(e.details.reason, 'idleTimeout');
      assert.equal((await disk.state()).appliedSeq, 0, 'a new session serves the same disk object');
      assert.equal(s.server.stats().sessionsTotal, 2);
    });

    it('a new session beginning the same disk supersedes a stale one (§7.5)', async () => {
      const s = await start();
      const stale = connectClient();
      const a = await stale.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const wa = await a.beginCycle({ generation: 'g', seq: 1, time: 1 });
      await wa.write(0, pattern(8 * KiB, 1));
      const fresh = connectClient({ key: certs.otherClient.key, cert: certs.otherClient.cert });
      const b = await fresh.openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const wb = await b.beginCycle({ generation: 'g', seq: 1, time: 1 });
      await wb.write(0, pattern(8 * KiB, 2));
      await wb.commit();
      await s.sessionsEnded(1);
      assert.equal(s.ended[0]!.reason, 'superseded');
      assert.equal(s.ended[0]!.abortedCycles, 1);
      const e = await rejection(wa.commit());
      assert.equal(e.code, 'remote.connectionLost');
      assert.equal(e.details.reason, 'superseded');
      assert.ok(backing.disks.get('d')!.bytes.subarray(0, 8 * KiB).equals(pattern(8 * KiB, 2)));
      assert.equal(backing.counts.aborts, 1);
      assert.equal(backing.counts.commits, 1);
    });

    it('close() ends every session, aborting open cycles, and leaves the target open', async () => {
      const s = await start();
      const disk = await connectClient().openDisk({ diskId: 'd', sizeBytes: 64 * KiB });
      const w = await disk.beginCycle({ generation: 'g', seq: 1, time: 1 });
      await w.write(0, pattern(4 * KiB, 1));
      await s.server.close();
      assert.equal(s.ended[0]!.reason, 'serverClosing');
      assert.equal(s.server.stats().abortedCycles, 1);
      assert.equal(backing.disks.get('d')!.open, undefined);
      assert.equal(backing.counts.diskCloses, 1, 'the server returned the disk it opened');
      assert.deepEqual(await backing.listDisks(), ['d']);
      const e = await rejection(w.commit());
      assert.equal(e.code, 'remote.connectionLost');
    });
  });
});
