import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { readYaml } from '../../../provider/yaml/yaml-source';

/** The text at a 1-based line and column. */
function at(text: string, p: { line: number; column: number }, length: number): string {
  return text.split('\n')[p.line - 1]!.slice(p.column - 1, p.column - 1 + length);
}

describe('yaml/yaml-source', () => {
  it('reads block and flow YAML into JSON data and places every value and key', () => {
    const text = [
      'a: 1', //                      1
      'b:', //                        2
      '  c: [x, "y", { d: true }]', // 3
      '  e:', //                      4
      '    - f: ~', //                5
      '      g: 2.5', //              6
    ].join('\n');
    const y = readYaml(text);
    assert.deepEqual(y.problems, []);
    assert.deepEqual(y.data, { a: 1, b: { c: ['x', 'y', { d: true }], e: [{ f: null, g: 2.5 }] } });
    assert.deepEqual(y.locate('/a'), { line: 1, column: 4 });
    assert.deepEqual(y.locate('/a', true), { line: 1, column: 1 });
    assert.equal(at(text, y.locate('/b/c/1'), 3), '"y"');
    assert.equal(at(text, y.locate('/b/c/2/d', true), 1), 'd');
    assert.equal(at(text, y.locate('/b/e/0/g'), 3), '2.5');
    assert.equal(y.textAt('/b/c/1'), '"y"');
    assert.equal(y.textAt('/b/e/0/f'), '~');
    assert.equal(y.textAt('/b/c'), 'a sequence');
    assert.equal(y.textAt('/b'), 'a mapping');
    // A path that does not exist (a missing property) is placed at its nearest existing parent.
    assert.deepEqual(y.locate('/b/e/0/missing'), y.locate('/b/e/0'));
    assert.deepEqual(y.locate('/nothing/deeper'), y.locate(''));
  });

  it('an empty value is placed at its key', () => {
    const y = readYaml('a:\nb: 1\n');
    assert.deepEqual(y.data, { a: null, b: 1 });
    assert.deepEqual(y.locate('/a'), { line: 1, column: 1 });
    assert.equal(y.textAt('/a'), 'nothing');
  });

  it('escapes keys in JSON Pointers (RFC 6901)', () => {
    const y = readYaml('"a/b": { "c~d": 1 }\n');
    assert.deepEqual(y.locate('/a~1b/c~0d'), { line: 1, column: 17 });
  });

  it('aliases: the data is repeated, parts are placed at the anchor, the alias itself where it is used', () => {
    const text = 'x: &w { start: "22:00", end: "06:00" }\ny: *w\n';
    const y = readYaml(text);
    assert.deepEqual(y.data, { x: { start: '22:00', end: '06:00' }, y: { start: '22:00', end: '06:00' } });
    assert.deepEqual(y.locate('/y'), { line: 2, column: 4 });
    assert.deepEqual(y.locate('/y/end'), y.locate('/x/end'));
  });

  it('refuses duplicate keys, merge keys, non-string keys, binary values and non-finite numbers, each at its place', () => {
    const y = readYaml('a: 1\nb: { c: 1, c: 2 }\nd: { <<: { e: 1 } }\n? [k]\n: v\nf: !!binary aGk=\ng: .inf\nh: -.Inf\n');
    assert.deepEqual(y.problems.map((p) => [p.code, p.path, p.line, p.column]), [
      ['yaml.duplicateKey', '/b/c', 2, 12],
      ['yaml.mergeKey', '/d/<<', 3, 6],
      ['yaml.invalidKey', '', 4, 3],
      ['yaml.unsupportedValue', '/f', 6, 13],
      ['yaml.nonFiniteNumber', '/g', 7, 4],
      ['yaml.nonFiniteNumber', '/h', 8, 4],
    ]);
    assert.equal(y.problems[0]!.message, "duplicate key 'c' (first at line 2, column 6); keys of a mapping are unique");
    assert.equal(y.problems[4]!.actual, '.inf');
  });

  it('a quoted "<<" is an ordinary key', () => {
    assert.deepEqual(readYaml('"<<": 1\n').data, { '<<': 1 });
  });

  it('YAML 1.2 core schema: yes, on and dates stay strings; a "__proto__" key is data, not a prototype', () => {
    const y = readYaml('a: yes\nb: on\nc: 2026-01-01\nd: 0x1F\n__proto__: { polluted: true }\n');
    const data = y.data as Record<string, unknown>;
    assert.deepEqual({ a: data.a, b: data.b, c: data.c, d: data.d }, { a: 'yes', b: 'on', c: '2026-01-01', d: 31 });
    assert.equal(Object.getPrototypeOf(data), Object.prototype);
    assert.deepEqual(Object.keys(data), ['a', 'b', 'c', 'd', '__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('stops an alias expansion that grows past the limit, at the outermost alias', () => {
    const text = 'a: &a [1, 2, 3, 4]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n';
    const y = readYaml(text, { maxValues: 40 });
    assert.equal(y.data, undefined);
    assert.deepEqual(y.problems.map((p) => [p.code, p.path, p.line, p.column]), [['yaml.tooLarge', '/c/0', 3, 5]]);
    assert.deepEqual(readYaml(text, { maxValues: 200 }).problems, []);
  });

  it('reads back whatever the yaml package writes, block or flow (property)', () => {
    const scalar = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 3, noNullPrototype: true })),
    })).value;
    fc.assert(fc.property(json, fc.boolean(), (value, flow) => {
      const text = stringify(value, { collectionStyle: flow ? 'flow' : 'block' });
      const y = readYaml(text);
      assert.deepEqual(y.problems, []);
      assert.deepEqual(y.data, value);
    }), { seed: 0x5eed_0008, numRuns: 300 });
  });
});
