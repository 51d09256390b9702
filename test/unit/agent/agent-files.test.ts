import { strict as assert } from 'node:assert';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { agentPaths, ensureDataDir, readOptional, readSecretFile, writeFileAtomic } from '../../../provider/agent/agent-files';
import { LifeboatError } from '../../../provider/errors';

describe('agent/agent-files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lays out the data folder and creates it with mode 0700', async () => {
    const p = agentPaths(path.join(dir, 'agent'));
    assert.equal(p.token, path.join(dir, 'agent', 'agent-token'));
    assert.equal(p.controlSocket, path.join(dir, 'agent', 'control.sock'));
    await ensureDataDir(p);
    await ensureDataDir(p);
    assert.equal((await stat(p.root)).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(p.root), ['items']);
  });

  it('replaces a file atomically with the given mode, leaving no temporary file', async () => {
    const f = path.join(dir, 'secret');
    await writeFileAtomic(f, 'one', 0o600);
    await writeFileAtomic(f, 'two', 0o600);
    assert.equal(await readFile(f, 'utf8'), 'two');
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['secret']);
  });

  it('reads a secret only if group and others cannot', async () => {
    const f = path.join(dir, 'token');
    assert.equal(await readSecretFile(f), undefined);
    await writeFile(f, 'lbh_x\n', { mode: 0o600 });
    assert.equal(await readSecretFile(f), 'lbh_x');
    await chmod(f, 0o644);
    await assert.rejects(readSecretFile(f), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'agent.secretFileInsecure' && e.where?.file === f);
    assert.equal(await readOptional(path.join(dir, 'none')), undefined);
  });
});
