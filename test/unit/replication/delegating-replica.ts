import { type BlockDigests, type BlockRun, type CycleMeta, type CycleWriter, type ReplicaDisk } from '../../../provider/replication/target';

/**
 * A ReplicaDisk that forwards every call to another; tests subclass it to
 * observe or inject faults into one method while the real store does the work.
 * The optional `hashBlockRuns` is forwarded while `offerRuns` is true and the
 * inner disk has it; otherwise it is absent, as on a target without it.
 */
export class DelegatingReplicaDisk implements ReplicaDisk {
  hashBlockRuns?: (blockSize: number, runs: readonly BlockRun[]) => Promise<readonly BlockDigests[]>;
  constructor(protected inner: ReplicaDisk, offerRuns = true) {
    if (offerRuns) {
      this.hashBlockRuns = (blockSize, runs) => {
        const inner = this.inner;
        return inner.hashBlockRuns === undefined ? Promise.reject(new Error('the inner disk has no hashBlockRuns')) : inner.hashBlockRuns(blockSize, runs);
      };
    }
  }
  get diskId(): string { return this.inner.diskId; }
  get sizeBytes(): number { return this.inner.sizeBytes; }
  /** Point at another disk (e.g. the same replica reopened after a restart). */
  swap(inner: ReplicaDisk): void { this.inner = inner; }
  state() { return this.inner.state(); }
  beginCycle(meta: CycleMeta): Promise<CycleWriter> { return this.inner.beginCycle(meta); }
  listPoints() { return this.inner.listPoints(); }
  prunePoints(olderThan: number) { return this.inner.prunePoints(olderThan); }
  hashBlocks(blockSize: number, first: number, count: number) { return this.inner.hashBlocks(blockSize, first, count); }
  openView(pointId: string) { return this.inner.openView(pointId); }
  materialise(pointId: string) { return this.inner.materialise(pointId); }
  close() { return this.inner.close(); }
}
