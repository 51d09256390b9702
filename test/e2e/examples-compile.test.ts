/**
 * Every example's program compiles, strict, against the package's published
 * types (dist/*.d.ts, reached through the self-reference `lifeboat`), with
 * its own tsconfig.json: the engine runs them without type-checking, so a
 * renamed input would otherwise surface only at `pulumi up`. Needs `tsc -p .`
 * first (dist/). Also: each protection file of the examples is valid.
 */

import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { lifeboat, ROOT } from '../integration/lab/lab-harness';
import { EXAMPLES, run } from './example-harness';

const examples = readdirSync(EXAMPLES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

describe('examples: programs compile and protection files validate', function () {
  this.timeout(120_000);

  it('there are the examples of the issues (issue 7 added azure)', () => {
    assert.deepEqual(examples, ['azure', 'gitops', 'secondary-site', 'yaml-declared']);
  });

  for (const name of examples) {
    it(`${name}: Pulumi.yaml names index.ts and tsc -p ${name}/tsconfig.json passes`, async () => {
      assert.ok(existsSync(path.join(EXAMPLES, name, 'index.ts')));
      const project = parse(readFileSync(path.join(EXAMPLES, name, 'Pulumi.yaml'), 'utf8')) as { main?: string; runtime?: { name?: string } };
      assert.equal(project.main, 'index.ts', 'the engine must run this folder\'s program, not the package\'s main (docs/toolchain.md)');
      assert.equal(project.runtime?.name, 'nodejs');
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = await run(process.execPath, [tsc, '-p', path.join(EXAMPLES, name, 'tsconfig.json')], { cwd: ROOT, env: { PATH: process.env.PATH } });
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    });
  }

  for (const file of ['yaml-declared/protection.yaml', 'gitops/protection.yaml', 'secondary-site/lab.yaml']) {
    it(`lifeboat validate ${file}`, async () => {
      const r = await lifeboat(['validate', path.join(EXAMPLES, file)]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    });
  }
});
