// NVIDIA host facts beyond the GPUs: the device-node command bkci-gpu-devices.service runs, NVSwitch
// functions on the PCI bus (HGX/DGX baseboards, whose GPUs reach each other only once
// nvidia-fabricmanager has registered them), and the `nvidia-smi -q` Fabric section the health
// check reads on those hosts.
import type { HostTree } from '../detect/sysfs.js';
import { which } from '../detect/tools.js';
import type { HostServices, ToolIo } from './types.js';

// NVSwitch PCI functions: NVIDIA's vendor id with the "bridge, other" class 0x068000 (how NVIDIA's
// go-nvlib `nvpci` tells an NVSwitch from a GPU). Device ids: 0x1af1 (A100 HGX, NVSwitch gen 2),
// 0x22a3 (H100/H200 HGX, gen 3); the class covers later generations too.
export const NVSWITCH = { vendor: '0x10de', classPrefix: '0x0680' };

export async function nvswitchFunctions(host: HostTree): Promise<string[]> {
  const out: string[] = [];
  for (const d of await host.list('sys/bus/pci/devices')) {
    const vendor = (await host.read(`sys/bus/pci/devices/${d}/vendor`))?.trim().toLowerCase();
    const cls = (await host.read(`sys/bus/pci/devices/${d}/class`))?.trim().toLowerCase();
    if (vendor === NVSWITCH.vendor && cls?.startsWith(NVSWITCH.classPrefix)) out.push(d);
  }
  return out;
}

export const FABRIC_MANAGER = 'nvidia-fabricmanager.service';

// The command that creates /dev/nvidiactl, /dev/nvidia-uvm(-tools) and /dev/nvidia-modeset before
// the agents start: nvidia-ctk (nvidia-container-toolkit) where installed, as it creates every
// control node and loads the modules; else nvidia-modprobe (the driver's setuid helper: -u loads
// nvidia-uvm and makes its nodes, -c0 makes /dev/nvidia0 and /dev/nvidiactl).
export function deviceNodeCommand(tools: { nvidiaCtk?: string; nvidiaModprobe?: string }): string[] | undefined {
  if (tools.nvidiaCtk) return [tools.nvidiaCtk, 'system', 'create-device-nodes', '--control-devices', '--load-kernel-modules'];
  if (tools.nvidiaModprobe) return [tools.nvidiaModprobe, '-u', '-c0'];
  return undefined;
}

// The host services of an NVIDIA host, from the tools on PATH and the PCI functions in sysfs.
export function nvidiaServices(tools: { nvidiaCtk?: string; nvidiaModprobe?: string }, nvswitches: string[]): HostServices {
  const deviceNodes = deviceNodeCommand(tools);
  const warnings: string[] = [];
  if (!deviceNodes)
    warnings.push(
      'neither nvidia-ctk nor nvidia-modprobe is on PATH: bkci-gpu-devices.service is not installed, and /dev/nvidia-uvm appears only once a root process uses CUDA (install the driver’s nvidia-modprobe or nvidia-container-toolkit, then re-run setup)',
    );
  return {
    ...(deviceNodes ? { deviceNodes } : {}),
    ...(nvswitches.length ? { after: [FABRIC_MANAGER], env: { BKCI_NVSWITCH: String(nvswitches.length) } } : {}),
    warnings,
  };
}

export async function gatherNvidiaServices(host: HostTree, io: ToolIo): Promise<HostServices> {
  const [nvidiaCtk, nvidiaModprobe, switches] = await Promise.all([which('nvidia-ctk', io.env), which('nvidia-modprobe', io.env), nvswitchFunctions(host)]);
  return nvidiaServices({ nvidiaCtk, nvidiaModprobe }, switches);
}

export interface FabricInfo {
  uuid: string;
  // Undefined when the GPU's block has no Fabric section (drivers before the fabric probe).
  state?: string;
  status?: string;
}

// `nvidia-smi -q`: one block per GPU (`GPU 00000000:19:00.0`), its `GPU UUID : GPU-...` line, and
// (R520 and later) a `Fabric` section: `State : Completed`, `Status : Success` once the fabric
// manager has registered the GPU; `Not Started`/`In Progress` (Status N/A) until then; `N/A` where
// the GPU reports no fabric probe (PCIe cards, and A100 HGX boards even with NVSwitches). Newer
// drivers add CliqueId, ClusterUUID and a Health subsection, and widen the key column (R580); the
// keys are read by name and by their indent under `Fabric`, not by column. Every GPU block with a
// UUID is returned, without a state when it has no Fabric section.
export function parseFabric(text: string): FabricInfo[] {
  const out: FabricInfo[] = [];
  let cur: { uuid?: string; state?: string; status?: string } | undefined;
  let inFabric = false;
  let fabricIndent = 0;
  let childIndent: number | undefined;
  const flush = () => {
    if (cur?.uuid)
      out.push({ uuid: cur.uuid, ...(cur.state !== undefined ? { state: cur.state } : {}), ...(cur.status !== undefined ? { status: cur.status } : {}) });
  };
  for (const line of text.split(/\r?\n/)) {
    if (/^GPU\s+[0-9A-Fa-f]+:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d\s*$/.test(line)) {
      flush();
      cur = {};
      inFabric = false;
      continue;
    }
    if (!cur || !line.trim()) continue;
    const indent = line.length - line.trimStart().length;
    if (/^\s+Fabric\s*$/.test(line)) {
      inFabric = true;
      fabricIndent = indent;
      childIndent = undefined;
      continue;
    }
    if (inFabric && indent <= fabricIndent) inFabric = false;
    const kv = /^\s*([^:]+?)\s*:\s*(.*?)\s*$/.exec(line);
    if (!kv) {
      // A subsection heading (Health) fixes the indent of Fabric's own keys too.
      if (inFabric) childIndent ??= indent;
      continue;
    }
    const [, key, value] = kv;
    if (!inFabric) {
      if (key === 'GPU UUID' && indent < 8) cur.uuid = value;
      continue;
    }
    childIndent ??= indent;
    if (indent !== childIndent) continue;
    if (key === 'State') cur.state = value;
    if (key === 'Status') cur.status = value;
  }
  flush();
  return out;
}

// A fabric state that says the GPU reports no fabric registration at all (not a pending one).
const FABRIC_NOT_REPORTED = /^\[?(n\/a|not supported)\]?$/i;

// Whether a GPU's fabric state keeps a job from using NVLink through the NVSwitches. A GPU that
// reports no fabric state (no Fabric section, or N/A / Not Supported: A100 HGX boards, older
// drivers) is not held back: its NVLink comes up with the fabric manager, which the agents start
// after. `notReported` tells the caller to list it as not applicable.
export function fabricProblem(f: { state?: string; status?: string }): string | undefined {
  if (fabricNotReported(f)) return undefined;
  if (!/^completed$/i.test(f.state!)) return `NVSwitch fabric state is ${f.state} (not Completed): nvidia-fabricmanager has not registered the GPU`;
  if (f.status !== undefined && !/^(success|n\/a)$/i.test(f.status)) return `NVSwitch fabric status is ${f.status}`;
  return undefined;
}

export const fabricNotReported = (f: { state?: string }): boolean => f.state === undefined || FABRIC_NOT_REPORTED.test(f.state);
