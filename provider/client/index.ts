/** The typed vault API client (docs/vault-api.md): used by the CLI and the Pulumi provider. */
export { VaultClient, type VaultClientOptions, type RequestOptions, type ApiResponse, type WaitForJobOptions } from './vault-client';
export {
  VaultApiError, VaultUnreachableError, VaultTimeoutError, isAuthError, isNotFound, isUnreachable,
  type FieldProblem, type VaultApiErrorInit,
} from './client-errors';
export * from './api-types';
