import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { LifeboatError } from '../../../provider/errors';
import {
  type ActivityLogPage,
  type ByteRange,
  checkActivityLogPage,
  checkSuspectSection,
  coalesceRanges,
  decodeActivityLogFile,
  encodeActivityLogFile,
  encodeActivityLogPage,
  encodeSuspectSection,
} from '../../../provider/format/activity-log-file';
import { MAX_ACTIVITY_LOG_SLOTS } from '../../../provider/format/layout';

const page: ActivityLogPage = {
  slotCount: 64,
  transaction: 5,
  extentSize: 4 << 20,
  diskSize: 1 << 30,
  generation: '00000000000000aa',
  state: 'running',
  extents: [3, 0, 255],
};

const pageArb: fc.Arbitrary<ActivityLogPage> = fc
  .record({
    slotCount: fc.integer({ min: 1, max: MAX_ACTIVITY_LOG_SLOTS }),
    transaction: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 1 }),
    extentShift: fc.integer({ min: 12, max: 30 }),
    extentCount: fc.integer({ min: 1, max: 100_000 }),
    generation: fc.stringMatching(/^[0-9a-f]{16}$/),
    clean: fc.boolean(),
    seed: fc.integer(),
  })
  .map((r) => {
    const extentSize = 2 ** r.extentShift;
    const diskSize = r.extentCount * extentSize - (r.extentCount > 1 ? 512 : 0);
    const extents: number[] = [];
    for (let i = 0; !r.clean && i < Math.min(r.slotCount, r.extentCount); i++) {
      const e = Math.abs(r.seed * 31 + i * 7919) % r.extentCount;
      if (!extents.includes(e)) extents.push(e);
    }
    return {
      slotCount: r.slotCount,
      transaction: r.transaction,
      extentSize,
      diskSize,
      generation: r.generation,
      state: r.clean ? ('clean' as const) : ('running' as const),
      extents,
    };
  });

describe('format/activity-log-file', () => {
  it('round-trips pages in 4096 bytes (§9.2)', () => {
    fc.assert(
      fc.property(pageArb, (p) => {
        const b = encodeActivityLogPage(p);
        assert.equal(b.length, 4096);
        const c = checkActivityLogPage(b);
        assert.ok(c.ok);
        assert.deepEqual(c.value, p);
      }),
      { seed: 601, numRuns: 200 },
    );
  });

  it('the newer valid page wins; a torn page falls back to the other (§9.3, §9.5)', () => {
    const file = encodeActivityLogFile(page, [{ offset: 0, length: 4096 }]);
    assert.equal(file.length, 2 * 4096 + 16 + 16 + 4);
    let d = decodeActivityLogFile(file);
    assert.equal(d.pageIndex, 1);
    assert.equal(d.page?.transaction, 6);
    assert.deepEqual(d.suspects, [{ offset: 0, length: 4096 }]);

    // Page 0 rewritten with transaction 7 and another extent.
    const next = encodeActivityLogPage({ ...page, transaction: 7, extents: [9] });
    next.copy(file, 0);
    d = decodeActivityLogFile(file);
    assert.equal(d.pageIndex, 0);
    assert.deepEqual(d.page?.extents, [9]);

    // That write torn halfway: the previous state (page 1) is read.
    const torn = Buffer.from(file);
    torn.fill(0, 300, 4096); // the slots and checksum end at 64 + 8 · 64 + 4
    d = decodeActivityLogFile(torn);
    assert.equal(d.pageIndex, 1);
    assert.deepEqual(d.page?.extents, page.extents);
    assert.equal(d.refusals[0]?.outcome, 'checksumMismatch');
  });

  it('reports a lost activity log as missing parts, and another version as such', () => {
    const file = encodeActivityLogFile(page, []);
    const noPages = Buffer.from(file);
    noPages.fill(0xff, 0, 8192);
    assert.equal(decodeActivityLogFile(noPages).page, undefined);
    const badSection = Buffer.from(file);
    badSection[badSection.length - 1] ^= 1;
    const d = decodeActivityLogFile(badSection);
    assert.ok(d.page !== undefined && d.suspects === undefined);
    assert.equal(decodeActivityLogFile(file.subarray(0, 8200)).suspects, undefined);
    const v2 = Buffer.from(file);
    v2.writeUInt16LE(2, 8);
    v2.writeUInt16LE(2, 4096 + 8);
    assert.deepEqual(
      decodeActivityLogFile(v2).refusals.map((r) => r.outcome),
      ['unknownVersion', 'unknownVersion'],
    );
  });

  it('refuses invalid pages and ranges when encoding', () => {
    const invalid = (f: () => unknown): void =>
      assert.throws(f, (e: unknown) => LifeboatError.isInstance(e) && e.code === 'activityLog.invalid');
    invalid(() => encodeActivityLogPage({ ...page, extentSize: 5000 }));
    invalid(() => encodeActivityLogPage({ ...page, slotCount: 2 }));
    invalid(() => encodeActivityLogPage({ ...page, extents: [1, 1] }));
    invalid(() => encodeActivityLogPage({ ...page, extents: [256] }));
    invalid(() => encodeActivityLogPage({ ...page, state: 'clean' }));
    invalid(() => encodeActivityLogPage({ ...page, slotCount: MAX_ACTIVITY_LOG_SLOTS + 1 }));
    invalid(() => encodeSuspectSection([{ offset: 10, length: 5 }, { offset: 15, length: 1 }], 100));
    invalid(() => encodeSuspectSection([{ offset: 90, length: 20 }], 100));
    invalid(() => encodeSuspectSection([{ offset: 0, length: 0 }], 100));
  });

  it('round-trips suspect sections', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ offset: fc.nat(1 << 20), length: fc.nat(1 << 16) })), (raw) => {
        const ranges = coalesceRanges(raw, 1 << 20);
        const c = checkSuspectSection(encodeSuspectSection(ranges, 1 << 20), 1 << 20);
        assert.ok(c.ok);
        assert.deepEqual(c.value, ranges);
      }),
      { seed: 602, numRuns: 100 },
    );
  });

  it('coalesceRanges covers exactly the union, clipped', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ offset: fc.integer({ min: -10, max: 300 }), length: fc.integer({ min: -5, max: 60 }) }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 300 }),
        (raw: ByteRange[], limit) => {
          const model = new Array<boolean>(limit).fill(false);
          for (const r of raw) for (let i = Math.max(0, r.offset); i < Math.min(limit, r.offset + r.length); i++) model[i] = true;
          const out = coalesceRanges(raw, limit);
          const got = new Array<boolean>(limit).fill(false);
          let end = -1;
          for (const r of out) {
            assert.ok(r.length > 0 && r.offset > end, 'sorted, disjoint, non-adjacent');
            end = r.offset + r.length;
            for (let i = r.offset; i < end; i++) got[i] = true;
          }
          assert.deepEqual(got, model);
        },
      ),
      { seed: 603, numRuns: 300 },
    );
  });
});
