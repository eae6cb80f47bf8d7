// Stable agent identity: agents keyed by the GPU's PCI bus id (MIG: bus id + GI/CI), so a GPU that
// falls off the bus or is added never renames, re-points or moves another agent. Pure planner runs
// on two fixture trees of one host (dual-socket-8xh100, and dual-socket-7xh100 after GPU 2,
// 0000:3a:00.0, fell off the bus and nvidia-smi renumbered the GPUs after it), then the CLI on them.
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectHost } from '../../src/node/detect/index.js';
import { carryOver, freeInstance, slotsOf } from '../../src/node/identity.js';
import { planAgents, planNodeSetup, sha256, type CurrentState, type Manifest, type NodePlan } from '../../src/node/plan.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, setupOptions } from './helpers.js';

const H7 = join(import.meta.dirname, '../fixtures/hosts/dual-socket-7xh100');
// H7 is the same machine as dual-socket-8xh100: its tools (nvidia-modprobe) at the same paths.
const sameTools = (host: string, first: string) => ({ PATH: `${join(host, 'bin')}:${join(first, 'bin')}:/usr/local/bin:/usr/bin:/bin` });
const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host, host === H7 ? sameTools(H7, HOSTS.h100) : {})));

// The state a host is in after applying `plan` to `before`: its files on disk (those the plan
// neither writes nor removes stay as they were), its manifest.
function after(plan: NodePlan, before?: CurrentState): CurrentState {
  const files = new Map(before?.files ?? []);
  for (const p of plan.removals) files.delete(p);
  for (const f of plan.files) files.set(f.path, { sha256: sha256(f.content), mode: f.mode });
  const manifest = JSON.parse(plan.files.find((f) => f.path.endsWith('/manifest.json'))!.content) as Manifest;
  return { files, dirs: new Set(plan.dirs.map((d) => d.path)), manifest, userExists: true };
}
const agentFiles = (plan: NodePlan, instance: string) =>
  plan.files
    .filter(
      (f) =>
        f.path.includes(`/${instance}.`) ||
        f.path.includes(`@${instance}.service.d/`) ||
        f.path.includes(`/hooks/${instance}/`) ||
        f.path.endsWith(`/bkci-${instance}.slice`),
    )
    .map((f) => [f.path, f.content]);

describe('stable identity', () => {
  it('keys whole GPUs by bus id and MIG devices by bus id + GPU/compute instance', async () => {
    const h = await planAgents(await facts(HOSTS.h100), setupOptions());
    expect(h.map((a) => a.gpuKeys[0])).toEqual([
      '0000:18:00.0',
      '0000:2a:00.0',
      '0000:3a:00.0',
      '0000:5d:00.0',
      '0000:9a:00.0',
      '0000:ab:00.0',
      '0000:ba:00.0',
      '0000:db:00.0',
    ]);
    const mig = await planAgents(await facts(HOSTS.mig), setupOptions({ mig: true }));
    expect(mig.filter((a) => a.instance.includes('mig')).map((a) => [a.instance, a.gpuKeys])).toEqual([
      ['gpu0-mig0', ['0000:07:00.0/gi1/ci0']],
      ['gpu0-mig1', ['0000:07:00.0/gi2/ci0']],
      ['gpu1-mig0', ['0000:0f:00.0/gi2/ci0']],
      ['gpu1-mig1', ['0000:0f:00.0/gi1/ci0']],
    ]);
    // Ascend: keyed by bus id, the device node by the physical id (chips 6 and 7 are swapped).
    const asc = await planAgents(await facts(HOSTS.ascend), setupOptions());
    for (const a of asc) expect(a.gpuKeys[0]).toMatch(/^0000:[0-9a-f]{2}:00\.0$/);
    const six = asc.find((a) => a.gpuLabels[0] === '6')!;
    expect(six.devices).toContain('/dev/davinci7');
  });

  it('one of 8 GPUs gone: the other 7 keep names, units, env, build dirs and shares; the missing one is stopped and kept', async () => {
    const o = setupOptions();
    const first = planNodeSetup(await facts(HOSTS.h100), o, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    const s1 = after(first);
    const second = planNodeSetup(await facts(H7), o, s1);
    expect(second.agents.map((a) => a.instance)).toEqual(['gpu0', 'gpu1', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7']);
    for (const a of second.agents) {
      const before = first.agents.find((x) => x.instance === a.instance)!;
      expect(a).toEqual(before);
      expect(agentFiles(second, a.instance)).toEqual(agentFiles(first, a.instance));
      expect(agentFiles(second, a.instance).length).toBe(6);
    }
    // Nothing of the 7 changes: only the manifest is rewritten (it records the missing agent).
    expect(second.files.filter((f) => f.action !== 'unchanged').map((f) => f.path)).toEqual(['/etc/buildkite-agent/bkci/manifest.json']);
    expect(second.removals).toEqual([]);
    expect(second.removedInstances).toEqual([]);
    expect(second.missing.map((m) => [m.agent.instance, m.lost])).toEqual([['gpu2', ['0000:3a:00.0']]]);
    expect(second.commands.map((c) => c.argv.join(' '))).toContain('systemctl disable --now --no-block bkci-agent@gpu2.service');
    expect(second.commands.find((c) => c.argv[1] === 'enable')!.argv).not.toContain('bkci-agent@gpu2.service');
    expect(second.commands.some((c) => c.argv[1] === 'restart')).toBe(false);
    const s2 = after(second, s1);
    const m = s2.manifest!;
    expect(m.agents.find((a) => a.instance === 'gpu2')!.missing).toEqual({ gpus: ['0000:3a:00.0'] });
    // Its files stay bkci's (not removed, still in the manifest), its build dir too.
    for (const p of ['agents/gpu2.cfg', 'agents/gpu2.env']) expect(m.files.map((f) => f.path)).toContain(`/etc/buildkite-agent/bkci/${p}`);
    expect(m.dirs.find((d) => d.path === '/var/lib/buildkite-agent/builds/gpu2')?.kind).toBe('build');
    expect(second.warnings.join('\n')).toMatch(/agent gpu2: GPU 0000:3a:00.0 is gone/);

    // A re-run with the GPU still gone changes nothing.
    const third = planNodeSetup(await facts(H7), o, s2);
    expect(third.changed).toBe(false);
    expect(third.missing.map((m) => m.agent.instance)).toEqual(['gpu2']);

    // The GPU back: gpu2 comes back as it was, everything as after the first setup.
    const back = planNodeSetup(await facts(HOSTS.h100), o, after(third, s2));
    expect(back.missing).toEqual([]);
    expect(back.agents).toEqual(first.agents);
    expect(back.files.filter((f) => f.action !== 'unchanged').map((f) => f.path)).toEqual(['/etc/buildkite-agent/bkci/manifest.json']);
    expect(back.commands.find((c) => c.argv[1] === 'enable')!.argv).toContain('bkci-agent@gpu2.service');
  });

  it('a GPU added: it gets a name no agent has; the agents of the other socket do not move', async () => {
    const o = setupOptions();
    const first = planNodeSetup(await facts(H7), o, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    // On the 7-GPU host nvidia-smi numbers 0000:5d:00.0 as GPU 2: that agent is gpu2.
    expect(first.agents.map((a) => `${a.instance}=${a.gpuKeys[0]}`)).toContain('gpu2=0000:5d:00.0');
    const second = planNodeSetup(await facts(HOSTS.h100), o, after(first));
    const added = second.agents.find((a) => a.gpuKeys[0] === '0000:3a:00.0')!;
    expect(added.instance).toBe('gpu7');
    // Labelled as named: no two agents share a gpu= tag or a label.
    expect(added.gpuLabels).toEqual(['7']);
    expect(added.tags).toContain('gpu=7');
    expect(new Set(second.agents.flatMap((a) => a.gpuIndices)).size).toBe(8);
    expect(new Set(second.agents.map((a) => a.instance)).size).toBe(8);
    for (const a of first.agents) {
      const now = second.agents.find((x) => x.instance === a.instance)!;
      expect(now.gpuKeys).toEqual(a.gpuKeys);
      expect(now.buildPath).toBe(a.buildPath);
      expect(now.env.NVIDIA_VISIBLE_DEVICES).toBe(a.env.NVIDIA_VISIBLE_DEVICES);
      // Socket 1 has the same agents as before: same CPUs, memory and files.
      if (a.numaNode === 1) expect(agentFiles(second, a.instance)).toEqual(agentFiles(first, a.instance));
    }
    expect(added.numaNode).toBe(0);
    expect(second.missing).toEqual([]);
    expect(second.removals).toEqual([]);
  });

  it('pairs: a missing GPU stops its pair; the partner GPU stays idle, the other pairs unchanged', async () => {
    const o = setupOptions({ gpusPerAgent: 2 });
    const first = planNodeSetup(await facts(HOSTS.h100), o, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    const second = planNodeSetup(await facts(H7), o, after(first));
    expect(second.missing.map((m) => m.agent.instance)).toEqual(['gpu2-3']);
    expect(second.agents.map((a) => a.instance)).toEqual(['gpu0-1', 'gpu4-5', 'gpu6-7']);
    for (const a of second.agents) expect(a).toEqual(first.agents.find((x) => x.instance === a.instance));
    expect(second.warnings.join('\n')).toMatch(/0000:5d:00.0 stays without an agent/);
  });

  it('another --gpus-per-agent or --mig replans the agents (the old ones are removed), as before', async () => {
    const first = planNodeSetup(await facts(HOSTS.h100), setupOptions(), { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    const pairs = planNodeSetup(await facts(HOSTS.h100), setupOptions({ gpusPerAgent: 2 }), after(first));
    expect(pairs.agents.map((a) => a.instance)).toEqual(['gpu0-1', 'gpu2-3', 'gpu4-5', 'gpu6-7']);
    expect(pairs.removedInstances).toHaveLength(8);
    expect(pairs.missing).toEqual([]);
  });

  it('carryOver and freeInstance', async () => {
    const slots = slotsOf((await facts(H7)).gpus, false);
    const c = carryOver(
      slots,
      [
        { instance: 'gpu0', gpuKeys: ['0000:18:00.0'], gpuIndices: [0] },
        { instance: 'gpu2', gpuKeys: ['0000:3a:00.0'], gpuIndices: [2] },
        { instance: 'cpu0', gpuIndices: [] },
      ],
      1,
    );
    expect(c.kept.map((k) => k.prev.instance)).toEqual(['gpu0']);
    expect(c.missing.map((m) => m.prev.instance)).toEqual(['gpu2']);
    expect(c.fresh).toHaveLength(6);
    expect(freeInstance('gpu2', new Set(['gpu2', 'gpu3']))).toBe('gpu4');
    expect(freeInstance('gpu0-mig1', new Set(['gpu0-mig1']))).toBe('gpu0-mig1.1');
    expect(freeInstance('gpu5', new Set(['gpu2']))).toBe('gpu5');
  });
});

describe('stable identity through the CLI', () => {
  it('setup on 8 GPUs, then on the same host with one gone: 7 agents untouched, status says why gpu2 is stopped', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bkci-identity-'));
    const agentBin = join(root, 'buildkite-agent');
    writeFileSync(agentBin, '#!/bin/sh\n', { mode: 0o755 });
    // The two host trees stand for one host: the same hostname, two states of its PCI bus.
    const host = mkdtempSync(join(tmpdir(), 'bkci-identity-host-'));
    cpSync(HOSTS.h100, host, { recursive: true });
    const setup = (h: string) =>
      runBkci(['node', 'setup', '--queue', 'h100', '--host-root', h, '--root', root, '--agent-bin', agentBin, '--json'], {
        env: hostEnv(h, { BUILDKITE_AGENT_TOKEN: 'bkat_identitytoken', ...(h === H7 ? sameTools(H7, host) : {}) }),
      });
    const r1 = await setup(host);
    expect(r1.code, r1.stderr).toBe(0);
    const cfg = (i: string) => readFileSync(join(root, `etc/buildkite-agent/bkci/agents/${i}.cfg`), 'utf8');
    const env = (i: string) => readFileSync(join(root, `etc/buildkite-agent/bkci/agents/${i}.env`), 'utf8');
    const before = ['gpu3', 'gpu7'].map((i) => [cfg(i), env(i)]);
    const r2 = await setup(H7);
    expect(r2.code, r2.stderr).toBe(0);
    const out = JSON.parse(r2.stdout);
    expect(out.missing).toEqual([{ name: 'gpu-node-17-gpu2', unit: 'bkci-agent@gpu2.service', gpus: ['0000:3a:00.0'] }]);
    expect(out.written).toEqual(['/etc/buildkite-agent/bkci/manifest.json']);
    expect(['gpu3', 'gpu7'].map((i) => [cfg(i), env(i)])).toEqual(before);
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu2.cfg'))).toBe(true);
    expect(r2.stderr).toMatch(/gpu2: GPU 0000:3a:00.0 is gone/);
    const st = await runBkci(['node', 'status', '--root', root, '--json'], { env: {} });
    expect(st.code, st.stderr).toBe(0);
    const s = JSON.parse(st.stdout);
    const gpu2 = s.agents.find((a: { instance: string }) => a.instance === 'gpu2');
    expect(gpu2.reason).toMatch(/stopped by bkci node setup: GPU 0000:3a:00.0 is gone/);
    expect(s.drift).toEqual([]);
    // Back on the bus: a re-run brings gpu2 back, nothing else written but the manifest.
    const r3 = await setup(host);
    expect(r3.code, r3.stderr).toBe(0);
    expect(JSON.parse(r3.stdout).missing).toEqual([]);
    expect(JSON.parse(r3.stdout).written).toEqual(['/etc/buildkite-agent/bkci/manifest.json']);
  });
});
