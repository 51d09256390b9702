export { AzureRecoveredVm, type AzureRecoveredVmArgs, type AzureFailoverRecord } from './azure-recovered-vm';
/** The @pulumi/pulumi this component uses (one instance: tests set their mocks on it). */
export * as pulumi from '@pulumi/pulumi';
