// NVIDIA GPUs from nvidia-smi (CSV query and -L for MIG devices) and /proc/driver/nvidia for
// device minors. Index, UUID, bus id and /dev/nvidiaN minor are four different things.
import { InputError } from '../../util/errors.js';
import { normalizeBusId } from './sysfs.js';
import type { MigDevice } from './types.js';

export interface NvidiaSmiGpu {
  index: number;
  uuid: string;
  name: string;
  busId: string;
  memoryMiB?: number;
}

export const NVIDIA_QUERY = ['--query-gpu=index,uuid,name,pci.bus_id,memory.total', '--format=csv,noheader,nounits'];

// `0, GPU-6c2f..., NVIDIA H100 80GB HBM3, 00000000:8D:00.0, 81559` per line. The name may hold commas.
// Lines that are not GPU rows (driver warnings such as "WARNING: infoROM is corrupted") are
// returned in `skipped` rather than failing the whole detection.
// Two rows with the same index, UUID or bus id are inconsistent output: an error naming both lines.
export function parseNvidiaQuery(text: string, skipped: string[] = []): NvidiaSmiGpu[] {
  const out: NvidiaSmiGpu[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (const [n, line] of lines.entries()) {
    if (!line.trim()) continue;
    const f = line.split(',').map((s) => s.trim());
    const [index, uuid] = f;
    if (f.length < 5 || !/^\d{1,6}$/.test(index!) || !/^GPU-/.test(uuid!)) {
      skipped.push(line.trim());
      continue;
    }
    const mem = f[f.length - 1]!;
    const bus = f[f.length - 2]!;
    const name = f.slice(2, f.length - 2).join(', ');
    for (const [what, v] of [
      ['index', index!],
      ['UUID', uuid!],
      ['bus id', normalizeBusId(bus)],
    ]) {
      const first = seen.get(`${what} ${v}`);
      if (first !== undefined)
        throw new InputError(
          `nvidia-smi ${NVIDIA_QUERY[0]} line ${n + 1}: ${what} ${v} was already given on line ${first + 1} (${JSON.stringify(lines[first]!.trim())}): inconsistent output`,
          'run the same nvidia-smi query by hand; a driver in a bad state (or a wrapper script) can print a GPU twice',
        );
      seen.set(`${what} ${v}`, n);
    }
    out.push({ index: Number(index), uuid: uuid!, name, busId: bus, memoryMiB: /^\d+$/.test(mem) ? Number(mem) : undefined });
  }
  return out;
}

// `nvidia-smi -L`: `GPU 0: NAME (UUID: GPU-...)` lines, MIG devices indented below their GPU.
export function parseNvidiaList(text: string): Map<string, MigDevice[]> {
  const out = new Map<string, MigDevice[]>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const gpu = /^GPU\s+\d+:.*\(UUID:\s*(GPU-[^)\s]+)\)/.exec(line);
    if (gpu) {
      current = gpu[1]!;
      out.set(current, []);
      continue;
    }
    const mig = /^\s+MIG\s+(\S+)\s+Device\s+\d+:\s*\(UUID:\s*(MIG-[^)\s]+)\)/.exec(line);
    if (mig && current) out.get(current)!.push({ name: mig[1]!, uuid: mig[2]! });
  }
  return out;
}

// `Device Minor: 3` from /proc/driver/nvidia/gpus/<bus id>/information.
export function parseDeviceMinor(text: string): number | undefined {
  const m = /^Device Minor:\s*(\d{1,6})\s*$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

export const NVIDIA_SHARED_DEVICES = ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia-modeset'];

// Health fields for `node check`.
export const NVIDIA_HEALTH_QUERY = [
  '--query-gpu=uuid,memory.used,ecc.errors.uncorrected.volatile.total,retired_pages.pending,remapped_rows.failure',
  '--format=csv,noheader,nounits',
];
export const NVIDIA_APPS_QUERY = ['--query-compute-apps=gpu_uuid,pid,used_memory', '--format=csv,noheader,nounits'];

export interface NvidiaHealth {
  uuid: string;
  memoryUsedMiB?: number;
  eccUncorrected?: number;
  retiredPending?: boolean;
  remapFailure?: boolean;
}

const num = (s: string | undefined) => (s && /^\d+$/.test(s) ? Number(s) : undefined);
const yes = (s: string | undefined) => (s === undefined || /N\/A|not supported/i.test(s) ? undefined : /^yes$/i.test(s));

export function parseNvidiaHealth(text: string): NvidiaHealth[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.split(',').map((s) => s.trim());
      return { uuid: f[0]!, memoryUsedMiB: num(f[1]), eccUncorrected: num(f[2]), retiredPending: yes(f[3]), remapFailure: yes(f[4]) };
    });
}

export function parseNvidiaApps(text: string): { uuid: string; pid: number; usedMiB?: number }[] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !/No running/i.test(l))
    .map((l) => {
      const f = l.split(',').map((s) => s.trim());
      return { uuid: f[0]!, pid: Number(f[1]), usedMiB: num(f[2]) };
    });
}
