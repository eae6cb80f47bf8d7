// The one interface every GPU vendor implements. Everything bkci knows about a vendor (its tools,
// how to find its GPUs, which device nodes an agent needs, how to hide the other GPUs from a job,
// how to ask whether a GPU is fit, what to check on the host) lives in its module in this
// directory; the planner, units, hook, health check and doctor only ask the registry (index.ts).
// Adding a vendor is one module here, one entry in the registry, a fixture host and its tests.
import type { Io } from '../../util/io.js';
import type { HostTree } from '../detect/sysfs.js';
import type { Gpu, NumaNode } from '../detect/types.js';

export type ToolIo = Pick<Io, 'env' | 'log'>;

// What detection gets: the host tree, its NUMA nodes, the tools, somewhere to put warnings.
export interface DetectContext {
  host: HostTree;
  nodes: NumaNode[];
  io: ToolIo;
  warnings: string[];
}

// A device node an agent of this vendor may use. `required`: the agent cannot work without it
// (the health check and the hook refuse a job when it is missing). Optional nodes (NVIDIA's
// nvidia-uvm, which appears on first CUDA use; nvidia-modeset, absent on headless hosts) are
// allowed but never make an agent unhealthy.
export interface DeviceNode {
  path: string;
  required: boolean;
  // The `DeviceAllow=` form when it is not the path: a device class (`char-nvidia-uvm`), which
  // systemd resolves when the unit starts.
  allow?: string;
}

// One schedulable unit of an agent: a whole GPU, or one MIG device of it.
export interface AgentSlot {
  gpu: Gpu;
  // What the isolation variables take for this slot (GPU UUID, MIG UUID, ROCR id, logic id).
  id: string;
}

// What a vendor needs of the host beyond device nodes and groups (VendorModule.hostServices).
export interface HostServices {
  // A command (absolute argv) that creates the vendor's device nodes, run as root by
  // bkci-gpu-devices.service before the agents start (NVIDIA: nvidia-ctk or nvidia-modprobe), so
  // nodes created lazily (nvidia-uvm on first CUDA use) exist before the unit's device policy,
  // which forbids mknod, applies.
  deviceNodes?: string[];
  // Units the agents start after and want (nvidia-fabricmanager.service on NVSwitch hosts).
  after?: string[];
  // Variables every agent with GPUs gets (read back by the health check: BKCI_NVSWITCH).
  env?: Record<string, string>;
  warnings?: string[];
}

// GPU facts for one agent, from its vendor's tool.
export interface GpuReport {
  id: string;
  present: boolean;
  // Why a GPU counts as missing, when the tool said (a driver error rather than an absent GPU).
  reason?: string;
  healthy?: boolean;
  healthText?: string;
  processes: number[];
  memoryUsedMiB?: number;
  eccUncorrected?: number;
  retiredPending?: boolean;
  remapPending?: boolean;
  remapFailure?: boolean;
  // What the driver says the GPU needs (NVIDIA gpu_recovery_action); anything but None is unfit.
  recoveryAction?: string;
  // Health fields this GPU does not have (no ECC; retired pages on Ampere and later): never failures.
  notApplicable?: string[];
  // NVSwitch hosts: the GPU's fabric registration (`nvidia-smi -q` Fabric section); anything but
  // State Completed means NVLink peers are not reachable yet (fabric manager not done, or failed).
  fabric?: { state: string; status?: string };
  // Further reasons the vendor finds the GPU unfit (a fabric not Completed): each fails the check.
  problems?: string[];
  // Something the check could not see (reported, not failed).
  note?: string;
}

export type DoctorStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface DoctorItem {
  check: string;
  status: DoctorStatus;
  detail: string;
  fix?: string;
}

// An agent as the manifest records it: what vendor checks compare with the host now.
export interface ManifestAgent {
  instance: string;
  unit: string;
  // The vendor tool's GPU indices when the agent was made.
  gpuIndices: number[];
  // The agent's environment file's values (the vendor's isolation variables among them).
  env: Record<string, string>;
  tags: string[];
  // The agent's GPUs were gone at the last setup (it is stopped).
  missing?: { gpus: string[] };
}

// An agent that no longer matches its GPUs as they are now (a re-partitioned MIG GPU): why, and
// what to do.
export interface AgentDrift {
  instance: string;
  problem: string;
  fix: string;
}

export interface DoctorContext {
  // The manifest's agents, for checks against what setup recorded.
  agents: ManifestAgent[];
  root: string;
  hostRoot: string;
  staging: boolean;
  // Docker is installed on the host.
  docker: boolean;
  io: Io;
}

export interface VendorModule {
  // `--vendor` value, `gpu-vendor=` tag, BKCI_GPU_VENDOR.
  id: string;
  // For people: "NVIDIA".
  label: string;
  // On Kubernetes (bkci fleet k8s): the extended resource its device plugin advertises, and the node
  // label holding the GPU product name where the vendor's feature discovery sets one.
  kubernetes?: { resource: string; productLabel?: string };
  // Tools whose presence on PATH picks this vendor with --vendor auto (the first is the main one).
  tools: string[];
  // PCI vendor ids of its GPUs (`0x10de`): GPUs on the bus without the tools are an error.
  pciVendors: string[];

  // The GPUs, joined with sysfs (NUMA node, device nodes). Errors name the tool and the line.
  detect(ctx: DetectContext): Promise<Gpu[]>;
  // Device nodes every agent with GPUs of this vendor needs besides each GPU's own (Gpu.devices).
  sharedDevices(host: HostTree): Promise<DeviceNode[]>;
  // Extra `DeviceAllow=` entries for an agent's slots (NVIDIA MIG capability nodes).
  extraDeviceAllow(slots: AgentSlot[], mig: boolean): string[];
  // Device-node creation and services the agents depend on (optional: most vendors need none).
  hostServices?(host: HostTree, io: ToolIo): Promise<HostServices>;
  // Groups the agent must be in to open its device nodes (`SupplementaryGroups=`).
  supplementaryGroups(host: HostTree): Promise<string[]>;
  // The variables that make only the agent's GPUs visible, and vendor facts for the hook/check.
  isolationEnv(slots: AgentSlot[]): Record<string, string>;
  // `docker run` arguments giving a container the agent's GPUs (devices and groups; not limits).
  dockerArgs(slots: AgentSlot[], devices: string[], groups: string[]): string[];
  // Bash run by the environment hook before each job, after the device check; exits 1 to refuse.
  hookCheck: string;
  // Health of the agent's GPUs, from its environment file's values.
  health(env: Record<string, string>, io: ToolIo): Promise<GpuReport[]>;
  // Vendor checks of `node doctor` (ctx.agents: the manifest's agents).
  doctorChecks(ctx: DoctorContext): Promise<DoctorItem[]>;
  // Agents whose GPUs no longer match what setup recorded (NVIDIA: a re-partitioned MIG GPU),
  // for `node status` (optional: most vendors have nothing that changes under an agent).
  agentDrift?(agents: ManifestAgent[], io: ToolIo): Promise<AgentDrift[]>;
  // What to do about an error the vendor tool printed (driver not loaded, mismatch, lost GPU).
  driverFix(message: string): string;
}
