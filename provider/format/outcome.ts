/**
 * Outcomes of reading log bytes (docs/log-format.md §3.6): refusals are values
 * with a code; `refusalError` turns one into the error that the throwing
 * helpers raise.
 */

import { InvalidInputError, type LifeboatError, ResyncRequiredError } from '../errors';

/** Why a scan stopped with the segment unreadable past the valid prefix (§3.6). */
export type RefusalOutcome =
  | 'tornTail'
  | 'badMagic'
  | 'unknownVersion'
  | 'invalidHeader'
  | 'checksumMismatch'
  | 'invalidRecord'
  | 'trailingData';

/** How a scan ended (§3.6): `sealed` and `end` are clean, the rest refusals. */
export type ScanOutcome = 'sealed' | 'end' | RefusalOutcome;

/** A refusal: what was wrong, where (file position), and a message for people. */
export interface Refusal {
  readonly outcome: RefusalOutcome;
  /** File position of the offending structure. */
  readonly at: number;
  readonly message: string;
}

/** A decoded value or the reason it could not be decoded. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly refusal: Refusal };

/** True for the outcomes of a well-formed segment (§3.6). */
export function isCleanOutcome(outcome: ScanOutcome): outcome is 'sealed' | 'end' {
  return outcome === 'sealed' || outcome === 'end';
}

/**
 * The error a throwing helper raises for a refusal: `InvalidInputError` with
 * code `segment.unknownVersion` for a version this code does not know (a newer
 * Lifeboat wrote it, §10), otherwise `ResyncRequiredError` with code
 * `segment.<outcome>` (the log is unusable, §8.1). `subject` names the
 * structure (a file path, "segment header").
 */
export function refusalError(refusal: Refusal, subject: string, prefix = 'segment'): LifeboatError {
  const message = `${subject}: ${refusal.message} (at byte ${refusal.at})`;
  const details = { outcome: refusal.outcome, at: refusal.at };
  if (refusal.outcome === 'unknownVersion') {
    return new InvalidInputError(`${prefix}.unknownVersion`, message, {
      hint: 'It was written by a newer Lifeboat; upgrade this host to read it.',
      details,
    });
  }
  return new ResyncRequiredError(`${prefix}.${refusal.outcome}`, message, {
    hint: 'The replication log is damaged; the item needs a resynchronisation (a new generation is started).',
    details,
  });
}
