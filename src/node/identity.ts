// Stable agent identity. An agent is keyed by what does not change when another GPU falls off the
// bus or is added: the PCI bus id of each of its GPUs (a MIG agent: the parent GPU's bus id and its
// GPU/compute instance ids). The vendor tool's index is not stable (nvidia-smi renumbers the GPUs
// after a missing one), so it names an agent only when the agent is first made; from then on a
// re-run of setup finds each agent of the manifest again by its keys and keeps its name, unit,
// environment and build directory. Pure: slots and the previous manifest's agents in, decisions out.
import type { Gpu, MigDevice } from './detect/types.js';

// One schedulable unit: a whole GPU, or one MIG device of it with --mig.
export interface Slot {
  gpu: Gpu;
  // What the isolation variables take (GPU UUID, MIG UUID, ROCR id, logic id).
  id: string;
  // What operators call it when the agent is made: `3`, `0-mig1`.
  label: string;
  // The stable identity: `0000:18:00.0`, `0000:07:00.0/gi1/ci0`.
  key: string;
}

// What a previous setup recorded of an agent (a manifest entry).
export interface PreviousAgent {
  instance: string;
  gpuKeys?: string[];
  gpuLabels?: string[];
  gpuIndices: number[];
  numaNodes?: number[];
  numaNode?: number;
}

export const migKey = (bus: string, m: MigDevice): string => (m.gi !== undefined && m.ci !== undefined ? `${bus}/gi${m.gi}/ci${m.ci}` : `${bus}/${m.uuid}`);

// The bus id a key names (the part before any MIG suffix).
export const busOfKey = (key: string): string => key.split('/')[0]!;

export function slotsOf(gpus: Gpu[], mig: boolean): Slot[] {
  const slots: Slot[] = [];
  for (const g of [...gpus].sort((a, b) => a.index - b.index)) {
    if (mig && g.mig.length) g.mig.forEach((m, k) => slots.push({ gpu: g, id: m.uuid, label: `${g.index}-mig${k}`, key: migKey(g.busId, m) }));
    else slots.push({ gpu: g, id: g.isolationId, label: String(g.index), key: g.busId });
  }
  return slots;
}

export interface Carried {
  // Previous agents whose every GPU is here again, with the slots in the previous order.
  kept: { prev: PreviousAgent; slots: Slot[] }[];
  // Previous agents with a GPU gone from the host: stopped, their name and share kept for them.
  missing: { prev: PreviousAgent; lost: string[] }[];
  // Slots of a missing agent's other GPUs: idle until it is back (or the agent is set up anew).
  held: Slot[];
  // Slots no previous agent claims: new GPUs, or those of agents made differently now (another
  // --gpus-per-agent, --mig switched, a GPU re-partitioned).
  fresh: Slot[];
}

// Matches the previous manifest's agents against the slots found now. `n`: GPUs per agent now.
export function carryOver(slots: Slot[], previous: PreviousAgent[], n: number): Carried {
  const byKey = new Map(slots.map((s) => [s.key, s]));
  const buses = new Set(slots.map((s) => busOfKey(s.key)));
  const out: Carried = { kept: [], missing: [], held: [], fresh: [] };
  const claimed = new Set<string>();
  const heldBuses = new Set<string>();
  for (const p of previous) {
    const keys = p.gpuKeys;
    if (!keys?.length) continue;
    const lost = [...new Set(keys.map(busOfKey))].filter((b) => !buses.has(b));
    if (lost.length) {
      out.missing.push({ prev: p, lost });
      for (const k of keys) heldBuses.add(busOfKey(k));
      continue;
    }
    if (keys.length !== n || !keys.every((k) => byKey.has(k) && !claimed.has(k))) continue;
    for (const k of keys) claimed.add(k);
    out.kept.push({ prev: p, slots: keys.map((k) => byKey.get(k)!) });
  }
  for (const s of slots) {
    if (claimed.has(s.key)) continue;
    if (heldBuses.has(busOfKey(s.key))) out.held.push(s);
    else out.fresh.push(s);
  }
  return out;
}

// A name for a new agent that collides with none in use: the index-based one when it is free,
// else (a whole GPU) the next free `gpuN`, else the candidate with a `.N` suffix.
export function freeInstance(candidate: string, taken: Set<string>): string {
  if (!taken.has(candidate)) return candidate;
  const single = /^gpu(\d+)$/.exec(candidate);
  if (single) for (let i = Number(single[1]) + 1; ; i++) if (!taken.has(`gpu${i}`)) return `gpu${i}`;
  for (let i = 1; ; i++) if (!taken.has(`${candidate}.${i}`)) return `${candidate}.${i}`;
}
