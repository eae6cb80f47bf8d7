// Several queues on one host: `node setup --fleet F --queue h100 --queue upload` plans the GPU
// queue's agents (NUMA-local, sized to the queue's floors) plus CPU-only agents for upload on what
// they leave; each queue's floors checked, exit 2 naming the queue the host cannot give. Pure
// planner runs on the fixture hosts, then the CLI staged under --root (units verified, status).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCpuList } from '../../src/node/cpulist.js';
import { detectHost } from '../../src/node/detect/index.js';
import { planNodeSetup, type AgentPlan } from '../../src/node/plan.js';
import { placeCpuAgents, scopeFlags } from '../../src/node/queues.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, setupOptions } from '../node/helpers.js';

const GiB = 2 ** 30;
const dir = mkdtempSync(join(tmpdir(), 'bkci-nodequeues-'));
const FLEET = join(dir, 'fleet.yaml');
writeFileSync(
  FLEET,
  `queues:
  h100: {vendor: nvidia, gpus: 1, cpus: 8, memory: 64G}
  h100-open: {vendor: nvidia, gpus: 1}
  a100: {vendor: nvidia, gpus: 1}
  upload: {vendor: none, cpus: 2, memory: 4G}
  lint: {vendor: none, cpus: 4, memory: 8G}
  huge: {vendor: none, cpus: 64}
`,
);
const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host)));
const empty = () => ({ files: new Map(), dirs: new Set<string>(), manifest: undefined, userExists: true });

const plan = (f: Awaited<ReturnType<typeof facts>>, o: Parameters<typeof setupOptions>[0]) => planNodeSetup(f, setupOptions(o), empty());
const ofQueue = (p: { agents: AgentPlan[] }, q: string) => p.agents.filter((a) => a.tags.includes(`queue=${q}`));
const disjoint = (agents: AgentPlan[]) => {
  const seen = new Set<number>();
  for (const a of agents)
    for (const c of parseCpuList(a.cpus)) {
      expect(seen.has(c), `CPU ${c} twice`).toBe(false);
      seen.add(c);
    }
  return seen;
};

describe('several queues on one host (planner)', () => {
  it('CPU-only floors first, from the GPU nodes; the GPU agents share the rest (floors or none)', async () => {
    const f = await facts(HOSTS.h100);
    for (const floors of [{ cpus: 8, memoryBytes: 64 * GiB }, {}]) {
      const p = plan(f, { queue: 'h100', floors, moreQueues: [{ queue: 'upload', agents: 2, tags: [], floors: { cpus: 2, memoryBytes: 4 * GiB } }] });
      const gpu = ofQueue(p, 'h100');
      const cpu = ofQueue(p, 'upload');
      expect(gpu).toHaveLength(8);
      expect(cpu.map((a) => a.instance)).toEqual(['upload-cpu0', 'upload-cpu1']);
      // Each upload agent gets exactly its floor (one core: 2 SMT siblings), one per node.
      expect(cpu.map((a) => [a.numaNode, a.cpuCount, a.memoryMax, a.tags.includes('gpu-vendor=none')])).toEqual([
        [0, 2, 4 * GiB, true],
        [1, 2, 4 * GiB, true],
      ]);
      // Taken from the end of the node: GPU 0's agent starts the node, as with one queue.
      expect(cpu.map((a) => a.cpus)).toEqual(['23,71', '47,95']);
      expect(gpu[0]!.cpus).toBe('0-5,48-53');
      // The GPU agents share the other 23 cores of each node and its memory: nothing idle.
      expect(gpu.map((a) => a.cpuCount)).toEqual([12, 12, 12, 10, 12, 12, 12, 10]);
      const used = disjoint(p.agents);
      expect(used.size).toBe(96);
      for (const node of f.nodes) {
        const onNode = p.agents.filter((a) => a.numaNode === node.id);
        const mem = onNode.reduce((s, a) => s + a.memoryMax, 0);
        expect(mem).toBeLessThanOrEqual(node.memBytes - 4 * GiB);
        expect(mem).toBeGreaterThan(node.memBytes - 4 * GiB - 8 * 2 ** 20);
      }
      const m = JSON.parse(p.files.find((x) => x.path.endsWith('manifest.json'))!.content);
      expect(m.queues).toEqual(['h100', 'upload']);
    }
  });

  it('a queue without floors gets an even share of what the floors leave, like a GPU agent', async () => {
    const f = await facts(HOSTS.h100);
    const p = plan(f, { queue: 'h100', moreQueues: [{ queue: 'build', agents: 2, tags: [] }] });
    const build = ofQueue(p, 'build');
    // 24 cores a node, 5 agents sharing them: 4 cores for build, 5 for each GPU agent.
    expect(build.map((a) => [a.numaNode, a.cpuCount])).toEqual([
      [0, 8],
      [1, 8],
    ]);
    expect(ofQueue(p, 'h100').map((a) => a.cpuCount)).toEqual([10, 10, 10, 10, 10, 10, 10, 10]);
    const share = Math.floor((f.nodes[0]!.memBytes - 4 * GiB) / 5 / 2 ** 20) * 2 ** 20;
    expect(build[0]!.memoryMax).toBe(share);
    disjoint(p.agents);
  });

  it('a GPU floor the even share would miss is kept: the floorless agents split the rest', async () => {
    const f = await facts(HOSTS.h100);
    const p = plan(f, { queue: 'h100', floors: { cpus: 10 }, moreQueues: [{ queue: 'build', agents: 4, tags: [] }] });
    // 24 cores, 6 agents: an even 4 would leave the GPU agents under 10 CPUs (5 cores).
    expect(ofQueue(p, 'h100').map((a) => a.cpuCount)).toEqual([10, 10, 10, 10, 10, 10, 10, 10]);
    expect(ofQueue(p, 'build').map((a) => [a.numaNode, a.cpuCount])).toEqual([
      [0, 4],
      [1, 4],
      [0, 4],
      [1, 4],
    ]);
    disjoint(p.agents);
  });

  it('CPU-only queues only: floors first, a floorless queue shares the rest; a node with floored agents alone gives them all of it', async () => {
    const f = await facts(HOSTS.cpu);
    const mixed = planNodeSetup(
      { ...f, vendor: 'none' },
      setupOptions({ queue: 'lint', agents: 2, floors: { cpus: 4, memoryBytes: 8 * GiB }, moreQueues: [{ queue: 'build', agents: 2, tags: [] }] }),
      empty(),
    );
    expect(mixed.agents.map((a) => [a.instance, a.numaNode, a.cpuCount, a.memoryMax === 8 * GiB])).toEqual([
      ['cpu0', 0, 4, true],
      ['cpu1', 1, 4, true],
      ['build-cpu0', 0, 28, false],
      ['build-cpu1', 1, 28, false],
    ]);
    expect(disjoint(mixed.agents).size).toBe(64);
    const floored = planNodeSetup(
      { ...f, vendor: 'none' },
      setupOptions({ queue: 'lint', floors: { cpus: 4 }, moreQueues: [{ queue: 'upload', agents: 1, tags: [], floors: { cpus: 2 } }] }),
      empty(),
    );
    expect(floored.agents.map((a) => [a.instance, a.numaNode, a.cpuCount])).toEqual([
      ['cpu0', 0, 32],
      ['upload-cpu0', 1, 32],
    ]);
  });

  it('placeCpuAgents: exit 2 naming the queue, the floor and each node when the floors cannot be met', async () => {
    const f = await facts(HOSTS.h100);
    const gpu = { queue: 'h100', floors: { cpus: 8 }, agents: [0, 0, 0, 0, 1, 1, 1, 1].map((n) => ({ numaNodes: [n] })) };
    const q = (agents: number, cpus: number) => [{ queue: 'big', agents, tags: [] as [string, string][], floors: { cpus }, cpuName: 'big-cpu' }];
    // 16 CPUs to spare on each node: two agents of 16 fit, a third does not.
    expect(placeCpuAgents(f, { cpuReserve: 0, memoryReserve: 0 }, gpu, q(2, 16)).placements[0]!.map((p) => [p.node, p.cpus.length])).toEqual([
      [0, 16],
      [1, 16],
    ]);
    expect(() => placeCpuAgents(f, { cpuReserve: 0, memoryReserve: 0 }, gpu, q(3, 16))).toThrow(
      /queue big: agent big-cpu2 \(3 of 3\) needs 16 CPUs \(queues\.big\.cpus\)[^]*NUMA node 0: 48 CPUs[^]*4 h100 agents x 8 CPUs, 1 big agent x 16 CPUs; 0 CPUs/,
    );
    // The GPU floors alone too much for a node: named as the GPU queue's.
    expect(() => placeCpuAgents(f, { cpuReserve: 0, memoryReserve: 0 }, { ...gpu, floors: { cpus: 14 } }, q(1, 2))).toThrow(
      /queue h100: its 4 agents on NUMA node 0 need 56 CPUs \(queues\.h100\.cpus\), the node has 48 CPUs/,
    );
  });

  it('--agents and --tags per queue: plain for every queue, QUEUE: for one, unknown queues refused with did-you-mean', () => {
    const m = scopeFlags(['h100', 'upload', 'lint'], {
      agents: ['2', 'lint:3'],
      tags: [
        ['team', 'ml'],
        ['upload:role', 'uploader'],
        ['upload:team', 'infra'],
      ],
    });
    // A scoped tag wins over a plain one of the same key.
    expect(m.get('upload')).toEqual({
      agents: 2,
      agentsGiven: true,
      tags: [
        ['role', 'uploader'],
        ['team', 'infra'],
      ],
    });
    expect(m.get('lint')).toEqual({ agents: 3, agentsGiven: true, tags: [['team', 'ml']] });
    expect(m.get('h100')!.tags).toEqual([['team', 'ml']]);
    expect(scopeFlags(['a'], { agents: [], tags: [] }).get('a')).toEqual({ agents: 1, agentsGiven: false, tags: [] });
    expect(() => scopeFlags(['h100', 'upload'], { agents: ['uplaod:2'], tags: [] })).toThrow(
      /--agents uplaod:2: "uplaod" is not a queue given with --queue \(did you mean upload\?\)/,
    );
    expect(() => scopeFlags(['h100', 'upload'], { agents: [], tags: [['h10:cuda', '12']] })).toThrow(/--tags h10:cuda=12: .*did you mean h100/);
    expect(() => scopeFlags(['h100'], { agents: ['0'], tags: [] })).toThrow(/--agents "0": expected a whole number of at least 1, or QUEUE:N/);
    expect(() => scopeFlags(['h100'], { agents: ['upload:x'], tags: [] })).toThrow(/--agents "upload:x"/);
  });
});

const root = () => mkdtempSync(join(dir, 'root-'));
const setup = (host: string, r: string, args: string[]) =>
  runBkci(['node', 'setup', '--fleet', FLEET, '--host-root', host, '--root', r, '--agent-bin', '/bin/true', '--json', ...args], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_queuesTokenValue' }),
  });

describe('several queues on one host (CLI)', () => {
  it('--queue h100 --queue upload: both queues staged, units verify, status lists each agent’s queue', async () => {
    const r0 = root();
    const r = await setup(HOSTS.h100, r0, ['--queue', 'h100', '--queue', 'upload', '--agents', '2']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.agents.map((a: { name: string }) => a.name).slice(-2)).toEqual(['gpu-node-17-upload-cpu0', 'gpu-node-17-upload-cpu1']);
    const units = ['gpu0', 'upload-cpu1'].map((i) => `bkci-agent@${i}.service`);
    const v = spawnSync('systemd-analyze', ['verify', ...units], {
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${r0}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
      encoding: 'utf8',
    });
    expect(v.error).toBeUndefined();
    expect((v.stderr + v.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(r0))).toEqual([]);
    const st = await runBkci(['node', 'status', '--root', r0, '--json'], { env: {} });
    expect(st.code, st.stderr).toBe(0);
    const s = JSON.parse(st.stdout);
    expect(s.queues).toEqual(['h100', 'upload']);
    expect(s.agents.filter((a: { queue: string }) => a.queue === 'upload')).toHaveLength(2);
    expect(s.agents.filter((a: { queue: string }) => a.queue === 'h100')).toHaveLength(8);
    const text = await runBkci(['node', 'status', '--root', r0], { env: {} });
    expect(text.stdout).toMatch(/queues h100, upload/);
    // A re-run writes nothing.
    const again = await setup(HOSTS.h100, r0, ['--queue', 'h100', '--queue', 'upload', '--agents', '2']);
    expect(JSON.parse(again.stdout).changed).toBe(false);

    // Teardown of one queue: its agents' files and (--purge) build directories go, the other
    // queue's stay, the manifest names what is left.
    expect((await runBkci(['node', 'teardown', '--root', r0, '--queue', 'nope'], { env: {} })).code).toBe(2);
    const td = await runBkci(['node', 'teardown', '--root', r0, '--queue', 'upload', '--purge', '--json'], { env: {} });
    expect(td.code, td.stderr).toBe(0);
    expect(existsSync(join(r0, 'etc/buildkite-agent/bkci/agents/upload-cpu0.cfg'))).toBe(false);
    expect(existsSync(join(r0, 'var/lib/buildkite-agent/builds/upload-cpu1'))).toBe(false);
    expect(existsSync(join(r0, 'etc/buildkite-agent/bkci/agents/gpu0.cfg'))).toBe(true);
    expect(existsSync(join(r0, 'var/lib/buildkite-agent/builds/gpu0'))).toBe(true);
    const after = JSON.parse((await runBkci(['node', 'status', '--root', r0, '--json'], { env: {} })).stdout);
    expect(after.queues).toEqual(['h100']);
    expect(after.agents).toHaveLength(8);
    expect(after.drift).toEqual([]);
    // Then everything: nothing of bkci's is left.
    const all = await runBkci(['node', 'teardown', '--root', r0, '--purge'], { env: {} });
    expect(all.code, all.stderr).toBe(0);
    expect(walk(r0)).toEqual([]);
  });

  it('a GPU queue without floors leaves room; per-queue --agents/--tags; exit 2 naming the queue, key and numbers', async () => {
    let r = await setup(HOSTS.h100, root(), [
      '--queue',
      'h100-open',
      '--queue',
      'upload',
      '--queue',
      'lint',
      '--agents',
      'upload:3',
      '--tags',
      'team=ml',
      '--tags',
      'lint:role=lint,team=qa',
      '--dry-run',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const agents = JSON.parse(r.stdout).agents as { name: string; tags: string[]; cpus: string }[];
    const q = (name: string) => agents.filter((a) => a.tags.includes(`queue=${name}`));
    expect(q('upload').map((a) => parseCpuList(a.cpus).length)).toEqual([2, 2, 2]);
    expect(q('lint').map((a) => parseCpuList(a.cpus).length)).toEqual([4]);
    expect(q('h100-open')).toHaveLength(8);
    for (const a of q('upload')) expect(a.tags).toEqual(expect.arrayContaining(['team=ml']));
    expect(q('lint')[0]!.tags).toEqual(expect.arrayContaining(['role=lint', 'team=qa']));
    expect(q('lint')[0]!.tags).not.toContain('team=ml');
    expect(q('h100-open')[0]!.tags).toContain('team=ml');

    r = await setup(HOSTS.h100, root(), ['--queue', 'h100', '--queue', 'huge', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/queue huge: agent huge-cpu0 \(1 of 1\) needs 64 CPUs \(queues\.huge\.cpus\)/);
    expect(r.stderr).toMatch(/NUMA node 0: 48 CPUs .*4 h100 agents x 8 CPUs x 64 GiB; 16 CPUs and \d+ GiB left after the floors/);
    r = await setup(HOSTS.h100, root(), ['--queue', 'h100', '--queue', 'upload', '--agents', 'uplaod:2', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/did you mean upload\?/);
    r = await setup(HOSTS.h100, root(), ['--queue', 'h100', '--queue', 'upload', '--agents', 'h100:2', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--agents h100:2: queue h100 has GPUs/);
    r = await setup(HOSTS.h100, root(), ['--queue', 'h100', '--queue', 'a100', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2 GPU queues/);
    r = await runBkci(['node', 'setup', '--queue', 'a', '--queue', 'b', '--root', root(), '--dry-run'], { env: { BUILDKITE_AGENT_TOKEN: 'bkat_x' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/several queues on one host need --fleet/);
  });

  it('one queue without --fleet: --agents/--tags as before, QUEUE: naming it works, another queue is exit 2', async () => {
    const base = ['node', 'setup', '--vendor', 'none', '--host-root', HOSTS.cpu, '--root', root(), '--agent-bin', '/bin/true', '--dry-run', '--json'];
    const env = hostEnv(HOSTS.cpu, { BUILDKITE_AGENT_TOKEN: 'bkat_x' });
    let r = await runBkci([...base, '--queue', 'ci', '--agents', '3', '--tags', 'a=1', '--tags', 'ci:b=2'], { env });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.agents).toHaveLength(3);
    expect(out.agents[0].tags).toEqual(expect.arrayContaining(['a=1', 'b=2']));
    expect(JSON.parse((await runBkci([...base, '--queue', 'ci', '--agents', 'ci:2'], { env })).stdout).agents).toHaveLength(2);
    r = await runBkci([...base, '--queue', 'ci', '--agents', 'cj:2'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"cj" is not a queue given with --queue \(did you mean ci\?\)/);
  });

  it("doctor --fleet with both queues: each queue's items, named with their queue", async () => {
    const r = await runBkci(
      ['node', 'doctor', '--host-root', HOSTS.h100, '--root', root(), '--json', '--fleet', FLEET, '--queue', 'h100', '--queue', 'upload'],
      {
        env: hostEnv(HOSTS.h100),
      },
    );
    const checks = JSON.parse(r.stdout).checks as { check: string; status: string }[];
    expect(checks.find((c) => c.check === 'fleet vendor (h100)')?.status).toBe('ok');
    expect(checks.find((c) => c.check === 'fleet gpu count (h100)')?.status).toBe('ok');
    expect(checks.find((c) => c.check === 'fleet gpus (upload)')?.status).toBe('skip');
  });

  it('two CPU-only queues with floors on a CPU-only host: each agent at least its floor, nothing idle', async () => {
    const r = await setup(HOSTS.cpu, root(), ['--queue', 'lint', '--queue', 'upload', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const lint = out.agents.filter((a: { tags: string[] }) => a.tags.includes('queue=lint'));
    const upload = out.agents.filter((a: { tags: string[] }) => a.tags.includes('queue=upload'));
    expect(lint.map((a: { cpus: string }) => parseCpuList(a.cpus).length)).toEqual([32]);
    expect(upload.map((a: { cpus: string }) => parseCpuList(a.cpus).length)).toEqual([32]);
  });
});
