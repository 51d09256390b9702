/**
 * The ReplicaTarget conformance suite through the whole replication path:
 * RemoteReplicaTarget → mutual TLS on 127.0.0.1 → ReplicaServer →
 * HostReplicaTarget in a temporary directory. Run twice: once where a
 * "reopen" restarts everything (client, server and store, as after a
 * recovery-site agent restart), once where only disks are closed and opened
 * again (the server's disk sharing, docs/replication-protocol.md §6.2).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ReplicaTarget } from '../../../../provider/replication/target';
import { HostReplicaTarget } from '../../../../provider/targets/host/host-replica-target';
import { ReplicaServer } from '../../../../provider/targets/remote/replica-server';
import { RemoteReplicaTarget } from '../../../../provider/targets/remote/remote-replica-target';
import { describeReplicaTargetConformance, type ReplicaTargetFactory } from '../conformance';
import { testCerts } from './test-certs';

interface Stack {
  readonly root: string;
  readonly store: HostReplicaTarget;
  readonly server: ReplicaServer;
  readonly client: RemoteReplicaTarget;
}

function remoteFactory(withReopen: boolean): ReplicaTargetFactory {
  const stacks = new Map<ReplicaTarget, Stack>();
  let roots: string[] = [];

  async function stackOver(root: string): Promise<RemoteReplicaTarget> {
    const certs = await testCerts();
    const store = await HostReplicaTarget.open({ root, undoBatchBytes: 64 * 1024 });
    const server = new ReplicaServer({ target: store, key: certs.server.key, cert: certs.server.cert, ca: certs.ca, maxChunkBytes: 64 * 1024, windowBytes: 256 * 1024 });
    const { port } = await server.listen();
    const client = new RemoteReplicaTarget({ host: '127.0.0.1', port, ca: certs.ca, key: certs.client.key, cert: certs.client.cert, kind: 'host', maxChunkBytes: 64 * 1024 });
    stacks.set(client, { root, store, server, client });
    return client;
  }

  async function shut(s: Stack): Promise<void> {
    stacks.delete(s.client);
    await s.client.close();
    await s.server.close();
    await s.store.close();
  }

  const factory: ReplicaTargetFactory = {
    async create() {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-remote-target-'));
      roots.push(root);
      return stackOver(root);
    },
    async destroy() {
      for (const s of [...stacks.values()]) await shut(s);
      const doomed = roots;
      roots = [];
      await Promise.all(doomed.map((d) => fs.rm(d, { recursive: true, force: true })));
    },
  };
  if (withReopen) {
    factory.reopen = async (t) => {
      const s = stacks.get(t);
      if (s === undefined) throw new Error('reopen of an unknown target');
      await shut(s);
      return stackOver(s.root);
    };
  }
  return factory;
}

describeReplicaTargetConformance('RemoteReplicaTarget → ReplicaServer → HostReplicaTarget, restarting all on reopen', remoteFactory(true));
describeReplicaTargetConformance('RemoteReplicaTarget → ReplicaServer → HostReplicaTarget, reopening disks only', remoteFactory(false), { numRuns: 15, seed: 20260202 });
