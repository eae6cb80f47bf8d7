// AMD GPUs from `amd-smi list --json` (or its text form, or `rocm-smi --showbus --json`) and the
// KFD topology in sysfs. amd-smi's NODE_ID is a KFD node, not a NUMA node, and its UUID is not
// what ROCR_VISIBLE_DEVICES takes: that is `GPU-<unique_id in hex>` or the ROCR ordinal (rank of the
// GPU's KFD node among GPU nodes).
import { InputError } from '../../util/errors.js';
import { normalizeBusId } from './sysfs.js';

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
  };
}

export const AMD_SHARED_DEVICES = ['/dev/kfd'];
