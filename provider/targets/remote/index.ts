export { ReplicaServer, type ReplicaServerOptions, type ReplicaServerStats, type PeerRejection } from './replica-server';
export { RemoteReplicaTarget, type RemoteReplicaTargetOptions } from './remote-replica-target';
export { type SessionEndInfo } from './server-session';
export { PROTOCOL_NAME, SUPPORTED_VERSIONS, type Pem } from './protocol';
