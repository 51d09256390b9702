/**
 * The Azure target's own behaviour on a real Azurite (docs/azure-target.md):
 * configuration and error classification, the checksum index (answers,
 * staleness, rebuilds counted, sampled verification), and an outage in the
 * middle of a cycle retried by the core's Retrier until it converges.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { BlobServiceClient, PageBlobClient } from '@azure/storage-blob';
import { ManualClock } from '../../../../provider/clock';
import { LifeboatError } from '../../../../provider/errors';
import { type RetryReport, Retrier } from '../../../../provider/replication/retry';
import { AzureBlobReplicaTarget, type AzureBlobReplicaTargetOptions, containerClientOf, type AzureReplicaDisk, decodeVhdFooter } from '../../../../provider/targets/azure-blob';
import { KiB, MINUTE } from '../../../../provider/units';
import { Azurite, AZURITE_ACCOUNT, AZURITE_KEY } from '../../../support/azurite';
import { patternBytes, rejectsWith } from '../conformance';

const SIZE = 2048 * KiB;
const BLOCK = 64 * KiB;

function digestsOf(b: Buffer, bs: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length; at += bs) out.push(createHash('sha256').update(b.subarray(at, Math.min(b.length, at + bs))).digest());
  return out;
}

async function readAll(disk: AzureReplicaDisk, pointId: string): Promise<Buffer> {
  const v = await disk.openView(pointId);
  try {
    return await v.read(0, v.sizeBytes);
  } finally {
    await v.close();
  }
}

describe('AzureBlobReplicaTarget on Azurite: configuration, errors, index, outage', function () {
  this.timeout(120_000);
  let azurite: Azurite;
  let n = 0;
  const opened: AzureBlobReplicaTarget[] = [];

  before(async () => {
    azurite = await Azurite.start();
  });
  after(async () => {
    for (const t of opened) await t.close().catch(() => undefined);
    await azurite?.dispose();
  });

  async function open(extra: Partial<AzureBlobReplicaTargetOptions> = {}, container = `unit-${++n}`): Promise<AzureBlobReplicaTarget> {
    const t = await AzureBlobReplicaTarget.open({ connectionString: azurite.connectionString, container, maxTries: 1, batchBytes: 256 * KiB, ...extra });
    opened.push(t);
    return t;
  }

  describe('configuration and errors', () => {
    it('a wrong key is non-recoverable, with a clear message and hint, and never shows the key', async () => {
      const wrongKey = Buffer.alloc(64, 7).toString('base64');
      const e = await rejectsWith(
        AzureBlobReplicaTarget.open({ accountName: AZURITE_ACCOUNT, accountKey: wrongKey, endpoint: azurite.endpoint, container: 'wrong-key', maxTries: 1 }),
        'nonRecoverable', 'azure.authenticationFailed',
      );
      assert.match(e.message, /refused the credentials/);
      assert.match(e.hint ?? '', /account name and key/);
      for (const text of [e.message, e.hint ?? '', JSON.stringify(e.toJSON())]) {
        assert.ok(!text.includes(wrongKey) && !text.includes(AZURITE_KEY), 'the key never appears');
      }
    });

    it('the right key by account name works (HTTP is allowed on loopback)', async () => {
      const t = await AzureBlobReplicaTarget.open({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, endpoint: azurite.endpoint, container: 'by-key', maxTries: 1 });
      opened.push(t);
      assert.deepEqual(await t.listDisks(), []);
    });

    it('refuses plain HTTP to a remote endpoint unless allowed, and malformed settings, without quoting secrets', async () => {
      const remote = { accountName: 'acct', accountKey: AZURITE_KEY, endpoint: 'http://storage.example.com/acct', container: 'vault-a' };
      await rejectsWith(Promise.resolve().then(() => containerClientOf(remote)), 'invalidInput', 'azure.insecureEndpoint');
      assert.equal(containerClientOf({ ...remote, allowInsecureHttp: true }).url, 'http://storage.example.com/acct/vault-a');
      assert.match(containerClientOf({ ...remote, endpoint: undefined }).url, /^https:\/\/acct\.blob\.core\.windows\.net\/vault-a$/);
      const secret = 'AccountKey=c2VjcmV0;garbage';
      const e = await rejectsWith(Promise.resolve().then(() => containerClientOf({ connectionString: secret, container: 'vault-a' })), 'invalidInput', 'azure.invalidConfig');
      assert.ok(!e.message.includes('c2VjcmV0'));
      await rejectsWith(Promise.resolve().then(() => containerClientOf({ connectionString: azurite.connectionString, container: 'Bad_Name' })), 'invalidInput', 'azure.invalidConfig');
    });

    it('a missing container that may not be created is non-recoverable', async () => {
      await rejectsWith(open({ createContainer: false }, 'never-made'), 'nonRecoverable', 'azure.containerNotFound');
    });

    it('Azurite stopped: recoverable network errors', async () => {
      const t = await open();
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      await azurite.stop();
      try {
        await rejectsWith(disk.hashBlocks(BLOCK, 0, 1).then(() => disk.beginCycle({ generation: 'g', seq: 1, time: 1 })).then(async (w) => {
          await w.write(0, patternBytes(SIZE, 1));
          return w.commit();
        }), 'recoverable', 'azure.network');
        await rejectsWith(t.openDisk({ diskId: 'e', sizeBytes: SIZE }), 'recoverable', 'azure.network');
      } finally {
        await azurite.start();
      }
    });
  });

  describe('the checksum index (§9)', () => {
    async function withHistory(t: AzureBlobReplicaTarget): Promise<{ disk: AzureReplicaDisk; model: Buffer }> {
      const disk = await t.openDisk({ diskId: 'vm/disk0', sizeBytes: SIZE });
      const model = Buffer.alloc(SIZE);
      patternBytes(SIZE - 300 * KiB, 11).copy(model, 100 * KiB);
      let w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'crashConsistent' });
      await w.write(100 * KiB, model.subarray(100 * KiB, SIZE - 200 * KiB));
      await w.commit();
      // Scattered, unaligned writes: read-modify-write of their blocks, index patched.
      w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20 });
      for (const [off, len, seed] of [[7, 100, 1], [BLOCK - 3, 9, 2], [5 * BLOCK + 511, 70 * KiB, 3], [SIZE - 1, 1, 4]] as const) {
        const b = patternBytes(len, seed);
        await w.write(off, b);
        b.copy(model, off);
      }
      await w.commit();
      return { disk, model };
    }

    it('answers 64 KiB digests from the index, kept current by every cycle, without a rebuild', async () => {
      const t = await open({ verifySampleFraction: 1 });
      const { disk, model } = await withHistory(t);
      const d = await disk.hashBlocks(BLOCK, 0, SIZE / BLOCK);
      assert.deepEqual(d.digests, digestsOf(model, BLOCK));
      const s = disk.stats();
      assert.equal(s.indexRebuilds, 0, 'a fresh disk starts with a valid index and every commit patched it');
      assert.equal(s.indexMismatches, 0);
      assert.equal(s.indexDigests, SIZE / BLOCK);
      assert.equal(s.sampledBlocks, SIZE / BLOCK, 'with a sample fraction of 1 every block was verified');
      assert.ok(s.rmwBytes > 0, 'unaligned writes read the rest of their blocks');
      // Other block sizes are read and hashed.
      assert.deepEqual((await disk.hashBlocks(4 * KiB, 3, 40)).digests, digestsOf(model, 4 * KiB).slice(3, 43));
    });

    it('rebuilds a missing index and counts it', async () => {
      const container = `unit-${++n}`;
      const t = await open({}, container);
      const { model } = await withHistory(t);
      await t.close();
      const raw = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
      await raw.getBlobClient('disks/vm~2fdisk0/index.sha256').delete();
      const t2 = await open({}, container);
      const disk = await t2.openDisk({ diskId: 'vm/disk0', sizeBytes: SIZE });
      assert.deepEqual((await disk.hashBlocks(BLOCK, 0, SIZE / BLOCK)).digests, digestsOf(model, BLOCK));
      assert.equal(disk.stats().indexRebuilds, 1);
      assert.deepEqual((await disk.hashBlocks(BLOCK, 2, 5)).digests, digestsOf(model, BLOCK).slice(2, 7));
      assert.equal(disk.stats().indexRebuilds, 1, 'the rebuilt index serves the next call');
    });

    it('rebuilds a stale index (it describes another cycle) and counts it', async () => {
      const container = `unit-${++n}`;
      const t = await open({}, container);
      const { model } = await withHistory(t);
      await t.close();
      const index = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container).getPageBlobClient('disks/vm~2fdisk0/index.sha256');
      const meta = (await index.getProperties()).metadata!;
      // As a crash between patching the pages and recording the cycle leaves it.
      await index.uploadPages(Buffer.alloc(512, 0xee), 0, 512);
      await index.setMetadata({ ...meta, lbcycle: String(Number(meta.lbcycle) - 1) });
      const t2 = await open({}, container);
      const disk = await t2.openDisk({ diskId: 'vm/disk0', sizeBytes: SIZE });
      assert.deepEqual((await disk.hashBlocks(BLOCK, 0, SIZE / BLOCK)).digests, digestsOf(model, BLOCK));
      assert.equal(disk.stats().indexRebuilds, 1);
      assert.equal(disk.stats().indexMismatches, 0);
    });

    it('a sampled block that disagrees with a valid-looking index triggers a rebuild, counted', async () => {
      const container = `unit-${++n}`;
      const t = await open({}, container);
      const { model } = await withHistory(t);
      await t.close();
      const index = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container).getPageBlobClient('disks/vm~2fdisk0/index.sha256');
      // Entries of blocks 0–15 overwritten; the metadata still says the index is current.
      await index.uploadPages(Buffer.alloc(512, 0xee), 0, 512);
      const t2 = await open({ random: () => 0 }, container); // the sample is the first block asked for
      const disk = await t2.openDisk({ diskId: 'vm/disk0', sizeBytes: SIZE });
      assert.deepEqual((await disk.hashBlocks(BLOCK, 0, SIZE / BLOCK)).digests, digestsOf(model, BLOCK));
      assert.equal(disk.stats().indexMismatches, 1);
      assert.equal(disk.stats().indexRebuilds, 1);
    });
  });

  describe('a crash mid-apply (§5)', () => {
    it('the next open restores the extents the journal lists from the head; the previous point is intact', async () => {
      const container = `unit-${++n}`;
      const t = await open({ batchBytes: 128 * KiB }, container);
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const first = patternBytes(SIZE, 31);
      let w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'crashConsistent' });
      await w.write(0, first);
      const p1 = (await w.commit())!;
      w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20, point: 'crashConsistent' });
      await w.write(777, patternBytes(900 * KiB, 32)); // several flushes reach the base blob
      await t.close(); // the process dies: no commit, no abort
      const raw = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
      assert.ok(await raw.getBlobClient('disks/d/journal').exists(), 'the journal names the unfinished cycle');
      const base = await raw.getPageBlobClient('disks/d/replica.vhd').downloadToBuffer(0, SIZE);
      assert.ok(!base.equals(first), 'the base blob holds part of the unfinished cycle');

      const t2 = await open({}, container);
      const again = await t2.openDisk({ diskId: 'd', sizeBytes: SIZE });
      assert.equal(again.stats().restores, 1);
      assert.ok(!(await raw.getBlobClient('disks/d/journal').exists()));
      assert.ok((await raw.getPageBlobClient('disks/d/replica.vhd').downloadToBuffer(0, SIZE)).equals(first), 'the base blob is the head again');
      assert.deepEqual((await again.state()).points, [p1]);
      assert.ok((await readAll(again, p1.id)).equals(first));
      // The same seq applies again, and the footer survived.
      w = await again.beginCycle({ generation: 'g1', seq: 2, time: 20, point: 'crashConsistent' });
      await w.write(0, Buffer.from('x'));
      await w.commit();
      const blobSize = SIZE + 512;
      const footer = await raw.getPageBlobClient('disks/d/replica.vhd').downloadToBuffer(blobSize - 512, 512);
      assert.equal(footer.toString('ascii', 0, 8), 'conectix');
    });

    it('a first cycle that never committed leaves zeros; a committed cycle whose journal survived is not undone', async () => {
      const container = `unit-${++n}`;
      const t = await open({ batchBytes: 128 * KiB }, container);
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10 });
      await w.write(0, patternBytes(600 * KiB, 41));
      await t.close();
      const t2 = await open({ batchBytes: 128 * KiB }, container);
      const d2 = await t2.openDisk({ diskId: 'd', sizeBytes: SIZE });
      assert.equal(d2.stats().restores, 1);
      assert.deepEqual((await d2.hashBlocks(SIZE, 0, 1)).digests, digestsOf(Buffer.alloc(SIZE), SIZE));
      // Commit, then put back a journal of that (committed) cycle, as a crash before its deletion leaves it.
      const w2 = await d2.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'crashConsistent' });
      const data = patternBytes(SIZE, 42);
      await w2.write(0, data);
      const p = (await w2.commit())!;
      await t2.close();
      const raw = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
      const base = raw.getPageBlobClient('disks/d/replica.vhd');
      const props = await base.getProperties();
      const journal = raw.getAppendBlobClient('disks/d/journal');
      await journal.create({ metadata: { lbcycle: String(parseInt(p.id.slice(2), 16)), lbinstance: props.metadata!.lbinstance! } });
      const extent = Buffer.alloc(16);
      extent.writeBigUInt64BE(0n, 0);
      extent.writeBigUInt64BE(BigInt(SIZE), 8);
      await journal.appendBlock(extent, 16);
      const t3 = await open({}, container);
      const d3 = await t3.openDisk({ diskId: 'd', sizeBytes: SIZE });
      assert.equal(d3.stats().restores, 0, 'a committed cycle is never undone');
      assert.ok(!(await journal.exists()));
      assert.ok((await readAll(d3, p.id)).equals(data));
      assert.deepEqual((await d3.hashBlocks(SIZE, 0, 1)).digests, digestsOf(data, SIZE));
    });
  });

  describe('the failover surface (§8, §12)', () => {
    it('exportPoint writes a standalone fixed VHD equal to the point; the replica and its points go on untouched', async () => {
      const container = `unit-${++n}`;
      const t = await open({}, container);
      const size = 1536 * KiB; // not a whole MiB: the VHD is rounded up, the padding reads zeros
      const disk = await t.openDisk({ diskId: 'vm1/d0', sizeBytes: size });
      const a = patternBytes(size, 61);
      let w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'crashConsistent' });
      await w.write(0, a);
      const p1 = (await w.commit())!;
      w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20, point: 'crashConsistent' });
      await w.write(4096, patternBytes(8192, 62));
      const p2 = (await w.commit())!;
      const latest = await disk.materialise(p2.id);
      assert.equal(latest.zeroCopy, true);
      assert.equal(latest.location, disk.url);

      const exp = await disk.exportPoint(p1.id, 'vm1-failover');
      assert.equal(exp.zeroCopy, false);
      const blob = new PageBlobClient(exp.location, BlobServiceClient.fromConnectionString(azurite.connectionString).credential);
      const props = await blob.getProperties();
      assert.equal(props.contentLength, 2 * 1024 * KiB + 512, 'virtual size rounded up to a whole MiB, plus the footer');
      const bytes = await blob.downloadToBuffer();
      assert.ok(bytes.subarray(0, size).equals(a), 'the export is the point');
      assert.ok(bytes.subarray(size, 2048 * KiB).equals(Buffer.alloc(2048 * KiB - size)), 'padding reads zeros');
      assert.equal(decodeVhdFooter(bytes.subarray(bytes.length - 512)).sizeBytes, 2048 * KiB);
      // Writing the export (a VM running from it) changes neither the point nor the replica.
      await blob.uploadPages(Buffer.alloc(512, 0xab), 0, 512);
      assert.ok((await readAll(disk, p1.id)).equals(a));
      assert.deepEqual((await disk.state()).points, [p1, p2]);
      await t.deleteExport('vm1-failover');
      await t.deleteExport('vm1-failover');
      assert.equal(await blob.exists(), false);
      assert.deepEqual(await t.listDisks(), ['vm1/d0'], 'exports are not disks');
    });
  });

  describe('the read-only open (§8a)', () => {
    it('exports a point while the writer has a cycle in flight: no restore, the replica untouched, the writer\'s cycle commits whole', async () => {
      const container = `unit-${++n}`;
      const writer = await open({ batchBytes: 128 * KiB }, container);
      const disk = await writer.openDisk({ diskId: 'vm1/d0', sizeBytes: SIZE });
      const a = patternBytes(SIZE, 71);
      let w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'crashConsistent' });
      await w.write(0, a);
      const p1 = (await w.commit())!;
      // A cycle in flight: flushes in the base blob, the journal names them. A recovery by the reader would write
      // the head over them, and the writer's snapshot would then mix two states.
      w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20, point: 'crashConsistent' });
      const b = patternBytes(900 * KiB, 72);
      await w.write(4096, b);
      const raw = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
      assert.ok(await raw.getBlobClient('disks/vm1~2fd0/journal').exists());

      const reader = await open({}, container);
      const ro = await reader.openDiskReadOnly({ diskId: 'vm1/d0', sizeBytes: SIZE });
      assert.deepEqual(await ro.listPoints(), [p1]);
      const exp = await ro.exportPoint(p1.id, 'vm1-test--d0');
      const exported = await new PageBlobClient(exp.location, BlobServiceClient.fromConnectionString(azurite.connectionString).credential).downloadToBuffer();
      assert.ok(exported.subarray(0, SIZE).equals(a), 'the export is the point');
      const v = await ro.openView(p1.id);
      assert.ok((await v.read(0, SIZE)).equals(a));
      await ro.close();
      await reader.close();
      assert.ok(await raw.getBlobClient('disks/vm1~2fd0/journal').exists(), 'the writer\'s journal is still there');

      const p2 = (await w.commit())!;
      const expected = Buffer.from(a);
      b.copy(expected, 4096);
      assert.ok((await readAll(disk, p2.id)).equals(expected), 'the writer\'s cycle is whole');
      assert.equal(disk.stats().restores, 0);
      await rejectsWith((await writer.openDiskReadOnly({ diskId: 'vm1/d0', sizeBytes: SIZE })).exportPoint('p-00000000000000ff', 'x'), 'nonRecoverable', 'replica.pointNotFound');
      await rejectsWith(writer.openDiskReadOnly({ diskId: 'nothing', sizeBytes: SIZE }), 'nonRecoverable', 'replica.diskNotFound');
    });
  });

  describe('a commit whose reply is lost (§5)', () => {
    it('counts as committed: abort says cycle.alreadyApplied, the point is listed and exact, nothing is undone', async () => {
      const t = await open({ batchBytes: 128 * KiB });
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const data = patternBytes(SIZE, 51);
      const w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'appConsistent' });
      await w.write(0, data);
      // Fault injection: the snapshot is made, then the connection drops before the reply.
      const original = PageBlobClient.prototype.createSnapshot;
      PageBlobClient.prototype.createSnapshot = async function (this: PageBlobClient, ...args: Parameters<PageBlobClient['createSnapshot']>) {
        PageBlobClient.prototype.createSnapshot = original;
        await original.apply(this, args);
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      };
      try {
        await rejectsWith(w.commit(), 'recoverable', 'azure.network');
      } finally {
        PageBlobClient.prototype.createSnapshot = original;
      }
      await rejectsWith(w.abort(), 'nonRecoverable', 'cycle.alreadyApplied');
      const s = await disk.state();
      assert.equal(s.appliedSeq, 1);
      assert.equal(s.points.length, 1);
      assert.equal(s.points[0]!.kind, 'appConsistent');
      assert.ok((await readAll(disk, s.points[0]!.id)).equals(data));
      assert.deepEqual((await disk.hashBlocks(SIZE, 0, 1)).digests, digestsOf(data, SIZE));
      assert.equal(disk.stats().restores, 0);
      await rejectsWith(disk.beginCycle({ generation: 'g1', seq: 1, time: 10 }), 'nonRecoverable', 'cycle.alreadyApplied');
    });
  });

  describe('outage mid-cycle, retried by the core (replication/retry.ts)', () => {
    it('Azurite stopped after part of a cycle was written: recoverable errors, retries on the schedule, convergence after restart', async () => {
      const t = await open({ batchBytes: 128 * KiB });
      const disk = await t.openDisk({ diskId: 'd', sizeBytes: SIZE });
      const first = patternBytes(SIZE, 21);
      let w = await disk.beginCycle({ generation: 'g1', seq: 1, time: 10, point: 'crashConsistent' });
      await w.write(0, first);
      const p1 = (await w.commit())!;

      const second = Buffer.from(first);
      patternBytes(1024 * KiB, 22).copy(second, 300 * KiB);
      const clock = new ManualClock();
      const reports: RetryReport[] = [];
      let restarted: Promise<void> | undefined;
      const retrier = new Retrier({
        clock, jitterRatio: 0, what: 'cycle 2 of d',
        onAttemptFailed: (r) => {
          reports.push(r);
          if (r.attempt === 3) restarted = azurite.start();
        },
      });
      const run = retrier.run(async (ctx) => {
        w = await disk.beginCycle({ generation: 'g1', seq: 2, time: 20, point: 'crashConsistent' });
        try {
          for (let at = 0; at < 1024 * KiB; at += 128 * KiB) {
            // The first attempt loses the service after 256 KiB reached the base blob.
            if (ctx.attempt === 1 && at === 256 * KiB) await azurite.stop();
            await w.write(300 * KiB + at, second.subarray(300 * KiB + at, 300 * KiB + at + 128 * KiB));
          }
          return await w.commit();
        } catch (e) {
          await w.abort().catch(() => undefined);
          throw e;
        }
      });
      let settled = false;
      const done = run.finally(() => {
        settled = true;
      });
      while (!settled) {
        if (restarted !== undefined) await restarted;
        await clock.advance(MINUTE);
      }
      const p2 = (await done)!;
      assert.ok(reports.length >= 3, `${reports.length} failed attempts`);
      for (const r of reports) {
        assert.equal(r.category, 'recoverable');
        assert.ok(LifeboatError.isInstance(r.error) && r.error.code === 'azure.network', String(r.error));
        assert.equal(r.health, 'Warning');
      }
      assert.deepEqual(reports.slice(0, 3).map((r) => r.delayMs), [MINUTE, 2 * MINUTE, 4 * MINUTE], 'the back-off schedule');
      assert.ok(disk.stats().restores >= 1, 'the half-written cycle was undone from the head');
      assert.deepEqual((await disk.state()).points, [p1, p2]);
      assert.ok((await readAll(disk, p1.id)).equals(first), 'the previous point is intact');
      assert.ok((await readAll(disk, p2.id)).equals(second), 'the new point is the source at its cut');
      assert.deepEqual((await disk.hashBlocks(BLOCK, 0, SIZE / BLOCK)).digests, digestsOf(second, BLOCK));
    });
  });
});
