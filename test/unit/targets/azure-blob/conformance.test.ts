/**
 * The ReplicaTarget conformance suite against a real Azurite on loopback,
 * through @azure/storage-blob. Every `create` uses a new container; a reopen
 * closes the target and opens a new one over the same container (a restart
 * of the agent), so an abandoned cycle is recovered from its marker (§5).
 */
import { type ReplicaTarget } from '../../../../provider/replication/target';
import { AzureBlobReplicaTarget } from '../../../../provider/targets/azure-blob';
import { Azurite } from '../../../support/azurite';
import { describeReplicaTargetConformance, type ReplicaTargetFactory } from '../conformance';

let azurite: Azurite | undefined;
let containers = 0;

function azureFactory(): ReplicaTargetFactory {
  const made = new Map<ReplicaTarget, string>();
  const open = (container: string): Promise<AzureBlobReplicaTarget> =>
    AzureBlobReplicaTarget.open({ connectionString: azurite!.connectionString, container, maxTries: 1, batchBytes: 256 * 1024, writeConcurrency: 4 });
  return {
    async create() {
      const container = `conf-${process.pid}-${++containers}`;
      const t = await open(container);
      made.set(t, container);
      return t;
    },
    async reopen(t) {
      const container = made.get(t)!;
      await t.close();
      made.delete(t);
      const n = await open(container);
      made.set(n, container);
      return n;
    },
    async destroy() {
      for (const t of made.keys()) await t.close();
      made.clear();
    },
  };
}

describe('AzureBlobReplicaTarget against Azurite', function () {
  this.timeout(600_000);
  before(async () => {
    azurite = await Azurite.start();
  });
  after(async () => {
    await azurite?.dispose();
  });
  describeReplicaTargetConformance('AzureBlobReplicaTarget (Azurite)', azureFactory(), { numRuns: 12, seed: 20261124 });
});
