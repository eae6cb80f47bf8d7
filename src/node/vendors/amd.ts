// AMD GPUs from `amd-smi list --json` (or its text form, or `rocm-smi --showbus --json`) and the
// KFD topology in sysfs. amd-smi's NODE_ID is a KFD node, not a NUMA node, and its UUID is not
// what ROCR_VISIBLE_DEVICES takes: that is `GPU-<unique_id in hex>` or the ROCR ordinal (rank of the
// GPU's KFD node among GPU nodes).
import { stat } from 'node:fs/promises';
import { InputError, UsageError } from '../../util/errors.js';
import { normalizeBusId, pciNumaNode, type HostTree } from '../detect/sysfs.js';
import { healthOutput, runBounded, which } from '../detect/tools.js';
import type { Gpu } from '../detect/types.js';
import type { DetectContext, DeviceNode, GpuReport, ToolIo, VendorModule } from './types.js';

export interface AmdSmiGpu {
  index: number;
  busId: string;
  uuid?: string;
}

// The list in amd-smi's JSON output: the top-level array, or the first array in a top-level object.
// amd-smi may print warnings first, so parsing starts at the first line that opens the JSON.
// Undefined when there is no JSON; a parse error throws.
export function amdSmiJsonList(text: string): Record<string, unknown>[] | undefined {
  const start = text.search(/^\s*[[{]/m);
  if (start < 0) return undefined;
  const data = JSON.parse(text.slice(start)) as unknown;
  return (Array.isArray(data) ? data : (Object.values(data as Record<string, unknown>).find(Array.isArray) ?? [])) as Record<string, unknown>[];
}

// Two entries with one index or one bus id are inconsistent output: an error naming the tool.
export function checkAmdList(tool: string, gpus: AmdSmiGpu[]): AmdSmiGpu[] {
  const seen = new Map<string, number>();
  gpus.forEach((g, i) => {
    if (!Number.isInteger(g.index) || g.index < 0 || g.index > 65535)
      throw new InputError(`${tool}: entry ${i + 1} has GPU index ${JSON.stringify(g.index)}: not a GPU index`, 'run the tool by hand and check its output');
    for (const key of [`index ${g.index}`, `bus id ${normalizeBusId(g.busId)}`]) {
      const first = seen.get(key);
      if (first !== undefined)
        throw new InputError(
          `${tool}: entry ${i + 1} (GPU ${g.index}, ${g.busId}) repeats the ${key} of entry ${first + 1}: inconsistent output`,
          'run the tool by hand; a driver in a bad state can list a GPU twice',
        );
      seen.set(key, i);
    }
  });
  return gpus;
}

export function parseAmdSmiList(text: string): AmdSmiGpu[] {
  const list = amdSmiJsonList(text);
  if (list) {
    return list
      .filter((g) => typeof g === 'object' && g !== null)
      .map((g) => ({ index: Number(g.gpu), busId: String(g.bdf), uuid: g.uuid === undefined ? undefined : String(g.uuid) }));
  }
  // Text form: `GPU: 0` then indented `BDF: ...`, `UUID: ...` lines.
  const out: AmdSmiGpu[] = [];
  let cur: Partial<AmdSmiGpu> | undefined;
  for (const line of text.trim().split('\n')) {
    const g = /^GPU:\s*(\d+)/.exec(line);
    if (g) {
      if (cur?.busId !== undefined) out.push(cur as AmdSmiGpu);
      cur = { index: Number(g[1]) };
      continue;
    }
    const kv = /^\s+([A-Z_]+):\s*(\S+)/.exec(line);
    if (kv && cur) {
      if (kv[1] === 'BDF') cur.busId = kv[2]!;
      if (kv[1] === 'UUID') cur.uuid = kv[2]!;
    }
  }
  if (cur?.busId !== undefined) out.push(cur as AmdSmiGpu);
  return out;
}

// `amd-smi static --json`: [{"gpu": 0, "bus": {"bdf": "0000:0c:00.0", ...}, ...}, ...]
export function parseAmdSmiStatic(text: string): AmdSmiGpu[] {
  return (amdSmiJsonList(text) ?? [])
    .map((g) => ({ index: Number(g.gpu), busId: String((g.bus as { bdf?: unknown } | undefined)?.bdf ?? '') }))
    .filter((g) => Number.isInteger(g.index) && g.busId !== '');
}

// `rocm-smi --showbus --json`: {"card0": {"PCI Bus": "0000:0C:00.0"}, ...}; or its text form,
// `GPU[0]		: PCI Bus: 0000:0C:00.0`.
export function parseRocmSmiBus(text: string): AmdSmiGpu[] {
  const start = text.search(/^\s*\{/m);
  if (start >= 0) {
    const data = JSON.parse(text.slice(start)) as Record<string, Record<string, string>>;
    return Object.entries(data)
      .filter(([k]) => /^card\d+$/.test(k))
      .map(([k, v]) => ({ index: Number(k.slice(4)), busId: String(v['PCI Bus'] ?? Object.values(v)[0]) }));
  }
  const out: AmdSmiGpu[] = [];
  for (const m of text.matchAll(/^GPU\[(\d+)\]\s*:\s*PCI Bus:\s*(\S+)/gm)) out.push({ index: Number(m[1]), busId: m[2]! });
  return out;
}

export interface KfdNode {
  node: number;
  busId: string;
  uniqueId?: bigint;
  renderMinor?: number;
  // The LLVM target (`gfx942`), from gfx_target_version.
  gfx?: string;
}

// KFD's gfx_target_version (major*10000 + minor*100 + stepping, decimal) as the LLVM target name:
// 90402 → gfx942, 90010 → gfx90a, 110000 → gfx1100.
export function gfxTarget(version: number): string | undefined {
  if (!Number.isInteger(version) || version <= 0) return undefined;
  const major = Math.floor(version / 10000);
  const minor = Math.floor(version / 100) % 100;
  const step = version % 100;
  if (minor > 15 || step > 15) return undefined;
  return `gfx${major}${minor.toString(16)}${step.toString(16)}`;
}

// One KFD topology node's `properties` file (`key value` lines) → a GPU node, or undefined for CPUs.
export function parseKfdProperties(node: number, text: string): KfdNode | undefined {
  const p = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\S+)/.exec(line);
    if (m) p.set(m[1]!, m[2]!);
  }
  if (!(Number(p.get('simd_count') ?? 0) > 0)) return undefined;
  const loc = Number(p.get('location_id') ?? NaN);
  const domain = Number(p.get('domain') ?? 0);
  if (!Number.isFinite(loc)) return undefined;
  const bus = (loc >> 8) & 0xff;
  const dev = (loc >> 3) & 0x1f;
  const fn = loc & 0x7;
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const unique = p.get('unique_id');
  const render = p.get('drm_render_minor');
  if (!Number.isInteger(domain) || domain < 0 || domain > 0xffffffff) return undefined;
  return {
    node,
    busId: `${hex(domain, 4)}:${hex(bus, 2)}:${hex(dev, 2)}.${fn}`,
    uniqueId: unique && /^\d{1,20}$/.test(unique) && unique !== '0' ? BigInt(unique) : undefined,
    renderMinor: render !== undefined && Number(render) > 0 ? Number(render) : undefined,
    gfx: gfxTarget(Number(p.get('gfx_target_version') ?? NaN)),
  };
}

async function detect({ host, nodes, io, warnings }: DetectContext): Promise<Gpu[]> {
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
  let gidWarned = false;
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
    // amdgpu's VRAM size in bytes.
    const vram = Number(((await host.read(`sys/bus/pci/devices/${busId}/mem_info_vram_total`)) ?? '').trim());
    const gfx = k >= 0 ? kfd[k]!.gfx : undefined;
    const gids = await containerGids(host, devices);
    if (!gids.length && !gidWarned) {
      gidWarned = true;
      warnings.push(
        `no numeric gid for /dev/kfd and the render nodes (owned by root's group, and no render or video group in ${host.path('etc/group')}): docker jobs get --group-add render --group-add video, which the image's /etc/group must name`,
      );
    }
    gpus.push({
      vendor: 'amd',
      index: g.index,
      isolationId,
      uuid: g.uuid,
      name,
      busId,
      numaNode: numa.node,
      devices,
      ...(vram > 0 ? { memoryMiB: Math.floor(vram / 2 ** 20) } : {}),
      ...(gfx ? { arch: { tag: 'gfx', value: gfx } } : {}),
      mig: [],
      ...(gids.length ? { groupIds: gids } : {}),
    });
  }
  return gpus;
}

// The numeric groups a container needs to open a GPU's nodes: the groups owning /dev/kfd and its
// render node on the host (root's group left out), and the host's render and video groups from its
// /etc/group. Numbers, because `docker run --group-add render` resolves the name in the image's
// /etc/group, and most images have no `render` (the container then fails to start).
export async function containerGids(host: HostTree, devices: string[]): Promise<number[]> {
  const gids: number[] = [];
  const add = (g: number) => {
    if (Number.isInteger(g) && g > 0 && !gids.includes(g)) gids.push(g);
  };
  for (const d of ['/dev/kfd', ...devices]) {
    try {
      add((await stat(host.path(d.replace(/^\/+/, '')))).gid);
    } catch {
      // not there (a staged tree without /dev): the host's /etc/group below
    }
  }
  for (const line of ((await host.read('etc/group')) ?? '').split('\n')) {
    const f = line.split(':');
    if ((f[0] === 'render' || f[0] === 'video') && /^\d{1,10}$/.test(f[2] ?? '')) add(Number(f[2]));
  }
  return gids;
}
// SupplementaryGroups= for an AMD agent: `render` (owns /dev/kfd and /dev/dri/renderD*, 0660) and
// `video`, those of them the host's /etc/group has: systemd refuses to start a unit naming a group
// that does not exist (older distributions have no `render`; /dev/kfd is then world-usable).
// Both when the host's /etc/group cannot be read (a staged tree without one).
async function amdGroups(host: HostTree): Promise<string[]> {
  const text = await host.read('etc/group');
  if (text === undefined) return ['render', 'video'];
  const names = new Set(text.split('\n').map((l) => l.split(':')[0]));
  return ['render', 'video'].filter((g) => names.has(g));
}

// The AMD GPUs by index and bus id, from whichever form the installed tools give: `amd-smi list
// --json`, its text form, `amd-smi static --json`, or the older `rocm-smi --showbus` (JSON or text).
export async function listAmdGpus(io: ToolIo): Promise<AmdSmiGpu[]> {
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

async function health(env: Record<string, string>, io: ToolIo): Promise<GpuReport[]> {
  const buses = (env.BKCI_GPU_BUSIDS ?? '').split(',').filter(Boolean);
  // The same tools, in the same order, as discovery used (amd-smi JSON or text, rocm-smi).
  let listed: AmdSmiGpu[] = [];
  let why: string | undefined;
  try {
    listed = await listAmdGpus(io);
  } catch (err) {
    why = (err as Error).message.replace(/^--vendor amd: /, '');
  }
  const indexOf = new Map(listed.map((g) => [normalizeBusId(g.busId), g.index]));
  const hasAmdSmi = (await which('amd-smi', io.env)) !== undefined;
  const procsText = hasAmdSmi ? await healthOutput('amd-smi', ['process', '--json'], io) : undefined;
  const procs = jsonList(procsText);
  const ecc = jsonList(hasAmdSmi ? await healthOutput('amd-smi', ['metric', '--ecc', '--json'], io) : undefined);
  return buses.map((bus): GpuReport => {
    const idx = indexOf.get(bus);
    if (idx === undefined) return { id: bus, present: false, processes: [], ...(why ? { reason: why } : {}) };
    const p = procs.find((x) => Number(x.gpu) === idx);
    const list = Array.isArray(p?.process_list) ? (p.process_list as unknown[]) : [];
    const pids = list
      .map((e) => (e as { process_info?: unknown }).process_info)
      .filter((i): i is { pid?: unknown } => typeof i === 'object' && i !== null)
      .map((i) => Number(i.pid));
    const e = ecc.find((x) => Number(x.gpu) === idx)?.ecc as Record<string, unknown> | undefined;
    const unc = e ? Number(e.total_uncorrectable_count ?? 0) : undefined;
    return {
      id: `${idx} (${bus})`,
      present: true,
      processes: pids,
      eccUncorrected: Number.isFinite(unc) ? unc : undefined,
      ...(procsText === undefined ? { note: hasAmdSmi ? 'compute processes could not be listed' : 'no amd-smi: processes and ECC not checked' } : {}),
    };
  });
}
function jsonList(text: string | undefined): Record<string, unknown>[] {
  try {
    return (text && amdSmiJsonList(text)) || [];
  } catch {
    return [];
  }
}

// /dev/kfd is root:render 0660 and the render nodes root:render (or video on older distros).
export const AMD_DEVICES: DeviceNode[] = [{ path: '/dev/kfd', required: true }];

export const amd: VendorModule = {
  id: 'amd',
  label: 'AMD',
  kubernetes: { resource: 'amd.com/gpu' },
  tools: ['amd-smi', 'rocm-smi'],
  pciVendors: ['0x1002'],
  detect,
  sharedDevices: async () => AMD_DEVICES,
  extraDeviceAllow: () => [],
  supplementaryGroups: amdGroups,
  // HIP counts within the ROCR list.
  isolationEnv: (slots): Record<string, string> =>
    slots.length ? { ROCR_VISIBLE_DEVICES: slots.map((s) => s.id).join(','), HIP_VISIBLE_DEVICES: slots.map((_, i) => i).join(',') } : {},
  // The groups by number (the host's), by name only when the host's gids are unknown.
  dockerArgs: (slots, devices, groups) => {
    if (!slots.length) return [];
    const gids = [...new Set(slots.flatMap((s) => s.gpu.groupIds ?? []))];
    return [...devices.flatMap((d) => ['--device', d]), ...(gids.length ? gids.map(String) : groups).flatMap((g) => ['--group-add', g])];
  },
  hookCheck: '',
  health,
  doctorChecks: async () => [],
  driverFix: () => 'check that the amdgpu driver is loaded (lsmod | grep amdgpu; dmesg)',
};
