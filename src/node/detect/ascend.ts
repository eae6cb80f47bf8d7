// Huawei Ascend NPUs from `npu-smi info` (the NPU table; the process table that follows is not
// NPUs) and `npu-smi info -m` (chip logic ids, what ASCEND_RT_VISIBLE_DEVICES takes).
import { InputError } from '../../util/errors.js';
import { normalizeBusId } from './sysfs.js';

export interface AscendChip {
  npu: number;
  chip: number;
  name: string;
  health: string;
  busId: string;
  // A second number in the chip row, when the tool prints one (device/logic id on some versions).
  rowId?: number;
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

export const ASCEND_SHARED_DEVICES = ['/dev/davinci_manager', '/dev/devmm_svm', '/dev/hisi_hdc'];
