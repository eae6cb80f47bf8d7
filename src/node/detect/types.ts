// Facts about a host, gathered before anything is planned.

export const VENDORS = ['nvidia', 'amd', 'ascend'] as const;
export type Vendor = (typeof VENDORS)[number];
export type VendorChoice = Vendor | 'none' | 'auto';

export interface MigDevice {
  uuid: string;
  name: string;
}

export interface Gpu {
  vendor: Vendor;
  // The vendor tool's index (nvidia-smi index, amd-smi gpu, npu-smi NPU id): what operators call it.
  index: number;
  // What the isolation variable takes: NVIDIA UUID, ROCR `GPU-<unique id>` (or ROCR ordinal),
  // Ascend chip logic id.
  isolationId: string;
  uuid?: string;
  name: string;
  // sysfs form: 0000:8d:00.0
  busId: string;
  numaNode: number;
  // Device nodes the GPU needs besides the vendor's shared ones (/dev/nvidia3, /dev/dri/renderD131).
  devices: string[];
  memoryMiB?: number;
  mig: MigDevice[];
}

export interface NumaNode {
  id: number;
  cpus: number[];
  memBytes: number;
}

export interface HostFacts {
  hostname: string;
  vendor: Vendor | 'none';
  gpus: Gpu[];
  nodes: NumaNode[];
  // Physical cores as groups of SMT sibling CPUs, sorted by first CPU.
  cores: number[][];
  // Device nodes every agent of this vendor needs (/dev/nvidiactl, /dev/kfd, /dev/davinci_manager).
  sharedDevices: string[];
  warnings: string[];
}
