/**
 * The replication core's property-based oracle (test/unit/replication/
 * replicator.test.ts) against the Azure target on a real Azurite, with fewer
 * cases: every retained point equals the source at its cut, and after the
 * final cycle (and every resync the workload triggers) the replica equals the
 * source. A `restartReplica` step closes the target and opens a new one over
 * the same container. Loading the oracle's module also registers its host
 * runs; in the full suite it is loaded once either way.
 */
import { createHash } from 'node:crypto';
import { AzureBlobReplicaTarget } from '../../../../provider/targets/azure-blob';
import { oracleProperty, oracleTargets } from '../../replication/replicator.test';
import { Azurite } from '../../../support/azurite';

describe('replication/replicator oracle against AzureBlobReplicaTarget (Azurite)', function () {
  this.timeout(600_000);
  let azurite: Azurite | undefined;
  before(async () => {
    azurite = await Azurite.start();
  });
  after(async () => {
    await azurite?.dispose();
  });

  it('every retained point equals the source at its cut, under faults; the replica converges to the source', async () => {
    const host = oracleTargets.open;
    // One container per world: named after the world's (unique) replica folder.
    oracleTargets.open = (root) => AzureBlobReplicaTarget.open({
      connectionString: azurite!.connectionString,
      container: `oracle-${createHash('sha256').update(root).digest('hex').slice(0, 24)}`,
      maxTries: 1,
      batchBytes: 128 * 1024,
      writeConcurrency: 4,
    });
    try {
      await oracleProperty(Number(process.env.LIFEBOAT_SEED ?? 20261124), Number(process.env.LIFEBOAT_AZURE_RUNS ?? 6));
    } finally {
      oracleTargets.open = host;
    }
  });
});
