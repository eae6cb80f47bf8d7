// Gathers a host's facts: the vendor's GPUs (tool output joined with sysfs by PCI bus id), NUMA
// nodes, their CPUs and memory, and SMT cores. Reads only; the planner decides.
import { hostname as osHostname } from 'node:os';
import { BkciError, InputError, UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import {
  AMD_SHARED_DEVICES,
  checkAmdList,
  parseAmdSmiList,
  parseAmdSmiStatic,
  parseKfdProperties,
  parseRocmSmiBus,
  type AmdSmiGpu,
  type KfdNode,
} from './amd.js';
import { ASCEND_SHARED_DEVICES, checkNpuChips, parseNpuSmiInfo, parseNpuSmiMapping } from './ascend.js';
import { NVIDIA_QUERY, NVIDIA_SHARED_DEVICES, parseDeviceMinor, parseNvidiaList, parseNvidiaQuery } from './nvidia.js';
import { HostTree, normalizeBusId, pciAccelerators, pciNumaNode, PCI_VENDOR, readCores, readNumaNodes } from './sysfs.js';
import { describeFailure, runTool, which, type ToolResult } from './tools.js';
import type { Gpu, HostFacts, NumaNode, Vendor, VendorChoice } from './types.js';

const TOOLS: Record<Vendor, string[]> = { nvidia: ['nvidia-smi'], amd: ['amd-smi', 'rocm-smi'], ascend: ['npu-smi'] };
const VENDOR_NAME: Record<Vendor, string> = { nvidia: 'NVIDIA', amd: 'AMD', ascend: 'Ascend' };

export async function detectHost(hostRoot: string, choice: VendorChoice, io: Pick<Io, 'env' | 'log'>): Promise<HostFacts> {
  const host = new HostTree(hostRoot);
  const warnings: string[] = [];
  const nodes = await readNumaNodes(host);
  if (!nodes[0]?.cpus.length) throw new InputError(`no online CPUs found under ${host.path('sys/devices/system')}`, 'check --host-root');
  const cores = await readCores(
    host,
    nodes.flatMap((n) => n.cpus),
  );
  const hostname = ((await host.read('proc/sys/kernel/hostname')) ?? (await host.read('etc/hostname')) ?? (hostRoot === '/' ? osHostname() : 'host'))
    .trim()
    .split('.')[0]!;

  let vendor: Vendor | 'none';
  if (choice === 'auto') vendor = await autoVendor(host, io);
  else vendor = choice;

  let gpus: Gpu[] = [];
  let sharedDevices: string[] = [];
  if (vendor === 'nvidia') {
    gpus = await detectNvidia(host, nodes, io, warnings);
    sharedDevices = NVIDIA_SHARED_DEVICES;
  } else if (vendor === 'amd') {
    gpus = await detectAmd(host, nodes, io, warnings);
    sharedDevices = AMD_SHARED_DEVICES;
  } else if (vendor === 'ascend') {
    gpus = await detectAscend(host, nodes, io, warnings);
    sharedDevices = ASCEND_SHARED_DEVICES;
  }
  if (vendor !== 'none' && gpus.length === 0)
    throw new InputError(
      `--vendor ${vendor}: ${TOOLS[vendor][0]} reports no ${VENDOR_NAME[vendor]} GPUs`,
      'check the driver (the tool runs but lists nothing), or use --vendor none for CPU-only agents',
    );
  return { hostname, vendor, gpus, nodes, cores, sharedDevices, warnings };
}

async function autoVendor(host: HostTree, io: Pick<Io, 'env' | 'log'>): Promise<Vendor | 'none'> {
  for (const v of ['nvidia', 'amd', 'ascend'] as const) {
    for (const t of TOOLS[v]) if (await which(t, io.env)) return v;
  }
  const seen = new Set((await pciAccelerators(host)).map((d) => PCI_VENDOR[d.vendor]).filter((v): v is Vendor => v !== undefined));
  for (const v of seen) {
    throw new InputError(
      `${VENDOR_NAME[v]} devices are on the PCI bus but ${TOOLS[v].join(' / ')} is not on PATH`,
      `install the ${VENDOR_NAME[v]} driver tools (or put them on PATH), or pass --vendor none for CPU-only agents`,
    );
  }
  return 'none';
}

// A vendor tool run that must not hang: past its deadline it is killed and bkci stops (exit 1).
async function runBounded(path: string, args: string[], io: Pick<Io, 'env' | 'log'>): Promise<ToolResult> {
  const r = await runTool(path, args, io);
  if (r.timedOut) throw new BkciError(describeFailure(path, args, r), 'the driver or a GPU is stuck: look for Xid errors in dmesg; a reboot may be needed');
  return r;
}

async function tool(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>, vendor: Vendor): Promise<string> {
  const path = await which(cmd, io.env);
  if (!path) throw new UsageError(`--vendor ${vendor}: ${cmd} is not on PATH`, `install the ${VENDOR_NAME[vendor]} driver tools, or pick the right --vendor`);
  const r = await runBounded(path, args, io);
  if (!r.ok) throw new InputError(describeFailure(cmd, args, r), 'check that the driver is loaded (the tool must work before agents can use the GPUs)');
  return r.stdout;
}

async function detectNvidia(host: HostTree, nodes: NumaNode[], io: Pick<Io, 'env' | 'log'>, warnings: string[]): Promise<Gpu[]> {
  const skipped: string[] = [];
  const rows = parseNvidiaQuery(await tool('nvidia-smi', NVIDIA_QUERY, io, 'nvidia'), skipped);
  for (const line of skipped) warnings.push(`nvidia-smi printed a line that is not a GPU: ${line}`);
  // MIG devices come from -L; a tool that cannot list them means none are used.
  const listing = await runBounded((await which('nvidia-smi', io.env))!, ['-L'], io);
  if (!listing.ok) warnings.push('nvidia-smi -L failed; assuming no MIG devices');
  const migs = parseNvidiaList(listing.ok ? listing.stdout : '');
  const gpus: Gpu[] = [];
  for (const r of rows) {
    const busId = normalizeBusId(r.busId);
    const numa = await pciNumaNode(host, busId, nodes);
    if (!numa.known && nodes.length > 1)
      warnings.push(`GPU ${r.index} (${busId}): no usable NUMA node in sysfs (numa_node, local_cpulist); assuming node ${numa.node}`);
    const info = await host.read(`proc/driver/nvidia/gpus/${busId}/information`);
    let minor = info ? parseDeviceMinor(info) : undefined;
    if (minor === undefined) {
      warnings.push(`GPU ${r.index} (${busId}): no device minor in /proc/driver/nvidia; assuming /dev/nvidia${r.index}`);
      minor = r.index;
    }
    gpus.push({
      vendor: 'nvidia',
      index: r.index,
      isolationId: r.uuid,
      uuid: r.uuid,
      name: r.name,
      busId,
      numaNode: numa.node,
      devices: [`/dev/nvidia${minor}`],
      memoryMiB: r.memoryMiB,
      mig: migs.get(r.uuid) ?? [],
    });
  }
  return gpus;
}

async function detectAmd(host: HostTree, nodes: NumaNode[], io: Pick<Io, 'env' | 'log'>, warnings: string[]): Promise<Gpu[]> {
  const listed = await listAmdGpus(io);
  // KFD topology: GPU nodes in node order give the ROCR ordinals; unique_id gives the stable id.
  const kfd: KfdNode[] = [];
  for (const d of await host.list('sys/class/kfd/kfd/topology/nodes')) {
    const text = await host.read(`sys/class/kfd/kfd/topology/nodes/${d}/properties`);
    const n = text ? parseKfdProperties(Number(d), text) : undefined;
    if (n) kfd.push(n);
  }
  kfd.sort((a, b) => a.node - b.node);
  const gpus: Gpu[] = [];
  for (const g of listed) {
    const busId = normalizeBusId(g.busId);
    const numa = await pciNumaNode(host, busId, nodes);
    if (!numa.known && nodes.length > 1)
      warnings.push(`GPU ${g.index} (${busId}): no usable NUMA node in sysfs (numa_node, local_cpulist); assuming node ${numa.node}`);
    const k = kfd.findIndex((n) => n.busId === busId);
    let isolationId: string;
    if (k >= 0 && kfd[k]!.uniqueId !== undefined) isolationId = `GPU-${kfd[k]!.uniqueId!.toString(16).padStart(16, '0')}`;
    else if (k >= 0) isolationId = String(k);
    else {
      warnings.push(`GPU ${g.index} (${busId}): not in the KFD topology; using amd-smi's index ${g.index} for ROCR_VISIBLE_DEVICES`);
      isolationId = String(g.index);
    }
    const render = (await host.list(`sys/bus/pci/devices/${busId}/drm`)).find((x) => /^renderD\d+$/.test(x));
    const devices = render ? [`/dev/dri/${render}`] : k >= 0 && kfd[k]!.renderMinor ? [`/dev/dri/renderD${kfd[k]!.renderMinor}`] : [];
    if (!devices.length) warnings.push(`GPU ${g.index} (${busId}): no DRM render node found`);
    const name = ((await host.read(`sys/bus/pci/devices/${busId}/product_name`)) ?? '').trim() || 'AMD GPU';
    gpus.push({ vendor: 'amd', index: g.index, isolationId, uuid: g.uuid, name, busId, numaNode: numa.node, devices, mig: [] });
  }
  return gpus;
}

// The AMD GPUs by index and bus id, from whichever form the installed tools give: `amd-smi list
// --json`, its text form, `amd-smi static --json`, or the older `rocm-smi --showbus` (JSON or text).
export async function listAmdGpus(io: Pick<Io, 'env' | 'log'>): Promise<AmdSmiGpu[]> {
  const attempts: [string, string[], (t: string) => AmdSmiGpu[]][] = [
    ['amd-smi', ['list', '--json'], parseAmdSmiList],
    ['amd-smi', ['list'], parseAmdSmiList],
    ['amd-smi', ['static', '--json'], parseAmdSmiStatic],
    ['rocm-smi', ['--showbus', '--json'], parseRocmSmiBus],
    ['rocm-smi', ['--showbus'], parseRocmSmiBus],
  ];
  const failures: string[] = [];
  for (const [cmd, args, parse] of attempts) {
    const path = await which(cmd, io.env);
    if (!path) continue;
    const r = await runBounded(path, args, io);
    if (!r.ok) {
      failures.push(`${cmd} ${args.join(' ')}: exit ${r.exitCode ?? '?'}`);
      continue;
    }
    let gpus: AmdSmiGpu[];
    try {
      gpus = parse(r.stdout);
    } catch (err) {
      failures.push(`${cmd} ${args.join(' ')}: ${(err as Error).message}`);
      continue;
    }
    if (gpus.length) return checkAmdList(`${cmd} ${args.join(' ')}`, gpus);
  }
  if (!(await which('amd-smi', io.env)) && !(await which('rocm-smi', io.env)))
    throw new UsageError('--vendor amd: neither amd-smi nor rocm-smi is on PATH', 'install the ROCm tools, or pick the right --vendor');
  if (failures.length) throw new InputError(`cannot list the AMD GPUs (${failures.join('; ')})`, 'check that the amdgpu driver is loaded');
  return [];
}

async function detectAscend(host: HostTree, nodes: NumaNode[], io: Pick<Io, 'env' | 'log'>, warnings: string[]): Promise<Gpu[]> {
  const info = parseNpuSmiInfo(await tool('npu-smi', ['info'], io, 'ascend'));
  checkNpuChips(info.chips);
  let mapping = new Map<string, number>();
  const m = await runBounded((await which('npu-smi', io.env))!, ['info', '-m'], io);
  if (m.ok) mapping = parseNpuSmiMapping(m.stdout);
  else warnings.push('npu-smi info -m failed; chip logic ids are taken in table order');
  const gpus: Gpu[] = [];
  const chips = [...info.chips].sort((a, b) => a.npu - b.npu || a.chip - b.chip);
  for (const [ordinal, c] of chips.entries()) {
    const busId = normalizeBusId(c.busId);
    const numa = await pciNumaNode(host, busId, nodes);
    if (!numa.known && nodes.length > 1)
      warnings.push(`NPU ${c.npu} chip ${c.chip} (${busId}): no usable NUMA node in sysfs (numa_node, local_cpulist); assuming node ${numa.node}`);
    const logic = mapping.get(`${c.npu}:${c.chip}`) ?? ordinal;
    // Multi-chip cards: the index names the chip (npu*chips + chip keeps one number per chip).
    const index = chips.filter((x) => x.npu === c.npu).length > 1 ? logic : c.npu;
    gpus.push({ vendor: 'ascend', index, isolationId: String(logic), name: c.name, busId, numaNode: numa.node, devices: [`/dev/davinci${logic}`], mig: [] });
  }
  return gpus;
}
