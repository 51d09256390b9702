/**
 * The command handlers of an agent, in one process: a lab hypervisor with a
 * running VM on the "primary" side, a replica service on the "recovery"
 * side, and the handlers driving them as the vault's commands would.
 */
import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { commandHandlers, type HandlerContext } from '../../../provider/agent/command-handlers';
import { type CommandHandler } from '../../../provider/agent/command-runner';
import { loadRecords } from '../../../provider/agent/item-records';
import { ReplicaService } from '../../../provider/agent/replica-service';
import { SourceItem } from '../../../provider/agent/source-item';
import { type AgentCommand } from '../../../provider/agent/vault-channel';
import { systemClock } from '../../../provider/clock';
import { LifeboatError } from '../../../provider/errors';
import { LabHypervisor } from '../../../provider/hypervisor/lab';
import { createCertificateAuthority, issueCertificate } from '../../../provider/vault/ca';

const MiB = 1024 * 1024;
const ca = createCertificateAuthority({ commonName: 'Lab vault CA', clock: systemClock, validityDays: 2 });

function credentials(cn: string, ou: string): { keyPem: string; certPem: string; caPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const c = issueCertificate(ca, { publicKey, commonName: cn, organizationalUnit: ou, dnsNames: [cn], ipAddresses: ['127.0.0.1'], clock: systemClock, validityDays: 2 });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certPem: c.certificatePem, caPem: ca.certificatePem };
}

const policy = {
  target: 'secondary-site', replicationFrequencySeconds: 30, recoveryPointRetentionHours: 1, appConsistentSnapshotFrequencyHours: 0,
  initialReplication: { method: 'online' }, compression: true, deleteReplicaOnDisable: false,
  resync: { automatic: true, window: { start: '18:30', end: '07:30' } }, offHours: { start: '18:00', end: '07:00' },
};
const uid = '0c1d2e3f-4a5b-4c6d-8e7f-0123456789ab';
const base = { item: 'web', itemUid: uid, vm: 'web01' };
const disks = [{ id: 'disk0', sizeBytes: 2 * MiB }];

let seq = 0;
function cmd(type: string, payload: Record<string, unknown>): AgentCommand {
  return { id: `cmd-${++seq}`, type, payload: { ...base, ...payload }, state: 'Delivered', deliveries: 1, createdAt: new Date().toISOString() };
}

async function run(h: Readonly<Record<string, CommandHandler>>, c: AgentCommand, progress: number[] = []): Promise<unknown> {
  return h[c.type]!(c, { signal: new AbortController().signal, progress: (p) => progress.push(p) });
}

function code(expected: string): (e: unknown) => boolean {
  return (e: unknown) => LifeboatError.isInstance(e) && e.code === expected;
}

describe('agent/command-handlers (one process: lab hypervisor, replica service)', function () {
  this.timeout(60_000);
  let dir: string;
  let hv: LabHypervisor;
  let replicas: ReplicaService;
  let source: HandlerContext;
  let recovery: HandlerContext;
  let srcHandlers: Readonly<Record<string, CommandHandler>>;
  let recHandlers: Readonly<Record<string, CommandHandler>>;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lb-handlers-'));
    hv = await LabHypervisor.open({ labRoot: path.join(dir, 'primary', 'lab') });
    await hv.create({ name: 'web01', disks, workload: { seed: 7, bytesPerSecond: 256 * 1024 } });
    await hv.start('web01');
    replicas = await ReplicaService.start({ root: path.join(dir, 'recovery', 'replicas'), credentials: credentials('dr1', 'lab/dr'), vault: 'lab', log: () => undefined });
    const sources = new Map<string, SourceItem>();
    const primaryCreds = credentials('hq1', 'lab/hq');
    source = {
      hypervisor: hv, itemsDir: path.join(dir, 'primary', 'items'), replicas: undefined, sources,
      newSourceItem: (record) => new SourceItem({ record, hypervisor: hv, credentials: primaryCreds, itemsDir: path.join(dir, 'primary', 'items'), frequencyOverrideMs: 200, onChange: () => undefined, log: () => undefined }),
      changed: () => undefined, now: () => Date.now(),
    };
    const recoveryHv = await LabHypervisor.open({ labRoot: path.join(dir, 'recovery', 'lab') });
    recovery = { ...source, hypervisor: recoveryHv, itemsDir: path.join(dir, 'recovery', 'items'), replicas, sources: new Map() };
    srcHandlers = commandHandlers(source);
    recHandlers = commandHandlers(recovery);
  });

  after(async () => {
    for (const s of source.sources.values()) await s.stop();
    await replicas.close();
    await hv.close();
    await recovery.hypervisor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses what this host cannot do, naming why, and records nothing', async () => {
    await assert.rejects(run(srcHandlers, cmd('replica.create', { disks, policy, sourceHost: 'hq1' })), code('agent.notRecoveryHost'));
    await assert.rejects(run(srcHandlers, cmd('replication.start', { method: 'online' })), code('agent.noRelationship'));
    await assert.rejects(run(srcHandlers, cmd('replication.start', { method: 'offline' })), code('agent.offlineNotSupported'));
    await assert.rejects(run(srcHandlers, cmd('replication.enable', { disks, policy, target: { kind: 'tape' }, timeZone: 'UTC' })), code('agent.targetKindUnsupported'));
    const target = { kind: 'host', host: 'dr1', address: '127.0.0.1', port: replicas.port, serverName: 'dr1' };
    await assert.rejects(run(srcHandlers, cmd('replication.enable', { disks: [{ id: 'disk9', sizeBytes: MiB }], policy, target, timeZone: 'UTC' })), code('hypervisor.diskNotFound'));
    await assert.rejects(run(srcHandlers, cmd('replication.enable', { vm: 'ghost', disks, policy, target, timeZone: 'UTC' })), code('hypervisor.vmNotFound'));
    assert.deepEqual(await loadRecords(source.itemsDir), []);
  });

  it('creates the replica, enables and starts replication to the first point, resyncs, then disables and deletes, each idempotently', async () => {
    const create = cmd('replica.create', { disks, policy, sourceHost: 'hq1', targetVm: {} });
    await run(recHandlers, create);
    await run(recHandlers, create);
    assert.deepEqual(await replicas.target.listDisks(), [`${uid}/disk0`]);

    const target = { kind: 'host', host: 'dr1', address: '127.0.0.1', port: replicas.port, serverName: 'dr1' };
    const enable = cmd('replication.enable', { disks, policy, target, timeZone: 'Europe/Berlin' });
    await run(srcHandlers, enable);
    await run(srcHandlers, enable);
    assert.equal((await hv.get('web01')).disks[0]!.tracked, true);
    const progress: number[] = [];
    await run(srcHandlers, cmd('replication.start', { method: 'online' }), progress);
    const item = source.sources.get(uid)!;
    const report = await item.report();
    assert.equal(report.replicationState, 'Protected');
    assert.equal(report.health, 'Normal');
    assert.ok((report.recoveryPoints ?? []).length >= 1);
    assert.ok(progress.every((p) => p >= 0 && p <= 100));

    const before = item.diskStatuses()[0]!.status!;
    await run(srcHandlers, cmd('resync.run', {}));
    const after = item.diskStatuses()[0]!.status!;
    assert.equal(after.state, 'Protected');
    assert.ok(after.lastPointAt! > before.lastPointAt!, 'a point after the resync');
    assert.ok(after.stats.comparedBlocks > 0, 'the resync compared block digests');

    const configured = Date.now();
    await run(srcHandlers, cmd('replication.configure', { policy: { ...policy, recoveryPointRetentionHours: 2 }, targetVm: {} }));
    assert.equal(((await loadRecords(source.itemsDir))[0]!.policy).recoveryPointRetentionHours, 2);
    const deadline = Date.now() + 10_000;
    // The loops restarted with the new policy and keep cutting points.
    while (!((item.diskStatuses()[0]!.status?.lastPointAt ?? 0) > configured) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok((item.diskStatuses()[0]!.status?.lastPointAt ?? 0) > configured, 'a point after the reconfiguration');

    await run(recHandlers, cmd('replica.configure', { policy, targetVm: { name: 'web01-dr' }, networkMappings: [{ sourceNetwork: 'a', targetNetwork: 'b' }] }));
    const rec = (await loadRecords(recovery.itemsDir))[0] as unknown as { targetVm: { name?: string }; networkMappings: unknown[] };
    assert.equal(rec.targetVm.name, 'web01-dr');
    assert.equal(rec.networkMappings.length, 1);

    const disable = cmd('replication.disable', { deleteLogs: true });
    await run(srcHandlers, disable);
    await run(srcHandlers, disable);
    assert.equal((await hv.get('web01')).disks[0]!.tracked, false);
    assert.equal(source.sources.size, 0);
    assert.deepEqual(await readdir(source.itemsDir), []);

    const del = cmd('replica.delete', {});
    await run(recHandlers, del);
    await run(recHandlers, del);
    assert.deepEqual(await replicas.target.listDisks(), []);
    assert.deepEqual(await loadRecords(recovery.itemsDir), []);
  });
});
