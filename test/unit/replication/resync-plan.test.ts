import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { BugError, InvalidInputError, LifeboatError } from '../../../provider/errors';
import { GiB, KiB, MiB } from '../../../provider/units';
import {
  advanceCursor, blockCount, blockRangesToRegions, canResume, compareDigests, DEFAULT_RESYNC_BLOCK_SIZE, differingRegions,
  digestBlocks, hashBatchBlocks, isResyncComplete, nextBatch, parseCursor, planResync, regionsToBlockRanges, type ResyncCursor,
  resyncProgress, resyncTrigger, serialiseCursor, shouldStartAutomatically, validateBlockSize,
} from '../../../provider/replication/resync-plan';
import { DailyWindow } from '../../../provider/replication/window';

const T0 = Date.UTC(2026, 0, 5, 12);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return LifeboatError.isInstance(e) ? e.code : 'foreign';
  }
  return undefined;
}

/** Run a resync over in-memory disks with the plan's pieces: what a driver does. */
function runResync(source: Buffer, replica: Buffer, cursor: ResyncCursor, maxBlocks: number, stopAfter = Infinity): ResyncCursor {
  let c = cursor;
  for (let n = 0; n < stopAfter; n++) {
    const batch = nextBatch(c, maxBlocks);
    if (batch === undefined) break;
    const from = batch.first * c.blockSize;
    const to = Math.min(c.diskSizeBytes, (batch.first + batch.count) * c.blockSize);
    const differing = compareDigests(
      digestBlocks(source.subarray(from, to), c.blockSize, batch.first),
      digestBlocks(replica.subarray(from, to), c.blockSize, batch.first),
    );
    let sent = 0;
    for (const r of differingRegions(differing, c.blockSize, c.diskSizeBytes)) {
      source.copy(replica, r.offset, r.offset, r.offset + r.length);
      sent += r.length;
    }
    c = advanceCursor(c, batch, { blocksDiffering: differing.length, bytesSent: sent }, T0 + n);
  }
  return c;
}

describe('replication/resync-plan', () => {
  describe('blocks', () => {
    it('block size must be a positive multiple of 4 KiB; 64 KiB by default', () => {
      assert.equal(DEFAULT_RESYNC_BLOCK_SIZE, 64 * KiB);
      for (const ok of [4 * KiB, 64 * KiB, 1 * MiB]) validateBlockSize(ok);
      for (const bad of [0, -4096, 512, 6 * KiB, 4096.5]) assert.equal(codeOf(() => validateBlockSize(bad)), 'resync.invalidBlockSize', String(bad));
    });

    it('counts blocks with a short last one, and batches hash requests', () => {
      assert.equal(blockCount(10 * GiB, 64 * KiB), 163840);
      assert.equal(blockCount(64 * KiB + 512, 64 * KiB), 2);
      assert.equal(hashBatchBlocks(64 * KiB), 1024);
      assert.equal(hashBatchBlocks(128 * MiB), 1);
    });

    const rangeCases: [string, { offset: number; length: number }[], { first: number; count: number }[]][] = [
      ['rounds outward', [{ offset: 100, length: 10 }], [{ first: 0, count: 1 }]],
      ['spans a boundary', [{ offset: 4095, length: 2 }], [{ first: 0, count: 2 }]],
      ['merges overlapping and adjacent, sorts', [{ offset: 20480, length: 4096 }, { offset: 0, length: 8192 }, { offset: 8192, length: 1 }], [{ first: 0, count: 3 }, { first: 5, count: 1 }]],
      ['clips to the disk and drops empty or outside regions', [{ offset: 36000, length: 100000 }, { offset: 100, length: 0 }, { offset: 50000, length: 5 }], [{ first: 8, count: 2 }]],
    ];
    for (const [name, regions, expected] of rangeCases) {
      it(`regionsToBlockRanges ${name}`, () => {
        // A 38 000-byte disk in 4 KiB blocks: 10 blocks, the last one short.
        assert.deepEqual(regionsToBlockRanges(regions, 4096, 38000), expected);
      });
    }

    it('blockRangesToRegions clips the last block; differingRegions coalesces adjacent blocks', () => {
      assert.deepEqual(blockRangesToRegions([{ first: 8, count: 2 }], 4096, 38000), [{ offset: 32768, length: 5232 }]);
      assert.deepEqual(differingRegions([9, 2, 3, 3, 5], 4096, 38000), [
        { offset: 8192, length: 8192 }, { offset: 20480, length: 4096 }, { offset: 36864, length: 1136 },
      ]);
    });
  });

  describe('digests', () => {
    it('digestBlocks is SHA-256 per block, the last one short', () => {
      const data = Buffer.alloc(4096 + 100, 7);
      const d = digestBlocks(data, 4096, 10);
      assert.equal(d.firstBlock, 10);
      assert.equal(d.digests.length, 2);
      assert.deepEqual(d.digests[1], createHash('sha256').update(data.subarray(4096)).digest());
    });

    it('compareDigests returns the absolute indexes of differing blocks', () => {
      const a = Buffer.alloc(5 * 4096);
      const b = Buffer.from(a);
      b[4096 + 1] = 1;
      b[4 * 4096] = 9;
      assert.deepEqual(compareDigests(digestBlocks(a, 4096, 100), digestBlocks(b, 4096, 100)), [101, 104]);
      assert.deepEqual(compareDigests(digestBlocks(a, 4096, 0), digestBlocks(a, 4096, 0)), []);
    });

    it('refuses to compare digests of different blocks', () => {
      const a = digestBlocks(Buffer.alloc(8192), 4096, 0);
      assert.throws(() => compareDigests(a, digestBlocks(Buffer.alloc(8192), 4096, 1)), BugError);
      assert.throws(() => compareDigests(a, digestBlocks(Buffer.alloc(4096), 4096, 0)), BugError);
      assert.throws(() => compareDigests(a, digestBlocks(Buffer.alloc(8192), 8192, 0)), BugError);
    });
  });

  describe('cursor', () => {
    it('a full plan covers the disk; batches never cross a range gap', () => {
      const c = planResync({ diskId: 'd0', diskSizeBytes: 10 * MiB, generation: 'g2', reason: 'manual', now: T0 });
      assert.equal(c.scope, 'full');
      assert.deepEqual(c.ranges, [{ first: 0, count: 160 }]);
      assert.deepEqual(nextBatch(c, 100), { first: 0, count: 100 });
      const p = planResync({ diskId: 'd0', diskSizeBytes: 10 * MiB, generation: 'g2', reason: 'unclean', now: T0, regions: [{ offset: 0, length: 3 * 64 * KiB }, { offset: 5 * MiB, length: 1 }] });
      assert.equal(p.scope, 'partial');
      assert.deepEqual(nextBatch(p, 100), { first: 0, count: 3 });
      const p2 = advanceCursor(p, { first: 0, count: 3 }, { blocksDiffering: 1, bytesSent: 64 * KiB }, T0 + 1);
      assert.equal(p2.nextBlock, 80);
      assert.deepEqual(resyncProgress(p2), { totalBlocks: 4, doneBlocks: 3, fraction: 0.75 });
      const p3 = advanceCursor(p2, nextBatch(p2)!, { blocksDiffering: 0, bytesSent: 0 }, T0 + 2);
      assert.equal(isResyncComplete(p3), true);
      assert.equal(nextBatch(p3), undefined);
      assert.deepEqual(p3.counters, { blocksCompared: 4, blocksDiffering: 1, bytesSent: 64 * KiB });
    });

    it('refuses a stale or repeated batch', () => {
      const c = planResync({ diskId: 'd0', diskSizeBytes: 1 * MiB, generation: 'g', reason: 'r', now: T0, blockSize: 4096 });
      const b = nextBatch(c, 10)!;
      const c2 = advanceCursor(c, b, { blocksDiffering: 0, bytesSent: 0 }, T0);
      assert.equal(codeOf(() => advanceCursor(c2, b, { blocksDiffering: 0, bytesSent: 0 }, T0)), 'resync.cursorMismatch');
      assert.equal(codeOf(() => advanceCursor(c2, { first: 10, count: 1000 }, { blocksDiffering: 0, bytesSent: 0 }, T0)), 'resync.cursorMismatch');
      assert.equal(codeOf(() => advanceCursor(c2, { first: 10, count: 2 }, { blocksDiffering: 3, bytesSent: 0 }, T0)), 'resync.cursorMismatch');
    });

    it('refuses bad disk sizes', () => {
      assert.equal(codeOf(() => planResync({ diskId: 'd', diskSizeBytes: 1000, generation: 'g', reason: 'r', now: T0 })), 'resync.invalidDiskSize');
    });

    it('round-trips through JSON mid-way and resumes to the same result', () => {
      const c = planResync({ diskId: 'd0', diskSizeBytes: 8 * MiB, generation: 'g7', reason: 'segment 12 lost', now: T0, blockSize: 64 * KiB });
      const mid = advanceCursor(c, nextBatch(c, 50)!, { blocksDiffering: 5, bytesSent: 5 * 64 * KiB }, T0 + 5);
      const text = serialiseCursor(mid);
      assert.deepEqual(parseCursor(text), mid);
      assert.equal(canResume(parseCursor(text), { diskId: 'd0', generation: 'g7', diskSizeBytes: 8 * MiB, blockSize: 64 * KiB }), true);
      assert.match(String(canResume(mid, { diskId: 'd0', generation: 'g8', diskSizeBytes: 8 * MiB, blockSize: 64 * KiB })), /generation g7/);
      assert.match(String(canResume(mid, { diskId: 'd0', generation: 'g7', diskSizeBytes: 16 * MiB, blockSize: 64 * KiB })), /disk size changed/);
      assert.match(String(canResume(mid, { diskId: 'd1', generation: 'g7', diskSizeBytes: 8 * MiB, blockSize: 64 * KiB })), /disk d0/);
      assert.match(String(canResume(mid, { diskId: 'd0', generation: 'g7', diskSizeBytes: 8 * MiB, blockSize: 4 * KiB })), /block size/);
    });

    const corrupt: [string, (o: Record<string, unknown>) => unknown][] = [
      ['not JSON', () => '{'],
      ['unknown version', (o) => ({ ...o, version: 2 })],
      ['missing generation', (o) => ({ ...o, generation: undefined })],
      ['bad scope', (o) => ({ ...o, scope: 'some' })],
      ['negative counter', (o) => ({ ...o, counters: { blocksCompared: -1, blocksDiffering: 0, bytesSent: 0 } })],
      ['bad block size', (o) => ({ ...o, blockSize: 1000 })],
      ['range past the disk', (o) => ({ ...o, ranges: [{ first: 0, count: 10_000 }] })],
      ['ranges out of order', (o) => ({ ...o, ranges: [{ first: 50, count: 2 }, { first: 10, count: 2 }], nextBlock: 50 })],
      ['nextBlock in a gap', (o) => ({ ...o, ranges: [{ first: 0, count: 2 }, { first: 10, count: 2 }], nextBlock: 5 })],
      ['fractional nextBlock', (o) => ({ ...o, nextBlock: 1.5 })],
    ];
    for (const [name, mutate] of corrupt) {
      it(`parseCursor refuses a cursor with ${name} (resync.cursorInvalid, with the safe way out)`, () => {
        const c = planResync({ diskId: 'd0', diskSizeBytes: 8 * MiB, generation: 'g', reason: 'r', now: T0 });
        const m = mutate(JSON.parse(serialiseCursor(c)) as Record<string, unknown>);
        const text = typeof m === 'string' ? m : JSON.stringify(m);
        assert.throws(() => parseCursor(text, { file: 'disk0.resync.json' }), (e: unknown) =>
          e instanceof InvalidInputError && e.code === 'resync.cursorInvalid' && /restarts from its first block/.test(e.hint ?? '') && e.where?.file === 'disk0.resync.json');
      });
    }

    it('property: batches visit every planned block exactly once, in order, and the replica ends equal to the source', () => {
      fc.assert(fc.property(
        fc.integer({ min: 1, max: 200 }), // disk size in 512-byte sectors
        fc.constantFrom(4096, 8192, 16384),
        fc.integer({ min: 1, max: 9 }),
        fc.option(fc.array(fc.record({ offset: fc.nat(110_000), length: fc.nat(20_000) }), { maxLength: 5 }), { nil: undefined }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.integer({ min: 1, max: 5 }),
        (sectors, blockSize, maxBlocks, regions, dirty, stopAfter) => {
          const size = sectors * 512;
          const source = Buffer.alloc(size);
          for (let i = 0; i < size; i++) source[i] = (i * 31 + 7) & 0xff;
          const replica = Buffer.from(source);
          // Damage the replica at random places; a partial plan must cover its damage.
          const damaged = regions === undefined ? dirty.map((d) => d % size) : [];
          for (const at of damaged) replica[at] ^= 0xff;
          const plan = planResync({ diskId: 'd', diskSizeBytes: size, generation: 'g', reason: 'r', now: T0, blockSize, ...(regions === undefined ? {} : { regions }) });
          // Visit order: collect the batches.
          const visited: number[] = [];
          let c = plan;
          for (let b = nextBatch(c, maxBlocks); b !== undefined; b = nextBatch(c, maxBlocks)) {
            assert.ok(b.count >= 1 && b.count <= maxBlocks);
            for (let i = 0; i < b.count; i++) visited.push(b.first + i);
            c = advanceCursor(c, b, { blocksDiffering: 0, bytesSent: 0 }, T0);
          }
          const planned = plan.ranges.flatMap((r) => Array.from({ length: r.count }, (_, i) => r.first + i));
          assert.deepEqual(visited, planned);
          assert.equal(c.counters.blocksCompared, planned.length);
          // Resync with an interruption and a JSON round trip in the middle.
          const half = runResync(source, replica, plan, maxBlocks, stopAfter);
          const done = runResync(source, replica, parseCursor(serialiseCursor(half)), maxBlocks);
          assert.equal(isResyncComplete(done), true);
          if (regions === undefined) {
            assert.ok(replica.equals(source), 'replica differs from source after a full resync');
            const distinctBlocks = new Set(damaged.map((d) => Math.floor(d / blockSize)));
            assert.equal(done.counters.blocksDiffering, distinctBlocks.size);
          }
        },
      ), { seed: 31337, numRuns: 150 });
    });
  });

  describe('resyncTrigger', () => {
    const disk = 10 * GiB;
    const base = { diskSizeBytes: disk, pendingLogBytes: 1 * GiB };

    it('nothing to do in the normal case', () => {
      assert.equal(resyncTrigger(base), undefined);
      assert.equal(resyncTrigger({ ...base, pendingLogBytes: 5 * GiB - 1 }), undefined);
    });

    const full: [string, Partial<Parameters<typeof resyncTrigger>[0]>, string][] = [
      ['pending logs reach 50 % of the disk', { pendingLogBytes: 5 * GiB }, 'resync.logBudgetExceeded'],
      ['a segment is lost', { segmentProblem: 'segment 0000002a missing' }, 'resync.segmentLost'],
      ['the replica diverged', { replicaDiverged: 'replica generation g9 unknown' }, 'resync.replicaDiverged'],
      ['an operator asks', { manual: true }, 'resync.manual'],
      ['an unclean stop lost its activity log', { uncleanStop: { activityLog: undefined } }, 'resync.uncleanStop'],
    ];
    for (const [name, input, code] of full) {
      it(`full resync when ${name}`, () => {
        const d = resyncTrigger({ ...base, ...input })!;
        assert.equal(d.scope, 'full');
        assert.deepEqual(d.regions, [{ offset: 0, length: disk }]);
        assert.deepEqual(d.triggers.map((t) => t.code), [code]);
        assert.equal(d.reason, d.triggers[0]!.message);
      });
    }

    it('a custom threshold', () => {
      assert.equal(resyncTrigger({ ...base, thresholdFraction: 0.1 })?.triggers[0]?.code, 'resync.logBudgetExceeded');
    });

    it('partial resync over the activity-log extents after an unclean stop', () => {
      const al = [{ offset: 4 * MiB, length: 4 * MiB }, { offset: 100 * MiB, length: 0 }, { offset: 1 * GiB, length: 4 * MiB }];
      const d = resyncTrigger({ ...base, uncleanStop: { activityLog: al } })!;
      assert.equal(d.scope, 'partial');
      assert.deepEqual(d.regions, [al[0], al[2]]);
      assert.match(d.reason, /2 activity-log extent/);
    });

    it('no resync after an unclean stop with an empty activity log', () => {
      assert.equal(resyncTrigger({ ...base, uncleanStop: { activityLog: [] } }), undefined);
    });

    it('any full trigger makes an unclean-stop resync full, and all triggers are reported', () => {
      const d = resyncTrigger({ ...base, manual: true, segmentProblem: 'chain broken at 7', uncleanStop: { activityLog: [{ offset: 0, length: 4096 }] } })!;
      assert.equal(d.scope, 'full');
      assert.deepEqual(d.triggers.map((t) => t.code), ['resync.segmentLost', 'resync.manual', 'resync.uncleanStop']);
      assert.match(d.reason, /chain broken at 7; requested by an operator; unclean stop/);
    });
  });

  describe('shouldStartAutomatically', () => {
    const window = new DailyWindow({ start: '22:00', end: '06:00' });
    const noon = Date.UTC(2026, 0, 5, 12);
    const night = Date.UTC(2026, 0, 5, 23);
    it('waits for the window by default and says when it opens', () => {
      const d = shouldStartAutomatically(noon, window, true);
      assert.equal(d.start, false);
      assert.equal(d.notBefore, Date.UTC(2026, 0, 5, 22));
      assert.match(d.reason, /waiting for the resync window 22:00–06:00 UTC, opening 2026-01-05T22:00:00.000Z/);
    });
    it('starts inside the window, or at once without a window', () => {
      assert.equal(shouldStartAutomatically(night, window, true).start, true);
      assert.equal(shouldStartAutomatically(noon, undefined, true).start, true);
    });
    it('never starts by itself when automatic resync is off', () => {
      const d = shouldStartAutomatically(night, window, false);
      assert.equal(d.start, false);
      assert.equal(d.notBefore, undefined);
    });
    it('a partial resync starts at once, window or not', () => {
      assert.equal(shouldStartAutomatically(noon, window, true, 'partial').start, true);
    });
  });
});
