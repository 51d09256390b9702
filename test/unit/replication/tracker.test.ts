import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../../../provider/clock';
import { LifeboatError } from '../../../provider/errors';
import {
  type ByteRange,
  parseSegmentName,
  RecordType,
  scanSegment,
  verifyChain,
} from '../../../provider/format';
import { readActivityLog } from '../../../provider/replication/activity-log';
import { type TrackedDisk as TrackedDiskType, TrackedDisk, type TrackedDiskOptions } from '../../../provider/replication/tracker';

const KiB = 1024;

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-tracker-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function options(dir: string, extra: Partial<TrackedDiskOptions> = {}): TrackedDiskOptions {
  return { diskPath: path.join(dir, 'disk0.img'), diskId: 'disk0', clock: new ManualClock(), ...extra };
}

/** Segment files of a directory, by name (name order is log order within a generation). */
function segmentFiles(dir: string, generation?: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => {
      const p = parseSegmentName(f);
      return p !== undefined && (generation === undefined || p.generation === generation);
    })
    .sort()
    .map((f) => path.join(dir, f));
}

/**
 * The core oracle at the log level: the disk at tracking start with the
 * write records of `files` applied in order, read with the pure scanner.
 */
function replay(base: Buffer, files: readonly string[]): Buffer {
  const disk = Buffer.from(base);
  for (const f of files) {
    const bytes = fs.readFileSync(f);
    const r = scanSegment(bytes);
    assert.equal(r.outcome, 'sealed', `${f} is not sealed`);
    for (const rec of r.records) {
      if (rec.type === 'write') bytes.copy(disk, rec.offset, rec.dataPosition, rec.dataPosition + rec.length);
    }
  }
  return disk;
}

/** The sealed segments in the directory equal the tracker's list, and chain (§5). */
function assertSealedChain(td: TrackedDiskType, dir: string): string[] {
  const listed = td.sealedSegments().map((s) => s.path);
  const files = segmentFiles(dir, td.generation).filter((f) => parseSegmentName(path.basename(f))!.seq !== td.currentSeq);
  assert.deepEqual(listed, files);
  const links = files.map((f) => {
    const r = scanSegment(fs.readFileSync(f));
    return { header: r.header!, segmentChecksum: r.seal!.segmentChecksum };
  });
  assert.equal(verifyChain(links), undefined);
  return files;
}

function covered(range: ByteRange, by: readonly ByteRange[]): boolean {
  return by.some((r) => r.offset <= range.offset && range.offset + range.length <= r.offset + r.length);
}

function code(e: unknown): string {
  return LifeboatError.isInstance(e) ? e.code : String(e);
}

async function rejectsWith(p: Promise<unknown>, expected: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal(code(e), expected);
    return true;
  });
}

describe('replication/tracker', () => {
  describe('writes and reads', () => {
    it('reads back writes of any alignment and size, and logs each before the disk', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 1 << 20 });
      const model = Buffer.alloc(1 << 20);
      const writes: Array<[number, number]> = [
        [0, 4096],
        [1, 1],
        [4095, 2],
        [10_000, 70_000],
        [(1 << 20) - 3, 3],
        [123_457, 511],
      ];
      for (const [offset, length] of writes) {
        const data = randomBytes(length);
        await td.write(offset, data);
        data.copy(model, offset);
      }
      assert.ok((await td.read(0, 1 << 20)).equals(model));
      assert.ok((await td.read(4094, 4)).equals(model.subarray(4094, 4098)));
      const info = await td.seal();
      assert.equal(info?.seq, 1);
      assert.equal(info?.dataBytes, writes.reduce((s, [, l]) => s + l, 0));
      assert.ok(replay(Buffer.alloc(1 << 20), [info!.path]).equals(model));
      await td.close();
    });

    it('refuses writes and reads outside the disk, changing nothing', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      await rejectsWith(td.write(64 * KiB - 1, Buffer.alloc(2)), 'tracker.outOfRange');
      await rejectsWith(td.write(-1, Buffer.alloc(1)), 'tracker.outOfRange');
      await rejectsWith(td.write(0.5, Buffer.alloc(1)), 'tracker.outOfRange');
      await rejectsWith(td.read(0, 64 * KiB + 1), 'tracker.outOfRange');
      await td.write(5, Buffer.alloc(0));
      assert.equal(td.pendingLogBytes(), 128);
      assert.equal(await td.seal(), undefined);
      await td.write(0, Buffer.from('ok')); // still usable: invalid input does not stop the tracker
      await td.close();
    });

    it('splits writes longer than a record (32 MiB) or than the activity log holds', async () => {
      const small = await TrackedDisk.create({
        ...options(tmp),
        sizeBytes: 256 * KiB,
        activityLogExtentSize: 4 * KiB,
        activityLogSlots: 2,
      });
      const data = randomBytes(50 * KiB);
      await small.write(1000, data);
      const info = (await small.seal())!;
      const r = scanSegment(fs.readFileSync(info.path));
      const writes = r.records.filter((x) => x.type === 'write');
      // Pieces end at extent boundaries, two extents at most.
      assert.deepEqual(
        writes.map((w) => [w.offset, w.length]),
        [
          [1000, 8192 - 1000],
          [8192, 8192],
          [16384, 8192],
          [24576, 8192],
          [32768, 8192],
          [40960, 8192],
          [49152, 1000 + 50 * KiB - 49152],
        ],
      );
      assert.ok(replay(Buffer.alloc(256 * KiB), [info.path]).subarray(1000, 1000 + data.length).equals(data));
      await small.close();

      const big = await TrackedDisk.create({
        diskPath: path.join(tmp, 'big.img'),
        diskId: 'big',
        sizeBytes: 64 << 20,
        activityLogExtentSize: 64 << 20,
        activityLogSlots: 1,
      });
      const large = randomBytes(40 << 20);
      await big.write(512, large);
      const bigInfo = (await big.seal())!;
      const lengths = scanSegment(fs.readFileSync(bigInfo.path)).records.filter((x) => x.type === 'write').map((x) => x.length);
      assert.deepEqual(lengths, [32 << 20, (40 << 20) - (32 << 20)]);
      assert.ok((await big.read(512, 40 << 20)).equals(large));
      await big.close();
    });

    it('runs concurrent calls one at a time in call order', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      const a = Buffer.alloc(1000, 0xaa);
      const b = Buffer.alloc(1000, 0xbb);
      const pending = [td.write(0, a), td.write(500, b), td.flush(), td.seal(), td.write(0, b.subarray(0, 10))];
      await Promise.all(pending);
      const sealed = td.sealedSegments();
      assert.equal(sealed.length, 1);
      const expected = Buffer.alloc(64 * KiB);
      a.copy(expected, 0);
      b.copy(expected, 500);
      assert.ok(replay(Buffer.alloc(64 * KiB), [sealed[0]!.path]).equals(expected));
      b.copy(expected, 0, 0, 10);
      assert.ok((await td.read(0, 64 * KiB)).equals(expected));
      await td.close();
    });
  });

  describe('create, open, close', () => {
    it('tracks an existing disk file and keeps its content as the base', async () => {
      const diskPath = path.join(tmp, 'disk0.img');
      const base = randomBytes(32 * KiB);
      fs.writeFileSync(diskPath, base);
      const td = await TrackedDisk.create(options(tmp));
      assert.equal(td.sizeBytes, 32 * KiB);
      assert.ok((await td.read(0, 32 * KiB)).equals(base));
      await td.write(100, Buffer.from('hello'));
      const info = (await td.seal())!;
      assert.ok(replay(base, [info.path]).equals(await td.read(0, 32 * KiB)));
      await td.close();
    });

    it('refuses bad creations and opens with codes', async () => {
      await rejectsWith(TrackedDisk.create(options(tmp)), 'tracker.noDisk');
      await rejectsWith(TrackedDisk.create({ ...options(tmp), sizeBytes: 1000 }), 'tracker.invalidDiskSize');
      await rejectsWith(TrackedDisk.create({ ...options(tmp), diskId: 'a.b', sizeBytes: 4096 }), 'tracker.invalidOptions');
      await rejectsWith(TrackedDisk.create({ ...options(tmp), sizeBytes: 4096, activityLogExtentSize: 5000 }), 'tracker.invalidOptions');
      await rejectsWith(TrackedDisk.create({ ...options(tmp), sizeBytes: 4096, activityLogSlots: 504 }), 'tracker.invalidOptions');
      await rejectsWith(TrackedDisk.open(options(tmp)), 'tracker.notTracked');
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 4096 });
      await rejectsWith(TrackedDisk.open(options(tmp)), 'tracker.alreadyOpen');
      await td.close();
      await rejectsWith(TrackedDisk.create({ ...options(tmp), sizeBytes: 4096 }), 'tracker.alreadyTracked');
      await rejectsWith(TrackedDisk.create({ ...options(tmp), diskId: 'other', sizeBytes: 8192 }), 'tracker.sizeMismatch');
      fs.truncateSync(path.join(tmp, 'disk0.img'), 8192);
      await rejectsWith(TrackedDisk.open(options(tmp)), 'tracker.diskResized');
      fs.rmSync(path.join(tmp, 'disk0.img'));
      await rejectsWith(TrackedDisk.open(options(tmp)), 'tracker.diskMissing');
    });

    it('a clean stop seals, and the next open reports no unclean stop and continues the chain', async () => {
      const clock = new ManualClock();
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB, clock });
      const generation = td.generation;
      await td.write(0, Buffer.alloc(100, 1));
      const first = (await td.seal())!;
      await td.write(200, Buffer.alloc(100, 2));
      await clock.advance(5000);
      await td.close();
      await td.close(); // idempotent
      await rejectsWith(td.write(0, Buffer.alloc(1)), 'tracker.closed');

      const again = await TrackedDisk.open({ ...options(tmp), clock });
      assert.deepEqual(again.recovery, {
        uncleanStop: false,
        suspectExtents: [],
        preStopSeq: 2,
        truncatedBytes: 0,
        generationRestarted: undefined,
      });
      assert.equal(again.generation, generation);
      assert.deepEqual(
        again.sealedSegments().map((s) => s.seq),
        [1, 2],
      );
      assert.deepEqual(again.sealedSegments()[0], first);
      assert.equal(again.currentSeq, 3);
      await again.write(300, Buffer.alloc(100, 3));
      await again.seal();
      const files = assertSealedChain(again, tmp);
      assert.ok(replay(Buffer.alloc(64 * KiB), files).equals(await again.read(0, 64 * KiB)));
      assert.equal(again.sealedSegments()[1]!.sealedAt, first.sealedAt + 5000);
      await again.close();
    });

    it('remove deletes the log and the activity log, not the disk', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 4096 });
      await td.write(0, Buffer.from('x'));
      await td.seal();
      await rejectsWith(TrackedDisk.remove(options(tmp)), 'tracker.alreadyOpen');
      await td.close();
      await TrackedDisk.remove(options(tmp));
      await TrackedDisk.remove(options(tmp));
      assert.deepEqual(fs.readdirSync(tmp), ['disk0.img']);
      const fresh = await TrackedDisk.create(options(tmp));
      assert.equal((await fresh.read(0, 1)).toString(), 'x');
      await fresh.close();
    });
  });

  describe('segments', () => {
    it('seal returns undefined without writes; release deletes applied segments; pending bytes follow', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      assert.equal(await td.seal(), undefined);
      assert.equal(td.currentSeq, 1);
      for (let i = 0; i < 4; i++) {
        await td.write(i * 1000, Buffer.alloc(1000, i));
        await td.seal();
      }
      assert.deepEqual(
        td.sealedSegments().map((s) => s.seq),
        [1, 2, 3, 4],
      );
      const pending = td.pendingLogBytes();
      assert.equal(pending, td.sealedSegments().reduce((s, x) => s + x.fileBytes, 0) + 128);
      await td.release(2);
      await td.release(2);
      assert.deepEqual(
        td.sealedSegments().map((s) => s.seq),
        [3, 4],
      );
      assert.equal(segmentFiles(tmp).length, 3);
      assert.ok(td.pendingLogBytes() < pending);
      await td.release(100); // never the current segment
      assert.equal(segmentFiles(tmp).length, 1);
      await rejectsWith(td.release(-1), 'tracker.invalidSeq');
      await td.close();
    });

    it('startGeneration discards the old generation and restarts at 1', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      const old = td.generation;
      await td.write(0, Buffer.alloc(10, 1));
      await td.seal();
      await td.write(0, Buffer.alloc(10, 2));
      const fresh = await td.startGeneration();
      assert.notEqual(fresh, old);
      assert.equal(td.generation, fresh);
      assert.equal(td.currentSeq, 1);
      assert.deepEqual(td.sealedSegments(), []);
      assert.equal(segmentFiles(tmp, old).length, 0);
      const base = await td.read(0, 64 * KiB);
      await td.write(5, Buffer.alloc(10, 3));
      await td.close();
      const again = await TrackedDisk.open(options(tmp));
      assert.equal(again.generation, fresh);
      assert.ok(replay(base, assertSealedChain(again, tmp)).equals(await again.read(0, 64 * KiB)));
      await again.close();
    });

    it('applying every sealed segment to the disk at tracking start reproduces the disk at the seal (property)', async () => {
      const size = 96 * KiB;
      const op = fc.oneof(
        { weight: 8, arbitrary: fc.record({ kind: fc.constant('write' as const), offset: fc.nat(size - 1), length: fc.integer({ min: 1, max: 20 * KiB }), salt: fc.nat(255) }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
        { weight: 2, arbitrary: fc.constant({ kind: 'seal' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), async (ops, slots) => {
          const dir = fs.mkdtempSync(path.join(tmp, 'p-'));
          const base = randomBytes(size);
          fs.writeFileSync(path.join(dir, 'disk0.img'), base);
          const opts = options(dir, { activityLogExtentSize: 4 * KiB, activityLogSlots: slots });
          let td = await TrackedDisk.create(opts);
          try {
            for (const o of ops) {
              if (o.kind === 'write') {
                const length = Math.min(o.length, size - o.offset);
                await td.write(o.offset, Buffer.alloc(length, o.salt).fill(o.offset & 0xff, 0, 1));
              } else if (o.kind === 'flush') {
                await td.flush();
              } else if (o.kind === 'seal') {
                await td.seal();
              } else {
                await td.close();
                td = await TrackedDisk.open(opts);
                assert.equal(td.recovery.uncleanStop, false);
              }
            }
            await td.seal();
            const files = assertSealedChain(td, dir);
            assert.ok(replay(base, files).equals(await td.read(0, size)));
            // The activity log never holds more extents than it has slots.
            const al = await readActivityLog(path.join(dir, 'disk0.al'));
            assert.ok(al.kind === 'found' && al.page.extents.length <= slots);
          } finally {
            await td.close();
          }
        }),
        { seed: 701, numRuns: 25 },
      );
    });
  });

  describe('activity log', () => {
    it('adds an extent durably before writing into it and flushes before evicting a dirty one', async () => {
      const td = await TrackedDisk.create({
        ...options(tmp),
        sizeBytes: 64 * KiB,
        activityLogExtentSize: 4 * KiB,
        activityLogSlots: 2,
      });
      const al = path.join(tmp, 'disk0.al');
      await td.write(0, Buffer.alloc(10, 1));
      let r = await readActivityLog(al);
      assert.ok(r.kind === 'found');
      assert.deepEqual(r.page.extents, [0]);
      assert.equal(r.page.state, 'running');
      await td.write(4096 * 3, Buffer.alloc(10, 2));
      r = await readActivityLog(al);
      assert.ok(r.kind === 'found');
      assert.deepEqual([...r.page.extents].sort(), [0, 3]);

      // Both slots dirty: a third extent forces a flush, then evicts extent 0 (least recently used).
      const current = segmentFiles(tmp)[0]!;
      const before = scanSegment(fs.readFileSync(current)).records.map((x) => x.type);
      assert.deepEqual(before, ['write', 'write']);
      await td.write(4096 * 5, Buffer.alloc(10, 3));
      const after = scanSegment(fs.readFileSync(current)).records.map((x) => x.type);
      assert.deepEqual(after, ['write', 'write', 'flush', 'write']);
      r = await readActivityLog(al);
      assert.ok(r.kind === 'found');
      assert.deepEqual([...r.page.extents].sort(), [3, 5]);

      // Touching extent 3 makes 5 the least recently used; after a flush it is evicted without another flush.
      await td.write(4096 * 3 + 100, Buffer.alloc(10, 4));
      await td.flush();
      await td.write(4096 * 7, Buffer.alloc(10, 5));
      r = await readActivityLog(al);
      assert.ok(r.kind === 'found');
      assert.deepEqual([...r.page.extents].sort(), [3, 7]);
      const types = scanSegment(fs.readFileSync(current)).records.map((x) => x.type);
      assert.deepEqual(types, ['write', 'write', 'flush', 'write', 'write', 'flush', 'write']);

      await td.close();
      r = await readActivityLog(al);
      assert.ok(r.kind === 'found');
      assert.equal(r.page.state, 'clean');
      assert.deepEqual(r.page.extents, []);
    });

    it('flush is idempotent and does nothing without writes', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      await td.flush();
      await td.write(0, Buffer.alloc(10));
      await td.flush();
      await td.flush();
      const types = scanSegment(fs.readFileSync(segmentFiles(tmp)[0]!)).records.map((x) => x.type);
      assert.deepEqual(types, ['write', 'flush']);
      await td.close();
    });
  });

  describe('recovery after an unclean stop (§8)', () => {
    /** Copy a directory's files: the state a crash would leave if the page cache reached the disk. */
    function snapshot(from: string, to: string): void {
      fs.mkdirSync(to);
      for (const f of fs.readdirSync(from)) {
        if (fs.statSync(path.join(from, f)).isFile()) fs.copyFileSync(path.join(from, f), path.join(to, f));
      }
    }

    it('recovers the valid prefix and reports suspect extents covering every write in flight (property)', async () => {
      const size = 128 * KiB;
      const op = fc.oneof(
        { weight: 10, arbitrary: fc.record({ kind: fc.constant('write' as const), offset: fc.nat(size - 1), length: fc.integer({ min: 1, max: 12 * KiB }) }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'seal' as const }) },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(op, { minLength: 1, maxLength: 30 }),
          fc.integer({ min: 1, max: 8 }),
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.uint8Array({ maxLength: 64 }),
          fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
          async (ops, slots, cutFraction, junk, damage) => {
            const dir = fs.mkdtempSync(path.join(tmp, 'c-'));
            const live = path.join(dir, 'live');
            const crashed = path.join(dir, 'crashed');
            fs.mkdirSync(live);
            const base = randomBytes(size);
            fs.writeFileSync(path.join(live, 'disk0.img'), base);
            const geometry = { activityLogExtentSize: 4 * KiB, activityLogSlots: slots };
            const td = await TrackedDisk.create(options(live, geometry));
            for (const o of ops) {
              if (o.kind === 'write') await td.write(o.offset, randomBytes(Math.min(o.length, size - o.offset)));
              else if (o.kind === 'flush') await td.flush();
              else await td.seal();
            }
            snapshot(live, crashed);
            await td.close();

            // The crash: the current segment keeps at least what the last flush made durable (its
            // last flush marker) and loses a random part of the rest, plus a torn junk tail; the disk
            // may hold any bytes where unflushed writes went.
            const current = segmentFiles(crashed).find((f) => scanSegment(fs.readFileSync(f)).outcome === 'end')!;
            const bytes = fs.readFileSync(current);
            const scan = scanSegment(bytes);
            const lastMarker = [...scan.records].reverse().find((x) => x.type === 'flush');
            const durable = lastMarker === undefined ? 128 : lastMarker.dataPosition;
            const unflushed = scan.records.filter((x) => x.type === 'write' && x.position >= durable);
            const cut = durable + Math.floor(cutFraction * (bytes.length - durable));
            // Junk must not look like a flush marker; real crashes leave zeros or stale bytes.
            const tail = Buffer.from(junk).map((b) => (b === RecordType.flush ? 0 : b));
            fs.writeFileSync(current, Buffer.concat([bytes.subarray(0, cut), tail]));
            const diskFile = path.join(crashed, 'disk0.img');
            const disk = fs.readFileSync(diskFile);
            unflushed.forEach((w, i) => {
              if (damage[i % damage.length]) randomBytes(w.length).copy(disk, w.offset);
            });
            fs.writeFileSync(diskFile, disk);

            const rec = await TrackedDisk.open(options(crashed, geometry));
            try {
              assert.equal(rec.recovery.uncleanStop, true);
              assert.equal(rec.recovery.generationRestarted, undefined);
              for (const w of unflushed) {
                assert.ok(covered({ offset: w.offset, length: w.length }, rec.recovery.suspectExtents), `write at ${w.offset} not suspect`);
              }
              assert.ok(rec.recovery.suspectExtents.length <= slots);
              const files = assertSealedChain(rec, crashed);
              assert.equal(rec.recovery.preStopSeq, rec.sealedSegments().at(-1)?.seq ?? 0);
              // I9: outside the suspect extents, the disk is the base with the log applied.
              const replayed = replay(base, files);
              const now = await rec.read(0, size);
              const mask = Buffer.alloc(size, 1);
              for (const s of rec.recovery.suspectExtents) mask.fill(0, s.offset, s.offset + s.length);
              for (let i = 0; i < size; i++) {
                if (mask[i] === 1 && replayed[i] !== now[i]) assert.fail(`byte ${i} differs outside the suspect extents`);
              }
              // Relogging the suspects makes the log describe the disk exactly.
              assert.deepEqual(rec.currentSuspects(), rec.recovery.suspectExtents);
              await rec.relogSuspects();
              assert.deepEqual(rec.currentSuspects(), []);
              await rec.seal();
              assert.ok(replay(base, assertSealedChain(rec, crashed)).equals(await rec.read(0, size)));
            } finally {
              await rec.close();
            }
          },
        ),
        { seed: 702, numRuns: 30 },
      );
    });

    it('suspect extents survive further stops until acknowledged', async () => {
      const geometry = { sizeBytes: 64 * KiB, activityLogExtentSize: 4 * KiB, activityLogSlots: 4 };
      const live = path.join(tmp, 'live');
      fs.mkdirSync(live);
      const td = await TrackedDisk.create({ ...options(live), ...geometry });
      await td.write(5000, Buffer.alloc(10, 1));
      await td.write(20_000, Buffer.alloc(10, 1));
      const crashed = path.join(tmp, 'crashed');
      fs.cpSync(live, crashed, { recursive: true });
      await td.close();

      const expected = [
        { offset: 4096, length: 4096 },
        { offset: 16384, length: 4096 },
      ];
      let rec = await TrackedDisk.open(options(crashed, geometry));
      assert.deepEqual(rec.recovery.suspectExtents, expected);
      await rec.write(40_000, Buffer.alloc(10, 2));
      await rec.close();
      rec = await TrackedDisk.open(options(crashed, geometry));
      assert.equal(rec.recovery.uncleanStop, false);
      assert.deepEqual(rec.recovery.suspectExtents, expected);
      await rec.acknowledgeSuspects();
      await rec.acknowledgeSuspects();
      assert.deepEqual(rec.currentSuspects(), []);
      await rec.close();
      rec = await TrackedDisk.open(options(crashed, geometry));
      assert.deepEqual(rec.recovery.suspectExtents, []);
      await rec.close();
    });

    it('a lost activity log, a gap, or damage before a completed flush start a new generation', async () => {
      const setUp = async (name: string): Promise<{ dir: string; generation: string }> => {
        const dir = path.join(tmp, name);
        fs.mkdirSync(dir);
        const td = await TrackedDisk.create({ ...options(dir), sizeBytes: 64 * KiB });
        for (let i = 0; i < 3; i++) {
          await td.write(i * 100, Buffer.alloc(100, i + 1));
          await td.seal();
        }
        await td.write(1000, Buffer.alloc(1000, 9));
        await td.flush();
        await td.write(3000, Buffer.alloc(10, 9));
        const generation = td.generation;
        fs.cpSync(dir, `${dir}-crash`, { recursive: true });
        await td.close();
        return { dir: `${dir}-crash`, generation };
      };
      const expectRestart = async (dir: string, generation: string, expectedCode: string): Promise<void> => {
        const td = await TrackedDisk.open(options(dir));
        try {
          assert.equal(td.recovery.generationRestarted?.code, expectedCode);
          assert.equal(td.recovery.uncleanStop, true);
          assert.notEqual(td.generation, generation);
          assert.equal(td.currentSeq, 1);
          assert.deepEqual(td.recovery.suspectExtents, []);
          assert.equal(segmentFiles(dir, generation).length, 0);
          assert.equal(segmentFiles(dir).length, 1);
        } finally {
          await td.close();
        }
      };

      const lost = await setUp('lost');
      fs.rmSync(path.join(lost.dir, 'disk0.al'));
      await expectRestart(lost.dir, lost.generation, 'activityLog.lost');

      const garbled = await setUp('garbled');
      fs.writeFileSync(path.join(garbled.dir, 'disk0.al'), Buffer.alloc(9000, 7));
      await expectRestart(garbled.dir, garbled.generation, 'activityLog.lost');

      const gap = await setUp('gap');
      fs.rmSync(segmentFiles(gap.dir)[1]!);
      await expectRestart(gap.dir, gap.generation, 'chain.gap');

      const notSealed = await setUp('notsealed');
      const second = segmentFiles(notSealed.dir)[1]!;
      fs.truncateSync(second, fs.statSync(second).size - 1);
      await expectRestart(notSealed.dir, notSealed.generation, 'segment.notSealed');

      const damaged = await setUp('damaged');
      const current = segmentFiles(damaged.dir)[3]!;
      const bytes = fs.readFileSync(current);
      bytes[128 + 32 + 500] ^= 1; // data of the flushed 1000-byte write
      fs.writeFileSync(current, bytes);
      await expectRestart(damaged.dir, damaged.generation, 'segment.corrupt');
    });

    it('finishes a seal interrupted before the next segment existed, and recreates a torn new segment', async () => {
      const dir = path.join(tmp, 'd');
      fs.mkdirSync(dir);
      const td = await TrackedDisk.create({ ...options(dir), sizeBytes: 64 * KiB });
      await td.write(0, Buffer.alloc(100, 1));
      await td.seal();
      const generation = td.generation;
      fs.cpSync(dir, `${dir}-a`, { recursive: true });
      fs.cpSync(dir, `${dir}-b`, { recursive: true });
      await td.close();

      // a: the stop came before segment 2 was created.
      fs.rmSync(segmentFiles(`${dir}-a`)[1]!);
      let rec = await TrackedDisk.open(options(`${dir}-a`));
      assert.equal(rec.recovery.generationRestarted, undefined);
      assert.equal(rec.generation, generation);
      assert.equal(rec.currentSeq, 2);
      await rec.write(50, Buffer.alloc(100, 2));
      await rec.seal();
      assertSealedChain(rec, `${dir}-a`);
      await rec.close();

      // b: the stop came while segment 2's header was being written (its version bytes not yet there).
      const torn = segmentFiles(`${dir}-b`)[1]!;
      fs.writeFileSync(torn, Buffer.concat([fs.readFileSync(torn).subarray(0, 8), Buffer.alloc(42)]));
      rec = await TrackedDisk.open(options(`${dir}-b`));
      assert.equal(rec.recovery.generationRestarted, undefined);
      assert.equal(rec.currentSeq, 2);
      await rec.write(50, Buffer.alloc(100, 2));
      await rec.seal();
      const files = assertSealedChain(rec, `${dir}-b`);
      assert.equal(files.length, 2);
      await rec.close();
    });

    it('refuses a segment of an unknown version without changing anything', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      await td.write(0, Buffer.alloc(10));
      const crashed = path.join(tmp, 'x');
      fs.mkdirSync(crashed);
      for (const f of fs.readdirSync(tmp)) if (f !== 'x') fs.copyFileSync(path.join(tmp, f), path.join(crashed, f));
      await td.close();
      const current = segmentFiles(crashed)[0]!;
      const bytes = fs.readFileSync(current);
      bytes.writeUInt16LE(2, 8);
      fs.writeFileSync(current, bytes);
      const before = fs.readdirSync(crashed).map((f) => [f, fs.readFileSync(path.join(crashed, f)).toString('hex')]);
      await rejectsWith(TrackedDisk.open(options(crashed)), 'segment.unknownVersion');
      assert.deepEqual(
        fs.readdirSync(crashed).map((f) => [f, fs.readFileSync(path.join(crashed, f)).toString('hex')]),
        before,
      );
      // The refused open released the files: the disk can be opened once fixed.
      bytes.writeUInt16LE(1, 8);
      fs.writeFileSync(current, bytes);
      const ok = await TrackedDisk.open(options(crashed));
      assert.equal(ok.recovery.uncleanStop, true);
      await ok.close();
    });

    it('an I/O failure stops the tracker until it is reopened, which recovers', async () => {
      const td = await TrackedDisk.create({ ...options(tmp), sizeBytes: 64 * KiB });
      await td.write(0, Buffer.alloc(100, 1));
      // The next segment's name is taken by a directory: creating it fails (even for root).
      const next = segmentFiles(tmp)[0]!.replace(/0001\.hrl$/, '0002.hrl');
      fs.mkdirSync(next);
      await rejectsWith(td.seal(), 'tracker.ioFailed');
      await rejectsWith(td.write(0, Buffer.alloc(1)), 'tracker.failed');
      await rejectsWith(td.flush(), 'tracker.failed');
      await td.close();
      fs.rmdirSync(next);
      const rec = await TrackedDisk.open(options(tmp));
      assert.equal(rec.recovery.uncleanStop, true);
      assert.equal(rec.recovery.generationRestarted, undefined);
      assert.deepEqual(
        rec.sealedSegments().map((s) => s.seq),
        [1],
      );
      assert.equal(rec.currentSeq, 2);
      assert.ok(replay(Buffer.alloc(64 * KiB), assertSealedChain(rec, tmp)).equals(await rec.read(0, 64 * KiB)));
      await rec.close();
    });
  });
});
