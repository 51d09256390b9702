import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { POLICY_DEFAULTS } from '../../../provider/vault/control/specs';
import { SCHEMA_NAMES, SchemaRegistry, type SchemaName } from '../../../provider/validation/schemas';

const registry = SchemaRegistry.load();

type Node = Record<string, unknown>;

/** Every subschema of a document with its JSON Pointer. */
function* walk(node: unknown, at: string): Generator<[string, Node]> {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const [i, v] of node.entries()) yield* walk(v, `${at}/${i}`);
    return;
  }
  yield [at, node as Node];
  for (const [k, v] of Object.entries(node)) yield* walk(v, `${at}/${k}`);
}

/** The problems of a body as (path → message) pairs, for compact assertions. */
function problems(name: SchemaName, body: unknown): Map<string, string> {
  return new Map(registry.validate(name, body).map((p) => [p.path, p.message]));
}

describe('vault/validation/schemas', () => {
  it('loads every request schema (draft 2020-12, strict ajv) with a relative $id', () => {
    for (const name of SCHEMA_NAMES) {
      const doc = registry.document(name);
      assert.equal(doc.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
      assert.equal(doc.$id, `${name}.schema.json`);
      assert.equal(typeof doc.title, 'string');
    }
  });

  it('closes every object (additionalProperties: false) and describes every property', () => {
    for (const [file, doc] of registry.documents) {
      for (const [at, node] of walk(doc, '')) {
        const props = node.properties;
        if (typeof props !== 'object' || props === null) continue;
        const inBranch = /\/(if|then|else|allOf|oneOf|dependentSchemas)(\/|$)/.test(at);
        if (!inBranch) assert.equal(node.additionalProperties, false, `${file}#${at} must set additionalProperties: false`);
        if (inBranch) continue;
        for (const [key, sub] of Object.entries(props as Record<string, Node>)) {
          const described = typeof sub.description === 'string' || (typeof sub.$ref === 'string' && sub.$ref.includes('$defs'));
          assert.ok(described, `${file}#${at}/properties/${key} needs a description`);
        }
      }
    }
  });

  it('accepts minimal and full valid bodies', () => {
    const valid: [SchemaName, unknown][] = [
      ['vault', {}],
      ['vault', { name: 'contoso-dr', description: 'DR', heartbeatIntervalSeconds: 10, missedHeartbeatsBeforeDisconnected: 3, certificateValidityDays: 90 }],
      ['site', { kind: 'hyperv-site', hosts: ['hv01', 'hv02.contoso.local'], timeZone: 'Europe/Berlin' }],
      ['site', { kind: 'vmm-cloud', clouds: [{ name: 'Gold', hosts: ['hv01'] }], timeZone: '+02:00' }],
      ['replication-policy', { target: 'secondary-site', associations: [{ source: 'hq', target: 'dr' }] }],
      ['replication-policy', {
        name: 'gold', target: 'secondary-site', replicationFrequencySeconds: 30, recoveryPointRetentionHours: 24, appConsistentSnapshotFrequencyHours: 4,
        initialReplication: { method: 'online', startTime: '2026-03-01T22:00:00Z' }, compression: true, authentication: 'certificate',
        replicationPort: 8443, deleteReplicaOnDisable: true, resync: { automatic: true, window: { start: '22:00', end: '06:00' } },
        bandwidthLimitMbps: 100, offHoursBandwidthLimitMbps: 1000, offHours: { start: '19:00', end: '07:00' },
        associations: [{ source: 'vmm01/Gold', target: 'dr' }],
      }],
      ['replication-policy', { target: 'azure', azure: { storageAccount: 'contosodr', endpoint: 'http://127.0.0.1:10000/devstoreaccount1' }, associations: [{ source: 'hq' }] }],
      ['network-mapping', { source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' }, testNetwork: 'Isolated' }],
      ['network-mapping', { source: { site: 'hq', network: 'Prod' }, target: { azure: true, network: 'vnet-dr', subnet: 'default' } }],
      ['protected-item', { site: 'hq', vm: 'web01', policy: 'gold' }],
      ['protected-item', { name: 'web01', site: 'vmm01', cloud: 'Gold', vm: 'Web Server (01)', policy: 'gold', target: { site: 'dr', host: 'hvdr01' }, disks: ['disk-0'], targetVm: { cpuCount: 2, memoryMiB: 4096, networkAdapters: [{ network: 'Prod-DR', ipAddress: '10.1.0.5' }] } }],
      ['recovery-plan', { groups: [{ vms: ['db01'], after: [{ script: 'checks/db.sh', timeoutSeconds: 300 }] }, { vms: ['web01'], before: [{ manual: 'Lower the DNS TTL' }] }] }],
      ['command-update', { state: 'Running', progress: 42.5, message: 'copying disk 1 of 2' }],
      ['command-update', { state: 'Failed', error: { code: 'network.unreachable', category: 'recoverable', message: 'no route', hint: 'check the VPN' } }],
      ['heartbeat', { agentVersion: '0.1.0', inventory: { vms: [{ name: 'web01', powerState: 'Running', disks: [{ id: 'disk-0', sizeBytes: 1073741824 }] }] }, storage: { freeBytes: 1e12 }, replicationEndpoint: { address: '127.0.0.1', port: 45001 } }],
      ['agent-report', { items: [{ item: 'web01', replicationState: 'Protected', health: 'Normal', rpoSeconds: 12, lastReplicatedTime: '2026-01-01T00:00:00Z', statistics: { bytesTransferred: 10 }, recoveryPoints: [{ id: 'p-1', time: '2026-01-01T00:00:00Z', kind: 'crashConsistent' }] }] }],
    ];
    for (const [name, body] of valid) assert.deepEqual(registry.validate(name, body), [], `${name}: ${JSON.stringify(body)}`);
  });

  it('reports each bad field of a policy with its JSON path and what would be valid', () => {
    const p = registry.validate('replication-policy', {
      target: 'secondary-site',
      replicationFrequencySeconds: 60,
      recoveryPointRetentionHours: 25,
      appConsistentSnapshotFrequencyHours: 13,
      initialReplication: { method: 'carrier-pigeon', startTime: 'tomorrow' },
      resync: { window: { start: '25:00', end: '06:00' } },
      bogus: true,
      associations: [{ source: 'hq' }],
    });
    const byPath = new Map(p.map((x) => [x.path, x]));
    assert.deepEqual(byPath.get('/replicationFrequencySeconds')?.allowed, [30, 300, 900]);
    assert.equal(byPath.get('/recoveryPointRetentionHours')?.expected, 'integer 0..24');
    assert.equal(byPath.get('/appConsistentSnapshotFrequencyHours')?.expected, 'integer 0..12');
    assert.deepEqual(byPath.get('/initialReplication/method')?.allowed, ['online', 'offline']);
    assert.equal(byPath.get('/initialReplication/startTime')?.expected, 'date-time');
    assert.match(byPath.get('/resync/window/start')?.expected ?? '', /matching/);
    assert.equal(byPath.get('/bogus')?.message, "unknown property 'bogus'");
    assert.ok(byPath.get('/bogus')?.allowed?.includes('replicationFrequencySeconds'));
    assert.equal(byPath.get('/associations/0/target')?.message, "is required when target is not 'azure'");
    assert.equal(p.length, byPath.size, 'one problem per path');
  });

  it('app-consistent frequency may not exceed the retention: exactly the rule, for every pair (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 12 }), (retention, app) => {
      const p = problems('replication-policy', { target: 'azure', azure: { storageAccount: 'abc' }, recoveryPointRetentionHours: retention, appConsistentSnapshotFrequencyHours: app });
      if (app <= retention) assert.equal(p.size, 0, `${app} <= ${retention} is valid`);
      else assert.equal(p.get('/appConsistentSnapshotFrequencyHours'), `must be <= ${retention} when recoveryPointRetentionHours is ${retention}`);
    }), { seed: 424242, numRuns: 400 });
    // Without a retention the default (24) applies, which any frequency 0..12 respects.
    assert.equal(problems('replication-policy', { target: 'azure', azure: { storageAccount: 'abc' }, appConsistentSnapshotFrequencyHours: 12 }).size, 0);
  });

  it('enforces the target kind across fields', () => {
    const azure = problems('replication-policy', { target: 'azure', authentication: 'kerberos', associations: [{ source: 'hq', target: 'dr' }] });
    assert.equal(azure.get('/azure'), "is required when target is 'azure'");
    assert.equal(azure.get('/authentication'), "must be 'certificate' when target is 'azure'");
    assert.equal(azure.get('/associations/0/target'), "must be 'azure' when target is 'azure'");
    const site = problems('replication-policy', { target: 'secondary-site', azure: { storageAccount: 'abc' } });
    assert.equal(site.get('/azure'), "is not allowed here when target is not 'azure'");
  });

  it('explains alternatives and dependencies in recovery plans, mappings, sites and command updates', () => {
    const plan = problems('recovery-plan', { groups: [{ vms: ['a', 'a'], before: [{ script: 'x', manual: 'y' }, { manual: 'z', timeoutSeconds: 5 }, {}] }] });
    assert.equal(plan.get('/groups/0/before/0'), "must have exactly one of 'script', 'manual'");
    assert.equal(plan.get('/groups/0/before/1/script'), 'is required when timeoutSeconds is set');
    assert.equal(plan.get('/groups/0/before/2'), "must have exactly one of 'script', 'manual'");
    assert.equal(plan.get('/groups/0/vms/1'), 'duplicates item 0; items must be unique');
    assert.equal(problems('recovery-plan', { groups: [] }).get('/groups'), 'must have at least 1 item(s)');
    assert.equal(problems('network-mapping', { source: { site: 'hq', network: 'P' }, target: { network: 'x' } }).get('/target'), "must have exactly one of 'site', 'azure'");
    assert.equal(problems('site', { kind: 'hyperv-site', clouds: [{ name: 'c' }] }).get('/clouds'), "is not allowed here when kind is 'hyperv-site'");
    assert.equal(problems('site', {}).get('/kind'), 'is required');
    assert.equal(problems('command-update', { state: 'Failed' }).get('/error'), "is required when state is 'Failed'");
    assert.equal(problems('command-update', { state: 'Succeeded', error: { code: 'a.b', message: 'x' } }).get('/error'), "is not allowed here when state is not 'Failed'");
    assert.equal(problems('protected-item', { site: 'hq', vm: 'web/01', policy: 'gold' }).get('/vm')?.startsWith('does not have the expected form'), true);
    assert.equal(problems('protected-item', 'web01').get(''), 'must be an object');
  });

  it('declares the defaults the vault applies (POLICY_DEFAULTS)', () => {
    const props = registry.document('replication-policy').properties as Record<string, Node>;
    assert.equal(props.replicationFrequencySeconds!.default, POLICY_DEFAULTS.replicationFrequencySeconds);
    assert.equal(props.recoveryPointRetentionHours!.default, POLICY_DEFAULTS.recoveryPointRetentionHours);
    assert.equal(props.appConsistentSnapshotFrequencyHours!.default, POLICY_DEFAULTS.appConsistentSnapshotFrequencyHours);
    assert.equal(props.compression!.default, POLICY_DEFAULTS.compression);
    assert.equal(props.authentication!.default, POLICY_DEFAULTS.authentication);
    assert.equal(props.deleteReplicaOnDisable!.default, POLICY_DEFAULTS.deleteReplicaOnDisable);
    const init = (props.initialReplication!.properties as Record<string, Node>).method!;
    assert.equal(init.default, POLICY_DEFAULTS.initialReplicationMethod);
    const resync = props.resync!.properties as Record<string, Node>;
    assert.equal(resync.automatic!.default, POLICY_DEFAULTS.resyncAutomatic);
    assert.match(String(resync.window!.description), new RegExp(`${POLICY_DEFAULTS.resyncWindow.start}-${POLICY_DEFAULTS.resyncWindow.end}`));
    assert.match(String(props.offHours!.description), new RegExp(`${POLICY_DEFAULTS.offHours.start}-${POLICY_DEFAULTS.offHours.end}`));
    const common = registry.documents.get('common.schema.json') as { $defs: Record<string, Node> };
    const container = (common.$defs.azureStorage!.properties as Record<string, Node>).container!;
    assert.equal(container.default, POLICY_DEFAULTS.azureContainer);
  });
});
