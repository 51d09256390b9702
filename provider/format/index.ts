/**
 * Pure codecs of the replication log (docs/log-format.md). No I/O.
 */
export * from './layout';
export * from './crc';
export * from './outcome';
export * from './segment-name';
export * from './segment-header';
export * from './segment-record';
export * from './segment-scanner';
export * from './segment-chain';
export * from './activity-log-file';
