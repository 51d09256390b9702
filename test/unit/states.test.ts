import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  canCancel, canDeliverCommands, canDisableProtection, canFailover, canTestFailover, isFailedOver,
  isFailedOverUncommitted, isOperationInProgress, isReplicating, isRunning, isState, isTerminal, needsAttention,
  needsResync, statesOf, transition, triggerOf, worseHealth,
  type Dimension, type Health, type JobState, type ReplicationState,
} from '../../provider/states';

const dimensions: readonly Dimension[] = ['replication', 'health', 'connection', 'job'];

/**
 * The expected allowed pairs, written out independently of the code's tables
 * (from DESIGN.md §4 and docs/state-machines.md). Every pair of the cartesian
 * product not listed here must be refused.
 */
const expected: Record<Dimension, readonly string[]> = {
  replication: [
    'NotProtected>EnablingProtection',
    'EnablingProtection>WaitingForInitialReplication', 'EnablingProtection>NotProtected',
    'WaitingForInitialReplication>InitialReplicationInProgress', 'WaitingForInitialReplication>DisablingProtection',
    'InitialReplicationInProgress>Protected', 'InitialReplicationInProgress>ResynchronizationRequired',
    'InitialReplicationInProgress>DisablingProtection',
    'Protected>ResynchronizationRequired', 'Protected>FailoverInProgress', 'Protected>DisablingProtection',
    'ResynchronizationRequired>Resynchronizing', 'ResynchronizationRequired>FailoverInProgress',
    'ResynchronizationRequired>DisablingProtection',
    'Resynchronizing>Protected', 'Resynchronizing>ResynchronizationRequired', 'Resynchronizing>FailoverInProgress',
    'Resynchronizing>DisablingProtection',
    'FailoverInProgress>FailedOver', 'FailoverInProgress>Protected', 'FailoverInProgress>ResynchronizationRequired',
    'FailedOver>FailoverInProgress', 'FailedOver>FailoverCommitted', 'FailedOver>ResynchronizationRequired',
    'FailoverCommitted>Reprotecting', 'FailoverCommitted>DisablingProtection',
    'Reprotecting>Protected', 'Reprotecting>FailoverCommitted',
    'DisablingProtection>NotProtected',
  ],
  health: ['Normal>Warning', 'Normal>Critical', 'Warning>Normal', 'Warning>Critical', 'Critical>Normal', 'Critical>Warning'],
  connection: [
    'Connected>NotResponding', 'Connected>Disconnected', 'NotResponding>Connected', 'NotResponding>Disconnected',
    'Disconnected>Connected',
  ],
  job: [
    'NotStarted>InProgress', 'NotStarted>Cancelled',
    'InProgress>WaitingForAction', 'InProgress>Succeeded', 'InProgress>Failed', 'InProgress>Cancelling',
    'WaitingForAction>InProgress', 'WaitingForAction>Failed', 'WaitingForAction>Cancelling',
    'Cancelling>Cancelled', 'Cancelling>Failed',
  ],
};

const expectedMembers: Record<Dimension, readonly string[]> = {
  replication: [
    'NotProtected', 'EnablingProtection', 'WaitingForInitialReplication', 'InitialReplicationInProgress', 'Protected',
    'ResynchronizationRequired', 'Resynchronizing', 'FailoverInProgress', 'FailedOver', 'FailoverCommitted',
    'Reprotecting', 'DisablingProtection',
  ],
  health: ['Normal', 'Warning', 'Critical'],
  connection: ['Connected', 'NotResponding', 'Disconnected'],
  job: ['NotStarted', 'InProgress', 'WaitingForAction', 'Succeeded', 'Failed', 'Cancelling', 'Cancelled'],
};

/** The transitions listed in docs/state-machines.md, per section: `from>to` → trigger. */
function documentedTransitions(): Record<Dimension, Map<string, string>> {
  const text = readFileSync(path.join(__dirname, '..', '..', 'docs', 'state-machines.md'), 'utf8');
  const sections: Record<Dimension, string> = {
    replication: '## 1. ', health: '## 2. ', connection: '## 3. ', job: '## 4. ',
  };
  const out = {} as Record<Dimension, Map<string, string>>;
  for (const d of dimensions) {
    const start = text.indexOf(sections[d]);
    assert.ok(start >= 0, `docs/state-machines.md has no section '${sections[d]}'`);
    const next = text.indexOf('\n## ', start + 1);
    const body = text.slice(start, next < 0 ? undefined : next);
    const table = body.slice(body.indexOf('### Transitions'));
    const rows = new Map<string, string>();
    for (const line of table.split('\n')) {
      const m = /^\| (\w+) \| (\w+) \| (.+) \|$/.exec(line);
      if (m === null || m[1] === 'From') continue;
      rows.set(`${m[1]}>${m[2]}`, m[3]!);
    }
    out[d] = rows;
  }
  return out;
}

describe('states', () => {
  for (const d of dimensions) {
    describe(`${d} dimension`, () => {
      it('has exactly the documented members', () => {
        assert.deepEqual([...statesOf(d)].sort(), [...expectedMembers[d]].sort());
      });

      it('allows every expected pair and refuses every other pair of the cartesian product', () => {
        const allowed = new Set(expected[d]);
        const members = statesOf(d);
        let checked = 0;
        for (const from of members) {
          for (const to of members) {
            const r = transition(d, from, to, 'test');
            const key = `${from}>${to}`;
            if (from === to) {
              assert.equal(r.ok, false, key);
              if (!r.ok) assert.equal(r.code, 'state.unchanged', key);
            } else if (allowed.has(key)) {
              assert.ok(r.ok, `${key} should be allowed: ${r.ok ? '' : r.message}`);
              if (r.ok) {
                assert.equal(r.reason, 'test');
                assert.equal(r.trigger, triggerOf(d, from, to));
                assert.ok(r.trigger.length > 0);
              }
            } else {
              assert.equal(r.ok, false, `${key} should be refused`);
              if (!r.ok) {
                assert.equal(r.code, 'state.notAllowed', key);
                assert.match(r.message, new RegExp(`${from} → ${to}`));
              }
            }
            checked++;
          }
        }
        assert.equal(checked, members.length * members.length);
        for (const key of allowed) {
          const [from, to] = key.split('>');
          assert.ok(isState(d, from) && isState(d, to), `expected pair ${key} names unknown states`);
        }
      });

      it('matches the transition table of docs/state-machines.md, trigger for trigger', () => {
        const documented = documentedTransitions()[d];
        const members = statesOf(d);
        const inCode = new Map<string, string>();
        for (const from of members) {
          for (const to of members) {
            const t = triggerOf(d, from, to);
            if (t !== undefined) inCode.set(`${from}>${to}`, t);
          }
        }
        assert.deepEqual([...documented.entries()].sort(), [...inCode.entries()].sort());
      });
    });
  }

  it('refuses unknown states, and empty reasons, with stable codes', () => {
    const unknown = transition('replication', 'Protected', 'Replicating' as ReplicationState, 'x');
    assert.equal(unknown.ok, false);
    if (!unknown.ok) {
      assert.equal(unknown.code, 'state.unknown');
      assert.match(unknown.message, /Replicating/);
    }
    const unknownFrom = transition('job', 'Running' as JobState, 'Succeeded', 'x');
    assert.ok(!unknownFrom.ok && unknownFrom.code === 'state.unknown');
    const noReason = transition('replication', 'Protected', 'ResynchronizationRequired', '  ');
    assert.ok(!noReason.ok && noReason.code === 'state.noReason');
    // Prototype keys are not states.
    assert.equal(isState('health', 'toString'), false);
    assert.equal(isState('health', 42), false);
  });

  it('names the allowed targets in a refusal, and says when a state is terminal', () => {
    const r = transition('replication', 'FailedOver', 'DisablingProtection', 'operator');
    assert.ok(!r.ok);
    if (!r.ok) assert.match(r.message, /FailoverInProgress, FailoverCommitted, ResynchronizationRequired/);
    const t = transition('job', 'Succeeded', 'InProgress', 'retry');
    assert.ok(!t.ok);
    if (!t.ok) assert.match(t.message, /Succeeded is terminal/);
  });

  describe('predicates agree with the tables', () => {
    const repl = statesOf('replication');
    const allowed = (from: ReplicationState, to: ReplicationState): boolean => triggerOf('replication', from, to) !== undefined;

    it('canFailover: the states that may enter FailoverInProgress, except FailedOver (change point)', () => {
      for (const s of repl) {
        assert.equal(canFailover(s), allowed(s, 'FailoverInProgress') && !isFailedOverUncommitted(s), s);
        assert.equal(canTestFailover(s), canFailover(s), s);
      }
    });

    it('canDisableProtection: exactly the states with an edge to DisablingProtection', () => {
      for (const s of repl) assert.equal(canDisableProtection(s), allowed(s, 'DisablingProtection'), s);
    });

    it('isFailedOverUncommitted: exactly the states that may commit', () => {
      for (const s of repl) assert.equal(isFailedOverUncommitted(s), allowed(s, 'FailoverCommitted') && s !== 'Reprotecting', s);
    });

    it('needsResync: the states that may enter Resynchronizing, and Resynchronizing itself', () => {
      for (const s of repl) assert.equal(needsResync(s), allowed(s, 'Resynchronizing') || s === 'Resynchronizing', s);
    });

    it('isOperationInProgress: no new job (enable, failover, reprotect, disable) can start from these states', () => {
      const jobStarts: ReplicationState[] = ['EnablingProtection', 'FailoverInProgress', 'Reprotecting', 'DisablingProtection'];
      for (const s of repl) {
        if (isOperationInProgress(s)) {
          for (const j of jobStarts) assert.equal(allowed(s, j), false, `${s} → ${j}`);
        }
      }
      assert.deepEqual(repl.filter(isOperationInProgress), ['EnablingProtection', 'FailoverInProgress', 'Reprotecting', 'DisablingProtection']);
    });

    it('isReplicating and isFailedOver name the documented sets', () => {
      assert.deepEqual(repl.filter(isReplicating), ['InitialReplicationInProgress', 'Protected', 'Resynchronizing', 'Reprotecting']);
      assert.deepEqual(repl.filter(isFailedOver), ['FailedOver', 'FailoverCommitted', 'Reprotecting']);
      // A failed-over workload is never replicated toward the recovery site while uncommitted.
      for (const s of repl) if (isFailedOverUncommitted(s)) assert.equal(isReplicating(s), false);
    });

    it('isTerminal: exactly the job states without outgoing transitions', () => {
      for (const s of statesOf('job')) {
        const out = statesOf('job').filter((to) => triggerOf('job', s, to) !== undefined);
        assert.equal(isTerminal(s), out.length === 0, s);
      }
    });

    it('canCancel: the job states with an edge to Cancelling, or straight to Cancelled while no step runs', () => {
      for (const s of statesOf('job')) {
        const edge = triggerOf('job', s, 'Cancelling') !== undefined
          || (triggerOf('job', s, 'Cancelled') !== undefined && !isRunning(s));
        assert.equal(canCancel(s), edge, s);
      }
    });

    it('isRunning: the non-terminal states in which a step executes', () => {
      assert.deepEqual(statesOf('job').filter(isRunning), ['InProgress', 'Cancelling']);
      for (const s of statesOf('job')) if (isRunning(s)) assert.equal(isTerminal(s), false);
    });

    it('health and connection predicates', () => {
      const hs: Health[] = ['Normal', 'Warning', 'Critical'];
      const rank = (h: Health): number => hs.indexOf(h);
      for (const a of hs) for (const b of hs) assert.equal(worseHealth(a, b), rank(a) >= rank(b) ? a : b);
      assert.deepEqual(hs.filter(needsAttention), ['Critical']);
      assert.deepEqual(statesOf('connection').filter(canDeliverCommands), ['Connected']);
    });
  });
});
