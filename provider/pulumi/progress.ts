/**
 * Progress of initial replication as one line for the operator:
 * `web01: initial replication 42 % (0.41 of 1.00 GiB, 12.3 MiB/s)`.
 * Pure; the rate is measured by the caller between two observations when
 * the agent reports none.
 */

import { type ProtectedItemStatus } from '../client';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** What one poll saw. */
export interface ProgressSample {
  /** Clock time of the poll, ms. */
  readonly at: number;
  readonly percent: number;
  readonly copiedBytes: number;
  readonly totalBytes: number;
}

/** Total size of the item's disks as the vault's status lists them; 0 if not yet known. */
export function diskBytes(status: ProtectedItemStatus): number {
  return (status.disks ?? []).reduce((sum, d) => sum + d.sizeBytes, 0);
}

/** GiB, two decimals from 1 GiB up (`4.00`), three significant digits below (`0.00195`). */
export function gib(bytes: number): string {
  return bytes >= GIB || bytes === 0 ? (bytes / GIB).toFixed(2) : String(Number((bytes / GIB).toPrecision(3)));
}

/** The sample of a status at clock time `at`. */
export function sampleOf(status: ProtectedItemStatus, at: number): ProgressSample {
  const total = status.statistics?.initialReplicationBytesTotal ?? diskBytes(status);
  const percent = status.replicationState === 'Protected' ? 100 : Math.max(0, Math.min(100, status.initialReplicationPercent ?? 0));
  const copied = status.statistics?.initialReplicationBytesCopied ?? Math.round((total * percent) / 100);
  return { at, percent, copiedBytes: copied, totalBytes: total };
}

/** The line for `now`, with the rate reported by the agent or measured since `previous`. */
export function progressLine(name: string, now: ProgressSample, previous: ProgressSample | undefined, reportedBytesPerSecond?: number): string {
  let rate = reportedBytesPerSecond;
  if (rate === undefined && previous !== undefined && now.at > previous.at) rate = Math.max(0, ((now.copiedBytes - previous.copiedBytes) * 1000) / (now.at - previous.at));
  const rateText = rate === undefined ? '' : `, ${(rate / MIB).toFixed(1)} MiB/s`;
  return `${name}: initial replication ${Math.floor(now.percent)} % (${gib(now.copiedBytes)} of ${gib(now.totalBytes)} GiB${rateText})`;
}
