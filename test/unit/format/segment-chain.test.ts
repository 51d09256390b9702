import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LifeboatError } from '../../../provider/errors';
import { assertChain, type ChainLink, verifyChain } from '../../../provider/format/segment-chain';
import { parseSegmentName } from '../../../provider/format/segment-name';
import { scanSegment } from '../../../provider/format/segment-scanner';
import { FIXTURE_DIR } from './vectors';

/** The sealed segments of a fixture folder, in name order, as chain links. */
function linksOf(folder: string): ChainLink[] {
  const dir = path.join(FIXTURE_DIR, folder);
  return fs
    .readdirSync(dir)
    .filter((f) => parseSegmentName(f) !== undefined)
    .sort()
    .map((f) => {
      const r = scanSegment(fs.readFileSync(path.join(dir, f)));
      assert.equal(r.outcome, 'sealed', f);
      return { header: r.header!, segmentChecksum: r.seal!.segmentChecksum };
    });
}

describe('format/segment-chain', () => {
  it('accepts the linked vector chain', () => {
    const links = linksOf('chain');
    assert.equal(links.length, 2);
    assert.equal(verifyChain(links), undefined);
    assertChain(links);
    assert.equal(verifyChain(links.slice(1)), undefined);
    assert.equal(verifyChain([]), undefined);
  });

  it('refuses the vector chain with a gap: resync required', () => {
    const links = linksOf('gap');
    assert.equal(verifyChain(links)?.code, 'chain.gap');
    assert.equal(verifyChain(links)?.index, 1);
    assert.throws(
      () => assertChain(links),
      (e: unknown) => LifeboatError.isInstance(e) && e.code === 'chain.gap' && e.category === 'resyncRequired',
    );
  });

  it('refuses a bad link, another generation, another disk', () => {
    const [a, b] = linksOf('chain') as [ChainLink, ChainLink];
    assert.equal(verifyChain([a, { ...b, header: { ...b.header, previousChecksum: b.header.previousChecksum ^ 1 } }])?.code, 'chain.linkMismatch');
    assert.equal(verifyChain([a, { ...b, header: { ...b.header, generation: 'ffffffffffffffff' } }])?.code, 'chain.generationMismatch');
    assert.equal(verifyChain([a, { ...b, header: { ...b.header, diskId: 'other' } }])?.code, 'chain.diskMismatch');
    assert.equal(verifyChain([a, { ...b, header: { ...b.header, diskSize: 512 } }])?.code, 'chain.diskMismatch');
    assert.equal(verifyChain([b, a])?.code, 'chain.gap');
  });
});
