/**
 * Set-up shared by the protocol tests: a `ReplicaServer` on 127.0.0.1 over a
 * backing target, and clients of it with the test certificates.
 */
import { type ReplicaTarget } from '../../../../provider/replication/target';
import { ReplicaServer, type ReplicaServerOptions } from '../../../../provider/targets/remote/replica-server';
import { RemoteReplicaTarget, type RemoteReplicaTargetOptions } from '../../../../provider/targets/remote/remote-replica-target';
import { type SessionEndInfo } from '../../../../provider/targets/remote/server-session';
import { type TestCerts } from './test-certs';

export interface Served {
  readonly server: ReplicaServer;
  readonly port: number;
  /** Every ended session, in order. */
  readonly ended: SessionEndInfo[];
  /** Resolves when `n` sessions in total have ended (clean-up done). */
  sessionsEnded(n: number): Promise<void>;
}

/** Start a server over `target` with the test certificates. */
export async function serve(target: ReplicaTarget, certs: TestCerts, extra: Partial<ReplicaServerOptions> = {}): Promise<Served> {
  const ended: SessionEndInfo[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = new ReplicaServer({
    target,
    key: certs.server.key,
    cert: certs.server.cert,
    ca: certs.ca,
    ...extra,
    onSessionEnd: (info) => {
      ended.push(info);
      extra.onSessionEnd?.(info);
      for (const w of waiters.filter((x) => ended.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
  });
  const { port } = await server.listen();
  return {
    server,
    port,
    ended,
    sessionsEnded: (n) =>
      ended.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
  };
}

/** A client of `port` as the primary-site agent (CN primary-host). */
export function client(port: number, certs: TestCerts, extra: Partial<RemoteReplicaTargetOptions> = {}): RemoteReplicaTarget {
  return new RemoteReplicaTarget({
    host: '127.0.0.1',
    port,
    ca: certs.ca,
    key: certs.client.key,
    cert: certs.client.cert,
    kind: 'memory',
    ...extra,
  });
}

/** Deterministic bytes for a seed (xorshift32). */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
