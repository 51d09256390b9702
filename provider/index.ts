/**
 * Lifeboat: site recovery as code. The package's public surface; each feature
 * folder re-exports its own public names.
 */
export * from './errors';
export * from './clock';
export * from './units';
export * as diagnostics from './pulumi/diagnostics';
