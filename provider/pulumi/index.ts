/** Pulumi resources of Lifeboat. */
export * as diagnostics from './diagnostics';
