export { HostReplicaTarget, type HostReplicaTargetOptions } from './host-replica-target';
export { HostReplicaDisk, type ReplicaStoreStats } from './replica-disk';
export { HostDiskView, type ViewStats } from './disk-view';
export { ReplicaStateError } from '../../errors';
export { type FileOps, type FileHandleLike, type OpenMode, nodeFileOps } from './file-ops';
