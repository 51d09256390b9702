/**
 * `plan.runScript` on real processes: only executables inside the scripts
 * directory run (absolute names, `..`, symbolic links out of it,
 * directories and non-executables are refused); the exit code, the
 * environment and the tail of the output come back; a script past its
 * timeout is killed with its whole process group; a withdrawn command kills
 * it too.
 */

import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from '../../../provider/errors';
import { resolveScript, RUN_SCRIPT, scriptHandlers } from '../../../provider/agent/script-commands';
import type { AgentCommand } from '../../../provider/agent/vault-channel';

describe('agent/script-commands', () => {
  let root: string;
  let scripts: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lifeboat-scripts-'));
    scripts = path.join(root, 'scripts');
    await mkdir(path.join(scripts, 'sub'), { recursive: true });
    await script('ok.sh', 'echo "plan=$LIFEBOAT_PLAN group=$LIFEBOAT_GROUP secret=${SECRET:-none}"; echo oops >&2; exit 0');
    await script('sub/three.sh', 'echo failing; exit 3');
    await script('loud.sh', 'i=0; while [ $i -lt 3000 ]; do echo "line $i of a long output"; i=$((i+1)); done');
    await script('hang.sh', `sleep 30 & echo $! > "${path.join(root, 'grandchild.pid')}"; echo started; wait`);
    await writeFile(path.join(scripts, 'plain.sh'), 'echo hi\n');
    await writeFile(path.join(root, 'outside.sh'), '#!/bin/sh\necho outside\n', { mode: 0o755 });
    await symlink(path.join(root, 'outside.sh'), path.join(scripts, 'escape.sh'));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function script(name: string, body: string): Promise<void> {
    await writeFile(path.join(scripts, name), `#!/bin/sh\n${body}\n`);
    await chmod(path.join(scripts, name), 0o755);
  }

  async function refusal(name: string): Promise<string> {
    try {
      await resolveScript(scripts, name);
    } catch (e) {
      return LifeboatError.isInstance(e) ? `${e.code}: ${e.message}` : String(e);
    }
    return 'accepted';
  }

  function run(payload: Record<string, unknown>, signal = new AbortController().signal, killGraceMs = 200): Promise<Readonly<Record<string, unknown>>> {
    const handler = scriptHandlers({ scriptsDir: scripts, outputTailBytes: 4096, killGraceMs })[RUN_SCRIPT]!;
    const command = { id: 'c1', type: RUN_SCRIPT, payload } as unknown as AgentCommand;
    return handler(command, { signal, progress: () => undefined });
  }

  it('refuses anything but an executable file inside the scripts directory', async () => {
    assert.match(await refusal('/bin/sh'), /agent.scriptNotAllowed: .*absolute paths are refused/);
    assert.match(await refusal('../outside.sh'), /agent.scriptNotAllowed: .*"\.\." is refused/);
    assert.match(await refusal('sub/../../outside.sh'), /"\.\." is refused/);
    assert.match(await refusal('escape.sh'), /resolves outside the scripts directory/);
    assert.match(await refusal('plain.sh'), /not executable/);
    assert.match(await refusal('sub'), /not a regular file/);
    assert.match(await refusal('missing.sh'), /no such file/);
    assert.match(await refusal(''), /empty/);
    assert.equal(await resolveScript(scripts, 'sub/three.sh'), path.join(await import('node:fs/promises').then((f) => f.realpath(scripts)), 'sub', 'three.sh'));
  });

  it('answers the exit code and output; passes only LIFEBOAT_ variables from the vault', async () => {
    const ok = await run({ script: 'ok.sh', timeoutSeconds: 30, environment: { LIFEBOAT_PLAN: 'erp', LIFEBOAT_GROUP: 'web', SECRET: 'x' } });
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.timedOut, false);
    assert.match(String(ok.output), /plan=erp group=web secret=none/);
    assert.match(String(ok.output), /oops/, 'stderr is kept too');
    const three = await run({ script: 'sub/three.sh', timeoutSeconds: 30 });
    assert.deepEqual({ code: three.exitCode, out: three.output }, { code: 3, out: 'failing\n' });
  });

  it('keeps the tail of a long output', async () => {
    const loud = await run({ script: 'loud.sh', timeoutSeconds: 30 });
    const out = String(loud.output);
    assert.equal(loud.truncated, true);
    assert.ok(Buffer.byteLength(out) <= 4096);
    assert.ok(out.endsWith('line 2999 of a long output\n'), 'the end is kept');
    assert.ok(!out.includes('line 0 of'), 'the start is dropped');
  });

  it('kills the whole process group at the timeout, output kept', async () => {
    const r = await run({ script: 'hang.sh', timeoutSeconds: 1 });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, -1, 'killed by a signal');
    assert.match(String(r.output), /started/);
    const pid = Number((await readFile(path.join(root, 'grandchild.pid'), 'utf8')).trim());
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`) && !(await zombie(pid)); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(!existsSync(`/proc/${pid}`) || await zombie(pid), 'the background child of the script is gone too');
  });

  it('a withdrawn command kills the script', async () => {
    await rm(path.join(root, 'grandchild.pid'), { force: true });
    const abort = new AbortController();
    const p = run({ script: 'hang.sh', timeoutSeconds: 60 }, abort.signal);
    for (let i = 0; i < 100 && !existsSync(path.join(root, 'grandchild.pid')); i++) await new Promise((res) => setTimeout(res, 20));
    abort.abort();
    const r = await p;
    assert.equal(r.timedOut, false);
    assert.notEqual(r.exitCode, 0);
  });

  async function zombie(pid: number): Promise<boolean> {
    try {
      return /^\d+ \(.*\) Z/.test(await readFile(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return true;
    }
  }
});
