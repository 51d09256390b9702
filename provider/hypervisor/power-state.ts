/**
 * Power state of a VM (DESIGN.md §2, docs/lab.md §3): one string union, one
 * transition table, one function through which every change passes and that
 * returns a refusal value (never throws) when the table or the fence forbids
 * it. Drivers persist the result; callers ask predicates, never compare
 * states or their order.
 *
 * Fencing and quiescing are separate dimensions of a VM (its `fence` and
 * `quiesced` fields), not power states: a fenced VM is `Off` and refuses
 * `Off → Starting`; a quiesced VM is `Running` with its guest paused.
 */

/** Power state of a VM. */
export type PowerState =
  /** No guest runs and none of its disks is open for the guest; the host may still hold a disk's tracker open for replication. Only this state allows `delete`. */
  | 'Off'
  /** A start is opening the disks; the guest has written nothing yet. Ends in `Running`, or `Off` if the start fails (what it opened is closed). */
  | 'Starting'
  /** The guest runs: its workload may write (unless quiesced); every disk is open. The only state in which guest writes happen. */
  | 'Running'
  /** The guest is being stopped: no new guest write starts; in-flight ones finish; with a guest flush every completed write is made durable. Ends in `Off`. */
  | 'ShuttingDown';

/** Every power state, in table order. */
export const POWER_STATES: readonly PowerState[] = ['Off', 'Starting', 'Running', 'ShuttingDown'];

/** For each state, the states it may go to, with the trigger that takes it there. */
const powerTable: { readonly [From in PowerState]: { readonly [To in PowerState]?: string } } = {
  Off: {
    Starting: 'start requested (refused while the VM is fenced)',
  },
  Starting: {
    Running: 'every disk opened and the guest started',
    Off: 'the start failed; what it opened was closed',
  },
  Running: {
    ShuttingDown: 'shutdown or turn-off requested, the VM was fenced, or the driver is closing',
    Off: 'the guest stopped on its own after an I/O error; its disks were closed without a flush',
  },
  ShuttingDown: {
    Off: 'the guest stopped and its disks were closed (flushed first unless turned off)',
  },
};

/** The trigger text of an allowed transition, or `undefined`. Pure. */
export function powerTrigger(from: PowerState, to: PowerState): string | undefined {
  const row = powerTable[from];
  return row === undefined || !Object.prototype.hasOwnProperty.call(row, to) ? undefined : row[to];
}

/** True if `value` is a power state (e.g. read from a file). */
export function isPowerState(value: unknown): value is PowerState {
  return typeof value === 'string' && (POWER_STATES as readonly string[]).includes(value);
}

/**
 * Why a power transition was refused; stable codes.
 * - `power.unchanged`: already in that state.
 * - `power.notAllowed`: the table has no such pair.
 * - `power.fenced`: `Off → Starting` of a fenced VM.
 * - `power.unknown`: not a power state.
 * - `power.noReason`: every transition records why.
 */
export type PowerRefusalCode = 'power.unchanged' | 'power.notAllowed' | 'power.fenced' | 'power.unknown' | 'power.noReason';

/** A transition that may happen; the caller persists it. */
export interface PowerTransitioned {
  readonly ok: true;
  readonly from: PowerState;
  readonly to: PowerState;
  /** What the table says takes `from` to `to`. */
  readonly trigger: string;
  /** The caller's reason for this occurrence. */
  readonly reason: string;
}

/** A refused transition: a value, not an exception. */
export interface PowerRefusal {
  readonly ok: false;
  readonly code: PowerRefusalCode;
  readonly from: PowerState;
  readonly to: PowerState;
  /** A sentence for people, naming the allowed targets when the pair is not allowed. */
  readonly message: string;
}

export type PowerTransitionResult = PowerTransitioned | PowerRefusal;

/** What the fence guard needs to know about the VM. */
export interface PowerGuard {
  /** The VM is fenced: it must not start. */
  readonly fenced: boolean;
}

/**
 * The one place a power state changes: the transition when the table allows
 * `from → to` and the guard does not forbid it, else a refusal with a stable
 * code. Pure: it neither stores nor throws.
 */
export function powerTransition(from: PowerState, to: PowerState, reason: string, guard: PowerGuard): PowerTransitionResult {
  const refuse = (code: PowerRefusalCode, message: string): PowerRefusal => ({ ok: false, code, from, to, message });
  if (!isPowerState(from) || !isPowerState(to)) {
    const bad = isPowerState(from) ? to : from;
    return refuse('power.unknown', `'${String(bad)}' is not a power state; valid: ${POWER_STATES.join(', ')}`);
  }
  if (from === to) return refuse('power.unchanged', `the VM is already ${from}`);
  if (reason.trim() === '') return refuse('power.noReason', `power transition ${from} → ${to} needs a reason`);
  const trigger = powerTrigger(from, to);
  if (trigger === undefined) {
    const allowed = Object.keys(powerTable[from]);
    return refuse('power.notAllowed', `power transition ${from} → ${to} is not allowed (from ${from} only: ${allowed.join(', ')})`);
  }
  if (to === 'Starting' && guard.fenced) {
    return refuse('power.fenced', 'the VM is fenced: it stays off until it is unfenced');
  }
  return { ok: true, from, to, trigger, reason };
}

// Predicates; the test checks each against the table.

/** The guest may write (the workload runs unless quiesced). */
export function isGuestRunning(s: PowerState): boolean {
  return s === 'Running';
}

/** A start or a shutdown is under way (only ever seen from outside the operation). */
export function isTransitional(s: PowerState): boolean {
  return s === 'Starting' || s === 'ShuttingDown';
}

/** The VM may be deleted, re-disked or have its tracking-free settings changed. */
export function isOff(s: PowerState): boolean {
  return s === 'Off';
}
