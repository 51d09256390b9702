export { AzureBlobReplicaTarget, type AzureBlobReplicaTargetOptions } from './azure-replica-target';
export { AzureReadOnlyDisk } from './azure-read-only-disk';
export { AzureReplicaDisk, type AzureReplicaStats, MAX_PAGE_WRITE } from './azure-replica-disk';
export { type AzureBlobTargetConfig, containerClientOf, describeConfig } from './azure-config';
export { classifyAzureError } from './azure-errors';
export { encodeVhdFooter, decodeVhdFooter, vhdGeometry, vhdVirtualSize, VHD_FOOTER_BYTES, type VhdFooter, type VhdGeometry } from './vhd-footer';
export { INDEX_BLOCK_SIZE } from './checksum-index';
