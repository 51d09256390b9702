export {
  LabHypervisor,
  type LabHypervisorOptions,
  type LabOpenReport,
  type CreateVmOptions,
  type NewDiskSpec,
  type LabCreateFromDisksOptions,
  type LabDiskStatus,
} from './lab-hypervisor';
export { type LabWorkloadSpec, type VmConfig, type DiskConfig, type NicConfig, VM_CONFIG_VERSION, readVmConfig } from './vm-config';
export { CowOverlay, type CreateOverlayOptions, type OverlayBase, openFileBase } from './cow-overlay';
export { type GuestJournalState, readGuestJournal } from './guest-journal';
export { DEFAULT_LAB_BYTES_PER_SECOND, diskWorkloadOptions, workloadOpsFrom, type DiskRunnerStats } from './disk-runner';
export { type DiskReader, type VerifyWorkloadOptions, type VerifyWorkloadResult, verifyWorkloadDisk, expectedWorkloadBytes } from './workload-verifier';
export { labLayout, type LabLayout } from './lab-paths';
export * from './workload';
