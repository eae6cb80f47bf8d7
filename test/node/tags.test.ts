// Hardware tags for mixed hosts: gpu-model, gpu-memory, cuda-cc (NVIDIA, probed: only a driver that
// lists compute_cap is asked) / gfx (AMD, from the KFD topology), mig-profile; made by the planner
// from the vendor modules' facts, each replaced by a --tags value of the same key.
import { describe, expect, it } from 'vitest';
import { gfxTarget } from '../../src/node/vendors/amd.js';
import { detectHost } from '../../src/node/detect/index.js';
import { planAgents } from '../../src/node/plan.js';
import { productSlug } from '../../src/node/tags.js';
import { hostEnv, HOSTS, quietIo, setupOptions } from './helpers.js';

const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host)));
const tagMap = (tags: string[]) => Object.fromEntries(tags.map((t) => t.split('=') as [string, string]));

describe('hardware tags', () => {
  it('NVIDIA with compute_cap: model, memory, cuda-cc; pairs keep one value', async () => {
    const [a] = planAgents(await facts(HOSTS.h100), setupOptions({ gpusPerAgent: 2 }));
    expect(tagMap(a!.tags)).toMatchObject({ 'gpu-model': 'nvidia-h100-80gb-hbm3', 'gpu-memory': '80', 'cuda-cc': '9.0' });
  });

  it('an NVIDIA driver without compute_cap in --help-query-gpu: no cuda-cc, nothing fails', async () => {
    const [a] = planAgents(await facts(HOSTS.l40s), setupOptions());
    const t = tagMap(a!.tags);
    expect(t).toMatchObject({ 'gpu-model': 'nvidia-l40s', 'gpu-memory': '45' });
    expect(t['cuda-cc']).toBeUndefined();
  });

  it('MIG agents: the profile and its memory; whole GPUs the GPU’s', async () => {
    const agents = planAgents(await facts(HOSTS.mig), setupOptions({ mig: true }));
    expect(tagMap(agents.find((a) => a.instance === 'gpu0-mig1')!.tags)).toMatchObject({
      'gpu-model': 'nvidia-a100-sxm4-40gb',
      'gpu-memory': '20',
      'mig-profile': '3g.20gb',
    });
    const whole = tagMap(agents.find((a) => a.instance === 'gpu3')!.tags);
    expect(whole).toMatchObject({ 'gpu-memory': '40' });
    expect(whole['mig-profile']).toBeUndefined();
  });

  it('AMD: gfx from the KFD gfx_target_version, model and VRAM from sysfs', async () => {
    const [a] = planAgents(await facts(HOSTS.amd), setupOptions());
    expect(tagMap(a!.tags)).toMatchObject({ 'gpu-model': 'amd-instinct-mi300x', 'gpu-memory': '192', gfx: 'gfx942' });
    expect([gfxTarget(90402), gfxTarget(90010), gfxTarget(110000), gfxTarget(0), gfxTarget(NaN)]).toEqual([
      'gfx942',
      'gfx90a',
      'gfx1100',
      undefined,
      undefined,
    ]);
  });

  it('Ascend: model and HBM size from npu-smi info', async () => {
    const [a] = planAgents(await facts(HOSTS.ascend), setupOptions());
    expect(tagMap(a!.tags)).toMatchObject({ 'gpu-model': '910b3', 'gpu-memory': '64' });
  });

  it('CPU-only agents get none; a --tags value replaces the derived one', async () => {
    const [c] = planAgents(await facts(HOSTS.cpu), setupOptions());
    expect(c!.tags.some((t) => t.startsWith('gpu-model='))).toBe(false);
    const [a] = planAgents(await facts(HOSTS.h100), setupOptions({ tags: [['gpu-model', 'h100']] }));
    expect(a!.tags.filter((t) => t.startsWith('gpu-model='))).toEqual(['gpu-model=h100']);
    expect(productSlug('  NVIDIA A100-SXM4-40GB ')).toBe('nvidia-a100-sxm4-40gb');
    expect(productSlug('AMD Instinct MI300X (OAM)')).toBe('amd-instinct-mi300x-oam');
  });
});
