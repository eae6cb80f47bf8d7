// NVIDIA MIG: what one MIG instance of a GPU needs on its own.
//  - Its capability nodes: a process opens a MIG instance through /dev/nvidia-caps/nvidia-cap<N>
//    for its GPU instance and its compute instance; /proc/driver/nvidia-caps/mig-minors maps
//    `gpu<minor>/gi<GI>/access` and `gpu<minor>/gi<GI>/ci<CI>/access` to N (gpu<minor> is the
//    /dev/nvidia<minor> number). An agent is allowed exactly its two, never every cap.
//  - Its health: processes and memory of its own instance (plain nvidia-smi's MIG devices and
//    processes tables, with GI and CI columns), not of the parent GPU, so a job on gpu0-mig1 does
//    not keep gpu0-mig0 offline.
//  - Its UUID: a re-partitioned GPU has new MIG UUIDs; an agent whose MIG UUID is gone is unfit.
import type { MigDevice } from '../detect/types.js';
import type { AgentDrift, DoctorItem, GpuReport, ManifestAgent } from './types.js';

// `nvidia-smi -L`: `GPU 0: NAME (UUID: GPU-...)` lines, the GPU's MIG devices indented below it
// (`  MIG 3g.40gb     Device  0: (UUID: MIG-...)`).
export interface ListedGpu {
  index: number;
  uuid: string;
  mig: MigDevice[];
}

export function parseNvidiaListing(text: string): ListedGpu[] {
  const out: ListedGpu[] = [];
  let current: ListedGpu | undefined;
  for (const line of text.split('\n')) {
    const gpu = /^GPU\s+(\d{1,6}):.*\(UUID:\s*(GPU-[^)\s]+)\)/.exec(line);
    if (gpu) {
      current = { index: Number(gpu[1]), uuid: gpu[2]!, mig: [] };
      out.push(current);
      continue;
    }
    const mig = /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)/.exec(line);
    if (mig && current) current.mig.push({ name: mig[1]!, device: Number(mig[2]), uuid: mig[3]! });
  }
  return out;
}

// The MIG devices of each GPU (by UUID), with their GPU/compute instance ids and memory from the
// MIG devices table where it has a row for them (matched by GPU index and device number). What
// setup plans with, and what status and doctor compare the manifest with.
export function migDevicesNow(listing: ListedGpu[], table: MigTableRow[]): Map<string, MigDevice[]> {
  const rows = new Map(table.map((r) => [`${r.gpu}:${r.device}`, r]));
  const out = new Map<string, MigDevice[]>();
  for (const g of listing)
    out.set(
      g.uuid,
      g.mig.map((m) => {
        const r = rows.get(`${g.index}:${m.device}`);
        const memoryMiB = migProfileMiB(m.name) ?? r?.memoryTotalMiB;
        return { ...m, ...(r ? { gi: r.gi, ci: r.ci } : {}), ...(memoryMiB !== undefined ? { memoryMiB } : {}) };
      }),
    );
  return out;
}

// A MIG profile's memory (`3g.40gb` → 40 GiB, `1c.3g.20gb` and `1g.10gb+me` too), in MiB.
export function migProfileMiB(profile: string): number | undefined {
  const m = /(?:^|\.)(\d{1,4})gb(?:$|\+)/i.exec(profile);
  return m && Number(m[1]) > 0 ? Number(m[1]) * 1024 : undefined;
}

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

// One row of plain `nvidia-smi`'s "MIG devices" table: `|  1    3   0   0  |  14366MiB / 19968MiB | ...`
// gives the GPU index, the GPU instance id, the compute instance id, the MIG device number (the
// `Device N` of `nvidia-smi -L`) and the instance's memory used / total. The one parser of the
// table: detection takes the GI/CI ids from it (the instance's stable identity) and the health
// gate the instance's memory.
export interface MigTableRow {
  gpu: number;
  gi: number;
  ci: number;
  device: number;
  memoryUsedMiB?: number;
  memoryTotalMiB?: number;
}

export function parseMigTable(text: string): MigTableRow[] {
  const out: MigTableRow[] = [];
  const at = text.search(/^\|\s*MIG devices:/m);
  if (at < 0) return out;
  for (const line of text.slice(at).split('\n')) {
    if (/^\|\s*Processes:/.test(line)) break;
    const m = /^\|\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,4})\s+\|(?:\s*(\d{1,9})MiB\s*\/\s*(\d{1,9})MiB)?/.exec(line);
    if (!m) continue;
    out.push({
      gpu: Number(m[1]),
      gi: Number(m[2]),
      ci: Number(m[3]),
      device: Number(m[4]),
      ...(m[5] !== undefined ? { memoryUsedMiB: Number(m[5]), memoryTotalMiB: Number(m[6]) } : {}),
    });
  }
  return out;
}

// Plain `nvidia-smi`: the MIG devices table (parseMigTable) and the processes table
// (`|    1    3    0      34965      C   python   14195MiB |`; whole-GPU processes have N/A for GI
// and CI). One entry per MIG instance.
export function parseMigUsage(text: string): MigUsage[] {
  const out = new Map<string, MigUsage>();
  const key = (g: number, gi: number, ci: number) => `${g}/${gi}/${ci}`;
  for (const r of parseMigTable(text))
    if (r.memoryUsedMiB !== undefined) out.set(key(r.gpu, r.gi, r.ci), { gpu: r.gpu, gi: r.gi, ci: r.ci, memoryUsedMiB: r.memoryUsedMiB, pids: [] });
  const procs = text.search(/^\|\s*Processes:/m);
  if (procs >= 0)
    for (const line of text.slice(procs).split('\n')) {
      const m = /^\|\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,4})\s+(\d{1,10})\s+\S+\s/.exec(line);
      if (!m) continue;
      const [gpu, gi, ci] = [Number(m[1]), Number(m[2]), Number(m[3])];
      const k = key(gpu, gi, ci);
      if (!out.has(k)) out.set(k, { gpu, gi, ci, pids: [] });
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

// A GPU whose MIG devices are not the ones setup made agents for (re-partitioned: instances
// destroyed or created, MIG mode switched), with the agents that were made for it.
export interface PartitionChange {
  parent: string;
  // The GPU's index when the agents were made (what operators call it).
  index?: number;
  was: string;
  now: string;
  agents: { instance: string; gone: boolean }[];
}

const describeDevice = (name: string | undefined, gi: number | undefined, ci: number | undefined) =>
  `${name ?? 'MIG device'}${gi !== undefined && ci !== undefined ? ` (GI ${gi} CI ${ci})` : ''}`;

// Compares the manifest's MIG agents (BKCI_MIG_INSTANCES, their mig-profile tag) with the MIG
// devices each GPU has now (migDevicesNow). A GPU missing from the listing altogether is not a
// re-partition (its agents are missing GPUs, which setup and `gpu count` report). When setup ran
// with --mig (some agent is a MIG agent), a whole-GPU agent whose GPU has MIG devices now is one too.
export function migPartitionChanges(agents: ManifestAgent[], now: Map<string, MigDevice[]>): PartitionChange[] {
  const live = agents.filter((a) => !a.missing);
  const byParent = new Map<string, { agent: ManifestAgent; inst: MigInstance }[]>();
  for (const a of live)
    for (const inst of parseMigInstances(a.env?.BKCI_MIG_INSTANCES)) byParent.set(inst.parent, [...(byParent.get(inst.parent) ?? []), { agent: a, inst }]);
  if (!byParent.size) return [];
  const profileOf = (a: ManifestAgent) => (a.tags ?? []).find((t) => t.startsWith('mig-profile='))?.slice('mig-profile='.length);
  const nowText = (devices: MigDevice[]) =>
    devices.length ? devices.map((d) => describeDevice(d.name, d.gi, d.ci)).join(', ') : 'no MIG devices (MIG mode off, or every instance destroyed)';
  const out: PartitionChange[] = [];
  for (const [parent, had] of byParent) {
    const devices = now.get(parent);
    if (devices === undefined) continue;
    const same =
      had.length === devices.length &&
      had.every(({ inst }) => devices.some((d) => d.uuid === inst.uuid && (d.gi === undefined || (d.gi === inst.gi && d.ci === inst.ci))));
    if (same) continue;
    // The same profiles on the same instances, but other UUIDs: destroyed and made again.
    const layout = (xs: string[]) => [...xs].sort().join(', ');
    const sameLayout =
      devices.length > 0 &&
      layout(had.map(({ agent, inst }) => describeDevice(profileOf(agent), inst.gi, inst.ci))) ===
        layout(devices.map((d) => describeDevice(d.name, d.gi, d.ci)));
    out.push({
      parent,
      index: had[0]!.agent.gpuIndices?.[0],
      was: had.map(({ agent, inst }) => `${describeDevice(profileOf(agent), inst.gi, inst.ci)} for ${agent.instance}`).join(', '),
      now: nowText(devices) + (sameLayout ? ' (the same layout, with new MIG device UUIDs: the instances were destroyed and made again)' : ''),
      agents: had.map(({ agent, inst }) => ({ instance: agent.instance, gone: !devices.some((d) => d.uuid === inst.uuid) })),
    });
  }
  for (const a of live) {
    if (parseMigInstances(a.env?.BKCI_MIG_INSTANCES).length) continue;
    for (const uuid of (a.env?.BKCI_GPU_UUIDS ?? '').split(',').filter(Boolean)) {
      const devices = now.get(uuid);
      if (devices?.length)
        out.push({
          parent: uuid,
          index: a.gpuIndices?.[0],
          was: `the whole GPU for ${a.instance}`,
          now: nowText(devices),
          agents: [{ instance: a.instance, gone: true }],
        });
    }
  }
  return out;
}

export const REPARTITION_FIX =
  're-run bkci node setup --mig with the same flags: it makes agents for the GPU’s MIG devices as they are now and removes the old ones';

const gpuName = (c: PartitionChange) => `GPU ${c.index !== undefined ? `${c.index} ` : ''}(${c.parent})`;

// One line per agent of a re-partitioned GPU, for `node status`.
export function partitionDrift(changes: PartitionChange[]): AgentDrift[] {
  return changes.flatMap((c) =>
    c.agents.map(({ instance, gone }) => ({
      instance,
      problem: `${gpuName(c)} was re-partitioned since setup: it had ${c.was}; it has ${c.now}. ${
        gone
          ? 'This agent’s MIG device is gone: the agent is unfit until setup runs again'
          : 'This agent’s MIG device is still there, but its CPU and memory share and the other agents no longer match the GPU'
      }`,
      fix: REPARTITION_FIX,
    })),
  );
}

// The `node doctor` item: fails naming each re-partitioned GPU, its agents, the old and the new
// partition. `changes` undefined: nvidia-smi could not say.
export function partitionCheck(migAgents: number, changes: PartitionChange[] | undefined, why?: string): DoctorItem {
  const check = 'mig partition';
  if (changes === undefined) return { check, status: 'skip', detail: `the MIG devices could not be listed${why ? `: ${why}` : ''}` };
  if (!changes.length) return { check, status: 'ok', detail: `${migAgents} MIG agent${migAgents === 1 ? '' : 's'}, each on the MIG device setup made it for` };
  return {
    check,
    status: 'fail',
    detail: changes
      .map(
        (c) =>
          `${gpuName(c)} was re-partitioned since setup: it had ${c.was}; it has ${c.now} (agent${c.agents.length === 1 ? '' : 's'} ${c.agents
            .map((a) => `${a.instance}${a.gone ? ' (its device is gone)' : ''}`)
            .join(', ')})`,
      )
      .join('; '),
    fix: REPARTITION_FIX,
  };
}
