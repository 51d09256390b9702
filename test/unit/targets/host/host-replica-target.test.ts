import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostReplicaTarget } from '../../../../provider/targets/host';
import { type ReplicaTarget } from '../../../../provider/replication/target';
import { describeReplicaTargetConformance } from '../conformance';

/** Fresh temporary stores; `destroy` removes every one made since the last call. */
function hostFactory(): { create(): Promise<ReplicaTarget>; reopen(t: ReplicaTarget): Promise<ReplicaTarget>; destroy(): Promise<void> } {
  let dirs: string[] = [];
  return {
    async create() {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-host-target-'));
      dirs.push(root);
      return HostReplicaTarget.open({ root, undoBatchBytes: 64 * 1024 });
    },
    async reopen(t) {
      await t.close();
      return HostReplicaTarget.open({ root: (t as HostReplicaTarget).root, undoBatchBytes: 64 * 1024 });
    },
    async destroy() {
      const doomed = dirs;
      dirs = [];
      await Promise.all(doomed.map((d) => fs.rm(d, { recursive: true, force: true })));
    },
  };
}

describeReplicaTargetConformance('HostReplicaTarget', hostFactory());
