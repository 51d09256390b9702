/**
 * The region arithmetic of reprotect (docs/failover.md §7): the union of the
 * changed extents of both sides, aligned to whole blocks within the disk,
 * sorted and merged — the blocks the reverse relationship compares.
 */

import { strict as assert } from 'node:assert';
import { mergeRegions, regionBytes } from '../../../provider/agent/reprotect-commands';

describe('agent/reprotect-commands: regions that can differ', () => {
  const cases: readonly [string, { offset: number; length: number }[], { offset: number; length: number }[]][] = [
    ['nothing changed', [], []],
    ['one write inside a block widens to the block', [{ offset: 70_000, length: 10 }], [{ offset: 65_536, length: 65_536 }]],
    ['overlapping and adjacent extents of both sides merge', [{ offset: 0, length: 10 }, { offset: 65_536, length: 1 }, { offset: 5, length: 100 }], [{ offset: 0, length: 131_072 }]],
    ['unsorted input comes out sorted', [{ offset: 300_000, length: 1 }, { offset: 0, length: 1 }], [{ offset: 0, length: 65_536 }, { offset: 262_144, length: 65_536 }]],
    ['the last block is clipped to the disk', [{ offset: 1_000_000, length: 48_576 }], [{ offset: 983_040, length: 65_536 }]],
    ['empty extents are ignored', [{ offset: 4096, length: 0 }], []],
  ];
  for (const [what, input, want] of cases) {
    it(what, () => {
      const got = mergeRegions(input, 65_536, 1_048_576);
      assert.deepEqual(got, want);
      assert.equal(regionBytes(got), want.reduce((n, r) => n + r.length, 0));
    });
  }

  it('a disk whose size is not a block multiple', () => {
    assert.deepEqual(mergeRegions([{ offset: 1_040_000, length: 8576 }], 65_536, 1_048_576 - 512), [{ offset: 983_040, length: 65_536 - 512 }]);
  });
});
