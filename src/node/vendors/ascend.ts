// Huawei Ascend NPUs from `npu-smi info` (the NPU table; the process table that follows is not
// NPUs) and `npu-smi info -m` (chip logic ids, what ASCEND_RT_VISIBLE_DEVICES takes).
import { InputError } from '../../util/errors.js';
import { normalizeBusId, pciNumaNode } from '../detect/sysfs.js';
import { healthRun, requireTool, runBounded, which } from '../detect/tools.js';
import type { Gpu } from '../detect/types.js';
import type { DetectContext, DeviceNode, GpuReport, ToolIo, VendorModule } from './types.js';

export interface AscendChip {
  npu: number;
  chip: number;
  name: string;
  health: string;
  busId: string;
  // A second number in the chip row, when the tool prints one (device/logic id on some versions).
  rowId?: number;
  // HBM size (MB) from the chip row's `used / total`.
  hbmMiB?: number;
  // 1-based line of the chip row in the output.
  line?: number;
}

export interface AscendProcess {
  npu: number;
  chip: number;
  pid: number;
}

export interface NpuSmiInfo {
  chips: AscendChip[];
  processes: AscendProcess[];
}

const cells = (line: string) =>
  line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
const BUS = /^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/;

export function parseNpuSmiInfo(text: string): NpuSmiInfo {
  const chips: AscendChip[] = [];
  const processes: AscendProcess[] = [];
  let section: 'npus' | 'procs' = 'npus';
  let npu: { id: number; name: string; health: string } | undefined;
  for (const [n, line] of text.split('\n').entries()) {
    if (!line.startsWith('|')) continue;
    const c = cells(line);
    if (c.length < 2) continue;
    // The process table's header: from here on rows are processes, never NPUs.
    if (/process id|process name/i.test(line)) {
      section = 'procs';
      continue;
    }
    if (section === 'procs') {
      const ids = /^(\d+)\s+(\d+)$/.exec(c[0]!);
      if (ids && /^\d+$/.test(c[1] ?? '')) processes.push({ npu: Number(ids[1]), chip: Number(ids[2]), pid: Number(c[1]) });
      continue;
    }
    const head = /^(\d+)\s+(\S.*)$/.exec(c[0]!);
    if (head && c[1] && !BUS.test(c[1]) && /^[A-Za-z]/.test(c[1])) {
      npu = { id: Number(head[1]), name: head[2]!.trim(), health: c[1] };
      continue;
    }
    const chip = /^(\d+)(?:\s+(\d+))?$/.exec(c[0]!);
    if (chip && npu && c[1] && BUS.test(c[1])) {
      chips.push({
        npu: npu.id,
        chip: Number(chip[1]),
        name: npu.name,
        health: npu.health,
        busId: c[1],
        rowId: chip[2] === undefined ? undefined : Number(chip[2]),
        // `... HBM used / total` at the end of the chip row (MB).
        ...(/(\d+)\s*\/\s*(\d+)\s*$/.test(c[2] ?? '') ? { hbmMiB: Number(/(\d+)\s*$/.exec(c[2]!)![1]) } : {}),
        line: n + 1,
      });
    }
  }
  return { chips, processes };
}

// Two chip rows for one NPU/chip or one bus id, or ids past any real host, are inconsistent output.
export function checkNpuChips(chips: AscendChip[]): AscendChip[] {
  const seen = new Map<string, AscendChip>();
  for (const c of chips) {
    const at = `npu-smi info line ${c.line ?? '?'}`;
    if (c.npu > 65535 || c.chip > 65535)
      throw new InputError(`${at}: NPU ${c.npu} chip ${c.chip}: not an NPU id`, 'run npu-smi info by hand and check its output');
    for (const key of [`NPU ${c.npu} chip ${c.chip}`, `bus id ${normalizeBusId(c.busId)}`]) {
      const first = seen.get(key);
      if (first)
        throw new InputError(
          `${at}: ${key} was already listed on line ${first.line ?? '?'}: inconsistent output`,
          'run npu-smi info by hand; a driver in a bad state can list a chip twice',
        );
      seen.set(key, c);
    }
  }
  return chips;
}

// `npu-smi info -m`: NPU ID, Chip ID, Chip Logic ID (`-` for an MCU), Chip Name.
export function parseNpuSmiMapping(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\d{1,6})\s+(\d{1,6})\s+(\d{1,6}|-)\s+(.*)$/.exec(line);
    if (m && m[3] !== '-' && !/mcu/i.test(m[4]!)) out.set(`${m[1]}:${m[2]}`, Number(m[3]));
  }
  return out;
}

// `npu-smi info -m` on drivers that print a `Chip Phy-ID` column: NPU:chip → physical id, what
// /dev/davinci<N> is numbered by (the logic id is what ASCEND_RT_VISIBLE_DEVICES takes; the two
// differ when chips are remapped). Empty when the column is not there.
export function parseNpuSmiPhysical(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  const h = lines.findIndex((l) => /Chip Logic ID/i.test(l));
  if (h < 0) return out;
  const header = lines[h]!.trim().split(/\s{2,}/);
  const phy = header.findIndex((c) => /phy/i.test(c));
  const npu = header.findIndex((c) => /^NPU ID$/i.test(c));
  const chip = header.findIndex((c) => /^Chip ID$/i.test(c));
  if (phy < 0 || npu < 0 || chip < 0) return out;
  for (const line of lines.slice(h + 1)) {
    const cells = line.trim().split(/\s{2,}/);
    const [n, c, p] = [cells[npu], cells[chip], cells[phy]];
    if (n && c && p && /^\d{1,6}$/.test(n) && /^\d{1,6}$/.test(c) && /^\d{1,6}$/.test(p)) out.set(`${n}:${c}`, Number(p));
  }
  return out;
}

async function detect({ host, nodes, io, warnings }: DetectContext): Promise<Gpu[]> {
  const info = parseNpuSmiInfo(await requireTool('npu-smi', ['info'], io, ascend));
  checkNpuChips(info.chips);
  let mapping = new Map<string, number>();
  let physical = new Map<string, number>();
  const m = await runBounded((await which('npu-smi', io.env))!, ['info', '-m'], io);
  if (m.ok) {
    mapping = parseNpuSmiMapping(m.stdout);
    physical = parseNpuSmiPhysical(m.stdout);
  } else warnings.push('npu-smi info -m failed; chip logic ids are taken in table order');
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
    // The device node is numbered by the physical id where npu-smi gives it, else the logic id.
    const phy = physical.get(`${c.npu}:${c.chip}`) ?? logic;
    gpus.push({
      vendor: 'ascend',
      index,
      isolationId: String(logic),
      name: c.name,
      busId,
      numaNode: numa.node,
      devices: [`/dev/davinci${phy}`],
      ...(c.hbmMiB ? { memoryMiB: c.hbmMiB } : {}),
      mig: [],
    });
  }
  return gpus;
}
async function health(env: Record<string, string>, io: ToolIo): Promise<GpuReport[]> {
  const buses = (env.BKCI_GPU_BUSIDS ?? '').split(',').filter(Boolean);
  const run = await healthRun('npu-smi', ['info'], io);
  const info = run ? parseNpuSmiInfo(run.stdout) : { chips: [], processes: [] };
  const why = run === undefined ? 'npu-smi is not on PATH' : run.error;
  return buses.map((bus): GpuReport => {
    const c = info.chips.find((x) => normalizeBusId(x.busId) === bus);
    if (!c) return { id: bus, present: false, processes: [], ...(why ? { reason: why } : {}) };
    return {
      id: `${c.npu}${c.chip ? `/${c.chip}` : ''} (${bus})`,
      present: true,
      healthy: /^ok$/i.test(c.health),
      healthText: c.health,
      processes: info.processes.filter((p) => p.npu === c.npu && p.chip === c.chip).map((p) => p.pid),
    };
  });
}

export const ASCEND_DEVICES: DeviceNode[] = [
  { path: '/dev/davinci_manager', required: true },
  { path: '/dev/devmm_svm', required: true },
  { path: '/dev/hisi_hdc', required: true },
];

export const ascend: VendorModule = {
  id: 'ascend',
  label: 'Ascend',
  kubernetes: { resource: 'huawei.com/Ascend910' },
  tools: ['npu-smi'],
  pciVendors: ['0x19e5'],
  detect,
  sharedDevices: async () => ASCEND_DEVICES,
  extraDeviceAllow: () => [],
  // The driver's run group (HwHiAiUser by default) owns the device nodes: the group of /dev/davinci*.
  supplementaryGroups: async (host) => {
    for (const d of ['dev/davinci_manager', ...(await host.list('dev')).filter((n) => /^davinci\d+$/.test(n)).map((n) => `dev/${n}`)]) {
      const g = await host.groupOf(d);
      if (g && g !== 'root') return [g];
    }
    return ['HwHiAiUser'];
  },
  isolationEnv: (slots): Record<string, string> => (slots.length ? { ASCEND_RT_VISIBLE_DEVICES: slots.map((s) => s.id).join(',') } : {}),
  dockerArgs: (slots, devices) =>
    slots.length
      ? [
          ...devices.flatMap((d) => ['--device', d]),
          ...['/usr/local/Ascend/driver', '/usr/local/dcmi', '/usr/local/bin/npu-smi'].flatMap((m) => ['-v', `${m}:${m}:ro`]),
        ]
      : [],
  hookCheck: '',
  health,
  doctorChecks: async () => [],
  driverFix: () => 'check that the Ascend driver is loaded (npu-smi info run by hand; dmesg)',
};
