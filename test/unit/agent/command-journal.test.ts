import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileCommandJournal } from '../../../provider/agent/command-journal';

describe('agent/command-journal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps commands (mode 0600) oldest first until removed; a torn file is dropped', async () => {
    const j = fileCommandJournal(path.join(dir, 'commands'));
    assert.deepEqual(await j.list(), []);
    const c = (id: string, at: string) => ({ id, type: 'replication.start', payload: { itemUid: 'u' }, state: 'Delivered', deliveries: 1, createdAt: at });
    await j.save(c('cmd-2', '2026-01-01T00:00:02Z'));
    await j.save(c('cmd-1', '2026-01-01T00:00:01Z'));
    await writeFile(path.join(dir, 'commands', 'cmd-3.json'), '{"id": "cmd-3", "ty');
    assert.equal((await stat(path.join(dir, 'commands', 'cmd-1.json'))).mode & 0o777, 0o600);
    assert.deepEqual((await j.list()).map((x) => x.id), ['cmd-1', 'cmd-2']);
    assert.deepEqual((await readdir(path.join(dir, 'commands'))).sort(), ['cmd-1.json', 'cmd-2.json']);
    await j.remove('cmd-1');
    await j.remove('cmd-1');
    assert.deepEqual((await j.list()).map((x) => x.id), ['cmd-2']);
  });
});
