// Facts about a host, gathered before anything is planned.

import type { DeviceNode, HostServices } from '../vendors/types.js';

// A vendor module's id (src/node/vendors/): nvidia, amd, ascend; `none` for CPU-only agents.
export type Vendor = string;
// A --vendor value: a vendor id, `none`, or `auto`.
export type VendorChoice = string;

export interface MigDevice {
  uuid: string;
  name: string;
  // Its number on its GPU (`MIG 3g.20gb Device 1` in nvidia-smi -L).
  device?: number;
  // GPU instance and compute instance ids (nvidia-smi's MIG devices table): with the parent's bus
  // id, the instance's stable identity; its UUID changes when the GPU is re-partitioned.
  gi?: number;
  ci?: number;
  // Its memory (from the profile name, `3g.40gb`, else the MIG devices table): its agent's CPUs and
  // memory are its GPU's share split in proportion to it.
  memoryMiB?: number;
  // Its capability device nodes (/dev/nvidia-caps/nvidia-cap<N> of its GI and CI), from
  // /proc/driver/nvidia-caps/mig-minors: what its agent's unit may open besides the GPU.
  caps?: string[];
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
  // The architecture tag the vendor knows its GPUs by, for mixed hosts (`cuda-cc` = `9.0`, `gfx` =
  // `gfx942`); absent when the tool or driver cannot say.
  arch?: { tag: string; value: string };
  mig: MigDevice[];
  // Numeric gids owning the GPU's device nodes on the host, for `docker run --group-add` (a
  // name there is looked up in the image's /etc/group, which rarely has the host's `render`).
  groupIds?: number[];
}

export interface NumaNode {
  id: number;
  cpus: number[];
  memBytes: number;
}

export interface HostFacts {
  hostname: string;
  vendor: Vendor;
  gpus: Gpu[];
  nodes: NumaNode[];
  // Physical cores as groups of SMT sibling CPUs, sorted by first CPU.
  cores: number[][];
  // Device nodes every agent with GPUs uses besides its GPUs' own (/dev/nvidiactl, /dev/kfd,
  // /dev/davinci_manager), required or optional.
  sharedDevices: DeviceNode[];
  // Groups the agent user needs for its device nodes (render and video; the Ascend driver's group).
  groups: string[];
  // The vendor's device-node command and the services agents start after (NVSwitch: fabric manager).
  services?: HostServices;
  warnings: string[];
}
