/**
 * The record a plan job keeps of its groups, actions and VMs
 * (docs/recovery-plans.md §3), shown by `GET …/jobs/{id}` as `plan`: its
 * shape, the record a new job starts with, and the pure questions the job
 * asks of it (what runs next, the progress). Kept in the job's data under
 * `PLAN_KEY` and written whole after every change.
 */

import type { PlanDirection, PlanJobInput, PlanOperation } from '../../control/plans';

/** Key of the job's data holding the `PlanRecord`. */
export const PLAN_KEY = 'plan';

export type PlanPartState = 'NotStarted' | 'InProgress' | 'Succeeded' | 'Failed' | 'Skipped' | 'Cancelled';

export interface PlanActionRecord {
  readonly phase: 'before' | 'after';
  readonly index: number;
  readonly kind: 'script' | 'manual';
  readonly script?: string;
  readonly instruction?: string;
  readonly timeoutSeconds?: number;
  /** The agent that runs the script (chosen when it first runs). */
  host?: string;
  state: PlanPartState | 'WaitingForAcknowledgement';
  attempts: number;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
  /** The last 64 KiB of stdout and stderr. */
  output?: string;
  error?: { code: string; message: string; hint?: string };
  startedAt?: string;
  endedAt?: string;
  acknowledgedAt?: string;
  comment?: string;
}

export interface PlanVmRecord {
  readonly item: string;
  readonly vm: string;
  state: PlanPartState;
  /** The current child job. */
  job?: string;
  /** Every child job started for the VM, oldest first (a resumed VM gets a new one). */
  jobs: string[];
  /** Why it is skipped. */
  reason?: string;
  error?: { code: string; message: string; hint?: string };
  /** The recovery point the failover (or test) VM runs from. */
  point?: { id: string; time?: string; kind?: string };
  startedAt?: string;
  /** When the agent reported the failover or test VM running. */
  runningAt?: string;
  endedAt?: string;
}

export interface PlanGroupRecord {
  readonly name: string;
  state: PlanPartState;
  startedAt?: string;
  endedAt?: string;
  actions: PlanActionRecord[];
  vms: PlanVmRecord[];
}

export interface PlanRecord {
  readonly plan: string;
  readonly operation: PlanOperation;
  readonly type?: 'test' | 'planned' | 'unplanned';
  readonly direction?: PlanDirection;
  readonly point?: string;
  groups: PlanGroupRecord[];
}

/** The record a new plan job starts with: everything NotStarted, skipped VMs Skipped. Pure. */
export function initialPlanRecord(input: PlanJobInput): PlanRecord {
  return {
    plan: input.plan,
    operation: input.operation,
    ...(input.type === undefined ? {} : { type: input.type }),
    ...(input.direction === undefined ? {} : { direction: input.direction }),
    ...(input.point === undefined ? {} : { point: input.point }),
    groups: input.groups.map((g) => {
      const allSkipped = g.vms.every((v) => v.skip !== undefined);
      return {
        name: g.name,
        // A group with nothing to fail over runs no actions either.
        state: allSkipped ? 'Skipped' : 'NotStarted',
        actions: g.actions.map((a) => ({
          ...a, state: allSkipped ? 'Skipped' : 'NotStarted', attempts: 0,
        })),
        vms: g.vms.map((v) => ({
          item: v.item, vm: v.vm, jobs: [],
          ...(v.skip === undefined ? { state: 'NotStarted' as const } : { state: 'Skipped' as const, reason: v.skip }),
        })),
      };
    }),
  };
}

/** Units of work a record counts for progress: each action and each VM that is not skipped. */
function units(r: PlanRecord): { total: number; done: number } {
  let total = 0;
  let done = 0;
  for (const g of r.groups) {
    for (const p of [...g.actions, ...g.vms]) {
      if (p.state === 'Skipped') continue;
      total += 1;
      if (p.state === 'Succeeded') done += 1;
    }
  }
  return { total, done };
}

/** Progress of a plan job, 0–100. Pure. */
export function planProgress(r: PlanRecord): number {
  const u = units(r);
  return u.total === 0 ? 100 : Math.round((u.done / u.total) * 1000) / 10;
}

/** `before-script 'x.sh'` / `manual action 'Check DNS'`, for messages. */
export function actionTitle(a: PlanActionRecord): string {
  return a.kind === 'script' ? `${a.phase}-script '${a.script ?? ''}'` : `${a.phase} manual action '${a.instruction ?? ''}'`;
}

/** The key of an action's wait or command: stable across restarts, new per attempt. */
export function actionKey(group: number, a: PlanActionRecord): string {
  return `g${group}.${a.phase}${a.index}.a${a.attempts}`;
}
