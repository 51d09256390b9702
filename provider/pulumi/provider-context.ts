/**
 * What a provider method needs besides its inputs: where to find the vault,
 * how to report progress, and time. The registry builds the real one at each
 * call; tests pass their own (a ManualClock, a log that records).
 */

import { type Clock } from '../clock';
import { type ConnectionSources } from './connection';

export interface ProviderContext {
  readonly sources: ConnectionSources;
  /** An info message for the operator (the engine shows it during `up`). */
  readonly log: (message: string) => void;
  readonly clock: Clock;
  /** Time between polls of a job or item, ms. */
  readonly pollMs: number;
}
