/**
 * The vault (control plane): REST API, store, job engine, registration and
 * CA. docs/vault-api.md describes the API; docs/jobs.md the job types.
 */
export { createVaultServer, type VaultServer, type VaultServerOptions } from './server';
export { runVault, parseVaultArgs, type VaultMainOptions } from './main';
export { SchemaRegistry, SCHEMA_NAMES, findSchemasDir, type SchemaName } from '../validation/schemas';
export { problemsFromAjv, type FieldProblem } from '../validation/problems';
export { registrationProofText, type RegistrationRequest, type RegistrationResponse } from './control/hosts';
export { VaultError } from './control/vault-error';
