/**
 * `LabOpenReport.resumable` (docs/failover.md §6): without
 * `startInterrupted`, the VMs that ran when the previous driver stopped stay
 * off and are listed for the caller to start once it knows it may; fenced
 * ones are never listed.
 */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LabHypervisor } from '../../../../provider/hypervisor/lab';

describe('hypervisor/lab: VMs resumable after a restart', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-lab-resumable-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists running VMs left off, not fenced or stopped ones; with startInterrupted they run and none is left', async () => {
    let hv = await LabHypervisor.open({ labRoot: dir });
    for (const name of ['a', 'b', 'c']) await hv.create({ name, disks: [{ id: 'disk0', sizeBytes: 1024 * 1024 }] });
    await hv.start('a');
    await hv.start('b');
    await hv.fence('b', 'failed over elsewhere');
    await hv.close();

    hv = await LabHypervisor.open({ labRoot: dir });
    assert.deepEqual(hv.openReport.resumable, ['a']);
    assert.equal((await hv.get('a')).power, 'Off', 'nothing is started by the driver itself');
    await hv.start('a');
    await hv.close();

    hv = await LabHypervisor.open({ labRoot: dir, startInterrupted: true });
    assert.deepEqual(hv.openReport.restarted, ['a']);
    assert.deepEqual(hv.openReport.resumable, []);
    assert.equal((await hv.get('b')).power, 'Off');
    await hv.close();
  });
});
