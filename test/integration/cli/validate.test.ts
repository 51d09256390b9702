/**
 * `lifeboat validate` as a process over the battery of bad protection files
 * (test/fixtures/protection/bad, each with the problems it must produce) and
 * over inputs that are not protection files at all: every one is rejected
 * with its location and exit code 1, none crashes, no stack trace.
 */

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type CliResult, lifeboat, ROOT } from '../lab/lab-harness';

const BAD = path.join(ROOT, 'test', 'fixtures', 'protection', 'bad');
const GOOD = path.join(ROOT, 'test', 'fixtures', 'protection', 'good');
const EXAMPLE = path.join(ROOT, 'examples', 'yaml-declared', 'protection.yaml');

interface Expected {
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly code: string;
}

interface Report {
  readonly file: string;
  readonly valid: boolean;
  readonly problems: readonly (Expected & { message: string; file: string })[];
  readonly summary?: Record<string, number>;
}

const badFiles = readdirSync(BAD).filter((f) => f.endsWith('.yaml')).sort();

function expectedOf(fixture: string): Expected[] {
  return JSON.parse(readFileSync(path.join(BAD, fixture.replace(/\.yaml$/, '.expected.json')), 'utf8')) as Expected[];
}

/** Run at most `n` at a time: the machine has two cores. */
async function pooled<T, R>(items: readonly T[], n: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  }));
  return out;
}

function assertNoCrash(r: CliResult, what: string): void {
  assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at .+\(.*:\d+:\d+\)/, `${what}: a stack trace`);
  assert.doesNotMatch(r.stderr, /^error:/m, `${what}: the command failed instead of reporting problems: ${r.stderr}`);
}

describe('cli: lifeboat validate (real process)', function () {
  this.timeout(180_000);
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'lb-validate-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it(`rejects each of the ${badFiles.length} bad fixtures with exit 1, every expected problem on a line starting file:line:col: JSON path, and the count`, async () => {
    assert.ok(badFiles.length >= 30, 'the battery is there');
    const results = await pooled(badFiles, 3, async (f) => {
      const rel = path.relative(ROOT, path.join(BAD, f));
      return { f, rel, r: await lifeboat(['validate', rel]) };
    });
    for (const { f, rel, r } of results) {
      const expected = expectedOf(f);
      assert.equal(r.code, 1, `${f}: exit ${r.code}\n${r.stderr}`);
      assertNoCrash(r, f);
      for (const e of expected) {
        const head = `${rel}:${e.line}:${e.column}: ${e.path === '' ? '' : `${e.path}: `}`;
        assert.ok(r.stdout.split('\n').some((l) => l.startsWith(head)), `${f}: no line starts with '${head}' in\n${r.stdout}`);
      }
      assert.match(r.stdout, new RegExp(`${rel.replace(/[.]/g, '\\.')}: ${expected.length} problems?\\n$`), `${f}: the summary`);
    }
  });

  it('--output json gives each problem\'s code, line, column and JSON path, as the fixtures expect', async () => {
    // The library's own test checks every fixture's codes; here the CLI's JSON on one fixture per kind of problem.
    for (const f of ['syntax-unclosed-flow.yaml', 'wrong-types.yaml', 'out-of-range.yaml', 'unknown-keys.yaml', 'duplicate-names.yaml', 'dangling-vm.yaml']) {
      const rel = path.relative(ROOT, path.join(BAD, f));
      const r = await lifeboat(['validate', rel, '--output', 'json']);
      assert.equal(r.code, 1, `${f}: ${r.stderr}`);
      const report = JSON.parse(r.stdout) as Report;
      assert.equal(report.valid, false, f);
      assert.deepEqual(
        report.problems.map((p) => ({ line: p.line, column: p.column, path: p.path, code: p.code })),
        expectedOf(f).map((e) => ({ line: e.line, column: e.column, path: e.path, code: e.code })),
        `${f}: problems`,
      );
      for (const p of report.problems) assert.equal(p.file, rel, `${f}: the problem names the file as given`);
    }
  });

  it('shows a syntax error with the offending line and a caret under its column', async () => {
    const r = await lifeboat(['validate', path.join(BAD, 'syntax-unclosed-flow.yaml')]);
    assert.equal(r.code, 1);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.includes('syntax-unclosed-flow.yaml:4:55:'));
    assert.ok(at >= 0, r.stdout);
    assert.equal(lines[at + 1], '  4 |   - { name: hq, kind: hyperv-site, hosts: [hv01, hv02 }');
    assert.equal(lines[at + 2], `    | ${' '.repeat(54)}^`);
  });

  it('says what would be valid: the allowed values of an enum and the declared names for a dangling reference', async () => {
    const range = await lifeboat(['validate', path.join(BAD, 'out-of-range.yaml')]);
    assert.match(range.stdout, /:9:34: \/policies\/0\/replicationFrequencySeconds: must be one of 30, 300, 900 \(got 60\)/);
    const dangling = await lifeboat(['validate', path.join(BAD, 'dangling-vm.yaml')]);
    assert.match(dangling.stdout, /known: /);
  });

  it('accepts the example and the good fixtures with exit 0 and a one-line summary', async () => {
    for (const f of [EXAMPLE, path.join(GOOD, 'full.yaml'), path.join(GOOD, 'minimal.yaml')]) {
      const r = await lifeboat(['validate', f]);
      assert.equal(r.code, 0, `${f}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
      assert.match(r.stdout, /: valid \(vault '[^']+': \d+ sites?, /);
    }
    const j = JSON.parse((await lifeboat(['validate', EXAMPLE, '-o', 'json'])).stdout) as Report;
    assert.deepEqual(j, { file: EXAMPLE, valid: true, problems: [], summary: { sites: 2, policies: 1, networkMappings: 1, protectedVms: 2, recoveryPlans: 1 } });
  });

  it('reports files it cannot read as problems, exit 1, never a crash: missing, a folder, a FIFO, a device, binary, invalid UTF-8, over the size limit', async () => {
    const folder = path.join(tmp, 'a-folder.yaml');
    await mkdir(folder);
    const fifo = path.join(tmp, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const binary = path.join(tmp, 'binary.yaml');
    await writeFile(binary, Buffer.concat([Buffer.from('apiVersion: lifeboat/v1\nvault: '), Buffer.from([0, 1, 2, 0xff, 0xfe])]));
    const latin1 = path.join(tmp, 'latin1.yaml');
    await writeFile(latin1, Buffer.concat([Buffer.from('apiVersion: lifeboat/v1\nvault: { name: caf'), Buffer.from([0xe9]), Buffer.from(' }\n')]));
    const huge = path.join(tmp, 'huge.yaml');
    await writeFile(huge, `apiVersion: lifeboat/v1\n${'# padding\n'.repeat(500_000)}`);
    const cases: [string, RegExp, string][] = [
      [path.join(tmp, 'missing.yaml'), /cannot read the file: no such file/, 'protection.unreadable'],
      [folder, /cannot read the file: is a directory/, 'protection.unreadable'],
      [fifo, /not a regular file/, 'protection.unreadable'],
      ['/dev/zero', /not a regular file/, 'protection.unreadable'],
      [binary, /:2:8: the file is binary/, 'protection.binary'],
      [latin1, /:2:19: the file is binary, not UTF-8/, 'protection.binary'],
      [huge, /the file is 5000024 bytes; protection files are limited to 4194304 bytes/, 'protection.tooLarge'],
    ];
    for (const [file, message, code] of cases) {
      const r = await lifeboat(['validate', file], { timeoutMs: 30_000 });
      assert.equal(r.code, 1, `${file}: exit ${r.code} ${r.stderr}`);
      assertNoCrash(r, file);
      assert.match(r.stdout, message, file);
      const j = JSON.parse((await lifeboat(['validate', file, '-o', 'json'], { timeoutMs: 30_000 })).stdout) as Report;
      assert.deepEqual(j.problems.map((p) => p.code), [code], file);
    }
  });

  it('usage errors exit 2: no file, two files, an unknown option', async () => {
    for (const args of [['validate'], ['validate', EXAMPLE, EXAMPLE], ['validate', EXAMPLE, '--strict'], ['validate', EXAMPLE, '-o', 'xml']]) {
      const r = await lifeboat(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\[cli\.usage\]/);
    }
  });
});
