// Tags that tell the GPUs of a mixed host apart, from the facts the vendor modules gather: the GPU
// model (a slug of the product name), its memory in GiB, the vendor's architecture tag (NVIDIA
// `cuda-cc`, AMD `gfx`) and, for a MIG agent, its profile. A job picks its hardware with
// `agents: {gpu-model: nvidia-h100-80gb-hbm3}` or `{cuda-cc: "9.0"}` whichever host it lands on.
// Pure.
import type { Slot } from './identity.js';

// The tags bkci derives here; a --tags (or fleet) value for one of them replaces bkci's.
export const HARDWARE_TAGS = ['gpu-model', 'gpu-memory', 'cuda-cc', 'gfx', 'mig-profile'] as const;

// `NVIDIA H100 80GB HBM3` → `nvidia-h100-80gb-hbm3`.
export function productSlug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
}

// A MIG profile's memory in GiB (`3g.20gb` → 20, `1g.10gb+me` → 10).
const migMemory = (profile: string): number | undefined => {
  const m = /\.(\d+)gb/i.exec(profile);
  return m ? Number(m[1]) : undefined;
};

// One value per tag: the agent's GPUs' distinct values joined with `+` (they normally agree).
export function hardwareTags(slots: Slot[]): [string, string][] {
  if (!slots.length) return [];
  const out: [string, string][] = [];
  const one = (key: string, values: (string | undefined)[]) => {
    const v = [...new Set(values.filter((x): x is string => x !== undefined && x !== ''))];
    if (v.length && values.every((x) => x !== undefined)) out.push([key, v.join('+')]);
  };
  const mig = (s: Slot) => s.gpu.mig.find((m) => m.uuid === s.id);
  one(
    'gpu-model',
    slots.map((s) => productSlug(s.gpu.name) || undefined),
  );
  one(
    'gpu-memory',
    slots.map((s) => {
      const m = mig(s);
      const gib = m ? migMemory(m.name) : s.gpu.memoryMiB !== undefined ? Math.round(s.gpu.memoryMiB / 1024) : undefined;
      return gib === undefined ? undefined : String(gib);
    }),
  );
  const archTags = [...new Set(slots.map((s) => s.gpu.arch?.tag))];
  if (archTags.length === 1 && archTags[0] !== undefined)
    one(
      archTags[0],
      slots.map((s) => s.gpu.arch?.value),
    );
  if (slots.some((s) => mig(s)))
    one(
      'mig-profile',
      slots.map((s) => mig(s)?.name),
    );
  return out;
}
