import { strict as assert } from 'node:assert';
import { decodeVhdFooter, encodeVhdFooter, vhdGeometry, vhdVirtualSize } from '../../../../provider/targets/azure-blob/vhd-footer';
import { GiB, MiB } from '../../../../provider/units';
import { rejectsWith } from '../conformance';

/** Sum of the footer's bytes outside the checksum field, complemented: the specification's rule, written out again. */
function specChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 512; i++) if (i < 64 || i > 67) sum = (sum + b[i]!) >>> 0;
  return (0xffffffff - sum) >>> 0;
}

describe('targets/azure-blob/vhd-footer (docs/azure-target.md §3)', () => {
  const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const created = Date.UTC(2026, 10, 23, 12, 0, 0);

  it('encodes the fixed-VHD footer field by field (test vector, 1 GiB)', () => {
    const f = encodeVhdFooter(GiB, created, id);
    assert.equal(f.length, 512);
    // Expected bytes, big-endian, from the VHD specification's table.
    const expectedHead = [
      '636f6e6563746978', // cookie "conectix"
      '00000002', // features
      '00010000', // version 1.0
      'ffffffffffffffff', // data offset: fixed disk
      (Math.floor((created - Date.UTC(2000, 0, 1)) / 1000)).toString(16).padStart(8, '0'), // seconds since 2000
      '6c666274', // creator "lfbt"
      '00010000', // creator version
      '5769326b', // "Wi2k"
      '0000000040000000', // original size
      '0000000040000000', // current size
      '0820', '10', '3f', // 2080 cylinders, 16 heads, 63 sectors: Hyper-V's geometry of a 1 GiB fixed VHD
      '00000002', // fixed
    ].join('');
    assert.equal(f.subarray(0, 64).toString('hex'), expectedHead);
    assert.equal(f.readUInt32BE(64), specChecksum(f));
    assert.equal(f.readUInt32BE(64), 0xffffe6c1, "the vector's checksum");
    assert.equal(f.subarray(68, 84).toString('hex'), id.toString('hex'));
    assert.ok(f.subarray(84).equals(Buffer.alloc(428)), 'saved state and reserved bytes are zero');
  });

  it('computes the specification geometry for small and large disks', () => {
    assert.deepEqual(vhdGeometry(10 * MiB), { cylinders: 301, heads: 4, sectorsPerTrack: 17 });
    assert.deepEqual(vhdGeometry(GiB), { cylinders: 2080, heads: 16, sectorsPerTrack: 63 });
    // 127 GiB (a common Hyper-V default): 266338304 sectors, over 65535 × 16 × 63, so 255 sectors per track.
    assert.deepEqual(vhdGeometry(127 * GiB), { cylinders: 65278, heads: 16, sectorsPerTrack: 255 });
    assert.equal(vhdGeometry(2048 * GiB).heads, 16);
    assert.equal(vhdGeometry(2048 * GiB).sectorsPerTrack, 255);
    assert.equal(vhdGeometry(2048 * GiB).cylinders, 65535, 'capped at 65535 × 16 × 255 sectors');
  });

  it('rounds the virtual size up to a whole MiB (Azure requires it)', () => {
    assert.equal(vhdVirtualSize(MiB), MiB);
    assert.equal(vhdVirtualSize(MiB + 512), 2 * MiB);
    assert.equal(vhdVirtualSize(512 * 1024), MiB);
  });

  it('parses what it writes and refuses corrupt footers', async () => {
    const f = encodeVhdFooter(4 * MiB, created, id);
    const d = decodeVhdFooter(f);
    assert.equal(d.sizeBytes, 4 * MiB);
    assert.equal(d.createdMs, created);
    assert.ok(d.uniqueId.equals(id));
    assert.deepEqual(d.geometry, vhdGeometry(4 * MiB));
    const cases: Array<[string, (b: Buffer) => void]> = [
      ['checksum', (b) => { b[100] = 1; }],
      ['cookie', (b) => { b[0] = 0x43; b.writeUInt32BE(specChecksum(b), 64); }],
      ['dynamic disk type', (b) => { b.writeUInt32BE(3, 60); b.writeUInt32BE(specChecksum(b), 64); }],
      ['data offset', (b) => { b.writeBigUInt64BE(512n, 16); b.writeUInt32BE(specChecksum(b), 64); }],
    ];
    for (const [what, spoil] of cases) {
      const b = Buffer.from(f);
      spoil(b);
      await rejectsWith(Promise.resolve().then(() => decodeVhdFooter(b)), 'nonRecoverable', 'replica.corrupt').catch((e: unknown) => assert.fail(`${what}: ${String(e)}`));
    }
    await rejectsWith(Promise.resolve().then(() => decodeVhdFooter(f.subarray(0, 511))), 'nonRecoverable', 'replica.corrupt');
  });
});
