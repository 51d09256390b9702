import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { isAlive, stopProcess } from '../../../../provider/cli/lab/processes';

/** A node child that runs until killed; `stubborn` ignores SIGTERM. Its command line carries `marker`; `ready` once it runs. */
function child(marker: string, stubborn: boolean): { pid: number; exited: Promise<void>; ready: Promise<void> } {
  const code = `${stubborn ? "process.on('SIGTERM', () => {});" : ''} setInterval(() => {}, 1000); process.stdout.write('ready'); // ${marker}`;
  const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ready = new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
  return { pid: c.pid!, exited: new Promise((resolve) => c.once('exit', () => resolve())), ready };
}

describe('cli/lab/processes', function () {
  this.timeout(20_000);

  it('takes a pid for the lab\'s only when its command line names the data folder', async () => {
    const c = child('/tmp/lab-a/hosts/x', false);
    await c.ready;
    try {
      assert.equal(isAlive(c.pid, '/tmp/lab-a/hosts/x'), true);
      assert.equal(isAlive(c.pid, '/tmp/lab-b/hosts/x'), false);
    } finally {
      process.kill(c.pid, 'SIGKILL');
      await c.exited;
    }
    assert.equal(isAlive(c.pid, '/tmp/lab-a/hosts/x'), false);
  });

  it('stops with SIGTERM, or SIGKILL after the timeout; a second stop finds nothing', async () => {
    const polite = child('/tmp/lab-c/vault', false);
    await polite.ready;
    const exitedPolite = polite.exited;
    assert.equal(await stopProcess(polite.pid, '/tmp/lab-c/vault', 5000), 'terminated');
    await exitedPolite;
    assert.equal(await stopProcess(polite.pid, '/tmp/lab-c/vault', 5000), 'gone');

    const stubborn = child('/tmp/lab-d/vault', true);
    await stubborn.ready; // its SIGTERM handler is installed
    const result = await stopProcess(stubborn.pid, '/tmp/lab-d/vault', 500);
    await stubborn.exited;
    assert.equal(result, 'killed');
  });
});
