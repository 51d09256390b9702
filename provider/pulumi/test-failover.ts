/**
 * `TestFailover`: a disaster-recovery drill of a recovery plan
 * (docs/pulumi.md §12). Create runs the plan's test failover, waits until
 * every VM runs, checks each disk against its recovery point and outputs a
 * drill report; delete cleans the test VMs up. A drill with `expiresAfter`
 * is cleaned up by the vault itself; `refresh` then shows it `expired`.
 * Change `runId` to run the drill again.
 */

import * as pulumi from '@pulumi/pulumi';
import { IMPL_VERSION, serializableProvider } from './serializable-provider';

export interface TestFailoverArgs {
  /** Name of the vault (e.g. a `Vault`'s `name` output). */
  readonly vault: pulumi.Input<string>;
  /** Name of the recovery plan to drill (e.g. a `RecoveryPlan`'s `name` output). */
  readonly plan: pulumi.Input<string>;
  /** `latest`, `latestAppConsistent` or an ISO 8601 time (the newest point at or before it). @default "latest" */
  readonly point?: pulumi.Input<string>;
  /** The vault cleans the drill up after this long: `90s`, `30m`, `4h`, `2d`, or seconds. @default never: until the resource is deleted */
  readonly expiresAfter?: pulumi.Input<string | number>;
  /** Any text; changing it runs the drill again (delete, then create). */
  readonly runId?: pulumi.Input<string>;
  /** Compare every disk of every test VM with its recovery point (reads each disk twice on the recovery host). @default true */
  readonly checkData?: pulumi.Input<boolean>;
  /** Deadline of the drill and of its cleanup, minutes. @default 30 */
  readonly operationTimeoutMinutes?: pulumi.Input<number>;
  /** @default IMPL_VERSION */
  readonly implVersion?: pulumi.Input<number>;
}

/** A disk of a drilled VM. */
export interface DrillDisk {
  readonly name: string;
  readonly bytes: number;
  /** SHA-256 (hex) of the recovery point's content of the disk. */
  readonly sha256?: string;
  /** The test VM's disk equals the recovery point (outside blocks its guest wrote); absent without checkData. */
  readonly matchesPoint?: boolean;
}

/** A VM of the drill report. */
export interface DrillVm {
  /** The protected item. */
  readonly name: string;
  readonly group: string;
  /** The test VM and the host it runs on. */
  readonly testVm?: string;
  readonly host?: string;
  readonly state: string;
  /** Seconds from the start of the drill until the test VM ran. */
  readonly rtoSeconds?: number;
  /** The recovery point; `ageSeconds` is its age when the test VM ran. */
  readonly point?: { readonly id: string; readonly time?: string; readonly kind?: string; readonly ageSeconds?: number };
  readonly disks: readonly DrillDisk[];
}

export class TestFailover extends pulumi.dynamic.Resource {
  declare readonly vault: pulumi.Output<string>;
  declare readonly plan: pulumi.Output<string>;
  /** The plan job of the drill. */
  declare readonly job: pulumi.Output<string>;
  declare readonly startedAt: pulumi.Output<string>;
  declare readonly expiresAt: pulumi.Output<string | undefined>;
  /** `running` (test VMs up), `failed` (the drill did not finish: its VMs stay for investigation), `expired` (cleaned up by the vault at expiresAt) or `cleanedUp` (cleaned up outside this stack). */
  declare readonly status: pulumi.Output<'running' | 'failed' | 'expired' | 'cleanedUp'>;
  /** Every VM ran and, with checkData, every disk equals its recovery point. */
  declare readonly passed: pulumi.Output<boolean>;
  declare readonly vms: pulumi.Output<DrillVm[]>;

  constructor(name: string, args: TestFailoverArgs, opts?: pulumi.CustomResourceOptions) {
    super(serializableProvider('testFailover'), name, {
      job: undefined, startedAt: undefined, expiresAt: undefined, status: undefined, passed: undefined, vms: undefined,
      ...args, implVersion: args.implVersion ?? IMPL_VERSION,
    }, opts, 'lifeboat', 'TestFailover');
  }
}
