// `bkci node setup|doctor --fleet FILE --queue Q` through the CLI on fixture hosts (--host-root,
// staged under --root, --dry-run): the plan follows the queue, contradictions and floors are exit 2.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS } from '../node/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bkci-nodefleet-'));
const FLEET = join(dir, 'fleet.yaml');
writeFileSync(
  FLEET,
  `queues:
  h100: {vendor: nvidia, gpus: 1, gpu-product: NVIDIA-H100-80GB-HBM3, cpus: 12, memory: 64G, tags: {cuda: "12"}}
  h100-pair: {vendor: nvidia, gpus: 2, gpu-product: NVIDIA H100 80GB HBM3, cpus: 24}
  h100-big: {vendor: nvidia, gpus: 1, cpus: 16}
  trio: {vendor: nvidia, gpus: 3}
  upload: {vendor: none, cpus: 2, memory: 4G}
`,
);

const setup = (host: string, args: string[]) =>
  runBkci(['node', 'setup', '--fleet', FLEET, '--host-root', host, '--root', join(dir, 'root'), '--agent-bin', '/bin/true', '--dry-run', '--json', ...args], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_fleetTokenValue' }),
  });
const doctor = (host: string, args: string[]) =>
  runBkci(['node', 'doctor', '--host-root', host, '--root', join(dir, 'nothing'), '--json', ...args], { env: hostEnv(host) });

describe('node setup --fleet', () => {
  it('plans the queue: its GPUs per agent and tags', async () => {
    const r = await setup(HOSTS.h100, ['--queue', 'h100-pair', '--tags', 'team=ml']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.agents).toHaveLength(4);
    expect(plan.agents.map((a: { gpus: number[] }) => a.gpus)).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    expect(plan.agents[0].tags).toEqual(expect.arrayContaining(['queue=h100-pair', 'team=ml']));
    const one = JSON.parse((await setup(HOSTS.h100, ['--queue', 'h100'])).stdout);
    expect(one.agents).toHaveLength(8);
    expect(one.agents[0].tags).toContain('cuda=12');
  });

  it('a CPU-only queue gives CPU-only agents, even on a GPU host', async () => {
    const r = await setup(HOSTS.h100, ['--queue', 'upload', '--agents', '2']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.agents.map((a: { gpus: number[] }) => a.gpus)).toEqual([[], []]);
    expect(plan.agents[0].tags).toContain('gpu-vendor=none');
  });

  it('floors: exit 2 naming each agent, what it got, the floor and what to change', async () => {
    const r = await setup(HOSTS.h100, ['--queue', 'h100-big', '--cpu-reserve', '2']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/8 agents of 8 would get less than queue h100-big asks for/);
    expect(r.stderr).toMatch(/-gpu0: \d+ CPUs, the floor is 16 CPUs \(queues.h100-big.cpus\)/);
    expect(r.stderr).toMatch(/less --cpu-reserve \(now 2\)/);
    expect(r.stderr).not.toContain('bkat_fleetTokenValue');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('flags that contradict the fleet are exit 2; those that agree are fine', async () => {
    const gpus = await setup(HOSTS.h100, ['--queue', 'h100', '--gpus-per-agent', '2']);
    expect(gpus.code).toBe(2);
    expect(gpus.stderr).toMatch(/--gpus-per-agent 2 contradicts the fleet: .*queues.h100.gpus is 1/);
    const vendor = await setup(HOSTS.h100, ['--queue', 'h100', '--vendor', 'amd']);
    expect(vendor.code).toBe(2);
    expect(vendor.stderr).toMatch(/--vendor amd contradicts the fleet/);
    const tags = await setup(HOSTS.h100, ['--queue', 'h100', '--tags', 'cuda=11']);
    expect(tags.code).toBe(2);
    expect(tags.stderr).toMatch(/--tags cuda=11 contradicts the fleet/);
    expect((await setup(HOSTS.h100, ['--queue', 'h100-pair', '--gpus-per-agent', '2', '--vendor', 'nvidia'])).code).toBe(0);
  });

  it("a host of another vendor is exit 2 naming both; an unknown queue names the fleet's", async () => {
    const r = await setup(HOSTS.amd, ['--queue', 'h100']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/queue h100 wants nvidia GPUs .*but this host's GPUs are amd/);
    const cpu = await setup(HOSTS.cpu, ['--queue', 'h100']);
    expect(cpu.code).toBe(2);
    expect(cpu.stderr).toMatch(/queue h100 wants nvidia GPUs .*this host has no GPUs/);
    const unknown = await setup(HOSTS.h100, ['--queue', 'h10']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--queue h10: .* has no such queue \(did you mean h100\?\)/);
  });

  it('a GPU count the queue does not divide is exit 2', async () => {
    const r = await setup(HOSTS.h100, ['--queue', 'trio']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--gpus-per-agent 3 does not divide the 8 GPUs/);
  });
});

describe('node doctor --fleet', () => {
  const checks = (stdout: string) => Object.fromEntries((JSON.parse(stdout).checks as { check: string; status: string }[]).map((c) => [c.check, c.status]));

  it('the H100 host matches the h100 queue: model (label form vs nvidia-smi name) and count', async () => {
    const r = await doctor(HOSTS.h100, ['--fleet', FLEET, '--queue', 'h100']);
    // No setup under this --root: that check fails (exit 1); the fleet checks pass.
    expect(r.code).toBe(1);
    expect(checks(r.stdout)).toMatchObject({ 'fleet vendor': 'ok', 'fleet gpu model': 'ok', 'fleet gpu count': 'ok' });
    expect(checks((await doctor(HOSTS.h100, ['--fleet', FLEET, '--queue', 'h100-pair'])).stdout)['fleet gpu model']).toBe('ok');
  });

  it('another model, a count that is not a whole number of agents, another vendor: FAIL with the fix', async () => {
    const a100 = await doctor(HOSTS.mig, ['--fleet', FLEET, '--queue', 'h100']);
    const model = (JSON.parse(a100.stdout).checks as { check: string; status: string; detail: string; fix: string }[]).find(
      (c) => c.check === 'fleet gpu model',
    )!;
    expect(model.status).toBe('fail');
    expect(model.detail).toMatch(/A100/);
    expect(model.fix).toMatch(/gpu-product/);
    expect(checks((await doctor(HOSTS.h100, ['--fleet', FLEET, '--queue', 'trio'])).stdout)['fleet gpu count']).toBe('fail');
    const amd = await doctor(HOSTS.amd, ['--fleet', FLEET, '--queue', 'h100']);
    expect(amd.code).toBe(1);
    expect(checks(amd.stdout)['fleet vendor']).toBe('fail');
    const text = await runBkci(['node', 'doctor', '--host-root', HOSTS.mig, '--root', join(dir, 'nothing'), '--fleet', FLEET, '--queue', 'h100'], {
      env: hostEnv(HOSTS.mig),
    });
    expect(text.stdout).toMatch(/FAIL {2}fleet gpu model: .*\n {6}fix: /);
  });

  it('--fleet without --queue (and the reverse) is exit 2', async () => {
    expect((await doctor(HOSTS.h100, ['--fleet', FLEET])).code).toBe(2);
    expect((await doctor(HOSTS.h100, ['--queue', 'h100'])).code).toBe(2);
  });
});
