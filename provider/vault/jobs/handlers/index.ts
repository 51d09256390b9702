/** The job types of the vault, one file each. */
export { protectionDisable } from './protection-disable';
export { protectionEnable } from './protection-enable';
export { protectionUpdate } from './protection-update';
export { resyncRun } from './resync-run';
