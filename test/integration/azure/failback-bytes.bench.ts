/**
 * Benchmark (docs/benchmarks.md §13, not part of the test suite): failback
 * bytes from Azure against the disk size after about 1 % of the disk changed
 * on the Azure side. `lifeboat lab up --azure` with a 64 MiB disk; planned
 * failover and commit; the Azure-side guest writes until 1 % of the disk
 * differs from the failover point (4 KiB granularity); flushed shutdown;
 * `failback.fromAzure`; prints the failback record. Needs `tsc -p .` (dist/).
 *
 *   node -r ts-node/register/transpile-only test/integration/azure/failback-bytes.bench.ts
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { TestLab, waitFor } from '../lab/lab-harness';

const MIB = 64;
const DISK = MIB * 1024 * 1024;

async function main(): Promise<void> {
  const lab = await TestLab.up(['--azure', '--disk-mib', String(MIB), '--rate-kib', '32', '--frequency-ms', '500']);
  try {
    await lab.client.putObject('lab', 'networkMappings', 'to-vnet', { source: { site: 'primary', network: 'lab-net' }, target: { azure: true, network: 'dr-vnet', subnet: 'default' } } as never);
    const created = await lab.client.putProtectedItem('lab', 'web', { site: 'primary', vm: 'web01', policy: 'lab-azure-policy' });
    await lab.jobSucceeds(created.status.activeJob!.id, 180_000);
    const fo = await lab.client.failover('lab', 'web', { type: 'planned' } as never);
    await lab.jobSucceeds(fo.id, 180_000);
    await lab.jobSucceeds((await lab.client.commitFailover('lab', 'web')).id);
    const source = await lab.sourceDisk('primary-1', 'web01');
    const file = path.join(lab.dir, 'hosts', 'azure-1', 'lab', 'azure-disks', 'web01', 'disk0.raw');
    const changed = (b: Buffer, g: number): number => { let n = 0; for (let at = 0; at < DISK; at += g) if (!b.subarray(at, at + g).equals(source.subarray(at, at + g))) n += g; return n; };
    await waitFor('1 % of the disk changed (4 KiB granularity)', async () => (changed(await readFile(file), 4096) >= DISK / 100 ? true : undefined), 300_000, 500);
    const off = await lab.cli(['agent', 'vm', 'shutdown', 'web01', '--host', 'azure-1', '--lab-dir', lab.dir]);
    if (off.code !== 0) throw new Error(off.stderr);
    const final = await readFile(file);
    const t0 = Date.now();
    const job = await lab.client.reprotect('lab', 'web');
    await lab.jobSucceeds(job.id, 180_000);
    const ms = Date.now() - t0;
    const st = (await lab.client.getProtectedItem('lab', 'web')).status as unknown as { failback: Record<string, unknown> };
    console.log(JSON.stringify({ diskBytes: DISK, changed4k: changed(final, 4096), changed64k: changed(final, 65536), failback: st.failback, jobMs: ms }));
  } finally {
    await lab.down();
  }
}
void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
