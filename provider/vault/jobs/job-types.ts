/** Every job type this vault runs; docs/jobs.md describes each. */
import {
  failoverCommit, failoverPlanned, failoverTest, failoverTestCleanup, failoverUnplanned, planCommit, planFailover, planReprotect, planTestCleanup,
  protectionDisable, protectionReprotect, protectionEnable, protectionUpdate, resyncRun,
} from './handlers';
import { failbackFromAzure } from './handlers/failback-from-azure';
import { failoverCancel } from './handlers/failover-cancel';
import type { JobHandler } from './job-handler';

export const JOB_HANDLERS: readonly JobHandler[] = [
  protectionEnable, protectionDisable, protectionUpdate, resyncRun,
  failoverTest, failoverTestCleanup, failoverPlanned, failoverUnplanned, failoverCommit, failoverCancel, protectionReprotect,
  failbackFromAzure,
  planFailover, planCommit, planTestCleanup, planReprotect,
];
