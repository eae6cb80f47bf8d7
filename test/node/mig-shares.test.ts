// MIG agents' CPU and memory shares: the MIG agents of one GPU split that GPU's share of its NUMA
// node in proportion to their MIG devices' memory (3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb: 4/8,
// 2/8, 1/8, 1/8), in whole cores, at least one each, largest-remainder rounding, never more than
// the GPU's share; whole GPUs on the same host keep a whole GPU's share.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { detectHost } from '../../src/node/detect/index.js';
import type { Gpu, HostFacts } from '../../src/node/detect/types.js';
import { slotsOf } from '../../src/node/identity.js';
import { apportion, planAgents, planAgentSet, splitShare, type AgentPlan } from '../../src/node/plan.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, setupOptions, standInAgent } from './helpers.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host)));
const cpusOf = (s: string) =>
  s.split(',').flatMap((p) => {
    const [a, b] = p.split('-').map(Number);
    return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
  });
const by = (agents: AgentPlan[], i: string) => agents.find((a) => a.instance === i)!;

describe('apportion (largest remainder)', () => {
  it('splits in proportion, exactly, with the leftovers to the largest remainders', () => {
    expect(apportion(16, [40, 20, 10, 10])).toEqual([8, 4, 2, 2]);
    expect(apportion(16, [40, 20, 10])).toEqual([9, 5, 2]);
    // Equal remainders: the earlier part gets the unit.
    expect(apportion(3, [1, 1])).toEqual([2, 1]);
    expect(apportion(12, [40, 20, 10, 10])).toEqual([6, 3, 2, 1]);
  });

  it('gives every part its minimum, taken from the part furthest above its quota', () => {
    expect(apportion(4, [40, 20, 10, 10], 1)).toEqual([1, 1, 1, 1]);
    expect(apportion(5, [40, 20, 10, 10], 1)).toEqual([2, 1, 1, 1]);
    expect(apportion(6, [70, 5, 5], 1)).toEqual([4, 1, 1]);
    expect(() => apportion(3, [1, 1, 1, 1], 1)).toThrow(RangeError);
  });

  it('always adds up to the total, respects the minimum and stays within one unit of the quota when no minimum binds (fixed seed)', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let t = 0; t < 2000; t++) {
      const n = 1 + rand(7);
      const weights = Array.from({ length: n }, () => 1 + rand(80));
      const min = rand(3);
      const total = n * min + rand(200);
      const parts = apportion(total, weights, min);
      expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
      for (const p of parts) expect(p).toBeGreaterThanOrEqual(min);
      if (min === 0) {
        const W = weights.reduce((a, b) => a + b, 0);
        parts.forEach((p, i) => expect(Math.abs(p - (total * weights[i]!) / W)).toBeLessThan(1));
      }
      expect(apportion(total, weights, min)).toEqual(parts);
    }
  });
});

describe('MIG shares on a host with uneven partitions and whole GPUs', () => {
  it('detects each MIG device’s memory and GPU/compute instance', async () => {
    const f = await facts(HOSTS.migUneven);
    expect(f.gpus[0]!.mig.map((m) => [m.name, m.gi, m.ci, m.memoryMiB])).toEqual([
      ['3g.40gb', 2, 0, 40 * 1024],
      ['2g.20gb', 3, 0, 20 * 1024],
      ['1g.10gb', 9, 0, 10 * 1024],
      ['1g.10gb', 10, 0, 10 * 1024],
    ]);
    expect(f.gpus[1]!.mig).toEqual([]);
  });

  it('3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb take 4/8, 2/8, 1/8, 1/8 of their GPU’s CPUs and memory', async () => {
    const f = await facts(HOSTS.migUneven);
    const a = planAgents(f, setupOptions({ mig: true }));
    expect(a.map((x) => x.instance)).toEqual(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3', 'gpu1', 'gpu2-mig0', 'gpu2-mig1', 'gpu2-mig2', 'gpu3']);
    const cpuCount = (i: string) => cpusOf(by(a, i).cpus).length;
    // Node 0 has 32 cores for two GPUs: 16 cores (32 CPUs) each.
    expect(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3', 'gpu1'].map(cpuCount)).toEqual([16, 8, 4, 4, 32]);
    // GPU 2: 4g.40gb + 2g.20gb + 1g.10gb of 16 cores: quotas 9.14, 4.57, 2.29 → 9, 5, 2 cores.
    expect(['gpu2-mig0', 'gpu2-mig1', 'gpu2-mig2', 'gpu3'].map(cpuCount)).toEqual([18, 10, 4, 32]);
    // Memory: each GPU's share of its node, split the same way, adding up to it exactly.
    const node0 = f.nodes[0]!.memBytes - 4 * GiB;
    const gpuShare = Math.floor(node0 / 2 / MiB) * MiB;
    expect(by(a, 'gpu1').memoryMax).toBe(gpuShare);
    const mig0 = ['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3'].map((i) => by(a, i).memoryMax);
    expect(mig0.reduce((s, x) => s + x, 0)).toBe(gpuShare);
    expect(mig0.map((x) => Math.round((x / gpuShare) * 8))).toEqual([4, 2, 1, 1]);
    for (const x of mig0) expect(x % MiB).toBe(0);
    // Disjoint, inside the GPU's node, SMT siblings together.
    const seen = new Set<number>();
    for (const x of a) {
      const node = f.nodes.find((n) => n.id === x.numaNode)!;
      for (const c of cpusOf(x.cpus)) {
        expect(node.cpus).toContain(c);
        expect(seen.has(c)).toBe(false);
        seen.add(c);
      }
      for (const core of f.cores) {
        const inShare = core.filter((c) => cpusOf(x.cpus).includes(c)).length;
        expect(inShare === 0 || inShare === core.length).toBe(true);
      }
    }
    // The agent's environment and thread counts follow its share.
    expect(by(a, 'gpu0-mig2').env.BKCI_CPU_COUNT).toBe('4');
    expect(by(a, 'gpu0-mig0').memoryMaxText).toBe(`${Math.floor(by(a, 'gpu0-mig0').memoryMax / MiB)}M`);
    // Deterministic.
    expect(planAgents(f, setupOptions({ mig: true }))).toEqual(a);
  });

  it('without --mig every GPU is one agent with an equal share (unchanged)', async () => {
    const f = await facts(HOSTS.migUneven);
    const a = planAgents(f, setupOptions());
    expect(a.map((x) => [x.instance, cpusOf(x.cpus).length])).toEqual([
      ['gpu0', 32],
      ['gpu1', 32],
      ['gpu2', 32],
      ['gpu3', 32],
    ]);
  });

  it('the equal-sized MIG devices of the A100-40GB host split their GPU’s share in half; whole GPUs keep a whole share', async () => {
    const f = await facts(HOSTS.mig);
    const a = planAgents(f, setupOptions({ mig: true }));
    // 32 cores for 4 GPUs: 8 each; the two 3g.20gb devices of GPU 0 take 4 cores each.
    expect(a.map((x) => [x.instance, cpusOf(x.cpus).length])).toEqual([
      ['gpu0-mig0', 8],
      ['gpu0-mig1', 8],
      ['gpu1-mig0', 8],
      ['gpu1-mig1', 8],
      ['gpu2', 16],
      ['gpu3', 16],
    ]);
  });

  it('a --cpu-reserve that leaves fewer cores than MIG agents splits SMT siblings, with a warning; fewer CPUs than agents is refused', async () => {
    const f = await facts(HOSTS.migUneven);
    const gpu0: Gpu = f.gpus[0]!;
    const members = slotsOf([gpu0], true).map((s) => [s]);
    const warnings: string[] = [];
    const parts = splitShare({ cpus: [0, 1, 64, 65, 2, 66], memoryMax: 8 * GiB }, members, f.cores, warnings);
    expect(parts.map((p) => p.cpus.length)).toEqual([3, 1, 1, 1]);
    expect(warnings.join()).toMatch(/3 cores for 4 MIG agents; SMT siblings are split/);
    expect(new Set(parts.flatMap((p) => p.cpus)).size).toBe(6);
    expect(parts.reduce((s, p) => s + p.memoryMax, 0)).toBe(8 * GiB);
    expect(() => splitShare({ cpus: [0, 64, 1], memoryMax: 8 * GiB }, members, f.cores)).toThrow(/3 CPUs in its share, too few for its 4 MIG agents/);
    expect(() => splitShare({ cpus: range(0, 15), memoryMax: 512 * MiB }, members, f.cores)).toThrow(/too little for its 4 MIG agents/);
  });

  it('MIG devices of unknown size split their GPU’s share equally, saying so', async () => {
    const f = await facts(HOSTS.migUneven);
    const odd: HostFacts = structuredClone(f);
    for (const m of odd.gpus[0]!.mig) delete m.memoryMiB;
    const warnings: string[] = [];
    const a = planAgents(odd, setupOptions({ mig: true }), warnings);
    expect(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3'].map((i) => cpusOf(by(a, i).cpus).length)).toEqual([8, 8, 8, 8]);
    expect(warnings.join('\n')).toMatch(/its memory is unknown.*split equally/);
  });

  it('compute instances sharing one GPU instance count a part of its memory each', async () => {
    const f = await facts(HOSTS.migUneven);
    const odd: HostFacts = structuredClone(f);
    // GPU 2's 4g.40gb GPU instance holds two compute instances (2c.4g.40gb each) instead of one.
    const g = odd.gpus[2]!;
    g.mig = [
      { ...g.mig[0]!, name: '2c.4g.40gb', ci: 0 },
      { ...g.mig[0]!, uuid: 'MIG-00000000-0000-0000-0000-000000000001', name: '2c.4g.40gb', device: 3, ci: 1 },
      ...g.mig.slice(1),
    ];
    const a = planAgents(odd, setupOptions({ mig: true }));
    const mig2 = a.filter((x) => x.instance.startsWith('gpu2-'));
    // 20 + 20 + 20 + 10 of 16 cores: 4.57, 4.57, 4.57, 2.29 → 5, 5, 4, 2.
    expect(mig2.map((x) => cpusOf(x.cpus).length / 2)).toEqual([5, 5, 4, 2]);
  });
});

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('node setup --mig on a staged tree (uneven partitions)', () => {
  it('writes each MIG agent’s share into its slice; the units verify; a re-run writes nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bkci-root-'));
    const agentBin = standInAgent();
    const run = () =>
      runBkci(['node', 'setup', '--queue', 'a100', '--mig', '--host-root', HOSTS.migUneven, '--root', root, '--agent-bin', agentBin, '--json'], {
        env: hostEnv(HOSTS.migUneven, { BUILDKITE_AGENT_TOKEN: 'bkat_x' }),
      });
    const r = await run();
    expect(r.code, r.stderr).toBe(0);
    const slice = (i: string) => readFileSync(join(root, `etc/systemd/system/bkci-${i}.slice`), 'utf8');
    const allowed = (i: string) => cpusOf(/^AllowedCPUs=(.*)$/m.exec(slice(i))![1]!).length;
    const memory = (i: string) => Number(/^MemoryMax=(\d+)M$/m.exec(slice(i))![1]);
    expect(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3', 'gpu1'].map(allowed)).toEqual([16, 8, 4, 4, 32]);
    const whole = memory('gpu1');
    const parts = ['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3'].map(memory);
    expect(parts.reduce((s, x) => s + x, 0)).toBe(whole);
    expect(parts.map((x) => Math.round((x / whole) * 8))).toEqual([4, 2, 1, 1]);
    const units = ['gpu0-mig0', 'gpu0-mig3', 'gpu1', 'gpu2-mig1', 'gpu3'].flatMap((i) => [`bkci-agent@${i}.service`, `bkci-${i}.slice`]);
    const v = spawnSync('systemd-analyze', ['verify', ...units], {
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${root}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
      encoding: 'utf8',
    });
    expect(v.error, 'systemd-analyze must be installed').toBeUndefined();
    expect((v.stderr + v.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(root))).toEqual([]);
    expect(v.status).toBe(0);
    // The hook's thread counts follow the share.
    expect(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu0-mig2.env'), 'utf8')).toMatch(/^BKCI_CPU_COUNT=4$/m);
    const again = await run();
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changed).toBe(false);
  });
});

describe('MIG shares and stable identity', () => {
  it('a MIG GPU gone from the bus keeps its share: the whole GPU beside it and the other socket’s agents do not move', async () => {
    const f = await facts(HOSTS.migUneven);
    const o = setupOptions({ mig: true });
    const first = planAgentSet(f, o);
    // GPU 0 falls off the bus; nvidia-smi numbers the others one lower.
    const gone: HostFacts = structuredClone(f);
    gone.gpus = gone.gpus.filter((g) => g.busId !== '0000:07:00.0').map((g) => ({ ...g, index: g.index - 1 }));
    const warnings: string[] = [];
    const second = planAgentSet(gone, o, warnings, first.agents);
    expect(second.missing.map((m) => m.agent.instance)).toEqual(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu0-mig3']);
    for (const a of second.agents) expect(a).toEqual(first.agents.find((x) => x.instance === a.instance));
    expect(second.agents.map((a) => a.instance)).toEqual(['gpu1', 'gpu2-mig0', 'gpu2-mig1', 'gpu2-mig2', 'gpu3']);
  });

  it('GPU 2 re-partitioned: only its agents are planned anew, within its own share; no other agent moves', async () => {
    const f = await facts(HOSTS.migUneven);
    const o = setupOptions({ mig: true });
    const first = planAgentSet(f, o);
    const changed: HostFacts = structuredClone(f);
    // 4g.40gb + 2g.20gb + 1g.10gb becomes 7 × 1g.10gb.
    changed.gpus[2]!.mig = Array.from({ length: 7 }, (_, k) => ({
      uuid: `MIG-0000000${k}-0000-0000-0000-000000000000`,
      name: '1g.10gb',
      device: k,
      gi: 7 + k,
      ci: 0,
      memoryMiB: 10240,
    }));
    const second = planAgentSet(changed, o, [], first.agents);
    for (const a of second.agents.filter((x) => !x.instance.startsWith('gpu2-'))) expect(a).toEqual(first.agents.find((x) => x.instance === a.instance));
    const gpu2 = (p: { agents: AgentPlan[] }) => p.agents.filter((x) => x.instance.startsWith('gpu2-'));
    expect(gpu2(second)).toHaveLength(7);
    const cpus = (p: { agents: AgentPlan[] }) =>
      gpu2(p)
        .flatMap((x) => cpusOf(x.cpus))
        .sort((a, b) => a - b);
    expect(cpus(second)).toEqual(cpus(first));
    // 16 cores for 7 equal devices: 3, 3, 2, 2, 2, 2, 2 (the device on GI 13, as before, keeps
    // its agent gpu2-mig2 and comes first).
    expect(gpu2(second).map((x) => [x.instance, x.gpuKeys[0], cpusOf(x.cpus).length / 2])).toEqual([
      ['gpu2-mig0', '0000:87:00.0/gi7/ci0', 3],
      ['gpu2-mig1', '0000:87:00.0/gi8/ci0', 2],
      ['gpu2-mig2', '0000:87:00.0/gi13/ci0', 3],
      ['gpu2-mig2.1', '0000:87:00.0/gi9/ci0', 2],
      ['gpu2-mig3', '0000:87:00.0/gi10/ci0', 2],
      ['gpu2-mig4', '0000:87:00.0/gi11/ci0', 2],
      ['gpu2-mig5', '0000:87:00.0/gi12/ci0', 2],
    ]);
    const mem = (p: { agents: AgentPlan[] }) => gpu2(p).reduce((s, x) => s + x.memoryMax, 0);
    expect(mem(second)).toBe(mem(first));
  });
});
