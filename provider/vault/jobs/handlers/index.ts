/** The job types of the vault, one file each. */
export { protectionDisable } from './protection-disable';
export { protectionEnable } from './protection-enable';
export { protectionUpdate } from './protection-update';
export { resyncRun } from './resync-run';
export { failoverCommit } from './failover-commit';
export { failoverPlanned } from './failover-planned';
export { failoverTest } from './failover-test';
export { failoverTestCleanup } from './failover-test-cleanup';
export { failoverUnplanned } from './failover-unplanned';
export { protectionReprotect } from './protection-reprotect';
export { planCommit, planFailover, planReprotect, planTestCleanup } from './plan-jobs';
