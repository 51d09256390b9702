import { strict as assert } from 'node:assert';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { connect } from '../../../provider/cli/connection';
import { UsageError } from '../../../provider/cli/exit-codes';
import { writeLabState } from '../../../provider/cli/lab/lab-state';
import { LifeboatError } from '../../../provider/errors';
import { createVaultServer, type VaultServer } from '../../../provider/vault/server';

describe('cli/connection', () => {
  let dir: string;
  let vault: VaultServer;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-conn-'));
    vault = await createVaultServer({ dataDir: path.join(dir, 'vault'), log: () => undefined });
  });
  after(async () => {
    await vault.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the vault from flags, else the environment, else the lab in the folder', async () => {
    const labDir = path.join(dir, 'work', '.lab');
    await mkdir(labDir, { recursive: true });
    await writeLabState({ version: 1, dir: labDir, vaultUrl: 'http://127.0.0.1:9', vaultPort: 9, vaultName: 'lab', adminTokenFile: vault.adminTokenFile, processes: [], upAt: 'now' });
    const cwd = path.join(dir, 'work');
    const fromLab = await connect({}, {}, cwd);
    assert.deepEqual([fromLab.from, fromLab.url, fromLab.vault], ['lab', 'http://127.0.0.1:9', 'lab']);
    const fromEnv = await connect({ vaultName: 'x' }, { LIFEBOAT_VAULT_URL: 'http://127.0.0.1:8', LIFEBOAT_TOKEN_FILE: vault.adminTokenFile }, cwd);
    assert.deepEqual([fromEnv.from, fromEnv.url, fromEnv.vault], ['environment', 'http://127.0.0.1:8', 'x']);
    const fromFlags = await connect({ vault: 'http://127.0.0.1:7', tokenFile: vault.adminTokenFile, vaultName: 'y' }, { LIFEBOAT_VAULT_URL: 'http://127.0.0.1:8', LIFEBOAT_VAULT: 'z' }, cwd);
    assert.deepEqual([fromFlags.from, fromFlags.url, fromFlags.vault], ['flag', 'http://127.0.0.1:7', 'y']);
  });

  it('defaults the vault name to the only vault on the server, and says when there is none or several', async () => {
    const token = (await readFile(vault.adminTokenFile, 'utf8')).trim();
    const put = (name: string): Promise<Response> => fetch(`${vault.url}/v1/vaults/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    const flags = { vault: vault.url, tokenFile: vault.adminTokenFile };
    await assert.rejects(connect(flags, {}, dir), (e: unknown) => e instanceof UsageError && /has no vault yet/.test(e.message));
    await put('only');
    assert.equal((await connect(flags, {}, dir)).vault, 'only');
    await put('second');
    await assert.rejects(connect(flags, {}, dir), (e: unknown) => e instanceof UsageError && /2 vaults: only, second/.test(e.message));
  });

  it('refuses to run without a vault or a readable, private token file', async () => {
    await assert.rejects(connect({}, {}, path.join(dir, 'empty')), UsageError);
    await assert.rejects(connect({ vault: 'http://x' }, {}, path.join(dir, 'empty')), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'cli.noToken');
    const open = path.join(dir, 'open-token');
    await writeFile(open, 'lba_x');
    await chmod(open, 0o644);
    await assert.rejects(connect({ vault: 'http://x', tokenFile: open }, {}, dir), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'cli.noToken' && /accessible to group or others/.test(e.message));
    await assert.rejects(connect({ vault: 'http://x', tokenFile: path.join(dir, 'none') }, {}, dir), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'cli.noToken');
  });
});
