// Isolation that holds: the per-agent environment hook takes nothing from the job's environment,
// the agent's config keeps the host's hooks, docker jobs get the agent's slice, cpuset, memory and
// devices through BKCI_DOCKER_RUN_ARGS (checked through a real shell's word splitting), and the
// slices pass systemd-analyze verify.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectHost } from '../../src/node/detect/index.js';
import { dockerRunArgs, joinForWordSplitting, renderAgentHook } from '../../src/node/isolation.js';
import { planNodeSetup, type AgentPlan } from '../../src/node/plan.js';
import { vendorOf } from '../../src/node/vendors/index.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, setupOptions, standInAgent } from './helpers.js';

const TOKEN = 'bkat_Zx9secretAgentToken42';
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const agentBin = standInAgent();

async function stage(host: string, extra: string[] = []): Promise<string> {
  const root = tmp('bkci-root-');
  const r = await runBkci(['node', 'setup', '--queue', 'q', '--host-root', host, '--root', root, '--agent-bin', agentBin, ...extra], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: TOKEN }),
  });
  expect(r.code, r.stderr).toBe(0);
  return root;
}

const empty = { files: new Map(), dirs: new Set<string>(), manifest: undefined, userExists: true };
async function plan(host: string, o: Parameters<typeof setupOptions>[0] = {}) {
  const facts = await detectHost(host, 'auto', quietIo(hostEnv(host)));
  return planNodeSetup(facts, setupOptions(o), empty);
}

const envOf = (text: string) =>
  Object.fromEntries(
    text
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  ) as Record<string, string>;

const fileEnv = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;

// A copy of a staged hook whose device paths point into the fixture host (the hook checks /dev).
function hookCopy(root: string, instance: string, host: string): string {
  const text = readFileSync(join(root, `etc/buildkite-agent/bkci/hooks/${instance}/environment`), 'utf8');
  const p = join(root, `hook-${instance}`);
  writeFileSync(p, text.replace(/(?<=[',])\/dev\//g, `${host}/dev/`), { mode: 0o755 });
  return p;
}

// Runs a hook as the agent does (sourced by bash, the job's environment already set) and returns
// the environment the job's command would start with.
function runHook(hook: string, env: Record<string, string>) {
  const r = spawnSync('bash', ['-c', '. "$0" >&2 && env -0', hook], { env, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, env: envOf(r.stdout ?? '') };
}

describe('the per-agent environment hook', () => {
  it('gives the agent its own GPU, CPUs and docker arguments whatever the job set', async () => {
    const root = await stage(HOSTS.h100);
    const own = fileEnv(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu0.env'), 'utf8'));
    const other = fileEnv(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu5.env'), 'utf8'));
    expect(own.NVIDIA_VISIBLE_DEVICES).not.toBe(other.NVIDIA_VISIBLE_DEVICES);
    // Every variable a job could set to pass for another agent: gpu5's whole environment, the
    // agent's own BUILDKITE_* names, the docker arguments, the device list, and "all GPUs".
    const job: Record<string, string> = {
      ...other,
      PATH: hostEnv(HOSTS.h100).PATH!,
      BKCI_AGENT: 'gpu5',
      BKCI_DEVICES: '/dev/null',
      BKCI_DOCKER_RUN_ARGS: '--gpus all',
      BUILDKITE_AGENT_NAME: 'gpu-node-17-gpu5',
      BUILDKITE_AGENT_META_DATA_GPU: '5',
      BUILDKITE_AGENT_META_DATA_QUEUE: 'q',
      BUILDKITE_HOOKS_PATH: join(root, 'etc/buildkite-agent/bkci/hooks/gpu5'),
      BUILDKITE_ADDITIONAL_HOOKS_PATHS: join(root, 'etc/buildkite-agent/bkci/hooks/gpu5'),
      BUILDKITE_BUILD_PATH: '/var/lib/buildkite-agent/builds/gpu5',
      NVIDIA_VISIBLE_DEVICES: 'all',
      CUDA_VISIBLE_DEVICES: '0,1,2,3,4,5,6,7',
      IFS: ',',
    };
    const r = runHook(hookCopy(root, 'gpu0', HOSTS.h100), job);
    expect(r.status, r.stderr).toBe(0);
    for (const [k, v] of Object.entries(own)) expect(r.env[k], k).toBe(k === 'BKCI_DEVICES' ? v.replace(/\/dev\//g, `${HOSTS.h100}/dev/`) : v);
    expect(r.env.BKCI_AGENT).toBe('gpu0');
    expect(r.env.CUDA_VISIBLE_DEVICES).toBe(own.NVIDIA_VISIBLE_DEVICES);
    expect(r.env.BKCI_DOCKER_RUN_ARGS).toContain(`--gpus "device=${own.NVIDIA_VISIBLE_DEVICES}"`);
    expect(r.env.BKCI_DOCKER_RUN_ARGS).toContain('--cgroup-parent bkci-gpu0.slice');
    expect(r.stderr).toMatch(/bkci: agent gpu0: GPUs 0, CPUs 0-5,48-53/);
  });

  it('refuses the job when its own device node or GPU is missing, whatever BKCI_DEVICES the job set', async () => {
    const root = await stage(HOSTS.h100);
    // The real /dev of this machine has no /dev/nvidia0: the hook's own list, not the job's, counts.
    const staged = join(root, 'etc/buildkite-agent/bkci/hooks/gpu0/environment');
    let r = runHook(staged, { PATH: hostEnv(HOSTS.h100).PATH!, BKCI_DEVICES: '/dev/null' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/device \/dev\/nvidia0 of agent gpu0 is missing; refusing to run the job/);
    const hook = hookCopy(root, 'gpu0', HOSTS.h100);
    writeFileSync(hook, readFileSync(hook, 'utf8').replace(/^export BKCI_GPU_UUIDS=.*$/m, "export BKCI_GPU_UUIDS='GPU-gone'"));
    r = runHook(hook, { PATH: hostEnv(HOSTS.h100).PATH!, BKCI_GPU_UUIDS: readFileSync(staged, 'utf8').match(/GPU-[0-9a-f-]+/)![0] });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/GPU GPU-gone of agent gpu0 is missing/);
  });

  it('defaults apply only where the job has not set the variable; values with quotes stay whole', () => {
    const text = renderAgentHook({ name: 'h-cpu0', instance: 'cpu0' }, vendorOf('none')!, {
      env: { BKCI_AGENT: 'cpu0', BKCI_DEVICES: '', BKCI_CPUSET: '0-3', BKCI_MEMS: '0', BKCI_MEMORY: '100m', ODD: `it's "x" $HOME` },
      defaults: { MAX_JOBS: '4', OMP_NUM_THREADS: '4' },
    });
    const p = join(tmp('bkci-hook-'), 'environment');
    writeFileSync(p, text, { mode: 0o755 });
    const r = runHook(p, { PATH: '/usr/bin:/bin', MAX_JOBS: '2' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.env.MAX_JOBS).toBe('2');
    expect(r.env.OMP_NUM_THREADS).toBe('4');
    expect(r.env.ODD).toBe(`it's "x" $HOME`);
  });
});

describe('the agent config and the slice', () => {
  it('keeps the host hooks path and adds the agent’s own hooks directory', async () => {
    const root = await stage(HOSTS.l40s);
    const cfg = readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu1.cfg'), 'utf8');
    expect(cfg).toMatch(/^hooks-path="\/etc\/buildkite-agent\/hooks"$/m);
    expect(cfg).toMatch(/^additional-hooks-paths="\/etc\/buildkite-agent\/bkci\/hooks\/gpu1"$/m);
    const slice = readFileSync(join(root, 'etc/systemd/system/bkci-gpu1.slice'), 'utf8');
    const dropIn = readFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu1.service.d/50-bkci.conf'), 'utf8');
    expect(slice).toMatch(/^\[Slice\]$/m);
    expect(slice).toMatch(/^AllowedCPUs=\S+$/m);
    expect(slice).toMatch(/^MemoryMax=\d+M$/m);
    expect(dropIn).toMatch(/^Slice=bkci-gpu1\.slice$/m);
    expect(dropIn).not.toMatch(/^MemoryMax=/m);
    const r = spawnSync('systemd-analyze', ['verify', 'bkci-gpu1.slice', 'bkci-agent@gpu1.service'], {
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${root}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
      encoding: 'utf8',
    });
    expect(r.error).toBeUndefined();
    const ours = (r.stderr + r.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(root));
    expect(ours, r.stderr).toEqual([]);
    expect(r.status).toBe(0);
  });
});

// What `docker run $BKCI_DOCKER_RUN_ARGS image` passes to docker, through a real shell.
function splitByShell(value: string): string[] {
  const dir = tmp('bkci-glob-');
  // A file that a glob in the arguments would match: expansion must not touch them.
  writeFileSync(join(dir, '"device=x"'), '');
  const r = spawnSync('bash', ['-c', 'set -- $BKCI_DOCKER_RUN_ARGS; printf "%s\\0" "$@"'], {
    cwd: dir,
    env: { BKCI_DOCKER_RUN_ARGS: value },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\0').slice(0, -1);
}

const argAfter = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('BKCI_DOCKER_RUN_ARGS', () => {
  it('NVIDIA: the quoted --gpus form survives word splitting as one argument, with the limits', async () => {
    const p = await plan(HOSTS.h100, { gpusPerAgent: 2 });
    const a = p.agents[0]!;
    const value = joinForWordSplitting(dockerRunArgs(a));
    const argv = splitByShell(value);
    expect(argv).toEqual(dockerRunArgs(a));
    // What `docker run --gpus '"device=A,B"'` typed at a prompt gives docker.
    expect(argAfter(argv, '--gpus')).toEqual([`"device=${a.isolationIds.join(',')}"`]);
    expect(argAfter(argv, '--cgroup-parent')).toEqual([`bkci-${a.instance}.slice`]);
    expect(argAfter(argv, '--cpuset-cpus')).toEqual([a.cpus]);
    expect(argAfter(argv, '--cpuset-mems')).toEqual([a.memNodes]);
    expect(argAfter(argv, '--memory')).toEqual([`${a.memoryMax / 2 ** 20}m`]);
    const hook = p.files.find((f) => f.path === `/etc/buildkite-agent/bkci/hooks/${a.instance}/environment`)!;
    expect(hook.content).toContain(`export BKCI_DOCKER_RUN_ARGS='${value}'`);
  });

  it('AMD: each device node and the render/video groups', async () => {
    const a = (await plan(HOSTS.amd)).agents[0]!;
    const argv = splitByShell(joinForWordSplitting(dockerRunArgs(a)));
    const devices = argAfter(argv, '--device');
    expect(devices).toContain('/dev/kfd');
    expect(devices.filter((d) => /^\/dev\/dri\/renderD\d+$/.test(d))).toEqual(a.devices);
    expect(argAfter(argv, '--group-add')).toEqual(['render', 'video']);
    expect(argv).not.toContain('--gpus');
  });

  it('Ascend: the davinci node by physical id, the manager nodes and the driver mounts', async () => {
    const a: AgentPlan = (await plan(HOSTS.ascend)).agents[1]!;
    const argv = splitByShell(joinForWordSplitting(dockerRunArgs(a)));
    const devices = argAfter(argv, '--device');
    expect(devices).toEqual(expect.arrayContaining([...a.devices, '/dev/davinci_manager', '/dev/devmm_svm', '/dev/hisi_hdc']));
    expect(devices.filter((d) => /^\/dev\/davinci\d+$/.test(d))).toEqual(a.devices);
    expect(argAfter(argv, '-v')).toContain('/usr/local/Ascend/driver:/usr/local/Ascend/driver:ro');
  });

  it('CPU-only agents get the limits and no devices', async () => {
    const argv = splitByShell(joinForWordSplitting(dockerRunArgs((await plan(HOSTS.cpu, { agents: 2 })).agents[1]!)));
    expect(argv.filter((x) => x.startsWith('--'))).toEqual(['--cgroup-parent', '--cpuset-cpus', '--cpuset-mems', '--memory']);
  });

  it('an argument the shell would split or expand is refused, not written', () => {
    for (const bad of ['a b', '', '/dev/dri/*', 'x\ty', '$(id)'])
      expect(() => joinForWordSplitting(['--device', bad]), bad).toThrow(/cannot go into BKCI_DOCKER_RUN_ARGS/);
  });
});

describe('the docker shim and the compose service', () => {
  // A stand-in docker that prints the argv it got, one per line.
  function fakeDocker(): string {
    const bin = tmp('bkci-realdocker-');
    writeFileSync(join(bin, 'docker'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
    return bin;
  }

  it('adds the agent’s arguments to docker run / create / container run, after global options, and to nothing else', async () => {
    const root = await stage(HOSTS.h100, ['--gpus-per-agent', '2']);
    const bin = fakeDocker();
    const shim = join(root, 'etc/buildkite-agent/bkci/bin');
    const hook = hookCopy(root, 'gpu2-3', HOSTS.h100);
    // The hook puts the shim first on PATH; the shim runs the next docker on PATH.
    const env = runHook(hook, { PATH: `${bin}:${hostEnv(HOSTS.h100).PATH!}` }).env;
    expect(env.PATH!.startsWith('/etc/buildkite-agent/bkci/bin:')).toBe(true);
    const docker = (...args: string[]) => {
      const r = spawnSync('docker', args, { env: { ...env, PATH: `${shim}:${env.PATH!}` }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split('\n').slice(0, -1);
    };
    const extra = splitByShell(env.BKCI_DOCKER_RUN_ARGS!);
    expect(docker('run', '--rm', 'img', 'nvidia-smi')).toEqual(['run', ...extra, '--rm', 'img', 'nvidia-smi']);
    expect(docker('--context', 'default', 'container', 'create', 'img')).toEqual(['--context', 'default', 'container', 'create', ...extra, 'img']);
    expect(docker('build', '-t', 'x', '.')).toEqual(['build', '-t', 'x', '.']);
    expect(docker('images')).toEqual(['images']);
    // Passed by hand already (or chosen otherwise): left alone.
    expect(docker('run', '--cgroup-parent=other.slice', 'img')).toEqual(['run', '--cgroup-parent=other.slice', 'img']);
    expect(extra).toContain(`"device=${env.NVIDIA_VISIBLE_DEVICES}"`);
    // No docker after the shim: the shell's message, not a loop.
    const r = spawnSync(join(shim, 'docker'), ['run', 'img'], { env: { PATH: `${shim}:/nonexistent` }, encoding: 'utf8' });
    expect(r.status).toBe(127);
    expect(r.stderr).toMatch(/found no docker on PATH/);
  });

  it('the compose service carries the slice, cpuset, memory, GPUs and the agent’s variables', async () => {
    const { parse } = await import('yaml');
    const p = await plan(HOSTS.h100, { gpusPerAgent: 2 });
    const a = p.agents[1]!;
    const file = p.files.find((f) => f.path === `/etc/buildkite-agent/bkci/agents/${a.instance}.compose.yml`)!;
    const svc = parse(file.content).services.bkci;
    expect(svc.cgroup_parent).toBe(`bkci-${a.instance}.slice`);
    expect(svc.cpuset).toBe(a.cpus);
    expect(svc.mem_limit).toBe(`${a.memoryMax / 2 ** 20}m`);
    expect(svc.deploy.resources.reservations.devices).toEqual([{ capabilities: ['gpu'], device_ids: a.isolationIds }]);
    expect(svc.environment.NVIDIA_VISIBLE_DEVICES).toBe(a.isolationIds.join(','));
    const amd = (await plan(HOSTS.amd)).agents[0]!;
    const amdSvc = parse((await plan(HOSTS.amd)).files.find((f) => f.path.endsWith(`${amd.instance}.compose.yml`))!.content).services.bkci;
    expect(amdSvc.devices).toEqual(expect.arrayContaining(['/dev/kfd', ...amd.devices]));
    expect(amdSvc.group_add).toEqual(['render', 'video']);
    expect(amdSvc.deploy).toBeUndefined();
  });
});

describe('--device-allow', () => {
  it('adds each node or class to DeviceAllow= and each node to the docker arguments', async () => {
    const p = await plan(HOSTS.l40s, { deviceAllow: ['/dev/infiniband/uverbs0', '/dev/fuse', 'char-kvm', '/dev/fuse'] });
    for (const a of p.agents) {
      expect(a.deviceAllow).toEqual(expect.arrayContaining(['/dev/infiniband/uverbs0 rw', '/dev/fuse rw', 'char-kvm rw']));
      expect(argAfter(dockerRunArgs(a), '--device')).toEqual(['/dev/infiniband/uverbs0', '/dev/fuse']);
    }
  });

  it('refuses what is not one device node under /dev or one device class, naming the flag (exit 2)', async () => {
    for (const bad of ['/dev/infiniband/*', '/etc/passwd', '/dev/../etc/shadow', 'kvm', 'char-', '/dev/fuse rw', '/dev/'])
      await expect(plan(HOSTS.l40s, { deviceAllow: [bad] }), bad).rejects.toThrow(/--device-allow .*expected a device node under \/dev/);
    const root = tmp('bkci-root-');
    const r = await runBkci(
      ['node', 'setup', '--queue', 'q', '--host-root', HOSTS.l40s, '--root', root, '--agent-bin', agentBin, '--device-allow', '/dev/infiniband/*'],
      {
        env: hostEnv(HOSTS.l40s, { BUILDKITE_AGENT_TOKEN: TOKEN }),
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--device-allow "\/dev\/infiniband\/\*"/);
  });

  it('through the CLI: units verify; doctor notes InfiniBand devices no agent may open', async () => {
    const { cpSync, mkdirSync } = await import('node:fs');
    const host = tmp('bkci-ibhost-');
    cpSync(HOSTS.l40s, host, { recursive: true });
    mkdirSync(join(host, 'dev/infiniband'), { recursive: true });
    for (const n of ['uverbs0', 'rdma_cm']) writeFileSync(join(host, 'dev/infiniband', n), '');
    const doctor = async (root: string) => {
      const r = await runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
      return (JSON.parse(r.stdout).checks as { check: string; status: string; detail: string; fix?: string }[]).find((c) => c.check === 'infiniband devices');
    };
    const without = await stage(host);
    expect(await doctor(without)).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/InfiniBand devices present but not allowed to the agents: \/dev\/infiniband\/(rdma_cm|uverbs0)/),
      fix: expect.stringMatching(/--device-allow \/dev\/infiniband\/uverbs0/),
    });
    const withIb = await stage(host, ['--device-allow', '/dev/infiniband/uverbs0', '--device-allow', '/dev/infiniband/rdma_cm']);
    expect(await doctor(withIb)).toBeUndefined();
    expect(readFileSync(join(withIb, 'etc/systemd/system/bkci-agent@gpu0.service.d/50-bkci.conf'), 'utf8')).toMatch(
      /^DeviceAllow=\/dev\/infiniband\/uverbs0 rw$/m,
    );
    const v = spawnSync('systemd-analyze', ['verify', 'bkci-agent@gpu0.service', 'bkci-gpu0.slice'], {
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${withIb}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
      encoding: 'utf8',
    });
    expect((v.stderr + v.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(withIb))).toEqual([]);
  });
});
