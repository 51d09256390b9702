import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { BugError } from '../../../provider/errors';
import { loadProtectionFileSync, type ProtectionModel } from '../../../provider/yaml';
import { buildModel } from '../../../provider/yaml/model';

const FULL = path.join(__dirname, '../../fixtures/protection/good/full.yaml');

describe('yaml/model', () => {
  it('applies every default, resolves references to the declared spelling and sorts lists by name (full.yaml)', () => {
    const expected: ProtectionModel = {
      apiVersion: 'lifeboat/v1',
      vault: { name: 'contoso-dr', description: 'Contoso disaster recovery', heartbeatIntervalSeconds: 10, missedHeartbeatsBeforeDisconnected: 3, certificateValidityDays: 365 },
      sites: [
        { name: 'dr', kind: 'hyperv-site', hosts: ['hvdr01'], clouds: [], timeZone: '+02:00' },
        { name: 'hq', kind: 'hyperv-site', description: 'headquarters', hosts: ['hv01', 'hv02.contoso.local'], clouds: [], timeZone: 'UTC' },
        {
          name: 'vmm01', kind: 'vmm-cloud', hosts: [], timeZone: 'Europe/Berlin',
          clouds: [{ name: 'Gold', hosts: ['hv11', 'hv12'] }, { name: 'Silver', description: 'best effort', hosts: [] }],
        },
      ],
      policies: [
        {
          name: 'azure-bronze', target: 'azure', replicationFrequencySeconds: 300, recoveryPointRetentionHours: 24, appConsistentSnapshotFrequencyHours: 0,
          initialReplication: { method: 'online' }, compression: false, authentication: 'certificate', deleteReplicaOnDisable: false,
          resync: { automatic: false, window: { start: '22:00', end: '06:00' } }, offHours: { start: '18:00', end: '07:00' },
          azure: { storageAccount: 'contosodr', endpoint: 'http://127.0.0.1:10000/devstoreaccount1', region: 'westeurope', container: 'lifeboat-replicas' },
          associations: [{ source: 'vmm01/Silver', target: 'azure' }, { source: 'hq', target: 'azure' }],
        },
        {
          name: 'gold', target: 'secondary-site', replicationFrequencySeconds: 30, recoveryPointRetentionHours: 4, appConsistentSnapshotFrequencyHours: 4,
          initialReplication: { method: 'offline', startTime: '2026-03-01T22:00:00Z' }, compression: true, authentication: 'certificate', replicationPort: 8443,
          deleteReplicaOnDisable: true, resync: { automatic: false, window: { start: '22:00', end: '06:00' } }, bandwidthLimitMbps: 100,
          offHoursBandwidthLimitMbps: 1000.5, offHours: { start: '19:00', end: '07:00' },
          associations: [{ source: 'hq', target: 'dr' }, { source: 'vmm01/Gold', target: 'dr' }],
        },
      ],
      mappings: [
        { name: 'prod', source: { site: 'hq', network: 'Prod' }, target: { site: 'dr', network: 'Prod-DR' }, testNetwork: 'Isolated' },
        { name: 'to-azure', source: { site: 'vmm01/Silver', network: 'VM Network' }, target: { azure: true, network: 'vnet-dr', subnet: 'default' } },
      ],
      protectedVms: [
        { name: '1.5', site: 'vmm01', cloud: 'Silver', vm: 'yes', policy: 'azure-bronze', targetKind: 'azure', targetVm: { azureVmSize: 'Standard_D2s_v5', publicIp: true } },
        { name: 'app01', site: 'vmm01', cloud: 'Gold', vm: 'app01', policy: 'gold', targetKind: 'secondary-site', target: { site: 'dr' }, targetVm: {} },
        {
          name: 'db01', site: 'hq', vm: 'DB Server (01)', policy: 'gold', targetKind: 'secondary-site', target: { site: 'dr', host: 'hvdr01' }, disks: ['disk-0', 'disk-1'],
          targetVm: { name: 'db01-dr', cpuCount: 4, memoryMiB: 8192, networkAdapters: [{ network: 'Prod-DR', ipAddress: '10.1.0.5' }] },
        },
        { name: 'web01', site: 'hq', vm: 'web01', policy: 'gold', targetKind: 'secondary-site', target: { site: 'dr' }, targetVm: {} },
      ],
      plans: [
        {
          name: 'app', description: 'the line-of-business app',
          groups: [
            { name: 'Group 1', vms: ['db01'], before: [], after: [{ kind: 'script', script: 'checks/db.sh', timeoutSeconds: 300 }] },
            { name: 'Front end', vms: ['web01', 'app01'], before: [{ kind: 'manual', manual: 'Lower the DNS TTL' }, { kind: 'script', script: 'dns.sh', timeoutSeconds: 60 }], after: [] },
          ],
        },
        { name: 'azure', groups: [{ name: 'Group 1', vms: ['1.5'], before: [], after: [] }] },
      ],
    };
    assert.deepEqual(loadProtectionFileSync(FULL), expected);
  });

  it('shares nothing with the document: changing the model leaves a second load unchanged', () => {
    const a = loadProtectionFileSync(FULL);
    (a.policies[0]!.resync.window as { start: string }).start = '00:00';
    (a.policies[0]!.offHours as { start: string }).start = '00:00';
    const b = loadProtectionFileSync(FULL);
    assert.equal(b.policies[0]!.resync.window.start, '22:00');
    assert.equal(b.policies[1]!.offHours.start, '19:00');
    assert.equal(loadProtectionFileSync(FULL).policies[0]!.offHours.start, '18:00', 'the default constant was not changed either');
  });

  it('refuses, as a bug, a document whose references were not checked', () => {
    assert.throws(() => buildModel({
      apiVersion: 'lifeboat/v1', vault: { name: 'v' }, protectedVms: [{ name: 'a', site: 'hq', vm: 'a', policy: 'p' }],
    }), (e: unknown) => e instanceof BugError && e.code === 'protection.unresolved');
  });
});
