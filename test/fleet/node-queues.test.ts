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
import { planNodeSetup } from '../../src/node/plan.js';
import { leftover } from '../../src/node/queues.js';
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

describe('several queues on one host (planner)', () => {
  it('GPU agents sized to their floor on their NUMA node; CPU-only agents on what is left, disjoint', async () => {
    const f = await facts(HOSTS.h100);
    const p = planNodeSetup(
      f,
      setupOptions({
        queue: 'h100',
        agentCap: { cpus: 8, memoryBytes: 64 * GiB },
        moreQueues: [{ queue: 'upload', agents: 2, tags: [] }],
      }),
      empty(),
    );
    const gpu = p.agents.filter((a) => a.tags.includes('queue=h100'));
    const cpu = p.agents.filter((a) => a.tags.includes('queue=upload'));
    expect(gpu).toHaveLength(8);
    expect(cpu.map((a) => a.instance)).toEqual(['upload-cpu0', 'upload-cpu1']);
    for (const a of gpu) {
      expect(a.cpuCount).toBe(8);
      expect(a.memoryMax).toBe(64 * GiB);
    }
    // NUMA-local as without the second queue: GPU 0's agent keeps the start of its share.
    expect(gpu[0]!.cpus).toBe('0-3,48-51');
    const seen = new Set<number>();
    for (const a of p.agents)
      for (const c of parseCpuList(a.cpus)) {
        expect(seen.has(c)).toBe(false);
        seen.add(c);
      }
    // Each socket's 48 CPUs: 4 GPU agents x 8, the rest (16) to its upload agent.
    expect(cpu.map((a) => [a.numaNode, a.cpuCount, a.tags.includes('gpu-vendor=none')])).toEqual([
      [0, 16, true],
      [1, 16, true],
    ]);
    for (const a of cpu) expect(a.memoryMax).toBeGreaterThan(700 * GiB);
    const m = JSON.parse(p.files.find((x) => x.path.endsWith('manifest.json'))!.content);
    expect(m.queues).toEqual(['h100', 'upload']);
  });

  it('leftover: reserved cores and held CPUs are not offered; memory net of the agents', async () => {
    const f = await facts(HOSTS.cpu);
    const rest = leftover(f, [{ cpus: '0-7', numaNodes: [0], memoryMax: 100 * GiB }], { cpuReserve: 2, memoryReserve: 4 * GiB });
    expect(rest.nodes.map((n) => [n.id, n.cpus.length])).toEqual([
      [0, 24],
      [1, 30],
    ]);
    expect(rest.nodes[0]!.memBytes).toBeLessThan(f.nodes[0]!.memBytes - 104 * GiB + 2 ** 20);
    expect(rest.cores.flat()).not.toContain(0);
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

  it('exit 2 naming the queue: nothing left for it, a floor it cannot get, two GPU queues, several queues without --fleet', async () => {
    let r = await setup(HOSTS.h100, root(), ['--queue', 'h100-open', '--queue', 'upload', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/queue upload: no CPUs are left on this host after the agents of queue h100-open/);
    expect(r.stderr).toMatch(/queues\.h100-open\.cpus/);
    r = await setup(HOSTS.h100, root(), ['--queue', 'h100', '--queue', 'huge', '--agents', '2', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/queue huge/);
    r = await setup(HOSTS.h100, root(), ['--queue', 'h100', '--queue', 'a100', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2 GPU queues/);
    r = await runBkci(['node', 'setup', '--queue', 'a', '--queue', 'b', '--root', root(), '--dry-run'], { env: { BUILDKITE_AGENT_TOKEN: 'bkat_x' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/several queues on one host need --fleet/);
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

  it('two CPU-only queues: the first sized to its floor, the last takes the rest', async () => {
    const r = await setup(HOSTS.cpu, root(), ['--queue', 'lint', '--queue', 'upload', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const lint = out.agents.filter((a: { tags: string[] }) => a.tags.includes('queue=lint'));
    const upload = out.agents.filter((a: { tags: string[] }) => a.tags.includes('queue=upload'));
    expect(lint.map((a: { cpus: string }) => parseCpuList(a.cpus).length)).toEqual([4]);
    expect(upload.map((a: { cpus: string }) => parseCpuList(a.cpus).length)).toEqual([28]);
  });
});
