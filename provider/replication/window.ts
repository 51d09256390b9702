/**
 * Daily time windows in local wall-clock time: the policy's off-hours window
 * (a different bandwidth limit; automatic resync, DESIGN.md §3.5) and the
 * scheduled start of initial replication (§3.2). docs/replication-policy.md §3.
 *
 * Times are `HH:MM` in a time zone given as an IANA name (`Europe/Berlin`) or
 * a fixed UTC offset (`+02:00`), default `UTC`. Membership is decided on the
 * local wall clock, so a 22:00–06:00 window stays 22:00–06:00 local across
 * daylight-saving changes: on the night the clocks change the window is an
 * hour shorter or longer. If the opening time falls in a skipped hour the
 * window opens when the clocks jump (the first instant whose local time is
 * past the opening time).
 */

import { type ErrorLocation, InvalidInputError } from '../errors';
import { MINUTE } from '../units';

const DAY = 24 * 60 * MINUTE;
const MINUTES_PER_DAY = 24 * 60;

/** Parse `HH:MM` (24-hour, `00:00`–`23:59`) into minutes after midnight; `undefined` if malformed. */
export function parseTimeOfDay(text: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  return m === null ? undefined : Number(m[1]) * 60 + Number(m[2]);
}

/** Minutes after midnight as `HH:MM`. */
export function formatTimeOfDay(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

const fixedOffset = /^([+-])([01]\d|2[0-3]):([0-5]\d)$/;

/**
 * Local wall-clock arithmetic in one time zone. "Wall" values are the local
 * date and time encoded as milliseconds since the epoch as if they were UTC.
 */
class Zone {
  readonly name: string;
  private readonly fixed: number | undefined;
  private readonly format: Intl.DateTimeFormat | undefined;

  constructor(name: string, where: ErrorLocation | undefined) {
    const m = fixedOffset.exec(name);
    if (name === 'UTC' || name === 'Z') {
      this.fixed = 0;
      this.name = 'UTC';
      this.format = undefined;
    } else if (m !== null) {
      this.fixed = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * MINUTE;
      this.name = name;
      this.format = undefined;
    } else {
      this.fixed = undefined;
      try {
        this.format = new Intl.DateTimeFormat('en-US', {
          timeZone: name, hourCycle: 'h23',
          year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
        });
      } catch (cause) {
        throw new InvalidInputError('window.invalidTimeZone', `unknown time zone '${name}'`, {
          cause, where, hint: 'use an IANA time zone name such as Europe/Berlin, an offset such as +02:00, or UTC',
        });
      }
      this.name = this.format.resolvedOptions().timeZone;
    }
  }

  /** Offset of local time from UTC at instant `t`, in ms. */
  offset(t: number): number {
    if (this.fixed !== undefined) return this.fixed;
    const seconds = t - (((t % 1000) + 1000) % 1000);
    const p: Record<string, number> = {};
    for (const part of this.format!.formatToParts(new Date(seconds))) {
      if (part.type !== 'literal') p[part.type] = Number(part.value);
    }
    return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) - seconds;
  }

  wall(t: number): number {
    return t + this.offset(t);
  }

  /**
   * The instants whose wall time is exactly `w`, earliest first: one
   * normally, two when clocks fall back over `w`. When `w` is skipped (clocks
   * spring forward over it), the one instant at which the skip happens.
   * Assumes at most one offset change within a day of `w`.
   */
  instantsOf(w: number): number[] {
    const a = w - this.offset(w - DAY);
    const b = w - this.offset(w + DAY);
    const exact = [...new Set([a, b])].filter((u) => this.wall(u) === w).sort((x, y) => x - y);
    if (exact.length > 0) return exact;
    let lo = Math.min(a, b);
    let hi = Math.max(a, b);
    if (this.wall(hi) < w) return [];
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.wall(mid) >= w) hi = mid;
      else lo = mid;
    }
    return [hi];
  }
}

export interface DailyWindowOptions {
  /** Local time the window opens, `HH:MM` (24-hour). */
  readonly start: string;
  /** Local time the window closes, `HH:MM`; earlier than `start` means it wraps midnight (`22:00`–`06:00`). */
  readonly end: string;
  /** IANA time zone name or fixed offset (`+02:00`, `-05:30`). @default 'UTC' */
  readonly timeZone?: string;
}

/**
 * A window that recurs every day between two local times, `[start, end)`.
 * Immutable; all methods are pure functions of the instant they are given
 * (ms since the epoch).
 */
export class DailyWindow {
  /** Opening time, minutes after local midnight. */
  readonly startMinute: number;
  /** Closing time, minutes after local midnight. */
  readonly endMinute: number;
  private readonly zone: Zone;

  /**
   * @throws InvalidInputError `window.invalidTime` (not `HH:MM`), `window.empty`
   *   (start equals end: omit the window instead to mean "any time"), or
   *   `window.invalidTimeZone`; `where` is attached to the error.
   */
  constructor(options: DailyWindowOptions, where?: ErrorLocation) {
    const start = parseTimeOfDay(options.start);
    const end = parseTimeOfDay(options.end);
    for (const [name, text, value] of [['start', options.start, start], ['end', options.end, end]] as const) {
      if (value === undefined) {
        throw new InvalidInputError('window.invalidTime', `window ${name} '${text}' is not a time of day`, {
          where, hint: 'use HH:MM on a 24-hour clock, e.g. 22:00',
        });
      }
    }
    if (start === end) {
      throw new InvalidInputError('window.empty', `window ${options.start}–${options.end} is empty`, {
        where, hint: 'give different start and end times; to allow any time, leave the window out',
      });
    }
    this.startMinute = start!;
    this.endMinute = end!;
    this.zone = new Zone(options.timeZone ?? 'UTC', where);
  }

  /** Canonical time zone name (IANA names as resolved by ICU). */
  get timeZone(): string {
    return this.zone.name;
  }

  /** True if the window wraps local midnight. */
  get wrapsMidnight(): boolean {
    return this.endMinute < this.startMinute;
  }

  /** Minutes after local midnight at instant `t`. */
  localMinuteOfDay(t: number): number {
    const w = this.zone.wall(t);
    return Math.floor((((w % DAY) + DAY) % DAY) / MINUTE);
  }

  /** True if instant `t` is inside the window. */
  contains(t: number): boolean {
    const m = this.localMinuteOfDay(t);
    return this.startMinute < this.endMinute
      ? m >= this.startMinute && m < this.endMinute
      : m >= this.startMinute || m < this.endMinute;
  }

  /** The first instant strictly after `t` at which the window opens. */
  nextStart(t: number): number {
    return this.nextEdge(t, this.startMinute, true);
  }

  /** The first instant strictly after `t` at which the window closes. */
  nextEnd(t: number): number {
    return this.nextEdge(t, this.endMinute, false);
  }

  /** The first instant strictly after `t` at which `contains` changes value. */
  nextChange(t: number): number {
    return this.contains(t) ? this.nextEnd(t) : this.nextStart(t);
  }

  /** `t` itself if inside the window, else when it next opens: the earliest time work may start. */
  nextOpenTime(t: number): number {
    return this.contains(t) ? t : this.nextStart(t);
  }

  /** The options that rebuild this window. */
  toJSON(): DailyWindowOptions {
    return { start: formatTimeOfDay(this.startMinute), end: formatTimeOfDay(this.endMinute), timeZone: this.zone.name };
  }

  toString(): string {
    return `${formatTimeOfDay(this.startMinute)}–${formatTimeOfDay(this.endMinute)} ${this.zone.name}`;
  }

  private nextEdge(t: number, minute: number, opening: boolean): number {
    const today = Math.floor(this.zone.wall(t) / DAY) * DAY;
    let best = Number.POSITIVE_INFINITY;
    for (let k = -1; k <= 2; k++) {
      for (const u of this.zone.instantsOf(today + k * DAY + minute * MINUTE)) {
        // An edge only if membership really flips there (not, e.g., the
        // second pass through a repeated hour that stays inside).
        if (u > t && u < best && this.contains(u) === opening && this.contains(u - 1) !== opening) best = u;
      }
    }
    if (!Number.isFinite(best)) {
      // Only reachable with a zone whose offset changes twice within a day around the edge.
      return this.scanEdge(t, opening);
    }
    return best;
  }

  /** Slow path: walk minute boundaries for up to three days. */
  private scanEdge(t: number, opening: boolean): number {
    let u = Math.floor(t / MINUTE) * MINUTE + MINUTE;
    for (let i = 0; i < 3 * MINUTES_PER_DAY; i++, u += MINUTE) {
      if (this.contains(u) === opening && this.contains(u - 1) !== opening) return u;
    }
    return Number.POSITIVE_INFINITY;
  }
}

/** When initial replication starts (the policy's "initial replication start"). */
export type InitialReplicationStart =
  /** As soon as protection is enabled. */
  | { readonly kind: 'immediately' }
  /** At an instant, ms since the epoch; immediately if it has passed. */
  | { readonly kind: 'at'; readonly time: number }
  /** At the next occurrence of a local time of day (`HH:MM`). */
  | { readonly kind: 'dailyAt'; readonly time: string; readonly timeZone?: string };

/**
 * The instant initial replication should start, never before `now`: `now`
 * for `immediately` or a past `at`; for `dailyAt`, the first instant at or
 * after `now` whose local time is `time` (or, if that local time is skipped by
 * a clock change, the instant of the skip).
 *
 * @throws InvalidInputError `window.invalidTime` / `window.invalidTimeZone` for a bad `dailyAt`.
 */
export function startAt(now: number, start: InitialReplicationStart, where?: ErrorLocation): number {
  switch (start.kind) {
    case 'immediately':
      return now;
    case 'at':
      return Math.max(now, start.time);
    case 'dailyAt': {
      const minute = parseTimeOfDay(start.time);
      if (minute === undefined) {
        throw new InvalidInputError('window.invalidTime', `start time '${start.time}' is not a time of day`, {
          where, hint: 'use HH:MM on a 24-hour clock, e.g. 23:30',
        });
      }
      const zone = new Zone(start.timeZone ?? 'UTC', where);
      const today = Math.floor(zone.wall(now) / DAY) * DAY;
      for (let k = -1; k <= 2; k++) {
        for (const u of zone.instantsOf(today + k * DAY + minute * MINUTE)) if (u >= now) return u;
      }
      return now;
    }
  }
}
