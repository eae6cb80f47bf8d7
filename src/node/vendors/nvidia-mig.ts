// NVIDIA MIG: what one MIG instance of a GPU needs on its own.
//  - Its capability nodes: a process opens a MIG instance through /dev/nvidia-caps/nvidia-cap<N>
//    for its GPU instance and its compute instance; /proc/driver/nvidia-caps/mig-minors maps
//    `gpu<minor>/gi<GI>/access` and `gpu<minor>/gi<GI>/ci<CI>/access` to N (gpu<minor> is the
//    /dev/nvidia<minor> number). An agent is allowed exactly its two, never every cap.
//  - Its health: processes and memory of its own instance (plain nvidia-smi's MIG devices and
//    processes tables, with GI and CI columns), not of the parent GPU, so a job on gpu0-mig1 does
//    not keep gpu0-mig0 offline.
//  - Its UUID: a re-partitioned GPU has new MIG UUIDs; an agent whose MIG UUID is gone is unfit.
import type { GpuReport } from './types.js';

// `gpu0/gi1/access 12` lines (and `config 1`, `monitor 2`): name → minor.
export function parseMigMinors(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d{1,9})\s*$/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

// The capability nodes of one MIG instance, or undefined when mig-minors does not list both.
export function migCapNodes(minors: Map<string, number>, gpuMinor: number, gi: number, ci: number): string[] | undefined {
  const g = minors.get(`gpu${gpuMinor}/gi${gi}/access`);
  const c = minors.get(`gpu${gpuMinor}/gi${gi}/ci${ci}/access`);
  return g === undefined || c === undefined ? undefined : [`/dev/nvidia-caps/nvidia-cap${g}`, `/dev/nvidia-caps/nvidia-cap${c}`];
}

export interface MigUsage {
  gpu: number;
  gi: number;
  ci: number;
  memoryUsedMiB?: number;
  pids: number[];
}

// Plain `nvidia-smi`: the MIG devices table (`|  1    3   0   0  |  14366MiB / 19968MiB | ...`)
// and the processes table (`|    1    3    0      34965      C   python   14195MiB |`; whole-GPU
// processes have N/A for GI and CI). One entry per MIG instance.
export function parseMigUsage(text: string): MigUsage[] {
  const out = new Map<string, MigUsage>();
  const key = (g: string, gi: string, ci: string) => `${Number(g)}/${Number(gi)}/${Number(ci)}`;
  const mig = text.search(/^\|\s*MIG devices:/m);
  const procs = text.search(/^\|\s*Processes:/m);
  if (mig >= 0)
    for (const line of text.slice(mig, procs > mig ? procs : undefined).split('\n')) {
      const m = /^\|\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,4})\s+\d{1,4}\s+\|\s*(\d+)MiB\s*\/\s*\d+MiB/.exec(line);
      if (m) out.set(key(m[1]!, m[2]!, m[3]!), { gpu: Number(m[1]), gi: Number(m[2]), ci: Number(m[3]), memoryUsedMiB: Number(m[4]), pids: [] });
    }
  if (procs >= 0)
    for (const line of text.slice(procs).split('\n')) {
      const m = /^\|\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,10})\s+\S+\s/.exec(line);
      if (!m) continue;
      const k = key(m[1]!, m[2]!, m[3]!);
      if (!out.has(k)) out.set(k, { gpu: Number(m[1]), gi: Number(m[2]), ci: Number(m[3]), pids: [] });
      out.get(k)!.pids.push(Number(m[4]));
    }
  return [...out.values()];
}

// `BKCI_MIG_INSTANCES=MIG-uuid@GPU-parent/gi1/ci0,...` in the agent's environment.
export interface MigInstance {
  uuid: string;
  parent: string;
  gi: number;
  ci: number;
}

export const formatMigInstance = (m: MigInstance) => `${m.uuid}@${m.parent}/gi${m.gi}/ci${m.ci}`;

export function parseMigInstances(v: string | undefined): MigInstance[] {
  return (v ?? '')
    .split(',')
    .map((x) => /^(MIG-[^@\s]+)@(GPU-[^/\s]+)\/gi(\d+)\/ci(\d+)$/.exec(x))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ uuid: m[1]!, parent: m[2]!, gi: Number(m[3]), ci: Number(m[4]) }));
}

// The parent GPU's report narrowed to one MIG instance: its own processes and memory. `listing`
// (nvidia-smi -L) says whether the instance still exists; `table` is plain nvidia-smi -i <parent>.
export function migReport(parent: GpuReport, inst: MigInstance, listing: string | undefined, table: string | undefined): GpuReport {
  const id = `${inst.uuid} (GI ${inst.gi} CI ${inst.ci} of ${inst.parent})`;
  if (!parent.present) return { ...parent, id };
  if (listing !== undefined && !listing.includes(inst.uuid))
    return {
      id,
      present: false,
      processes: [],
      reason: `MIG device ${inst.uuid} no longer exists: the GPU was re-partitioned (nvidia-smi -L lists other MIG devices); re-run bkci node setup --mig`,
    };
  const usage = table === undefined ? undefined : parseMigUsage(table).find((u) => u.gi === inst.gi && u.ci === inst.ci);
  if (!usage)
    return {
      ...parent,
      id,
      processes: [],
      memoryUsedMiB: undefined,
      note: [parent.note, `nvidia-smi showed no MIG devices table row for GI ${inst.gi} CI ${inst.ci}: its processes and memory could not be seen`]
        .filter(Boolean)
        .join('; '),
    };
  return { ...parent, id, processes: usage.pids, memoryUsedMiB: usage.memoryUsedMiB };
}
