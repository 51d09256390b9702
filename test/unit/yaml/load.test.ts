import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidInputError, LifeboatError } from '../../../provider/errors';
import {
  formatProblems, loadProtectionFile, loadProtectionFileSync, MAX_PROTECTION_FILE_BYTES, parseProtection, validateProtectionFile,
  validateProtectionFileSync, type ProtectionModel,
} from '../../../provider/yaml';

const FIXTURES = path.join(__dirname, '../../fixtures/protection');
const EXAMPLE = path.join(__dirname, '../../../examples/yaml-declared/protection.yaml');

interface Expected {
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly code: string;
}

/** The model of the sample (plus db01, which its plan names): every default applied, names sorted. */
const EXAMPLE_MODEL: ProtectionModel = {
  apiVersion: 'lifeboat/v1',
  vault: { name: 'contoso-dr', heartbeatIntervalSeconds: 30, missedHeartbeatsBeforeDisconnected: 3, certificateValidityDays: 365 },
  sites: [
    { name: 'dr', kind: 'hyperv-site', hosts: ['hvdr01'], clouds: [], timeZone: 'UTC' },
    { name: 'hq', kind: 'hyperv-site', hosts: ['hv01', 'hv02'], clouds: [], timeZone: 'UTC' },
  ],
  policies: [{
    name: 'gold',
    target: 'secondary-site',
    replicationFrequencySeconds: 30,
    recoveryPointRetentionHours: 24,
    appConsistentSnapshotFrequencyHours: 4,
    initialReplication: { method: 'online' },
    compression: false,
    authentication: 'certificate',
    deleteReplicaOnDisable: false,
    resync: { automatic: true, window: { start: '18:30', end: '07:30' } },
    offHours: { start: '18:00', end: '07:00' },
    associations: [{ source: 'hq', target: 'dr' }],
  }],
  mappings: [{ name: 'prod', source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' }, testNetwork: 'Isolated' }],
  protectedVms: [
    { name: 'db01', site: 'hq', vm: 'db01', policy: 'gold', targetKind: 'secondary-site', target: { site: 'dr' }, targetVm: {} },
    { name: 'web01', site: 'hq', vm: 'web01', policy: 'gold', targetKind: 'secondary-site', target: { site: 'dr' }, targetVm: {} },
  ],
  plans: [{
    name: 'app',
    groups: [
      { name: 'Group 1', vms: ['db01'], before: [], after: [{ kind: 'script', script: 'checks/db.sh', timeoutSeconds: 300 }] },
      { name: 'Group 2', vms: ['web01'], before: [{ kind: 'manual', manual: 'Lower the DNS TTL' }], after: [] },
    ],
  }],
};

describe('yaml/load', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-yaml-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('loads the example (the issue sample, with the db01 its plan names) into the expected model', async () => {
    assert.deepEqual(await loadProtectionFile(EXAMPLE), EXAMPLE_MODEL);
    assert.deepEqual(loadProtectionFileSync(EXAMPLE), EXAMPLE_MODEL);
  });

  it('the example names the schema for editors, by a path that exists', () => {
    const first = readFileSync(EXAMPLE, 'utf8').split('\n')[0]!;
    const m = /^# yaml-language-server: \$schema=(.+)$/.exec(first);
    assert.ok(m !== null, first);
    const schema = JSON.parse(readFileSync(path.resolve(path.dirname(EXAMPLE), m[1]!), 'utf8')) as { $id: string };
    assert.equal(schema.$id, 'protection.schema.json');
  });

  it('rejects the issue sample verbatim for exactly one reason: its plan names a VM it does not protect', () => {
    const file = path.join(FIXTURES, 'bad/issue-sample.yaml');
    const r = parseProtection(readFileSync(file, 'utf8'), 'protection.yaml');
    assert.equal(r.model, undefined);
    assert.equal(formatProblems(r.problems), "protection.yaml:21:17: /recoveryPlans/0/groups/0/vms/0: no protected VM named 'db01' in this file (known: web01)");
  });

  it('loads every good fixture', async () => {
    for (const f of (await readdir(path.join(FIXTURES, 'good'))).filter((x) => x.endsWith('.yaml'))) {
      const r = await validateProtectionFile(path.join(FIXTURES, 'good', f));
      assert.deepEqual(r.problems, [], `${f}:\n${formatProblems(r.problems)}`);
      assert.ok(r.model !== undefined);
    }
  });

  describe('rejects each bad fixture with the locations and codes of its .expected.json', () => {
    const dir = path.join(FIXTURES, 'bad');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
    it('has a battery of bad files, each with its expectations', () => {
      assert.ok(files.length >= 30, `${files.length} bad files`);
    });
    for (const f of files) {
      it(f, async () => {
        const expected = JSON.parse(await readFile(path.join(dir, f.replace(/\.yaml$/, '.expected.json')), 'utf8')) as Expected[];
        assert.ok(expected.length > 0, 'a bad file has at least one problem');
        const r = await validateProtectionFile(path.join(dir, f));
        assert.equal(r.model, undefined);
        const got = r.problems.map((p) => ({ line: p.line, column: p.column, path: p.path, code: p.code }));
        assert.deepEqual(got, expected, formatProblems(r.problems, { codes: true }));
        for (const p of r.problems) {
          assert.equal(p.file, path.join(dir, f));
          assert.ok(p.message.length > 0 && !/\n\s+at /.test(p.message), `no stack trace: ${p.message}`);
        }
      });
    }
  });

  it('says what would be valid: the value as written, the allowed values or the expected form', () => {
    const text = readFileSync(path.join(FIXTURES, 'bad/out-of-range.yaml'), 'utf8');
    const lines = formatProblems(parseProtection(text, 'protection.yaml').problems).split('\n');
    assert.ok(lines.includes('protection.yaml:9:34: /policies/0/replicationFrequencySeconds: must be one of 30, 300, 900 (got 60)'), lines.join('\n'));
    assert.ok(lines.includes('protection.yaml:10:34: /policies/0/recoveryPointRetentionHours: must be <= 24 (got 25; expected integer 0..24)'), lines.join('\n'));
    const unknown = formatProblems(parseProtection(readFileSync(path.join(FIXTURES, 'bad/unknown-keys.yaml'), 'utf8'), 'p.yaml').problems);
    assert.match(unknown, /^p\.yaml:13:7: \/policies\/0\/resync\/windows: unknown property 'windows' \(allowed: automatic, window\)$/m);
    const types = formatProblems(parseProtection(readFileSync(path.join(FIXTURES, 'bad/wrong-types.yaml'), 'utf8'), 'p.yaml').problems);
    assert.match(types, /^p\.yaml:4:43: \/sites\/0\/hosts: must be an array \(got hv01\)$/m);
    assert.match(types, /^p\.yaml:11:19: \/policies\/0\/associations: must be an array \(got a mapping\)$/m);
    assert.doesNotMatch(types, /when target is not/, 'a conditional echo of the same problem is folded');
  });

  it('shows a syntax error with its line and a caret under the column', () => {
    const r = parseProtection(readFileSync(path.join(FIXTURES, 'bad/tab-indent.yaml'), 'utf8'), 'protection.yaml');
    assert.equal(formatProblems(r.problems), [
      'protection.yaml:6:1: tabs are not allowed as indentation; indent with spaces',
      '  6 | \tkind: hyperv-site',
      '    | ^',
    ].join('\n'));
    const flow = parseProtection(readFileSync(path.join(FIXTURES, 'bad/syntax-unclosed-flow.yaml'), 'utf8'), 'p.yaml');
    const [first] = formatProblems(flow.problems).split('\n  5 |');
    assert.equal(first, [
      'p.yaml:4:55: flow sequence in block collection must be sufficiently indented and end with a ]',
      '  4 |   - { name: hq, kind: hyperv-site, hosts: [hv01, hv02 }',
      `    | ${' '.repeat(54)}^`,
      'p.yaml:5:3: flow map in block collection must be sufficiently indented and end with a }',
    ].join('\n'));
  });

  it('refuses another apiVersion with one problem, without judging the rest by this version', () => {
    const r = parseProtection(readFileSync(path.join(FIXTURES, 'bad/wrong-api-version.yaml'), 'utf8'), 'p.yaml');
    assert.equal(formatProblems(r.problems), 'p.yaml:1:13: /apiVersion: this release reads apiVersion lifeboat/v1 only (got lifeboat/v2; allowed: lifeboat/v1)');
  });

  it('reports a missing, unreadable or oversized file as a problem, and loadProtectionFile throws InvalidInputError listing all', async () => {
    const missing = path.join(tmp, 'nope.yaml');
    const r = await validateProtectionFile(missing);
    assert.deepEqual(r.problems.map((p) => [p.code, p.message]), [['protection.unreadable', 'cannot read the file: no such file']]);
    assert.equal(formatProblems(r.problems), `${missing}: cannot read the file: no such file`);
    assert.deepEqual(validateProtectionFileSync(tmp).problems.map((p) => p.message), ['cannot read the file: is a directory']);

    const big = path.join(tmp, 'big.yaml');
    await writeFile(big, `apiVersion: lifeboat/v1\n#${'x'.repeat(MAX_PROTECTION_FILE_BYTES)}\n`);
    assert.deepEqual((await validateProtectionFile(big)).problems.map((p) => p.code), ['protection.tooLarge']);

    const bad = path.join(tmp, 'sub', 'protection.yaml');
    await mkdir(path.dirname(bad));
    await writeFile(bad, 'apiVersion: lifeboat/v1\nvault: { name: x }\nsites:\n  - { name: hq, kind: hyperv }\n  - { name: HQ, kind: hyperv-site }\n');
    await assert.rejects(loadProtectionFile(bad), (e: unknown) => {
      assert.ok(e instanceof InvalidInputError && LifeboatError.isInstance(e));
      assert.equal(e.code, 'protection.invalid');
      assert.equal(e.category, 'invalidInput');
      assert.equal(e.message, [
        `${bad}: 2 problems`,
        `${bad}:4:23: /sites/0/kind: must be one of 'hyperv-site', 'vmm-cloud', 'azure' (got hyperv)`,
        `${bad}:5:13: /sites/1/name: duplicates the name of the site at line 4 ('hq'); names are unique and compare case-insensitively`,
      ].join('\n'));
      assert.deepEqual(e.where, { file: bad, path: '/sites/0/kind', line: 4, column: 23 });
      assert.equal((e.details.problems as unknown[]).length, 2);
      assert.match(e.hint ?? '', /lifeboat validate/);
      return true;
    });
    assert.throws(() => loadProtectionFileSync(missing), (e: unknown) => e instanceof InvalidInputError && e.message.includes('no such file'));
  });

  it('accepts CRLF line endings and a byte-order mark, with the same positions', () => {
    const text = readFileSync(path.join(FIXTURES, 'bad/out-of-range.yaml'), 'utf8');
    const plain = parseProtection(text, 'p.yaml').problems;
    const crlf = parseProtection(`\ufeff${text.replace(/\n/g, '\r\n')}`, 'p.yaml').problems;
    assert.ok(plain.every((p) => p.line !== 1), 'no problem on the line the mark shifts');
    assert.deepEqual(crlf.map((p) => [p.line, p.column, p.path, p.actual]), plain.map((p) => [p.line, p.column, p.path, p.actual]));
    const good = parseProtection(`\ufeff${readFileSync(EXAMPLE, 'utf8').replace(/\n/g, '\r\n')}`, 'p.yaml');
    assert.deepEqual(good.model, EXAMPLE_MODEL);
  });

  it('never throws for arbitrary text', () => {
    const samples = ['', ':', '- -', '{', '[[[[', '? ? ?', '&a *a', '!!map x', 'a: *', '"\\x"', '\t', 'apiVersion: [', 'vault: {name: x}\n  bad', '%YAML 1.1\n---\na: 1', 'a: !!int x'];
    for (const s of samples) {
      const r = parseProtection(s, 'x.yaml');
      assert.ok(r.problems.length > 0, JSON.stringify(s));
      for (const p of r.problems) assert.ok(typeof p.line === 'number' && typeof p.column === 'number', JSON.stringify(p));
    }
  });
});
