/**
 * Lifeboat: site recovery as code. The package's public surface; each feature
 * folder re-exports its own public names.
 */
export * from './errors';
export * from './clock';
export * from './units';
export * as diagnostics from './pulumi/diagnostics';
export {
  Vault, Site, ReplicationPolicy, NetworkMapping, ProtectedVm, RecoveryPlan, TestFailover, loadProtection, IMPL_VERSION,
  type VaultArgs, type SiteArgs, type CloudArgs, type ReplicationPolicyArgs, type AssociationArgs, type AzureStorageArgs, type TimeWindowArgs,
  type NetworkMappingArgs, type MappingTargetArgs, type ProtectedVmArgs, type TargetVmArgs, type RecoveryPlanArgs, type RecoveryGroupArgs,
  type RecoveryActionArgs, type TestFailoverArgs, type DrillVm, type DrillDisk, type AdoptableArgs, type VaultObjectArgs, type LoadProtectionOptions, type AdoptOptions, type Protection,
} from './pulumi';
