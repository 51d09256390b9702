/**
 * How a plan job runs its groups (docs/recovery-plans.md §3–§6): groups in
 * order; per group its `before` actions, then one child item job per VM,
 * started together and awaited together, then its `after` actions. A
 * failed action or VM stops the plan in `WaitingForAction` until the
 * operator resumes (the failed part runs again) or cancels.
 *
 * Resumable: the record (`PlanRecord`) is rewritten after every change; a
 * child job's id is recorded in the transaction that creates it, a script's
 * command under its key (`runCommand`), a wait under its token. A step that
 * runs again after a vault restart waits for the same children, commands
 * and answers instead of starting new ones.
 */

import { categoryOf, LifeboatError, NonRecoverableError } from '../../../errors';
import { isTerminal } from '../../../states';
import { requestFailover, type FailoverOperation } from '../../control/failovers';
import { itemStatus } from '../../control/item-status';
import { topics } from '../../control/notifier';
import type { PlanJobInput } from '../../control/plans';
import { iso } from '../../control/services';
import type { JobRecord, JsonObject } from '../../store/records';
import type { StepContext } from '../job-handler';
import { azureHostFor } from './azure-failover-steps';
import {
  actionKey, actionTitle, initialPlanRecord, PLAN_KEY, planProgress, type PlanActionRecord, type PlanGroupRecord, type PlanRecord, type PlanVmRecord,
} from './plan-record';

/** The command an agent runs a plan's script with (docs/agent.md §5). */
export const RUN_SCRIPT_COMMAND = 'plan.runScript';

/** The per-item operation of a plan job. */
export function childOperation(input: PlanJobInput): FailoverOperation {
  return input.operation === 'failover' ? input.type ?? 'test' : input.operation;
}

/** The plan record of a job: the persisted one, else the initial one of its input. */
export function planRecordOf(job: JobRecord): PlanRecord {
  const stored = job.data[PLAN_KEY];
  return stored !== undefined && stored !== null && typeof stored === 'object' ? stored as unknown as PlanRecord : initialPlanRecord(job.input as unknown as PlanJobInput);
}

function errorOf(e: unknown): { code: string; message: string; hint?: string } {
  if (LifeboatError.isInstance(e)) return { code: e.code, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) };
  return { code: 'internal.error', message: e instanceof Error ? e.message : String(e) };
}

class PlanRun {
  private readonly input: PlanJobInput;
  private readonly rec: PlanRecord;

  constructor(private readonly ctx: StepContext) {
    this.input = ctx.job.input as unknown as PlanJobInput;
    this.rec = planRecordOf(ctx.services.store.getJob(ctx.job.id) ?? ctx.job);
  }

  private now(): string {
    return iso(this.ctx.services.clock.now());
  }

  private save(message?: string): void {
    this.ctx.set({ [PLAN_KEY]: this.rec as unknown as JsonObject });
    this.ctx.progress(planProgress(this.rec), message);
  }

  private where(gi: number): string {
    return `group ${gi + 1}/${this.rec.groups.length} '${this.rec.groups[gi]!.name}'`;
  }

  async run(): Promise<void> {
    for (let gi = 0; gi < this.rec.groups.length; gi++) {
      const g = this.rec.groups[gi]!;
      if (g.state === 'Succeeded' || g.state === 'Skipped') continue;
      if (g.state !== 'InProgress') {
        g.state = 'InProgress';
        g.startedAt ??= this.now();
        this.save(`${this.where(gi)}: started`);
      }
      for (const a of g.actions.filter((x) => x.phase === 'before')) await this.runAction(gi, a);
      await this.runVms(gi);
      for (const a of g.actions.filter((x) => x.phase === 'after')) await this.runAction(gi, a);
      g.state = 'Succeeded';
      g.endedAt = this.now();
      this.save(`${this.where(gi)}: done`);
    }
  }

  /** Park the plan until the operator resumes; the group is Failed meanwhile. */
  private async stop(gi: number, what: string, token: string): Promise<void> {
    const g = this.rec.groups[gi]!;
    g.state = 'Failed';
    const id = this.ctx.job.id;
    const message = `${this.where(gi)} stopped: ${what}; fix the cause, then run \`lifeboat jobs resume ${id}\` (or \`lifeboat jobs cancel ${id}\`)`;
    this.save(message);
    await this.ctx.waitForOperator({ kind: 'resume', token, message, details: { group: g.name } });
    g.state = 'InProgress';
    this.save(`${this.where(gi)}: resumed`);
  }

  private async runAction(gi: number, a: PlanActionRecord): Promise<void> {
    const g = this.rec.groups[gi]!;
    while (a.state !== 'Succeeded' && a.state !== 'Skipped') {
      if (a.state === 'Failed') {
        const why = a.error?.message ?? 'it failed';
        await this.stop(gi, `${actionTitle(a)} ${why}`, `${actionKey(gi, a)}.resume`);
        a.state = 'NotStarted';
        continue;
      }
      if (a.state === 'NotStarted') {
        a.attempts += 1;
        a.startedAt = this.now();
        delete a.endedAt;
        delete a.error;
        delete a.exitCode;
        delete a.signal;
        delete a.timedOut;
        delete a.output;
        a.state = a.kind === 'manual' ? 'WaitingForAcknowledgement' : 'InProgress';
        this.save();
      }
      if (a.kind === 'manual') await this.waitForAck(gi, g, a);
      else await this.runScript(gi, g, a);
      a.endedAt = this.now();
      const state = a.state as PlanActionRecord['state'];
      this.save(`${this.where(gi)}: ${actionTitle(a)}: ${state === 'Succeeded' ? 'done' : a.error?.message ?? state}`);
    }
  }

  private async waitForAck(gi: number, g: PlanGroupRecord, a: PlanActionRecord): Promise<void> {
    const id = this.ctx.job.id;
    const answer = await this.ctx.waitForOperator({
      kind: 'acknowledgement', token: actionKey(gi, a),
      message: `waiting for acknowledgement of '${a.instruction ?? ''}' (${a.phase} ${this.where(gi)}) — run \`lifeboat jobs ack ${id}\``,
      details: { group: g.name, phase: a.phase, index: a.index, instruction: a.instruction ?? '' },
    });
    a.state = 'Succeeded';
    a.acknowledgedAt = iso(typeof answer.at === 'number' ? answer.at : this.ctx.services.clock.now());
    if (typeof answer.comment === 'string') a.comment = answer.comment;
  }

  private scriptHost(g: PlanGroupRecord): string {
    const candidates = [...g.vms.filter((v) => v.state !== 'Skipped'), ...g.vms];
    const { services, job } = this.ctx;
    for (const v of candidates) {
      const item = services.store.getObject(job.vault, 'protectedItem', v.item);
      if (item === undefined) continue;
      const s = itemStatus(item);
      if (s.targetHost !== undefined) return s.targetHost;
      // An item of an azure policy has no replica host: its VMs come up on the azure-role agent, or back on the primary.
      if (services.store.getObject(job.vault, 'replicationPolicy', String(item.spec.policy))?.spec.target === 'azure') {
        if (this.input.direction === 'toPrimary' && s.sourceHost !== undefined) return s.sourceHost;
        if (this.input.direction !== 'toPrimary') return azureHostFor(services, job.vault, item.name, s).host;
      }
    }
    throw new NonRecoverableError('plan.noScriptHost', `no host to run the scripts of group '${g.name}' on: its items record no destination host`, {
      hint: 'scripts run on the agent where the group\'s VMs come up; protect the items first, or use a manual action',
    });
  }

  private async runScript(gi: number, g: PlanGroupRecord, a: PlanActionRecord): Promise<void> {
    try {
      a.host ??= this.scriptHost(g);
      this.save(`${this.where(gi)}: ${actionTitle(a)} running on ${a.host}`);
      const r = await this.ctx.runCommand(actionKey(gi, a), {
        host: a.host, type: RUN_SCRIPT_COMMAND,
        payload: {
          script: a.script ?? '', timeoutSeconds: a.timeoutSeconds ?? 300,
          environment: {
            LIFEBOAT_PLAN: this.input.plan, LIFEBOAT_GROUP: g.name, LIFEBOAT_FAILOVER_TYPE: this.input.type ?? '',
            LIFEBOAT_DIRECTION: this.input.direction ?? '', LIFEBOAT_JOB: this.ctx.job.id, LIFEBOAT_PHASE: a.phase,
          },
        },
      });
      a.exitCode = typeof r.exitCode === 'number' ? r.exitCode : -1;
      if (typeof r.signal === 'string') a.signal = r.signal;
      a.timedOut = r.timedOut === true;
      a.output = typeof r.output === 'string' ? r.output : '';
      if (a.exitCode === 0 && !a.timedOut) {
        a.state = 'Succeeded';
        return;
      }
      a.state = 'Failed';
      a.error = a.timedOut
        ? { code: 'plan.scriptTimedOut', message: `on ${a.host} ran longer than ${a.timeoutSeconds ?? 300} s and was killed`, hint: 'see the output kept in the job; raise timeoutSeconds or fix the script' }
        : { code: 'plan.scriptFailed', message: `on ${a.host} exited with ${a.exitCode}${a.signal === undefined ? '' : ` (${a.signal})`}`, hint: 'see the output kept in the job (lifeboat jobs show)' };
    } catch (e) {
      if (this.ctx.signal.aborted || categoryOf(e) === 'recoverable') throw e;
      a.state = 'Failed';
      a.error = errorOf(e);
    }
  }

  private async runVms(gi: number): Promise<void> {
    const g = this.rec.groups[gi]!;
    const op = childOperation(this.input);
    for (;;) {
      for (const v of g.vms.filter((x) => x.state === 'NotStarted')) this.startChild(gi, v, op);
      await this.awaitChildren(g);
      const failed = g.vms.filter((v) => v.state === 'Failed');
      if (failed.length === 0) return;
      const tries = g.vms.reduce((n, v) => n + v.jobs.length, 0);
      await this.stop(gi, failed.map((v) => `${v.item}: ${v.error?.message ?? 'its job failed'}${v.job === undefined ? '' : ` (job ${v.job})`}`).join('; '), `g${gi}.vms.${tries}.resume`);
      for (const v of failed) {
        v.state = 'NotStarted';
        delete v.job;
        delete v.error;
      }
      this.save();
    }
  }

  private startChild(gi: number, v: PlanVmRecord, op: FailoverOperation): void {
    const { services, job } = this.ctx;
    const point = this.input.point;
    const input: JsonObject = {
      ...((op === 'test' || op === 'unplanned') && point !== undefined ? { point } : {}),
      ...(op === 'test' && this.input.checkData === true ? { checkData: true } : {}),
    };
    try {
      const child = services.store.transaction(() => {
        const c = requestFailover(services, this.ctx.jobs, job.vault, v.item, op, { ...input, plan: this.input.plan, planJob: job.id });
        v.job = c.id;
        v.jobs.push(c.id);
        v.state = 'InProgress';
        v.startedAt = this.now();
        delete v.endedAt;
        this.save(`${this.where(gi)}: ${c.type} of ${v.item} started (job ${c.id})`);
        return c;
      });
      this.ctx.jobs.kick(child.id);
    } catch (e) {
      if (!LifeboatError.isInstance(e)) throw e;
      v.state = 'Failed';
      v.error = errorOf(e);
      v.endedAt = this.now();
      this.save();
    }
  }

  private async awaitChildren(g: PlanGroupRecord): Promise<void> {
    const { services } = this.ctx;
    for (;;) {
      const running = g.vms.filter((v) => v.state === 'InProgress' && v.job !== undefined);
      let changed = false;
      for (const v of running) {
        const child = services.store.getJob(v.job!);
        if (child === undefined) {
          v.state = 'Failed';
          v.error = { code: 'job.missing', message: `job ${v.job} disappeared` };
          changed = true;
        } else if (isTerminal(child.state)) {
          this.settle(v, child);
          changed = true;
        }
      }
      if (changed) this.save();
      const still = g.vms.filter((v) => v.state === 'InProgress' && v.job !== undefined);
      if (still.length === 0) return;
      await services.notifier.wait(still.map((v) => topics.job(v.job!)), services.clock, services.timings.recheckMs, this.ctx.signal);
    }
  }

  /** Record how a child job ended. */
  private settle(v: PlanVmRecord, child: JobRecord): void {
    v.endedAt = iso(child.endedAt ?? this.ctx.services.clock.now());
    if (child.state !== 'Succeeded') {
      v.state = 'Failed';
      const last = child.errors[child.errors.length - 1];
      v.error = last === undefined
        ? { code: child.state === 'Cancelled' ? 'job.cancelled' : 'job.failed', message: `${child.type} ended ${child.state}` }
        : { code: last.code, message: `${child.type} ended ${child.state}: ${last.message}`, ...(last.hint === undefined ? {} : { hint: last.hint }) };
      return;
    }
    v.state = 'Succeeded';
    const op = childOperation(this.input);
    if (op !== 'test' && op !== 'planned' && op !== 'unplanned') return;
    const item = this.ctx.services.store.getObject(this.ctx.job.vault, 'protectedItem', v.item);
    const s = item === undefined ? undefined : itemStatus(item);
    const p = (op === 'test' ? s?.testFailover?.point : s?.failover?.point) as { id?: unknown; time?: unknown; kind?: unknown } | undefined;
    if (p !== undefined && typeof p.id === 'string') {
      v.point = { id: p.id, ...(typeof p.time === 'string' ? { time: p.time } : {}), ...(typeof p.kind === 'string' ? { kind: p.kind } : {}) };
    }
    const started = child.steps.find((x) => (x.name === 'startVm' || x.name === 'startTestVm') && x.state === 'Succeeded');
    if (started?.endedAt !== undefined) v.runningAt = iso(started.endedAt);
  }

  /**
   * Cancellation or failure of the plan job: cancel the unfinished child
   * jobs, wait until they ended, record how, and mark what had not run
   * Cancelled. What already failed over stays failed over.
   */
  async compensate(): Promise<void> {
    const { services } = this.ctx;
    const open = this.rec.groups.flatMap((g) => g.vms).filter((v) => v.state === 'InProgress' && v.job !== undefined);
    for (const v of open) this.ctx.jobs.cancel(v.job!);
    for (;;) {
      const waiting = open.filter((v) => {
        const c = services.store.getJob(v.job!);
        return c !== undefined && !isTerminal(c.state);
      });
      if (waiting.length === 0) break;
      await services.notifier.wait(waiting.map((v) => topics.job(v.job!)), services.clock, services.timings.recheckMs, this.ctx.signal);
    }
    for (const v of open) {
      const c = services.store.getJob(v.job!);
      if (c !== undefined) this.settle(v, c);
    }
    for (const g of this.rec.groups) {
      for (const p of [...g.actions, ...g.vms]) {
        if (p.state === 'NotStarted' || p.state === 'InProgress' || p.state === 'WaitingForAcknowledgement') p.state = 'Cancelled';
      }
      if (g.state === 'NotStarted' || g.state === 'InProgress' || g.state === 'Failed') g.state = 'Cancelled';
    }
    this.ctx.set({ [PLAN_KEY]: this.rec as unknown as JsonObject });
  }
}

/** Run the plan's groups (the `runGroups` step). */
export async function runPlanGroups(ctx: StepContext): Promise<void> {
  await new PlanRun(ctx).run();
}

/** The compensation of every plan job. */
export async function compensatePlan(ctx: StepContext): Promise<void> {
  await new PlanRun(ctx).compensate();
}
