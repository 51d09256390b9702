import { strict as assert } from 'node:assert';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { labStateFile, readLabState, writeLabState, type LabState } from '../../../../provider/cli/lab/lab-state';
import { LifeboatError } from '../../../../provider/errors';

describe('cli/lab/lab-state', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-labstate-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the state (mode 0600) and reads it back; no file is no lab', async () => {
    assert.equal(await readLabState(dir), undefined);
    const s: LabState = {
      version: 1, dir, vaultUrl: 'http://127.0.0.1:4000', vaultPort: 4000, vaultName: 'lab', adminTokenFile: path.join(dir, 'vault', 'admin-token'),
      processes: [{ name: 'vault', kind: 'vault', pid: 42, dataDir: path.join(dir, 'vault'), logFile: path.join(dir, 'logs', 'vault.log'), startedAt: '2026-01-01T00:00:00Z' }],
      frequencyMs: 500, upAt: '2026-01-01T00:00:00Z',
    };
    await writeLabState(s);
    assert.deepEqual(await readLabState(dir), s);
    assert.equal((await stat(labStateFile(dir))).mode & 0o777, 0o600);
  });

  it('refuses a file that is not a lab state, naming it', async () => {
    await writeFile(labStateFile(dir), '{"version": 2}');
    await assert.rejects(readLabState(dir), (e: unknown) => LifeboatError.isInstance(e) && e.code === 'lab.stateCorrupt' && e.where?.file === labStateFile(dir));
  });
});
