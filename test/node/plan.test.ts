// Planner properties on every fixture host: disjoint cpusets inside the GPU's node, memory shares
// within the node, GPUs per agent, NUMA-local groups, deterministic order, and the refusals.
import { describe, expect, it } from 'vitest';
import { detectHost } from '../../src/node/detect/index.js';
import type { HostFacts } from '../../src/node/detect/types.js';
import { planAgents, planNodeSetup, shareCores, type CurrentState, type SetupOptions } from '../../src/node/plan.js';
import { hostEnv, HOSTS, quietIo, setupOptions } from './helpers.js';

const GiB = 1024 ** 3;
const opts = setupOptions;
const empty = (): CurrentState => ({ files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host)));
const cpusOf = (s: string) =>
  s.split(',').flatMap((p) => {
    const [a, b] = p.split('-').map(Number);
    return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
  });

function checkProperties(f: HostFacts, o: SetupOptions) {
  const agents = planAgents(f, o);
  const seen = new Set<number>();
  for (const a of agents) {
    const nodes = f.nodes.filter((n) => a.numaNodes.includes(n.id));
    expect(nodes.length).toBe(a.numaNodes.length);
    expect(a.numaNode).toBe(a.numaNodes[0]);
    const cpus = cpusOf(a.cpus);
    expect(cpus.length).toBeGreaterThan(0);
    for (const c of cpus) {
      expect(nodes.flatMap((n) => n.cpus)).toContain(c); // within the agent's NUMA node(s)
      expect(seen.has(c)).toBe(false); // disjoint
      seen.add(c);
    }
    // An agent spanning nodes has CPUs on each of them.
    for (const n of nodes) expect(cpus.some((c) => n.cpus.includes(c))).toBe(true);
    // SMT siblings stay together.
    for (const core of f.cores) {
      const inShare = core.filter((c) => cpus.includes(c)).length;
      expect(inShare === 0 || inShare === core.length).toBe(true);
    }
    // Every GPU of the agent sits on one of the agent's nodes, and each node has one of its GPUs.
    const gpuNodes = new Set(a.gpuIndices.map((i) => f.gpus.find((g) => g.index === i)!.numaNode));
    if (a.gpuIndices.length) expect([...gpuNodes].sort()).toEqual([...a.numaNodes].sort());
    expect(a.memNodes).toBe(a.numaNodes.length === 1 ? String(a.numaNode) : a.env.BKCI_MEMS);
  }
  for (const n of f.nodes) {
    const sum = agents.filter((a) => a.numaNodes.length === 1 && a.numaNode === n.id).reduce((s, a) => s + a.memoryMax, 0);
    expect(sum).toBeLessThanOrEqual(n.memBytes - o.memoryReserve);
  }
  const used = f.nodes.filter((n) => agents.some((a) => a.numaNodes.includes(n.id)));
  expect(agents.reduce((s, a) => s + a.memoryMax, 0)).toBeLessThanOrEqual(used.reduce((s, n) => s + n.memBytes - o.memoryReserve, 0));
  return agents;
}

describe('planAgents', () => {
  it('H100 x8: one GPU per agent, NUMA-local, disjoint shares, deterministic', async () => {
    const f = await facts(HOSTS.h100);
    const a = checkProperties(f, opts());
    expect(a.map((x) => x.instance)).toEqual(['gpu0', 'gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7']);
    expect(a[0]!.cpus).toBe('0-5,48-53');
    expect(a[4]!.cpus).toBe('24-29,72-77');
    expect(a[0]!.env.CUDA_VISIBLE_DEVICES).toBe(f.gpus[0]!.uuid);
    expect(a[0]!.env.NVIDIA_VISIBLE_DEVICES).toBe(f.gpus[0]!.uuid);
    expect(a[0]!.tags).toEqual(['queue=gpu', 'gpu=0', 'gpu-vendor=nvidia', 'numa=0', 'gpu-model=nvidia-h100-80gb-hbm3', 'gpu-memory=80', 'cuda-cc=9.0']);
    expect(a[0]!.name).toBe('gpu-node-17-gpu0');
    expect(planAgents(f, opts())).toEqual(a);
  });

  it('H100 x8 in pairs, with a CPU and memory reserve', async () => {
    const f = await facts(HOSTS.h100);
    const a = checkProperties(f, opts({ gpusPerAgent: 2, cpuReserve: 2, memoryReserve: 64 * GiB, tags: [['arch', 'sm90']] }));
    expect(a.map((x) => x.instance)).toEqual(['gpu0-1', 'gpu2-3', 'gpu4-5', 'gpu6-7']);
    expect(a[0]!.env.CUDA_VISIBLE_DEVICES?.split(',')).toHaveLength(2);
    // Core 0 (CPUs 0 and 48) is left to the host.
    expect(cpusOf(a[0]!.cpus)).not.toContain(0);
    expect(cpusOf(a[0]!.cpus)).not.toContain(48);
    expect(a[0]!.tags).toContain('arch=sm90');
  });

  it('refuses a group size that does not divide the GPUs, naming the counts', async () => {
    const f = await facts(HOSTS.h100);
    expect(() => planAgents(f, opts({ gpusPerAgent: 3 }))).toThrow(/--gpus-per-agent 3 does not divide the 8 GPUs/);
  });

  it('refuses two GPUs that resolve to the same device (a partitioned GPU listed twice)', async () => {
    const f = await facts(HOSTS.amd);
    const dup = { ...f, gpus: [...f.gpus, { ...f.gpus[0]!, index: 99 }] };
    expect(() => planAgents(dup, opts())).toThrow(/GPUs \d+ and 99 resolve to the same device/);
  });

  it('one agent for all 8 GPUs spans both sockets, with a warning, CPUs and memory from each', async () => {
    const f = await facts(HOSTS.h100);
    const warnings: string[] = [];
    const [a, ...rest] = planAgents(f, opts({ gpusPerAgent: 8, cpuReserve: 2 }), warnings);
    expect(rest).toEqual([]);
    checkProperties(f, opts({ gpusPerAgent: 8, cpuReserve: 2 }));
    expect(a!.instance).toBe('gpu0-7');
    expect(a!.numaNodes).toEqual([0, 1]);
    expect(a!.memNodes).toBe('0-1');
    expect(a!.env.BKCI_MEMS).toBe('0-1');
    expect(a!.tags).toContain('numa=0+1');
    // Both nodes, minus each node's reserved core.
    expect(cpusOf(a!.cpus)).toHaveLength(96 - 2 * 2);
    // Each node's memory minus its reserve (each share rounded down to whole MiB).
    const whole = f.nodes.reduce((s, n) => s + n.memBytes - 4 * GiB, 0);
    expect(a!.memoryMax).toBeLessThanOrEqual(whole);
    expect(a!.memoryMax).toBeGreaterThan(whole - 2 * 1024 * 1024);
    expect(warnings.join('\n')).toMatch(/GPUs 0, 1, 2, 3, 4, 5, 6, 7 share an agent across NUMA nodes 0, 1/);
  });

  it('AMD x8: groups follow NUMA nodes, not amd-smi order; HIP counts within the ROCR list', async () => {
    const f = await facts(HOSTS.amd);
    const a = checkProperties(f, opts({ gpusPerAgent: 2 }));
    for (const x of a) {
      const nodes = new Set(x.gpuIndices.map((i) => f.gpus.find((g) => g.index === i)!.numaNode));
      expect(nodes.size).toBe(1);
      expect(x.env.HIP_VISIBLE_DEVICES).toBe('0,1');
      expect(x.tags[1]).toBe(`gpu=${x.gpuIndices.join('+')}`);
      expect(x.env.ROCR_VISIBLE_DEVICES?.split(',')).toEqual(x.isolationIds);
      expect(x.env).not.toHaveProperty('CUDA_VISIBLE_DEVICES');
    }
    expect(a.find((x) => x.gpuIndices.includes(0))!.numaNode).toBe(1);
  });

  it('Ascend x8: ASCEND_RT_VISIBLE_DEVICES by logic id, davinci devices', async () => {
    const f = await facts(HOSTS.ascend);
    const a = checkProperties(f, opts());
    expect(a).toHaveLength(8);
    const a1 = a.find((x) => x.instance === 'gpu1')!;
    expect(a1.env.ASCEND_RT_VISIBLE_DEVICES).toBe('1');
    expect(a1.devices).toEqual(['/dev/davinci1']);
    expect(a1.env.BKCI_DEVICES).toContain('/dev/davinci_manager');
  });

  it('single socket with numa_node -1', async () => {
    const f = await facts(HOSTS.l40s);
    const a = checkProperties(f, opts());
    expect(a.map((x) => x.cpus)).toEqual(['0-3,8-11', '4-7,12-15']);
  });

  it('MIG: whole GPUs unless --mig, then one agent per MIG device', async () => {
    const f = await facts(HOSTS.mig);
    const warnings: string[] = [];
    expect(planAgents(f, opts(), warnings)).toHaveLength(4);
    expect(warnings.join()).toMatch(/MIG devices are present/);
    const a = checkProperties(f, opts({ mig: true }));
    expect(a.map((x) => x.instance)).toEqual(['gpu0-mig0', 'gpu0-mig1', 'gpu1-mig0', 'gpu1-mig1', 'gpu2', 'gpu3']);
    expect(a[0]!.env.CUDA_VISIBLE_DEVICES).toMatch(/^MIG-/);
    expect(a[0]!.env.BKCI_GPU_UUIDS).toMatch(/^GPU-/);
    expect(() => planAgents(f, opts({ mig: true, gpusPerAgent: 2 }))).toThrow(/--mig/);
  });

  it('CPU-only: --agents spread over the nodes', async () => {
    const f = await facts(HOSTS.cpu);
    const a = checkProperties(f, opts({ agents: 3 }));
    expect(a.map((x) => [x.instance, x.numaNode, x.cpus])).toEqual([
      ['cpu0', 0, '0-15'],
      ['cpu1', 1, '32-63'],
      ['cpu2', 0, '16-31'],
    ]);
    expect(a[0]!.env).not.toHaveProperty('CUDA_VISIBLE_DEVICES');
    expect(a[0]!.tags).toContain('gpu=none');
  });

  it('refuses reserved tags, too many agents for the cores, too little memory', async () => {
    const f = await facts(HOSTS.l40s);
    expect(() => planAgents(f, opts({ tags: [['queue', 'x']] }))).toThrow(/--tags queue=/);
    expect(() => planAgents(f, opts({ cpuReserve: 15 }))).toThrow(/too few for 2 agents/);
    expect(() => planAgents(f, opts({ memoryReserve: 1000 * GiB }))).toThrow(/too little is left/);
  });

  it('shareCores gives the remainder to the first shares', () => {
    const node = { id: 0, cpus: [0, 1, 2, 3, 4, 5, 6], memBytes: GiB };
    expect(shareCores(node, [[0], [1], [2], [3], [4], [5], [6]], 3, 1)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(shareCores(node, [[0], [1], [2], [3], [4], [5], [6]], 2, 0)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6],
    ]);
  });
});

describe('planNodeSetup', () => {
  it('plans every file with its mode, the token only in the 0600 file, nothing secret in the manifest', async () => {
    const f = await facts(HOSTS.h100);
    const p = planNodeSetup(f, opts(), empty());
    const withToken = p.files.filter((x) => x.content.includes('bkat_tokentokentoken'));
    expect(withToken.map((x) => [x.path, x.mode.toString(8)])).toEqual([['/etc/buildkite-agent/bkci/token.env', '600']]);
    expect(p.files.map((x) => x.path)).toContain('/etc/buildkite-agent/bkci/manifest.json');
    expect(p.files.every((x) => x.action === 'create')).toBe(true);
    expect(p.commands.map((c) => c.argv.join(' '))).toEqual([
      'systemctl daemon-reload',
      `systemctl enable --now --no-block bkci-gpu-devices.service ${p.agents.map((a) => a.unit).join(' ')}`,
    ]);
    for (const x of p.files) expect(x.path.startsWith('/')).toBe(true);
  });

  it('adds useradd when the agent user is missing', async () => {
    const f = await facts(HOSTS.l40s);
    const p = planNodeSetup(f, opts(), { ...empty(), userExists: false });
    expect(p.commands[0]).toEqual({
      phase: 'before',
      argv: ['useradd', '--system', '--create-home', '--home-dir', '/var/lib/buildkite-agent', '--shell', '/usr/sbin/nologin', 'buildkite-agent'],
    });
  });
});
