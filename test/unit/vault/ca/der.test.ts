import { strict as assert } from 'node:assert';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import * as der from '../../../../provider/vault/ca/der';

const SEED = 0x5eed_de4;

/** Two's-complement value of INTEGER content octets (an independent decoder). */
function decodeInteger(content: Buffer): bigint {
  let v = 0n;
  for (const b of content) v = (v << 8n) | BigInt(b);
  if (content.length > 0 && (content[0]! & 0x80) !== 0) v -= 1n << BigInt(8 * content.length);
  return v;
}

describe('vault/ca/der', () => {
  it('encodes lengths in the short form below 128 and the minimal long form above', () => {
    assert.deepEqual(der.encodeLength(0), Buffer.from([0]));
    assert.deepEqual(der.encodeLength(127), Buffer.from([0x7f]));
    assert.deepEqual(der.encodeLength(128), Buffer.from([0x81, 0x80]));
    assert.deepEqual(der.encodeLength(256), Buffer.from([0x82, 0x01, 0x00]));
    fc.assert(fc.property(fc.integer({ min: 0, max: 100_000 }), (n) => {
      const el = der.readElement(der.tlv(der.Tag.octetString, Buffer.alloc(n, 7)));
      assert.equal(el.content.length, n);
      assert.equal(el.end, el.encoded.length);
    }), { seed: SEED, numRuns: 200 });
  });

  it('encodes non-negative integers minimally, with a leading zero only when the high bit is set', () => {
    assert.deepEqual(der.integer(0n), Buffer.from([0x02, 0x01, 0x00]));
    assert.deepEqual(der.integer(127n), Buffer.from([0x02, 0x01, 0x7f]));
    assert.deepEqual(der.integer(128n), Buffer.from([0x02, 0x02, 0x00, 0x80]));
    assert.deepEqual(der.integer(Buffer.from([0, 0, 0x12])), Buffer.from([0x02, 0x01, 0x12]));
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 200n) - 1n }), (v) => {
      const el = der.readElement(der.integer(v));
      assert.equal(el.tag, der.Tag.integer);
      assert.equal(decodeInteger(el.content), v);
      // Minimal: no redundant leading octet.
      if (el.content.length > 1) assert.ok(!(el.content[0] === 0 && (el.content[1]! & 0x80) === 0));
    }), { seed: SEED, numRuns: 300 });
  });

  it('round-trips object identifiers, including large arcs', () => {
    assert.deepEqual(der.oid('1.2.840.10045.4.3.2'), Buffer.from('06082a8648ce3d040302', 'hex'));
    assert.deepEqual(der.oid('2.5.29.19'), Buffer.from('0603551d13', 'hex'));
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 39 }), fc.array(fc.bigInt({ min: 0n, max: 1n << 64n }), { maxLength: 8 }),
      (a, b, rest) => {
        const dotted = [a, b, ...rest].join('.');
        assert.equal(der.decodeOid(der.readElement(der.oid(dotted)).content), dotted);
      }), { seed: SEED, numRuns: 300 });
    assert.throws(() => der.oid('1.40'), /not an OID/);
    assert.throws(() => der.oid('1'), /not an OID/);
  });

  it('encodes named bit strings without trailing zero bits (X.690 §11.2.2)', () => {
    // digitalSignature (bit 0): one octet 0x80, 7 unused bits.
    assert.deepEqual(der.namedBitString([0]), Buffer.from([0x03, 0x02, 0x07, 0x80]));
    // keyCertSign (5) + cRLSign (6): 0x06, 1 unused bit.
    assert.deepEqual(der.namedBitString([5, 6]), Buffer.from([0x03, 0x02, 0x01, 0x06]));
    // decipherOnly (8) spills into a second octet.
    assert.deepEqual(der.namedBitString([0, 8]), Buffer.from([0x03, 0x03, 0x07, 0x80, 0x80]));
  });

  it('uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    const utc = der.readElement(der.time(Date.UTC(2049, 11, 31, 23, 59, 59)));
    assert.equal(utc.tag, der.Tag.utcTime);
    assert.equal(utc.content.toString('ascii'), '491231235959Z');
    const gen = der.readElement(der.time(Date.UTC(2050, 0, 1, 0, 0, 0)));
    assert.equal(gen.tag, der.Tag.generalizedTime);
    assert.equal(gen.content.toString('ascii'), '20500101000000Z');
    assert.equal(der.readElement(der.time(Date.UTC(1999, 5, 7, 8, 9, 10, 999))).content.toString('ascii'), '990607080910Z');
  });

  it('orders SET OF elements by their encoding', () => {
    const a = der.utf8String('b');
    const b = der.utf8String('a');
    const set = der.readElement(der.setOf(a, b));
    assert.deepEqual(der.readChildren(set.content).map((e) => e.content.toString()), ['a', 'b']);
  });

  it('reads a SubjectPublicKeyInfo made by node:crypto', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const [alg, bits] = der.readChildren(der.readElement(spki).content);
    assert.equal(der.decodeOid(der.readChildren(alg!.content)[0]!.content), '1.2.840.10045.2.1');
    assert.equal(bits!.tag, der.Tag.bitString);
    assert.equal(bits!.content.length, 1 + 65);
    // And a SEQUENCE we build around it is still a key node accepts.
    assert.equal(createPublicKey({ key: der.sequence(...der.readChildren(der.readElement(spki).content).map((e) => e.encoded)), format: 'der', type: 'spki' }).asymmetricKeyType, 'ec');
  });

  it('refuses malformed input: truncated, indefinite or non-minimal lengths', () => {
    assert.throws(() => der.readElement(Buffer.from([0x04])), /truncated header/);
    assert.throws(() => der.readElement(Buffer.from([0x04, 0x05, 1, 2])), /truncated content/);
    assert.throws(() => der.readElement(Buffer.from([0x30, 0x80, 0, 0])), /indefinite/);
    assert.throws(() => der.readElement(Buffer.from([0x04, 0x81, 0x05, 1, 2, 3, 4, 5])), /non-minimal/);
    assert.throws(() => der.readElement(Buffer.from([0x1f, 0x01, 0x00])), /multi-byte tags/);
  });

  it('refuses non-ASCII IA5 strings', () => {
    assert.throws(() => der.ia5String('hôte'), /not ASCII/);
    assert.deepEqual(der.ia5String('hv01'), Buffer.from([0x16, 4, ...Buffer.from('hv01')]));
  });
});
