/**
 * Child process of the lab tests' crash case: drives a lab, starts a tracked
 * VM whose guest writes fast, prints `ready` once it has run `minOps`
 * operations, and keeps writing until the parent kills it with SIGKILL (the
 * host agent dying while its VM runs).
 *
 * Usage: node -r ts-node/register/transpile-only crash-child.ts LAB_ROOT MIN_OPS
 */
import { LabHypervisor } from '../../../../provider/hypervisor/lab/lab-hypervisor';

async function main(): Promise<void> {
  const [labRoot, minOps] = process.argv.slice(2);
  const hv = await LabHypervisor.open({ labRoot: labRoot! });
  await hv.create({
    name: 'vm1',
    disks: [{ id: 'd0', sizeBytes: 1 << 20 }],
    workload: { seed: 11, bytesPerSecond: 16 << 20, flushEvery: 8, minWriteBytes: 512, maxWriteBytes: 32 << 10, alignment: 512 },
  });
  await hv.enableTracking('vm1', 'd0');
  await hv.start('vm1');
  while ((await hv.diskStatus('vm1', 'd0')).journal.nextOp < Number(minOps)) await new Promise((r) => setTimeout(r, 2));
  process.stdout.write('ready\n');
  // Keep the event loop alive: the guest writes until the kill.
  setInterval(() => undefined, 1000);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
