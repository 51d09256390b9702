/** The YAML protection file: load, check and model it (docs/protection-file.md). */
export {
  parseProtection, validateProtectionFile, validateProtectionFileSync, loadProtectionFile, loadProtectionFileSync, protectionFileError,
  MAX_PROTECTION_FILE_BYTES, type ProtectionLoadOptions, type ProtectionResult,
} from './load';
export { formatProblem, formatProblems, type ProtectionProblem, type FormatProblemsOptions } from './problem';
export {
  PROTECTION_API_VERSION, VAULT_DEFAULTS, SITE_DEFAULTS, ACTION_DEFAULTS, defaultGroupName,
  type ProtectionModel, type ProtectionDocument, type VaultModel, type SiteModel, type CloudModel, type PolicyModel, type AssociationModel,
  type NetworkMappingModel, type MappingTargetModel, type ProtectedVmModel, type TargetVmModel, type RecoveryPlanModel, type RecoveryGroupModel,
  type RecoveryActionModel,
} from './model';
export { toProtectionDocument, stringifyProtection, type ToDocumentOptions, type StringifyProtectionOptions } from './document';
export { ProtectionSchema, PROTECTION_SCHEMA_FILE } from './protection-schema';
