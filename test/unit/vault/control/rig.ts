/** A store and services on a temporary file, for unit tests of control/. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '../../../../provider/clock';
import { Notifier } from '../../../../provider/vault/control/notifier';
import type { JobStarter, VaultServices } from '../../../../provider/vault/control/services';
import type { JobRecord } from '../../../../provider/vault/store/records';
import { SqliteStore } from '../../../../provider/vault/store/sqlite/sqlite-store';
import { MINUTE } from '../../../../provider/units';

export interface ControlRig {
  readonly services: VaultServices;
  readonly clock: ManualClock;
  readonly store: SqliteStore;
  /** Jobs "started" through `jobs` (persisted NotStarted; nothing runs them). */
  readonly jobs: JobStarter & { readonly created: JobRecord[] };
  close(): Promise<void>;
}

export async function controlRig(): Promise<ControlRig> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-control-'));
  const store = SqliteStore.open({ path: path.join(dir, 'vault.db') });
  const clock = new ManualClock();
  const services: VaultServices = {
    store, clock, notifier: new Notifier(), random: () => 0,
    timings: { commandLeaseMs: MINUTE, maxLongPollMs: MINUTE, recheckMs: MINUTE }, log: () => undefined,
  };
  const created: JobRecord[] = [];
  let n = 0;
  const jobs = {
    created,
    createJob(vault: string, type: string, target: JobRecord['target'], input = {}): JobRecord {
      const job: JobRecord = {
        id: `job-${++n}`, vault, type, target, state: 'NotStarted', createdAt: clock.now(), updatedAt: clock.now(), progress: 0,
        steps: [], errors: [], input, data: {}, cancelRequested: false,
      };
      store.insertJob(job);
      created.push(job);
      return job;
    },
    kick: () => undefined,
  };
  return {
    services, clock, store, jobs,
    close: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
