import { strict as assert } from 'node:assert';
import { LifeboatError } from '../../../../provider/errors';
import { statesOf, type ReplicationState } from '../../../../provider/states';
import { initialItemStatus, transitionItem, updateItem } from '../../../../provider/vault/control/item-status';
import { applyReport, deleteItem, requestResync } from '../../../../provider/vault/control/protected-items';
import { VaultError } from '../../../../provider/vault/control/vault-error';
import { controlRig, type ControlRig } from './rig';

describe('vault/control/protected-items', () => {
  let r: ControlRig;
  beforeEach(async () => {
    r = await controlRig();
  });
  afterEach(async () => {
    await r.close();
  });

  function itemIn(state: ReplicationState, extra: Record<string, unknown> = {}): void {
    r.store.putObject('v', 'protectedItem', 'web01', { site: 'hq', vm: 'web01', policy: 'gold' }, [], 0, { ...initialItemStatus(), replicationState: state, sourceHost: 'hv01', targetHost: 'hvdr01', ...extra });
  }

  function code(fn: () => unknown): string | undefined {
    try {
      fn();
      return undefined;
    } catch (e) {
      return LifeboatError.isInstance(e) ? e.code : 'not a LifeboatError';
    }
  }

  it('DELETE of each replication state: remove, disable, or refuse with the reason', () => {
    const outcome: Record<string, string> = {};
    for (const state of statesOf('replication')) {
      itemIn(state);
      try {
        const d = deleteItem(r.services, r.jobs, 'v', 'web01', false);
        outcome[state] = d.kind === 'deleted' ? 'deleted' : `disable ${String(d.started)}`;
      } catch (e) {
        outcome[state] = e instanceof VaultError ? `${e.status} ${e.code}` : String(e);
      }
      r.store.deleteObject('v', 'protectedItem', 'web01');
      for (const j of r.jobs.created.splice(0)) r.store.updateJob({ ...j, state: 'Cancelled' });
    }
    assert.deepEqual(outcome, {
      NotProtected: 'deleted',
      EnablingProtection: '409 protectedItem.busy',
      WaitingForInitialReplication: 'disable true',
      InitialReplicationInProgress: 'disable true',
      Protected: 'disable true',
      ResynchronizationRequired: 'disable true',
      Resynchronizing: 'disable true',
      FailoverInProgress: '409 protectedItem.failedOver',
      FailedOver: '409 protectedItem.failedOver',
      FailoverCommitted: '409 protectedItem.failedOver',
      Reprotecting: '409 protectedItem.failedOver',
      DisablingProtection: 'disable true',
    });
  });

  it('a committed failover can be dropped with force; the refusal says to fail back first', () => {
    itemIn('FailedOver');
    try {
      deleteItem(r.services, r.jobs, 'v', 'web01', true);
      assert.fail('refused');
    } catch (e) {
      assert.ok(e instanceof VaultError);
      assert.match(e.hint ?? '', /fail back first/);
    }
    r.store.deleteObject('v', 'protectedItem', 'web01');
    itemIn('FailoverCommitted');
    const d = deleteItem(r.services, r.jobs, 'v', 'web01', true);
    assert.equal(d.kind, 'disabling');
    assert.equal(r.store.getObject('v', 'protectedItem', 'web01')?.status.replicationState, 'DisablingProtection');
  });

  it('resync: from Protected through ResynchronizationRequired; refused in other states and while a job runs', () => {
    itemIn('InitialReplicationInProgress');
    assert.equal(code(() => requestResync(r.services, r.jobs, 'v', 'web01')), 'protectedItem.notResyncable');
    r.store.deleteObject('v', 'protectedItem', 'web01');
    itemIn('Protected');
    const job = requestResync(r.services, r.jobs, 'v', 'web01');
    assert.equal(job.type, 'resync.run');
    assert.equal(r.store.getObject('v', 'protectedItem', 'web01')?.status.replicationState, 'ResynchronizationRequired');
    assert.equal(code(() => requestResync(r.services, r.jobs, 'v', 'web01')), 'job.inProgress');
  });

  it('reports: only allowed transitions from the source host, never while a job owns the item', () => {
    itemIn('Protected');
    let out = applyReport(r.services, 'v', 'hv01', [{ item: 'web01', replicationState: 'ResynchronizationRequired', health: 'Warning', rpoSeconds: 600 }]);
    assert.deepEqual(out, { accepted: ['web01'], refused: [] });
    let s = r.store.getObject('v', 'protectedItem', 'web01')!.status;
    assert.equal(s.replicationState, 'ResynchronizationRequired');
    assert.match(String(s.replicationStateReason), /reported by host hv01/);
    assert.equal(s.health, 'Warning');
    out = applyReport(r.services, 'v', 'hv01', [{ item: 'web01', replicationState: 'FailedOver' }]);
    assert.deepEqual(out.refused.map((x) => x.code), ['state.notAllowed']);
    s = r.store.getObject('v', 'protectedItem', 'web01')!.status;
    assert.equal((s.lastRefusedTransition as { to: string }).to, 'FailedOver');
    assert.deepEqual(applyReport(r.services, 'v', 'hv99', [{ item: 'web01', rpoSeconds: 1 }]).refused.map((x) => x.code), ['report.notItsHost']);
    r.store.deleteObject('v', 'protectedItem', 'web01');
    itemIn('DisablingProtection');
    assert.deepEqual(applyReport(r.services, 'v', 'hv01', [{ item: 'web01', replicationState: 'Protected' }]).refused.map((x) => x.code), ['state.ownedByJob']);
  });
  describe('copy counters never outlive their pass', () => {
    const passStats = { bytesTransferred: 10, initialReplicationBytesCopied: 400, initialReplicationBytesTotal: 1000 };
    const status = (): Record<string, unknown> & { statistics?: Record<string, unknown> } => r.store.getObject('v', 'protectedItem', 'web01')!.status;

    it('a resync pass reported, then Protected reported without counters: percent 100, no pass counter, other statistics kept', () => {
      itemIn('ResynchronizationRequired');
      applyReport(r.services, 'v', 'hv01', [{ item: 'web01', replicationState: 'Resynchronizing', initialReplicationPercent: 40, statistics: passStats }]);
      assert.equal(status().initialReplicationPercent, 40);
      assert.equal(status().statistics?.initialReplicationBytesCopied, 400);
      applyReport(r.services, 'v', 'hv01', [{ item: 'web01', replicationState: 'Protected', statistics: { bytesTransferred: 20, cyclesCompleted: 3 } }]);
      const s = status();
      assert.equal(s.replicationState, 'Protected');
      assert.equal(s.initialReplicationPercent, 100);
      assert.deepEqual(s.statistics, { bytesTransferred: 20, cyclesCompleted: 3 });
    });

    it('a source report without pass counters ends them even before the state changes; a recovery host\'s report does not', () => {
      itemIn('ResynchronizationRequired');
      applyReport(r.services, 'v', 'hv01', [{ item: 'web01', replicationState: 'Resynchronizing', initialReplicationPercent: 40, statistics: passStats }]);
      applyReport(r.services, 'v', 'hvdr01', [{ item: 'web01', statistics: { replicaBytes: 5 } }]);
      assert.equal(status().statistics?.initialReplicationBytesCopied, 400, 'the recovery host does not speak for the pass');
      applyReport(r.services, 'v', 'hv01', [{ item: 'web01', statistics: { bytesTransferred: 30 } }]);
      assert.deepEqual(status().statistics, { bytesTransferred: 30, replicaBytes: 5 });
    });

    it('a job moving the item to Protected, and any later write, drop the counters the last report left', () => {
      itemIn('InitialReplicationInProgress', { initialReplicationPercent: 97, statistics: passStats });
      transitionItem(r.services, 'v', 'web01', 'Protected', 'initial replication finished');
      assert.equal(status().initialReplicationPercent, 100);
      assert.deepEqual(status().statistics, { bytesTransferred: 10 });
      // A stored status written before this rule (an older vault) is settled at its next write.
      r.store.deleteObject('v', 'protectedItem', 'web01');
      itemIn('Protected', { initialReplicationPercent: 63, statistics: passStats });
      updateItem(r.services, 'v', 'web01', (s) => ({ ...s, rpoSeconds: 5 }));
      assert.equal(status().initialReplicationPercent, 100);
      assert.deepEqual(status().statistics, { bytesTransferred: 10 });
    });
  });
});
