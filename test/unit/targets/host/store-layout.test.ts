import assert from 'node:assert/strict';
import fc from 'fast-check';
import { diskIdOfName, diskNameOf, parseUndoFileName, pointIdOf, undoFileName } from '../../../../provider/targets/host/store-layout';

describe('targets/host/store-layout (docs/replica-format.md §2, §3)', () => {
  it('encodes disk ids into safe folder names and back (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }), (id) => {
        const name = diskNameOf(id);
        assert.match(name, /^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/);
        assert.equal(diskIdOfName(name), id);
      }),
      { seed: 31337, numRuns: 300 },
    );
    assert.equal(diskNameOf('vm1/disk0'), 'vm1%2Fdisk0');
    assert.equal(diskNameOf('..'), '%2E%2E');
  });

  it('refuses empty and too long ids, and ignores names that are not disks', () => {
    assert.throws(() => diskNameOf(''), { code: 'replica.invalidDiskId' });
    assert.throws(() => diskNameOf('é'.repeat(40)), { code: 'replica.invalidDiskId' });
    assert.equal(diskIdOfName('.staging-abc'), undefined);
    assert.equal(diskIdOfName('%2e'), undefined, 'lower-case escapes are not ours');
    assert.equal(diskIdOfName('a%2'), undefined);
  });

  it('names undo files and points so that name order is cycle order', () => {
    const cycles = [1, 15, 16, 255, 4096, 2 ** 40];
    const names = cycles.map(undoFileName);
    assert.deepEqual([...names].sort(), names);
    assert.deepEqual(names.map(parseUndoFileName), cycles);
    assert.equal(undoFileName(42), 'c-000000000000002a.undo');
    assert.equal(pointIdOf(42), 'p-000000000000002a');
    assert.equal(parseUndoFileName('c-000000000000002A.undo'), undefined);
    assert.equal(parseUndoFileName('c-2a.undo'), undefined);
  });
});
