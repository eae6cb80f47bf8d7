// `bkci node ...` end to end on fixture hosts, writing a staged tree under --root: modes, the token
// in exactly one 0600 file, units that pass `systemd-analyze verify`, idempotency, updates,
// teardown, status drift, doctor and the health check.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci, type CliRun } from '../helpers/io.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

const TOKEN = 'bkat_Zx9secretAgentToken42';

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// A stand-in buildkite-agent so the units' ExecStart= names a file that exists.
const agentBin = standInAgent();

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

const modeOf = (p: string) => (statSync(p).mode & 0o7777).toString(8).padStart(4, '0');

async function setup(host: string, root: string, extra: string[] = [], env: Record<string, string> = {}) {
  return runBkci(['node', 'setup', '--queue', 'h100', '--host-root', host, '--root', root, '--agent-bin', agentBin, ...extra], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: TOKEN, ...env }),
  });
}

function verifyUnits(root: string, instances: string[]): void {
  const units = instances.flatMap((i) => [`bkci-agent@${i}.service`, `bkci-${i}.slice`]);
  const r = spawnSync('systemd-analyze', ['verify', ...units], {
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${root}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
    encoding: 'utf8',
  });
  expect(r.error, 'systemd-analyze must be installed (.ci/run installs systemd)').toBeUndefined();
  // verify exits 0 on "Unknown key" warnings: any output about our units is a failure.
  const ours = (r.stderr + r.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(root));
  expect(ours, (r.stderr + r.stdout).trim()).toEqual([]);
  expect(r.status).toBe(0);
}

describe('node setup under --root', () => {
  it('stages every file with its mode; the token only in one 0600 file; target paths inside', async () => {
    const root = tmp('bkci-root-');
    const r = await setup(HOSTS.h100, root, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    const out = JSON.parse(r.stdout);
    expect(out.agents).toHaveLength(8);
    expect(out.commands).toEqual([]);
    for (const f of out.files as { path: string; mode: string }[]) expect(modeOf(join(root, f.path)), f.path).toBe(f.mode);
    const files = walk(root);
    const withToken = files.filter((p) => readFileSync(p, 'utf8').includes(TOKEN));
    expect(withToken.map((p) => '/' + relative(root, p))).toEqual(['/etc/buildkite-agent/bkci/token.env']);
    expect(modeOf(withToken[0]!)).toBe('0600');
    // Every file written, bookkeeping included, is in the plan; contents name /etc, not the stage.
    expect(files.map((p) => '/' + relative(root, p)).sort()).toEqual(out.files.map((f: { path: string }) => f.path).sort());
    for (const p of files) expect(readFileSync(p, 'utf8')).not.toContain(root);
    expect(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu0.cfg'), 'utf8')).toContain('build-path="/var/lib/buildkite-agent/builds/gpu0"');
    expect(modeOf(join(root, 'var/lib/buildkite-agent/builds/gpu3'))).toBe('0750');
    expect(r.stderr).toMatch(/no systemctl or useradd was run/);
  });

  it('writes units that pass systemd-analyze verify (warnings count as failures)', async () => {
    for (const [host, instances] of [
      [HOSTS.h100, ['gpu0', 'gpu7']],
      [HOSTS.amd, ['gpu0', 'gpu5']],
      [HOSTS.ascend, ['gpu1']],
      [HOSTS.cpu, ['cpu0']],
    ] as const) {
      const root = tmp('bkci-root-');
      const r = await setup(host, root);
      expect(r.code, r.stderr).toBe(0);
      verifyUnits(root, [...instances]);
    }
  });

  it('a broken drop-in is caught by the verify step (the check is not vacuous)', async () => {
    const root = tmp('bkci-root-');
    await setup(HOSTS.l40s, root);
    writeFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu0.service.d/50-bkci.conf'), '[Service]\nAllowedCPUz=0-3\n');
    const r = spawnSync('systemd-analyze', ['verify', 'bkci-agent@gpu0.service'], {
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${root}/etc/systemd/system:` },
      encoding: 'utf8',
    });
    expect(r.stderr).toMatch(/Unknown key .*AllowedCPUz/);
  });

  it('a second run with the same arguments writes nothing and says so', async () => {
    const root = tmp('bkci-root-');
    expect((await setup(HOSTS.h100, root)).code).toBe(0);
    const before = new Map(walk(root).map((p) => [p, statSync(p).mtimeMs]));
    const r = await setup(HOSTS.h100, root, ['--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/nothing to change/);
    const out = JSON.parse(r.stdout);
    expect(out.changed).toBe(false);
    expect(out.written).toEqual([]);
    for (const [p, m] of before) expect(statSync(p).mtimeMs, p).toBe(m);
  });

  it('changed arguments update only what changed and remove agents no longer planned', async () => {
    const root = tmp('bkci-root-');
    await setup(HOSTS.h100, root);
    let r = await setup(HOSTS.h100, root, ['--tags', 'arch=sm90', '--json']);
    const written = JSON.parse(r.stdout).written as string[];
    expect(written.filter((p) => p.endsWith('.cfg'))).toHaveLength(8);
    expect(written.some((p) => p.endsWith('.env') || p.endsWith('.service') || p.endsWith('50-bkci.conf'))).toBe(false);

    r = await setup(HOSTS.h100, root, ['--gpus-per-agent', '2', '--tags', 'arch=sm90', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.agents.map((a: { name: string }) => a.name)).toEqual(['gpu-node-17-gpu0-1', 'gpu-node-17-gpu2-3', 'gpu-node-17-gpu4-5', 'gpu-node-17-gpu6-7']);
    expect(out.removed).toContain('/etc/buildkite-agent/bkci/agents/gpu5.cfg');
    const units = readdirSync(join(root, 'etc/systemd/system')).sort();
    expect(units).toEqual([
      'bkci-agent@.service',
      'bkci-agent@gpu0-1.service.d',
      'bkci-agent@gpu2-3.service.d',
      'bkci-agent@gpu4-5.service.d',
      'bkci-agent@gpu6-7.service.d',
      'bkci-gpu-devices.service',
      'bkci-gpu0-1.slice',
      'bkci-gpu2-3.slice',
      'bkci-gpu4-5.slice',
      'bkci-gpu6-7.slice',
    ]);
    expect(readdirSync(join(root, 'etc/buildkite-agent/bkci/agents')).sort()).toEqual([
      'gpu0-1.cfg',
      'gpu0-1.compose.yml',
      'gpu0-1.env',
      'gpu2-3.cfg',
      'gpu2-3.compose.yml',
      'gpu2-3.env',
      'gpu4-5.cfg',
      'gpu4-5.compose.yml',
      'gpu4-5.env',
      'gpu6-7.cfg',
      'gpu6-7.compose.yml',
      'gpu6-7.env',
    ]);
    verifyUnits(root, ['gpu0-1']);
  });

  it('one 8-GPU agent across both sockets: warned about, and its units verify', async () => {
    const root = tmp('bkci-root-');
    const r = await setup(HOSTS.h100, root, ['--gpus-per-agent', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).agents.map((a: { name: string; memNodes: string }) => [a.name, a.memNodes])).toEqual([['gpu-node-17-gpu0-7', '0-1']]);
    expect(r.stderr).toMatch(/share an agent across NUMA nodes 0, 1/);
    const slice = readFileSync(join(root, 'etc/systemd/system/bkci-gpu0-7.slice'), 'utf8');
    expect(slice).toMatch(/^AllowedMemoryNodes=0-1$/m);
    const dropIn = readFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu0-7.service.d/50-bkci.conf'), 'utf8');
    expect(dropIn).toMatch(/^Slice=bkci-gpu0-7\.slice$/m);
    expect(dropIn).toMatch(/on NUMA nodes 0,1\./);
    verifyUnits(root, ['gpu0-7']);
  });

  it('--dry-run prints the plan and touches nothing', async () => {
    const root = join(tmp('bkci-root-'), 'stage');
    const r = await setup(HOSTS.ascend, root, ['--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(Object.keys(plan.agents[0]).sort()).toEqual(expect.arrayContaining(['name', 'gpus', 'cpus', 'memNodes', 'memoryMax', 'env', 'tags']));
    expect(plan.agents.map((a: { gpus: number[] }) => a.gpus)).toEqual([[0], [1], [2], [3], [4], [5], [6], [7]]);
    expect(plan.agents[1].gpuIds).toEqual(['1']);
    expect(plan.files.find((f: { path: string }) => f.path.endsWith('token.env')).mode).toBe('0600');
    expect(() => statSync(root)).toThrow();
    expect(r.stdout).not.toContain(TOKEN);
    const text = await setup(HOSTS.ascend, root, ['--dry-run']);
    expect(text.stdout).toMatch(/create\s+0600 root\s+\/etc\/buildkite-agent\/bkci\/token\.env/);
  });

  it('bad input is exit 2 naming the flag or fact, with nothing written', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--gpus-per-agent', '3'], {}, /--gpus-per-agent 3 does not divide the 8 GPUs/],
      [['--memory-reserve', 'lots'], {}, /--memory-reserve "lots": not a size/],
      [['--vendor', 'intel'], {}, /--vendor.*intel/],
      [['--vendor', 'amd'], {}, /amd-smi .* is not on PATH|amd-smi is not on PATH|rocm-smi/],
      [[], { BUILDKITE_AGENT_TOKEN: '' }, /no agent token/],
    ];
    for (const [args, env, msg] of cases) {
      const root = join(tmp('bkci-root-'), 'stage');
      const r = await setup(HOSTS.h100, root, args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(() => statSync(root)).toThrow();
    }
    const r = await runBkci(['node', 'setup', '--root', tmp('bkci-root-')], { env: { BUILDKITE_AGENT_TOKEN: TOKEN } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--queue is required/);
  });

  it('without --root, a user other than root is refused (exit 2) before anything is read or written', async () => {
    let r = await runBkci(['node', 'setup', '--queue', 'x', '--host-root', HOSTS.h100], {
      env: hostEnv(HOSTS.h100, { BUILDKITE_AGENT_TOKEN: TOKEN }),
      uid: 1000,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/run it as root \(sudo\)[\s\S]*--root DIR/);
    r = await runBkci(['node', 'teardown'], { uid: 1000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/run it as root/);
  });

  it('without --root, a missing buildkite-agent is exit 2 with the install hint', async () => {
    const r = await runBkci(['node', 'setup', '--queue', 'x', '--host-root', HOSTS.h100, '--dry-run'], {
      env: hostEnv(HOSTS.h100, { BUILDKITE_AGENT_TOKEN: TOKEN }),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/buildkite-agent is not on PATH[\s\S]*install it/);
  });
});

describe('node status, teardown, doctor', () => {
  it('status lists the agents and reports hand edits', async () => {
    const root = tmp('bkci-root-');
    await setup(HOSTS.l40s, root);
    let r = await runBkci(['node', 'status', '--root', root, '--json']);
    expect(r.code).toBe(0);
    let s = JSON.parse(r.stdout);
    expect(s.agents.map((a: { instance: string; cpus: string }) => [a.instance, a.cpus])).toEqual([
      ['gpu0', '0-3,8-11'],
      ['gpu1', '4-7,12-15'],
    ]);
    expect(s.drift).toEqual([]);
    writeFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu1.service.d/50-bkci.conf'), '[Service]\nMemoryMax=infinity\n');
    chmodSync(join(root, 'etc/buildkite-agent/bkci/token.env'), 0o644);
    r = await runBkci(['node', 'status', '--root', root, '--json']);
    s = JSON.parse(r.stdout);
    expect(s.drift).toEqual([
      { path: '/etc/buildkite-agent/bkci/token.env', problem: 'mode 0644, expected 0600' },
      { path: '/etc/systemd/system/bkci-agent@gpu1.service.d/50-bkci.conf', problem: 'edited by hand (re-run setup to restore it)' },
    ]);
    // Re-running setup restores both.
    await setup(HOSTS.l40s, root);
    expect(JSON.parse((await runBkci(['node', 'status', '--root', root, '--json'])).stdout).drift).toEqual([]);
  });

  it('teardown removes exactly what setup created; --purge leaves nothing behind', async () => {
    const root = tmp('bkci-root-');
    writeFileSync(join(root, 'unrelated'), 'keep me');
    await setup(HOSTS.h100, root);
    let r = await runBkci(['node', 'teardown', '--root', root, '--dry-run']);
    expect(r.stdout).toMatch(/remove \/etc\/buildkite-agent\/bkci\/token\.env/);
    expect(walk(root).length).toBeGreaterThan(10);
    r = await runBkci(['node', 'teardown', '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expect(walk(root).map((p) => relative(root, p))).toEqual(['unrelated']);
    expect(statSync(join(root, 'var/lib/buildkite-agent/builds/gpu0')).isDirectory()).toBe(true);

    const root2 = tmp('bkci-root-');
    await setup(HOSTS.h100, root2);
    r = await runBkci(['node', 'teardown', '--root', root2, '--purge']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(root2)).toEqual([]);
  });

  it('doctor passes on a fresh staged setup and fails on a readable token file', async () => {
    const root = tmp('bkci-root-');
    await setup(HOSTS.h100, root);
    let r = await runBkci(['node', 'doctor', '--root', root, '--host-root', HOSTS.h100, '--json'], { env: hostEnv(HOSTS.h100) });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const checks = JSON.parse(r.stdout).checks as { check: string; status: string; fix?: string }[];
    expect(checks.find((c) => c.check === 'token file')!.status).toBe('ok');
    expect(checks.find((c) => c.check === 'gpu count')!.status).toBe('ok');
    const git = checks.find((c) => c.check === 'git over ssh')!;
    expect(git.status).toBe('warn');
    expect(git.fix).toContain('insteadOf "git@github.com:"');
    chmodSync(join(root, 'etc/buildkite-agent/bkci/token.env'), 0o640);
    r = await runBkci(['node', 'doctor', '--root', root, '--host-root', HOSTS.h100], { env: hostEnv(HOSTS.h100) });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}token file: .*mode 0640[\s\S]*fix: chmod 600/);
  });

  // A staged H100 setup and a copy of the host to break: `doctor()` runs it, `item()` picks a check.
  async function doctorOnCopy() {
    const root = tmp('bkci-root-');
    await setup(HOSTS.h100, root);
    const host = tmp('bkci-host-');
    cpSync(HOSTS.h100, host, { recursive: true });
    type Item = { check: string; status: string; detail: string; fix?: string };
    return {
      host,
      doctor: () => runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) }),
      item: (r: CliRun, name: string) => (JSON.parse(r.stdout).checks as Item[]).find((c) => c.check === name)!,
    };
  }

  it('doctor fails a cgroup v1 host, where the CPU and memory pinning would silently do nothing', async () => {
    const { host, doctor, item } = await doctorOnCopy();
    const cg = (r: CliRun) => item(r, 'cgroup v2');
    let r = await doctor();
    expect(cg(r).status).toBe('ok');
    writeFileSync(join(host, 'sys/fs/cgroup/cgroup.controllers'), 'cpu io memory pids\n');
    r = await doctor();
    expect(r.code).toBe(1);
    expect(cg(r).detail).toMatch(/the cpuset controller is not available/);
    rmSync(join(host, 'sys/fs/cgroup/cgroup.controllers'));
    r = await doctor();
    expect(r.code).toBe(1);
    expect(cg(r)).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/cgroup v1 or hybrid.*ignores AllowedCPUs=/),
      fix: expect.stringMatching(/systemd\.unified_cgroup_hierarchy=1/),
    });
  });

  it('doctor warns (not fails) when persistence mode is off on some GPUs', async () => {
    const { host, doctor, item } = await doctorOnCopy();
    const pm = (r: CliRun) => item(r, 'persistence mode');
    let r = await doctor();
    expect(pm(r)).toMatchObject({ status: 'ok' });
    const f = join(host, 'out/nvidia-persistence.csv');
    writeFileSync(f, readFileSync(f, 'utf8').replace('0, Enabled', '0, Disabled').replace('5, Enabled', '5, Disabled'));
    r = await doctor();
    expect(r.code, r.stdout).toBe(0);
    expect(pm(r)).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^off on GPUs 0, 5:/), fix: expect.stringMatching(/nvidia-persistenced/) });
  });

  it('doctor names the fix for the classic driver failures', async () => {
    const { host, doctor, item } = await doctorOnCopy();
    const cases: [string, number, RegExp][] = [
      ['Failed to initialize NVML: Driver/library version mismatch', 18, /upgraded while the old kernel module stayed loaded: reboot/],
      [
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
        9,
        /kernel module is not loaded/,
      ],
      ['No devices were found', 6, /Xid errors in dmesg/],
    ];
    for (const [said, code, fix] of cases) {
      writeFileSync(join(host, 'bin/nvidia-smi'), `#!/bin/sh\necho "${said}"\nexit ${code}\n`);
      const r = await doctor();
      expect(r.code).toBe(1);
      const c = item(r, 'gpu count');
      expect(c.detail).toContain(said.slice(0, 30));
      expect(c.fix).toMatch(fix);
    }
  });

  it('doctor notices a GPU count that no longer matches the plan', async () => {
    const root = tmp('bkci-root-');
    await setup(HOSTS.h100, root);
    const host = tmp('bkci-host-');
    cpSync(HOSTS.h100, host, { recursive: true });
    const q = join(host, 'out/nvidia-query.csv');
    writeFileSync(q, readFileSync(q, 'utf8').split('\n').slice(1).join('\n'));
    const r = await runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).checks.find((c: { check: string }) => c.check === 'gpu count').detail).toMatch(/planned 8 GPUs, 7 are present/);
  });
});

describe('node check (the health gate)', () => {
  async function staged(host: string) {
    const root = tmp('bkci-root-');
    const copy = tmp('bkci-host-');
    cpSync(host, copy, { recursive: true });
    await setup(copy, root);
    return {
      root,
      host: copy,
      check: (agent: string) => runBkci(['node', 'check', agent, '--root', root, '--host-root', copy, '--json'], { env: hostEnv(copy) }),
    };
  }

  it('passes on an idle healthy GPU, named by instance or by agent name', async () => {
    const s = await staged(HOSTS.h100);
    const r = await s.check('gpu0');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
    expect((await s.check('gpu-node-17-gpu1')).code).toBe(0);
  });

  it('fails on processes left on the GPU, used memory, uncorrected ECC, a remap failure', async () => {
    const s = await staged(HOSTS.h100);
    const uuid = readFileSync(join(s.host, 'out/nvidia-query.csv'), 'utf8').split('\n')[0]!.split(', ')[1]!;
    writeFileSync(join(s.host, 'out/nvidia-apps.csv'), `${uuid}, 4242, 30000\n`);
    const health = readFileSync(join(s.host, 'out/nvidia-health.csv'), 'utf8').split('\n');
    health[0] = `${uuid}, 30512, 3, No, No, Yes, None`;
    writeFileSync(join(s.host, 'out/nvidia-health.csv'), health.join('\n'));
    const r = await s.check('gpu0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/agent gpu0 is unfit/);
    const detail = JSON.parse(r.stdout).items[0].detail;
    expect(detail).toMatch(/1 compute process left on it \(pid 4242\)/);
    expect(detail).toMatch(/30512 MiB of memory in use/);
    expect(detail).toMatch(/3 uncorrected ECC errors/);
    expect(detail).toMatch(/row remapping failed/);
    expect((await s.check('gpu1')).code).toBe(0);
  });

  it('fails when the GPU or its device node is missing', async () => {
    const s = await staged(HOSTS.h100);
    // A GPU fallen off the bus: gone from every nvidia-smi listing.
    const health = readFileSync(join(s.host, 'out/nvidia-health.csv'), 'utf8').split('\n');
    writeFileSync(join(s.host, 'out/nvidia-health.csv'), health.slice(1).join('\n'));
    const list = readFileSync(join(s.host, 'out/nvidia-L.txt'), 'utf8').split('\n');
    writeFileSync(join(s.host, 'out/nvidia-L.txt'), list.slice(1).join('\n'));
    let r = await s.check('gpu0');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(/is missing/);
    execFileSync('rm', [join(s.host, 'dev/nvidia3')]);
    r = await s.check('gpu2');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).items.find((i: { check: string }) => i.check === 'devices').detail).toBe('missing device node: /dev/nvidia3');
  });

  it('--backoff (as the unit runs it) waits longer after each failure in a row, and a pass resets it', async () => {
    const s = await staged(HOSTS.h100);
    const state = tmp('bkci-run-');
    const gate = () =>
      runBkci(['node', 'check', 'gpu0', '--root', s.root, '--host-root', s.host, '--backoff'], { env: hostEnv(s.host, { RUNTIME_DIRECTORY: state }) });
    const apps = join(s.host, 'out/nvidia-apps.csv');
    const uuid = readFileSync(join(s.host, 'out/nvidia-query.csv'), 'utf8').split('\n')[0]!.split(', ')[1]!;
    writeFileSync(apps, `${uuid}, 4242, 30000\n`);
    const sleeps: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const r = await gate();
      expect(r.code).toBe(1);
      sleeps.push(r.sleeps);
    }
    expect(sleeps).toEqual([[], [5000], [15000], [35000]]);
    writeFileSync(apps, '');
    expect((await gate()).code).toBe(0);
    writeFileSync(apps, `${uuid}, 4242, 30000\n`);
    expect((await gate()).sleeps).toEqual([]); // counted afresh after the pass
    // A runtime directory that cannot be written: no backoff, and the gate still answers.
    const notADir = join(tmp('bkci-run-'), 'file');
    writeFileSync(notADir, '');
    const bad = await runBkci(['node', 'check', 'gpu0', '--root', s.root, '--host-root', s.host, '--backoff'], {
      env: hostEnv(s.host, { RUNTIME_DIRECTORY: join(notADir, 'run') }),
    });
    expect(bad.code).toBe(1);
    expect(bad.sleeps).toEqual([]);
    expect(bad.stderr).toMatch(/cannot keep the failure count/);
    // Run by hand (no RUNTIME_DIRECTORY), the check never waits.
    const byHand = await runBkci(['node', 'check', 'gpu0', '--root', s.root, '--host-root', s.host, '--backoff'], { env: hostEnv(s.host) });
    expect(byHand.code).toBe(1);
    expect(byHand.sleeps).toEqual([]);
  });

  it('says what the driver said when nvidia-smi fails, and keeps the GPUs it could read', async () => {
    const s = await staged(HOSTS.h100);
    const uuids = readFileSync(join(s.host, 'out/nvidia-query.csv'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(', ')[1]!);
    const smi = join(s.host, 'bin/nvidia-smi');
    const real = readFileSync(smi, 'utf8');
    // A driver/library mismatch after a driver upgrade without a reboot: every call fails.
    writeFileSync(smi, '#!/bin/sh\necho "Failed to initialize NVML: Driver/library version mismatch"\necho "NVML library version: 550.90"\nexit 18\n');
    let r = await s.check('gpu0');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(
      /is missing \(nvidia-smi failed \(exit 18\): Failed to initialize NVML: Driver\/library version mismatch\)/,
    );
    // GPU 0 fallen off the bus: nvidia-smi prints an error for it (exit 15) in every listing.
    const gone = 'Unable to determine the device handle for GPU0000:18:00.0: Unknown Error';
    writeFileSync(
      smi,
      real.replace(
        /^case "\$\*" in$/m,
        `case "$*" in\n  *${uuids[0]}*|-L) echo "${gone}"; [ "$1" = -L ] && grep -v "${uuids[0]}" "$out/nvidia-L.txt"; exit 15 ;;`,
      ),
    );
    r = await s.check('gpu0');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(
      /is missing \(nvidia-smi failed \(exit 15\): Unable to determine the device handle for GPU0000:18:00\.0: Unknown Error\)/,
    );
    r = await s.check('gpu1');
    expect(r.code, r.stdout).toBe(0);
  });

  it('AMD: an older host with only rocm-smi passes the gate as discovery saw it; no tool at all says so', async () => {
    const a = await staged(HOSTS.amd);
    const listed = JSON.parse(readFileSync(join(a.host, 'out/amd-list.json'), 'utf8')) as { gpu: number; bdf: string }[];
    const bus = Object.fromEntries(listed.map((g) => [`card${g.gpu}`, { 'PCI Bus': g.bdf.toUpperCase() }]));
    rmSync(join(a.host, 'bin/amd-smi'));
    writeFileSync(join(a.host, 'bin/rocm-smi'), `#!/bin/sh\n[ "$*" = "--showbus --json" ] || exit 2\necho '${JSON.stringify(bus)}'\n`, { mode: 0o755 });
    let r = await a.check('gpu3');
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(/present, idle.*no amd-smi: processes and ECC not checked/);
    rmSync(join(a.host, 'bin/rocm-smi'));
    r = await a.check('gpu3');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(/is missing \(neither amd-smi nor rocm-smi is on PATH\)/);
  });

  it('Ascend: a process on the NPU or a non-OK health fails; AMD healthy passes', async () => {
    const s = await staged(HOSTS.ascend);
    expect((await s.check('gpu0')).code).toBe(0);
    const r = await s.check('gpu1');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(/pid 2871311/);
    const a = await staged(HOSTS.amd);
    const ok = await a.check('gpu3');
    expect(ok.code, ok.stdout).toBe(0);
  });

  it('an nvidia-smi without the health query still proves presence (reported, not failed)', async () => {
    const s = await staged(HOSTS.l40s);
    writeFileSync(join(s.host, 'bin/nvidia-smi'), `#!/bin/sh\ncase "$*" in *memory.used*) exit 2 ;; esac\nexec ${join(HOSTS.l40s, 'bin/nvidia-smi')} "$@"\n`, {
      mode: 0o755,
    });
    const r = await s.check('gpu1');
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout).items[0].detail).toMatch(/health fields unavailable/);
  });

  it('an unknown agent is exit 2', async () => {
    const s = await staged(HOSTS.l40s);
    const r = await s.check('gpu9');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no bkci agent gpu9/);
  });
});

describe('doctor with docker on the host', () => {
  it('fails when the agent user is not in the docker group and docker has no nvidia runtime', async () => {
    const root = tmp('bkci-root-');
    await setup(HOSTS.h100, root);
    const host = tmp('bkci-host-');
    cpSync(HOSTS.h100, host, { recursive: true });
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndocker:x:999:alice\n');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(host, 'var/run'), { recursive: true });
    writeFileSync(join(host, 'var/run/docker.sock'), '');
    // A stand-in docker (the systemd cgroup driver), not whatever docker this machine has.
    const info = join(import.meta.dirname, '../fixtures/docker/info-systemd-cgroupv2.json');
    writeFileSync(join(host, 'bin/docker'), `#!/bin/sh\ncat ${info}\n`, { mode: 0o755 });
    let r = await runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    expect(r.code).toBe(1);
    let checks = JSON.parse(r.stdout).checks as { check: string; status: string; fix?: string }[];
    expect(checks.find((c) => c.check === 'docker group')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('usermod -aG docker buildkite-agent'),
    });
    expect(checks.find((c) => c.check === 'nvidia container runtime')!.status).toBe('fail');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndocker:x:999:alice,buildkite-agent\n');
    mkdirSync(join(root, 'etc/docker'), { recursive: true });
    writeFileSync(join(root, 'etc/docker/daemon.json'), '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}\n');
    r = await runBkci(['node', 'doctor', '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    checks = JSON.parse(r.stdout).checks;
    // In the group: jobs can use docker, and doctor says what that costs (root on the host) and the way out.
    expect(checks.find((c) => c.check === 'docker group')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/docker group, which is root on this host: a job can rewrite bkci's config and hooks/),
      fix: expect.stringMatching(/rootless/),
    });
    expect(checks.find((c) => c.check === 'nvidia container runtime')!.status).toBe('ok');
    expect(r.code).toBe(0);
  });
});

describe('applyPlan on a real host (stand-in systemctl, useradd and id)', () => {
  it('runs useradd and disables removed agents before writing, then daemon-reload, enable, restart', async () => {
    const { detectHost } = await import('../../src/node/detect/index.js');
    const { planNodeSetup } = await import('../../src/node/plan.js');
    const { gatherState } = await import('../../src/node/state.js');
    const { applyPlan } = await import('../../src/node/apply.js');
    const { quietIo } = await import('./helpers.js');
    const bin = tmp('bkci-sysbin-');
    const log = join(bin, 'calls.log');
    for (const cmd of ['systemctl', 'useradd']) writeFileSync(join(bin, cmd), `#!/bin/sh\necho "${cmd} $*" >> ${log}\n`, { mode: 0o755 });
    writeFileSync(join(bin, 'id'), `#!/bin/sh\n[ "$1" = -u ] && echo ${process.getuid!()} || echo ${process.getgid!()}\n`, { mode: 0o755 });
    const root = tmp('bkci-root-');
    const io = quietIo({ PATH: `${bin}:${hostEnv(HOSTS.h100).PATH}` });
    const facts = await detectHost(HOSTS.h100, 'auto', io);
    const opts = {
      queue: 'h100',
      gpusPerAgent: 1,
      agents: 1,
      tags: [] as [string, string][],
      memoryReserve: 4 * 1024 ** 3,
      cpuReserve: 0,
      user: 'ci',
      agentBin: agentBin,
      bkciBin: ['/usr/bin/node', '/opt/bkci/bin.js'],
      buildRoot: '/var/lib/buildkite-agent/builds',
      mig: false,
      minFreeDisk: 1,
      token: TOKEN,
    };
    const plan1 = planNodeSetup(facts, opts, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: false });
    await applyPlan(plan1, { root, runCommands: true, start: true, staging: false, user: 'ci' }, io);
    const first = readFileSync(log, 'utf8').trim().split('\n');
    expect(first[0]).toMatch(/^useradd --system .* ci$/);
    expect(first.slice(1)).toEqual([
      'systemctl daemon-reload',
      `systemctl enable --now --no-block bkci-gpu-devices.service ${plan1.agents.map((a) => a.unit).join(' ')}`,
    ]);

    writeFileSync(log, '');
    const o2 = { ...opts, gpusPerAgent: 4 };
    const draft = planNodeSetup(facts, o2, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    const state = await gatherState(
      root,
      draft.files.map((f) => f.path),
      draft.dirs.map((d) => d.path),
      'ci',
      false,
    );
    const plan2 = planNodeSetup(facts, o2, { ...state, userExists: true });
    await applyPlan(plan2, { root, runCommands: true, start: true, staging: false, user: 'ci' }, io);
    const second = readFileSync(log, 'utf8').trim().split('\n');
    expect(second.slice(0, 8)).toEqual(plan1.agents.map((a) => `systemctl disable --now --no-block ${a.unit}`));
    expect(second.slice(8)).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now --no-block bkci-gpu-devices.service bkci-agent@gpu0-3.service bkci-agent@gpu4-7.service',
    ]);

    // --no-start: files and daemon-reload, no enable.
    writeFileSync(log, '');
    const o3 = { ...o2, tags: [['arch', 'sm90']] as [string, string][] };
    const state3 = await gatherState(
      root,
      plan2.files.map((f) => f.path),
      plan2.dirs.map((d) => d.path),
      'ci',
      false,
    );
    const plan3 = planNodeSetup(facts, o3, { ...state3, userExists: true });
    expect(plan3.commands.map((c) => c.argv.join(' '))).toContain('systemctl restart --no-block bkci-agent@gpu0-3.service bkci-agent@gpu4-7.service');
    await applyPlan(plan3, { root, runCommands: true, start: false, staging: false, user: 'ci' }, io);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['systemctl daemon-reload']);
  });
});

describe('more hosts and refusals', () => {
  it('the health check asks nvidia-smi only about the agent’s own GPUs (the unit lets it open no others)', async () => {
    const root = tmp('bkci-root-');
    const host = tmp('bkci-host-');
    cpSync(HOSTS.h100, host, { recursive: true });
    await setup(host, root);
    const real = join(host, 'bin/nvidia-smi.real');
    cpSync(join(host, 'bin/nvidia-smi'), real);
    // Like NVML under DevicePolicy=closed: a query over every GPU fails.
    writeFileSync(
      join(host, 'bin/nvidia-smi'),
      `#!/bin/sh\ncase "$*" in *--query-*) case "$*" in *" -i "*) ;; *) echo "Unable to determine the device handle for GPU0000:3A:00.0: Insufficient Permissions" >&2; exit 15 ;; esac ;; esac\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    const r = await runBkci(['node', 'check', 'gpu3', '--root', root, '--host-root', host], { env: hostEnv(host) });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('--mig: one agent per MIG device, units still verify', async () => {
    const root = tmp('bkci-root-');
    const r = await setup(HOSTS.mig, root, ['--mig', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).agents).toHaveLength(6);
    expect(readFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu0-mig1.service.d/50-bkci.conf'), 'utf8')).toContain(
      'DeviceAllow=/dev/nvidia-caps/nvidia-cap21 r',
    );
    verifyUnits(root, ['gpu0-mig0', 'gpu1-mig1', 'gpu3']);
  });

  it('a GPU vendor whose tool lists no GPUs is exit 2', async () => {
    const host = tmp('bkci-host-');
    cpSync(HOSTS.l40s, host, { recursive: true });
    writeFileSync(join(host, 'out/nvidia-query.csv'), '');
    writeFileSync(join(host, 'out/nvidia-L.txt'), '');
    const root = join(tmp('bkci-root-'), 'stage');
    const r = await setup(host, root, ['--vendor', 'nvidia']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nvidia-smi reports no NVIDIA GPUs/);
    expect(() => statSync(root)).toThrow();
  });

  it('AMD and Ascend stage and verify with their device nodes', async () => {
    const root = tmp('bkci-root-');
    expect((await setup(HOSTS.amd, root, ['--gpus-per-agent', '4'])).code).toBe(0);
    const dropIn = readFileSync(join(root, 'etc/systemd/system/bkci-agent@gpu1-6.service.d/50-bkci.conf'), 'utf8');
    expect(dropIn).toMatch(/DeviceAllow=\/dev\/kfd rw/);
    expect(dropIn.match(/DeviceAllow=\/dev\/dri\/renderD\d+ rw/g)).toHaveLength(4);
    const env = readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu1-6.env'), 'utf8');
    expect(env).toMatch(/^HIP_VISIBLE_DEVICES=0,1,2,3$/m);
    expect(env).toMatch(/^ROCR_VISIBLE_DEVICES=GPU-[0-9a-f]{16}(,GPU-[0-9a-f]{16}){3}$/m);
    verifyUnits(root, ['gpu1-6', 'gpu0-7']);
  });
});

describe('credentials', () => {
  it('vendor tools run without the agent token in their environment', async () => {
    const host = tmp('bkci-host-');
    cpSync(HOSTS.l40s, host, { recursive: true });
    const seen = join(host, 'env-seen');
    writeFileSync(join(host, 'bin/nvidia-smi'), `#!/bin/sh\nenv >> ${seen}\nexec ${join(HOSTS.l40s, 'bin/nvidia-smi')} "$@"\n`, { mode: 0o755 });
    const r = await setup(host, tmp('bkci-root-'), ['--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const env = readFileSync(seen, 'utf8');
    expect(env).toContain('PATH=');
    expect(env).not.toContain(TOKEN);
  });
});

describe('node status on a host with systemd (stand-in systemctl and journalctl)', () => {
  it('shows each unit state and, for one that is down, the health check’s reason from the journal', async () => {
    const { nodeStatus } = await import('../../src/node/status.js');
    const { quietIo } = await import('./helpers.js');
    const root = tmp('bkci-root-');
    await setup(HOSTS.l40s, root);
    const bin = tmp('bkci-sysbin-');
    writeFileSync(
      join(bin, 'systemctl'),
      '#!/bin/sh\ncase "$3" in *gpu0*) printf "ActiveState=active\\nSubState=running\\nResult=success\\n" ;; *) printf "ActiveState=activating\\nSubState=auto-restart\\nResult=exit-code\\n" ;; esac\n',
      { mode: 0o755 },
    );
    writeFileSync(
      join(bin, 'journalctl'),
      '#!/bin/sh\necho "Started Buildkite agent gpu1 (bkci)."\necho "bkci: agent gpu1 is unfit for a job: gpu GPU-x: 2 compute processes left on it (pid 11, 12)"\n',
      { mode: 0o755 },
    );
    const s = await nodeStatus(root, quietIo({ PATH: `${bin}:/usr/bin:/bin` }), true);
    expect(s.agents.map((a) => [a.instance, a.state, a.reason])).toEqual([
      ['gpu0', 'active (running)', undefined],
      ['gpu1', 'activating (auto-restart)', 'bkci: agent gpu1 is unfit for a job: gpu GPU-x: 2 compute processes left on it (pid 11, 12)'],
    ]);
  });
});

describe('node doctor on a host with systemd (stand-ins)', () => {
  it('checks the agent binary version, ownership against /etc/passwd and unit activity', async () => {
    const { runDoctor } = await import('../../src/node/doctor.js');
    const { quietIo } = await import('./helpers.js');
    const root = tmp('bkci-root-');
    await setup(HOSTS.l40s, root);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(
      join(root, 'etc/passwd'),
      `root:x:0:0:root:/root:/bin/bash\nbuildkite-agent:x:${process.getuid!()}:${process.getgid!()}::/var/lib/buildkite-agent:/usr/sbin/nologin\n`,
    );
    const bin = tmp('bkci-sysbin-');
    writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\n[ "$1" = is-active ] || exit 2\ncase "$2" in *gpu1*) echo failed; exit 3 ;; *) echo active ;; esac\n', {
      mode: 0o755,
    });
    const items = await runDoctor({ root, hostRoot: HOSTS.l40s, staging: false }, quietIo({ PATH: `${bin}:${hostEnv(HOSTS.l40s).PATH}` }));
    const by = Object.fromEntries(items.map((i) => [i.check, i]));
    expect(by['agent binary']).toMatchObject({ status: 'ok', detail: 'buildkite-agent version 3.99.0, build 1' });
    expect(by['token file']!.status).toBe('ok');
    expect(by['build paths']!.status).toBe('ok');
    expect(by['units']).toMatchObject({ status: 'fail', detail: expect.stringContaining('bkci-agent@gpu1.service (failed)') });
  });
});
