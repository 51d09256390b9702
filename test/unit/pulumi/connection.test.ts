import { strict as assert } from 'node:assert';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveConnection } from '../../../provider/pulumi/connection';

describe('pulumi/connection', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-conn-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stack config before the environment, per value; token before token file', async () => {
    const file = path.join(dir, 'token');
    await writeFile(file, 'lba_from_file\n', { mode: 0o600 });
    const env = { LIFEBOAT_VAULT_URL: 'http://env:1', LIFEBOAT_TOKEN: 'lba_env', LIFEBOAT_TOKEN_FILE: file };
    const cfg = (m: Record<string, string>) => (k: string) => m[k];
    assert.equal(resolveConnection({ env, config: cfg({}) }).tokenFrom, 'environment LIFEBOAT_TOKEN');
    assert.equal(resolveConnection({ env: { ...env, LIFEBOAT_TOKEN: '' }, config: cfg({}) }).tokenFrom, 'environment LIFEBOAT_TOKEN_FILE');
    const c = resolveConnection({ env, config: cfg({ 'lifeboat:vaultUrl': 'http://cfg:2', 'lifeboat:tokenFile': file }) });
    assert.equal(c.url, 'http://cfg:2');
    assert.equal(c.tokenFrom, 'stack config lifeboat:tokenFile');
    assert.equal(resolveConnection({ env, config: cfg({ 'lifeboat:token': 'lba_cfg', 'lifeboat:tokenFile': file }) }).tokenFrom, 'stack config lifeboat:token');
  });

  it('refuses what is missing, malformed or readable by others, saying what to set', async () => {
    const none = { env: {}, config: () => undefined };
    assert.throws(() => resolveConnection(none), (e: Error & { code: string; hint: string }) => e.code === 'pulumi.noConnection' && /LIFEBOAT_VAULT_URL/.test(e.hint));
    assert.throws(() => resolveConnection({ env: { LIFEBOAT_VAULT_URL: 'ftp://x' }, config: () => undefined }), /not an http\(s\) URL/);
    assert.throws(() => resolveConnection({ env: { LIFEBOAT_VAULT_URL: 'http://x:1' }, config: () => undefined }), (e: Error & { hint: string }) => /lifeboat:token/.test(e.hint));
    const open = path.join(dir, 'open-token');
    await writeFile(open, 'lba_x');
    await chmod(open, 0o644);
    assert.throws(() => resolveConnection({ env: { LIFEBOAT_VAULT_URL: 'http://x:1', LIFEBOAT_TOKEN_FILE: open }, config: () => undefined }), /accessible to group or others/);
  });
});
