import { strict as assert } from 'node:assert';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ControlServer } from '../../../provider/agent/control-server';
import { LabHypervisor } from '../../../provider/hypervisor/lab';

function call(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path: urlPath }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

describe('agent/ControlServer', () => {
  let dir: string;
  let hv: LabHypervisor;
  let server: ControlServer;
  let changes = 0;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-ctl-'));
    hv = await LabHypervisor.open({ labRoot: path.join(dir, 'lab') });
    await hv.create({ name: 'web01', disks: [{ id: 'disk0', sizeBytes: 1024 * 1024 }] });
    server = await ControlServer.start({ socketPath: path.join(dir, 'control.sock'), hypervisor: hv, status: async () => ({ host: 'hq1' }), onVmChange: () => { changes++; } });
  });
  afterEach(async () => {
    await server.close();
    await hv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers status and VM operations on a socket only its user can use', async () => {
    assert.equal((await stat(server.socketPath)).mode & 0o777, 0o600);
    assert.deepEqual((await call(server.socketPath, 'GET', '/status')).body, { host: 'hq1' });
    const started = await call(server.socketPath, 'POST', '/vms/web01/start');
    assert.equal(started.status, 200);
    assert.equal(started.body.power, 'Running');
    const off = await call(server.socketPath, 'POST', '/vms/web01/shutdown', { turnOff: false });
    assert.equal(off.body.power, 'Off');
    assert.equal((off.body.lastStop as { clean: boolean }).clean, true);
    assert.equal(changes, 2);
    const list = await call(server.socketPath, 'GET', '/vms');
    assert.deepEqual((list.body.items as { name: string }[]).map((v) => v.name), ['web01']);
  });

  it('answers errors with their code: 404 for an unknown VM or path, 400 for a bad body', async () => {
    const missing = await call(server.socketPath, 'POST', '/vms/nope/start');
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { code: string }).code, 'hypervisor.vmNotFound');
    assert.equal((await call(server.socketPath, 'GET', '/nothing')).status, 404);
    const bad = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: server.socketPath, method: 'POST', path: '/vms/web01/shutdown' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end('{not json');
    });
    assert.equal(bad, 400);
  });
});
