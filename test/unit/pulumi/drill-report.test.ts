/**
 * The drill report of a TestFailover (docs/pulumi.md §12) from a plan job's
 * record and the items' test-failover status (the vault's answers are given
 * as data): RTO from the job's start, the point's age when its VM ran, the
 * data check per disk, and `passed` only when every VM ran and every checked
 * disk equals its point.
 */

import { strict as assert } from 'node:assert';
import type { JobInfo, PlanVmInfo, ProtectedItemStatus } from '../../../provider/client';
import type { ResolvedConnection } from '../../../provider/pulumi/connection';
import { drillReport } from '../../../provider/pulumi/test-failover-provider';

const T0 = '2026-12-05T10:00:00.000Z';

function vm(item: string, state: PlanVmInfo['state'], job: string, runningAt?: string): PlanVmInfo {
  return { item, vm: `${item}01`, state, job, jobs: [job], point: { id: `p-${item}`, time: '2026-12-05T09:59:58.000Z', kind: 'crashConsistent' }, ...(runningAt === undefined ? {} : { runningAt }) };
}

function job(state: JobInfo['state'], vms: PlanVmInfo[][]): JobInfo {
  return {
    id: 'job-1', vault: 'v', type: 'plan.failover', target: { kind: 'recoveryPlan', name: 'erp' }, state, progress: 100, createdAt: T0, startedAt: T0, updatedAt: T0, steps: [], errors: [],
    plan: { plan: 'erp', operation: 'failover', type: 'test', groups: vms.map((g, i) => ({ name: `g${i}`, state: 'Succeeded', actions: [], vms: g })) },
  };
}

/** A connection whose vault answers the items' test-failover status from `items`. */
function vault(items: Record<string, ProtectedItemStatus['testFailover']>): ResolvedConnection {
  const client = { getProtectedItem: async (_v: string, name: string) => ({ status: { testFailover: items[name] } }) };
  return { client, url: 'http://vault', urlFrom: 'test', tokenFrom: 'test' } as unknown as ResolvedConnection;
}

const check = (matches: boolean) => ({
  checkedAt: T0, disks: [{ id: 'disk0', bytes: 4096, pointId: 'p', vmPointId: 'p', sha256: 'ab', matchesPoint: matches, mismatchedBytes: matches ? 0 : 4096, guestWrittenBytes: 0 }],
});

describe('pulumi/test-failover: drill report', () => {
  it('RTO from the plan job start, point age when the VM ran, disks from the check; passed', async () => {
    const r = await drillReport(vault({
      db: { vm: 'db01-test', host: 'dr1', job: 'c-db', check: check(true) },
      web: { vm: 'web01-test', host: 'dr1', job: 'c-web', check: check(true) },
    }), 'v', job('Succeeded', [[vm('db', 'Succeeded', 'c-db', '2026-12-05T10:00:01.500Z')], [vm('web', 'Succeeded', 'c-web', '2026-12-05T10:00:03.250Z')]]));
    assert.equal(r.passed, true);
    assert.deepEqual(r.vms.map((v) => [v.name, v.group, v.host, v.testVm, v.rtoSeconds, v.point?.ageSeconds, v.disks.map((d) => [d.name, d.matchesPoint])]), [
      ['db', 'g0', 'dr1', 'db01-test', 1.5, 3.5, [['disk0', true]]],
      ['web', 'g1', 'dr1', 'web01-test', 3.25, 5.25, [['disk0', true]]],
    ]);
  });

  it('a disk that does not equal its point, or a VM that did not run, fails the drill', async () => {
    const mismatch = await drillReport(vault({ db: { vm: 'db01-test', host: 'dr1', job: 'c-db', check: check(false) } }), 'v',
      job('Succeeded', [[vm('db', 'Succeeded', 'c-db', '2026-12-05T10:00:01.000Z')]]));
    assert.equal(mismatch.passed, false);
    const failed = await drillReport(vault({}), 'v', job('WaitingForAction', [[vm('db', 'Failed', 'c-db')]]));
    assert.equal(failed.passed, false);
    assert.equal(failed.vms[0]!.rtoSeconds, undefined, 'no RTO for a VM that never ran');
  });

  it('a test failover of another job (an earlier drill) is not reported as this one', async () => {
    const r = await drillReport(vault({ db: { vm: 'db01-test', host: 'dr1', job: 'c-old', check: check(false) } }), 'v',
      job('Succeeded', [[vm('db', 'Succeeded', 'c-db', '2026-12-05T10:00:01.000Z')]]));
    assert.deepEqual(r.vms[0]!.disks, []);
    assert.equal(r.vms[0]!.host, undefined);
  });
});
