export * from './hypervisor';
export * from './power-state';
export * as lab from './lab';
