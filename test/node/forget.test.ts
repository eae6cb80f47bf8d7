// Forgetting a GPU that is gone for good: `node teardown --agent NAME|BUS-ID`. Pure (bus ids,
// names, refusals), then through the CLI on a staged tree: set up on 8 GPUs with two fleet queues,
// again with GPU 2 gone (its agent stopped and kept), then forget it: its files go, every other
// file stays byte for byte, a present GPU is refused without --force, asking again is a no-op, and a
// later setup neither brings it back nor leaves anything behind at teardown.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentBuses, normalBusId, planForget, refusePresent, resolveForget, type ForgetManifest } from '../../src/node/forget.js';
import type { AgentPlan } from '../../src/node/plan.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS } from './helpers.js';

const H7 = join(import.meta.dirname, '../fixtures/hosts/dual-socket-7xh100');

const agent = (instance: string, buses: string[], missing = false): AgentPlan =>
  ({
    instance,
    name: `host-${instance}`,
    unit: `bkci-agent@${instance}.service`,
    gpus: buses.map((_, i) => `GPU-${instance}-${i}`),
    gpuKeys: buses,
    gpuIndices: [],
    cpus: '0',
    memNodes: '0',
    memoryMaxText: '1M',
    buildPath: `/var/lib/buildkite-agent/builds/${instance}`,
    tags: ['queue=h100'],
    env: {},
    ...(missing ? { missing: { gpus: buses } } : {}),
  }) as unknown as AgentPlan;

const manifest = (): ForgetManifest => ({
  managedBy: 'bkci',
  version: 1,
  queue: 'h100',
  vendor: 'nvidia',
  user: 'buildkite-agent',
  agents: [agent('gpu0', ['0000:18:00.0']), agent('gpu2', ['0000:3a:00.0'], true), agent('gpu4-5', ['0000:9a:00.0', '0000:ab:00.0']), agent('cpu0', [])],
  files: [],
  dirs: [],
});

describe('forget (pure)', () => {
  it('bus ids in sysfs, nvidia-smi and short form are one; a MIG key names its parent GPU', () => {
    expect(normalBusId('0000:3a:00.0')).toBe('0000:3a:00.0');
    expect(normalBusId('00000000:3A:00.0')).toBe('0000:3a:00.0');
    expect(normalBusId('3a:00.0')).toBe('0000:3a:00.0');
    expect(normalBusId('gpu3')).toBeUndefined();
    expect(normalBusId('0000:3a:00.8')).toBeUndefined();
    expect(agentBuses({ gpuKeys: ['0000:07:00.0/gi1/ci0', '0000:07:00.0/gi2/ci0'], env: {} })).toEqual(['0000:07:00.0']);
  });

  it('names: instance, agent name, unit, any bus id form; unknown is exit 2 with did-you-mean; CPU-only refused', () => {
    const m = manifest();
    for (const n of ['gpu2', 'host-gpu2', 'bkci-agent@gpu2.service', '00000000:3A:00.0', '3a:00.0'])
      expect(resolveForget(m, [n]).agents.map((a) => a.instance)).toEqual(['gpu2']);
    expect(resolveForget(m, ['ab:00.0', 'gpu4-5']).agents.map((a) => a.instance)).toEqual(['gpu4-5']);
    expect(() => resolveForget(m, ['gpu22'])).toThrow(/--agent gpu22: no agent of this host has that name or GPU \(did you mean gpu2\?\)/);
    expect(() => resolveForget(m, ['0000:3b:00.0'])).toThrow(/did you mean 0000:3a:00.0\?/);
    expect(() => resolveForget(m, ['cpu0'])).toThrow(/agent cpu0 has no GPU/);
  });

  it('a GPU still present is refused; forgetting records the agent, and asking again finds it forgotten', () => {
    const m = manifest();
    const gpu0 = resolveForget(m, ['gpu0']).agents;
    expect(() => refusePresent(gpu0, new Set(['0000:18:00.0']))).toThrow(
      /agent gpu0: its GPU 0000:18:00.0 is on this host: --agent forgets an agent whose GPU is gone for good/,
    );
    expect(() => refusePresent(resolveForget(m, ['gpu2']).agents, new Set(['0000:18:00.0']))).not.toThrow();
    const t = planForget(m, resolveForget(m, ['gpu2']).agents, false);
    expect(t.units).toEqual(['bkci-agent@gpu2.service']);
    expect(t.manifest.agents.map((a) => a.instance)).toEqual(['gpu0', 'gpu4-5', 'cpu0']);
    expect(t.manifest.forgotten).toEqual([{ instance: 'gpu2', name: 'host-gpu2', gpus: ['0000:3a:00.0'] }]);
    expect(resolveForget(t.manifest, ['gpu2', '3a:00.0'])).toMatchObject({ agents: [], already: [{ instance: 'gpu2' }, { instance: 'gpu2' }] });
  });
});

const walk = (d: string): string[] =>
  existsSync(d) ? readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)])) : [];
const snapshot = (root: string) => new Map(walk(root).map((f) => [relative(root, f), readFileSync(f, 'utf8')]));
const MANIFEST = 'etc/buildkite-agent/bkci/manifest.json';

describe('forget through the CLI (staged tree, GPU 2 removed)', () => {
  it('removes only the gone GPU’s agent; refuses a present GPU; idempotent; later setup and teardown clean', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bkci-forget-'));
    const host = mkdtempSync(join(tmpdir(), 'bkci-forget-host-'));
    cpSync(HOSTS.h100, host, { recursive: true });
    const fleet = join(root, '..', `${relative(tmpdir(), root)}.fleet.yaml`);
    writeFileSync(fleet, 'queues:\n  h100: {vendor: nvidia, gpus: 1, cpus: 8}\n  upload: {vendor: none, cpus: 2, memory: 4G}\n');
    // The two host trees stand for one host: the same hostname, two states of its PCI bus.
    const env = (h: string) =>
      hostEnv(h, { BUILDKITE_AGENT_TOKEN: 'bkat_forgettoken', ...(h === H7 ? { PATH: `${join(H7, 'bin')}:${join(host, 'bin')}:/usr/bin:/bin` } : {}) });
    const setup = (h: string) =>
      runBkci(
        [
          'node',
          'setup',
          '--fleet',
          fleet,
          '--queue',
          'h100',
          '--queue',
          'upload',
          '--agents',
          '2',
          '--host-root',
          h,
          '--root',
          root,
          '--agent-bin',
          '/bin/true',
          '--json',
        ],
        {
          env: env(h),
        },
      );
    const teardown = (h: string, args: string[]) => runBkci(['node', 'teardown', '--root', root, '--host-root', h, '--json', ...args], { env: env(h) });

    expect((await setup(host)).code).toBe(0);
    const before = snapshot(root);
    // GPU 2 gone: only the manifest is written; the other GPU agents and the upload agents stay.
    const gone = await setup(H7);
    expect(gone.code, gone.stderr).toBe(0);
    expect(JSON.parse(gone.stdout).written).toEqual(['/' + MANIFEST]);
    const missing = snapshot(root);
    for (const [p, text] of before) if (p !== MANIFEST) expect(missing.get(p), p).toBe(text);

    // A GPU that is present is refused, by name or by bus id; an unknown name has a did-you-mean.
    let r = await teardown(H7, ['--agent', 'gpu3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/agent gpu3: its GPU 0000:5d:00.0 is on this host/);
    expect((await teardown(H7, ['--agent', '00000000:5D:00.0'])).code).toBe(2);
    r = await teardown(H7, ['--agent', 'gpu22']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/did you mean gpu2\?/);
    expect((await teardown(H7, ['--agent', 'gpu2', '--queue', 'h100'])).code).toBe(2);
    expect(snapshot(root)).toEqual(missing);

    r = await teardown(H7, ['--agent', 'gpu2', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).units).toEqual(['bkci-agent@gpu2.service']);
    expect(snapshot(root)).toEqual(missing);

    r = await teardown(H7, ['--agent', 'gpu2']);
    expect(r.code, r.stderr).toBe(0);
    const after = snapshot(root);
    const gpu2 = [...missing.keys()].filter((p) => /(^|[/@-])gpu2([./]|$)/.test(p) && !p.startsWith('var/'));
    expect(gpu2.length).toBeGreaterThanOrEqual(6);
    for (const p of gpu2) expect(after.has(p), p).toBe(false);
    for (const [p, text] of missing) if (p !== MANIFEST && !gpu2.includes(p)) expect(after.get(p), p).toBe(text);
    expect(existsSync(join(root, 'etc/buildkite-agent/bkci/hooks/gpu2'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/bkci-agent@gpu2.service.d'))).toBe(false);
    // The build directory is kept (no --purge).
    expect(existsSync(join(root, 'var/lib/buildkite-agent/builds/gpu2'))).toBe(true);
    const m = JSON.parse(after.get(MANIFEST)!);
    expect(m.agents.map((a: { instance: string }) => a.instance)).not.toContain('gpu2');
    expect(m.forgotten).toEqual([{ instance: 'gpu2', name: 'gpu-node-17-gpu2', gpus: ['0000:3a:00.0'] }]);
    const st = await runBkci(['node', 'status', '--root', root, '--json'], { env: {} });
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout).drift).toEqual([]);
    expect(JSON.parse(st.stdout).agents).toHaveLength(9);

    // Again: nothing to do, nothing written.
    r = await teardown(H7, ['--agent', 'gpu2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/gpu2 is forgotten already/);
    expect(snapshot(root)).toEqual(after);

    // A later setup does not bring it back; a whole teardown leaves nothing.
    const again = await setup(H7);
    expect(again.code, again.stderr).toBe(0);
    const out = JSON.parse(again.stdout);
    expect(out.missing).toEqual([]);
    expect(out.agents.map((a: { name: string }) => a.name)).not.toContain('gpu-node-17-gpu2');
    expect((await runBkci(['node', 'teardown', '--root', root, '--purge'], { env: {} })).code).toBe(0);
    expect(walk(root)).toEqual([]);
  });
});
