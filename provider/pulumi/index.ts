/** Pulumi resources of Lifeboat (docs/pulumi.md). */
export { Vault, type VaultArgs } from './vault-resource';
export { Site, type SiteArgs, type CloudArgs } from './site';
export { ReplicationPolicy, type ReplicationPolicyArgs, type AssociationArgs, type AzureStorageArgs, type TimeWindowArgs } from './replication-policy';
export { NetworkMapping, type NetworkMappingArgs, type MappingTargetArgs } from './network-mapping';
export { ProtectedVm, type ProtectedVmArgs, type TargetVmArgs } from './protected-vm';
export { RecoveryPlan, type RecoveryPlanArgs, type RecoveryGroupArgs, type RecoveryActionArgs } from './recovery-plan';
export { TestFailover, type TestFailoverArgs, type DrillVm, type DrillDisk } from './test-failover';
export { type AdoptableArgs, type VaultObjectArgs } from './common-args';
export { loadProtection, readProtectionModel, type LoadProtectionOptions, type AdoptOptions, type Protection } from './load-protection';
export { resolveConnection, type ConnectionSources, type ResolvedConnection, type ConnectionOptions } from './connection';
export { IMPL_VERSION } from './serializable-provider';
export * as diagnostics from './diagnostics';
