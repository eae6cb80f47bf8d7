// Issue 12, "agents must come up", end to end on fixture hosts: the device-node oneshot, NVSwitch
// hosts and the fabric manager, a host without nvidia-uvm/modeset, an old systemd, agent versions,
// a re-run that never waits for a job, --bkci-bin, and device access as the agent user.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, standInAgent } from './helpers.js';

const TOKEN = 'bkat_Zx9secretAgentToken42';
const FIX = join(HOSTS.h100, '..');
const HGX = join(FIX, 'hgx-8xh100-nvswitch');
const HEADLESS = join(FIX, 'headless-2xl4-nouvm');
const RHEL8 = join(FIX, 'rhel8-systemd239');

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

const agent = standInAgent;
const CURRENT = agent('3.133.1');

async function setup(host: string, root: string | undefined, extra: string[] = [], agentBin = CURRENT) {
  return runBkci(['node', 'setup', '--queue', 'q', '--host-root', host, ...(root ? ['--root', root] : []), '--agent-bin', agentBin, ...extra], {
    env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: TOKEN }),
  });
}

function verify(root: string, units: string[]): void {
  const r = spawnSync('systemd-analyze', ['verify', ...units], {
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${root}/etc/systemd/system:`, SYSTEMD_LOG_COLOR: '0' },
    encoding: 'utf8',
  });
  expect(r.error, 'systemd-analyze must be installed').toBeUndefined();
  const ours = (r.stderr + r.stdout).split('\n').filter((l) => l.includes('bkci') || l.includes(root));
  expect(ours, r.stderr + r.stdout).toEqual([]);
  expect(r.status).toBe(0);
}

const read = (root: string, p: string) => readFileSync(join(root, p), 'utf8');
const UNIT = 'etc/systemd/system/bkci-agent@.service';
const DEVICES = 'etc/systemd/system/bkci-gpu-devices.service';

describe('bkci-gpu-devices.service and NVSwitch hosts', () => {
  it('HGX H100: the oneshot before the agents, the fabric manager wanted, units verify', async () => {
    const root = tmp('bkci-root-');
    const r = await setup(HGX, root, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.agents).toHaveLength(8);
    const devices = read(root, DEVICES);
    expect(devices).toContain(`ExecStart=${join(HGX, 'bin/nvidia-modprobe')} -u -c0`);
    expect(devices).toMatch(/^Type=oneshot$/m);
    const unit = read(root, UNIT);
    expect(unit).toMatch(/^After=.* bkci-gpu-devices\.service nvidia-fabricmanager\.service$/m);
    expect(unit).toMatch(/^Wants=network-online\.target bkci-gpu-devices\.service nvidia-fabricmanager\.service$/m);
    expect(read(root, 'etc/buildkite-agent/bkci/agents/gpu3.env')).toMatch(/^BKCI_NVSWITCH=4$/m);
    verify(root, ['bkci-gpu-devices.service', 'bkci-agent@gpu0.service', 'bkci-agent@gpu7.service']);
    // The devices unit is bkci's: in the manifest, removed (and disabled first) by teardown.
    const t = await runBkci(['node', 'teardown', '--root', root, '--dry-run', '--json']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('/etc/systemd/system/bkci-gpu-devices.service');
    const { planTeardown } = await import('../../src/node/apply.js');
    const { readManifest } = await import('../../src/node/state.js');
    const plan = planTeardown((await readManifest(root))!, false);
    expect(plan.commands[0]!.slice(0, 3)).toEqual(['systemctl', 'disable', '--now']);
    expect(plan.commands[0]).toContain('bkci-gpu-devices.service');
    expect(plan.commands[0]).toContain('bkci-agent@gpu7.service');
  });

  it('node check fails while the fabric is not Completed, and passes once it is', async () => {
    const root = tmp('bkci-root-');
    expect((await setup(HGX, root)).code).toBe(0);
    const host = tmp('bkci-host-');
    cpSync(HGX, host, { recursive: true });
    const check = (agentName: string) => runBkci(['node', 'check', agentName, '--root', root, '--host-root', host, '--json'], { env: hostEnv(host) });
    let r = await check('gpu2');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const q = join(host, 'out/nvidia-q.txt');
    const text = readFileSync(q, 'utf8');
    // GPU 2's fabric still registering (fabric manager not done): only gpu2 is unfit.
    const blocks = text.split('\n\n');
    const i = blocks.findIndex((b) => b.startsWith('GPU 00000000:4C:00.0'));
    blocks[i] = blocks[i]!.replace('State                             : Completed', 'State                             : In Progress').replace(
      'Status                            : Success',
      'Status                            : N/A',
    );
    writeFileSync(q, blocks.join('\n\n'));
    r = await check('gpu2');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/NVSwitch fabric state is In Progress \(not Completed\)/);
    expect((await check('gpu3')).code).toBe(0);
    // A GPU that reports no fabric state (N/A: A100 HGX boards print it with the fabric manager
    // running) has nothing to wait for: not applicable, not a failure.
    blocks[i] = blocks[i]!.replace('State                             : In Progress', 'State                             : N/A');
    writeFileSync(q, blocks.join('\n\n'));
    r = await check('gpu2');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/not applicable: [^)]*fabric state/);
    // Nor does a driver whose nvidia-smi -q has no Fabric section at all (before R520).
    writeFileSync(q, text.replace(/^ {4}Fabric\n(?: {8}.*\n)+/gm, ''));
    expect(readFileSync(q, 'utf8')).not.toMatch(/Fabric/);
    r = await check('gpu5');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/not applicable: [^)]*fabric state/);
    // nvidia-smi -q failing is not a pass either.
    writeFileSync(q, '');
    r = await check('gpu0');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/fabric state is unknown/);
  });

  it('a host without NVSwitch functions wants no fabric manager and never runs nvidia-smi -q', async () => {
    const root = tmp('bkci-root-');
    expect((await setup(HOSTS.h100, root)).code).toBe(0);
    expect(read(root, UNIT)).not.toContain('fabricmanager');
    expect(read(root, 'etc/buildkite-agent/bkci/agents/gpu0.env')).not.toContain('BKCI_NVSWITCH');
    // The fixture's nvidia-smi has no -q output captured: a check that asked would fail.
    const r = await runBkci(['node', 'check', 'gpu0', '--root', root, '--host-root', HOSTS.h100], { env: hostEnv(HOSTS.h100) });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

describe('a headless host without /dev/nvidia-uvm and /dev/nvidia-modeset', () => {
  it('plans fine, allows them by class/path, and neither check nor doctor calls it unhealthy', async () => {
    const root = tmp('bkci-root-');
    const r = await setup(HEADLESS, root, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const dropIn = read(root, 'etc/systemd/system/bkci-agent@gpu1.service.d/50-bkci.conf');
    expect(dropIn).toContain('DeviceAllow=char-nvidia-uvm rw');
    expect(dropIn).toContain('DeviceAllow=/dev/nvidia-modeset rw');
    const env = read(root, 'etc/buildkite-agent/bkci/agents/gpu1.env');
    expect(env).toMatch(/^BKCI_DEVICES=\/dev\/nvidia1,\/dev\/nvidiactl$/m);
    // nvidia-ctk is installed there: it creates the nodes at boot.
    expect(read(root, DEVICES)).toContain(`ExecStart=${join(HEADLESS, 'bin/nvidia-ctk')} system create-device-nodes --control-devices --load-kernel-modules`);
    verify(root, ['bkci-gpu-devices.service', 'bkci-agent@gpu0.service', 'bkci-agent@gpu1.service']);
    for (const a of ['gpu0', 'gpu1']) {
      const c = await runBkci(['node', 'check', a, '--root', root, '--host-root', HEADLESS], { env: hostEnv(HEADLESS) });
      expect(c.code, c.stdout + c.stderr).toBe(0);
    }
    const d = await runBkci(['node', 'doctor', '--root', root, '--host-root', HEADLESS, '--json'], { env: hostEnv(HEADLESS) });
    const checks = JSON.parse(d.stdout).checks as { check: string; status: string; detail: string }[];
    expect(
      checks.filter((c) => c.status === 'fail'),
      d.stdout,
    ).toEqual([]);
    expect(d.code).toBe(0);
  });
});

describe('systemd < 244 or cgroup v1 (RHEL 8)', () => {
  it('setup exits 2 naming the version and the limits lost, unless --allow-unpinned', async () => {
    const root = tmp('bkci-root-');
    let r = await setup(RHEL8, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/systemd 239 is older than 244/);
    expect(r.stderr).toMatch(/cgroup v1/);
    expect(r.stderr).toMatch(/AllowedCPUs=.*AllowedMemoryNodes=.*silently ignored/);
    expect(r.stderr).toMatch(/--allow-unpinned/);
    r = await setup(RHEL8, root, ['--allow-unpinned']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/--allow-unpinned: systemd 239/);
  });

  it('doctor fails it', async () => {
    const { runDoctor } = await import('../../src/node/doctor.js');
    const root = tmp('bkci-root-');
    expect((await setup(RHEL8, root, ['--allow-unpinned'])).code).toBe(0);
    const items = await runDoctor({ root, hostRoot: RHEL8, staging: false }, quietIo(hostEnv(RHEL8)));
    const by = Object.fromEntries(items.map((i) => [i.check, i]));
    expect(by['systemd version']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/systemd 239 is older than 244: it ignores AllowedCPUs=/) });
    expect(by['cgroup v2']!.status).toBe('fail');
  });
});

describe('buildkite-agent versions', () => {
  it('3.119-3.127: ping-mode=poll-only; below 3.133 setup warns and doctor fails, naming the upgrade', async () => {
    const old = agent('3.125.1');
    const root = tmp('bkci-root-');
    const r = await setup(HOSTS.l40s, root, [], old);
    expect(r.code, r.stderr).toBe(0);
    expect(read(root, 'etc/buildkite-agent/bkci/agents/gpu0.cfg')).toMatch(/^disconnect-after-job=true\n[^\n]*\nping-mode=poll-only$/m);
    expect(r.stderr).toMatch(/buildkite-agent 3\.125\.1 keeps the registration token in its \/proc\/<pid>\/environ.*upgrade to buildkite-agent 3\.133\.0/);
    const { runDoctor } = await import('../../src/node/doctor.js');
    const items = await runDoctor({ root, hostRoot: HOSTS.l40s, staging: false }, quietIo(hostEnv(HOSTS.l40s)));
    expect(items.find((i) => i.check === 'agent version')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/3\.125\.1.*environ/) });
  });

  it('below 3.89 (no additional-hooks-paths): setup exits 2 naming the upgrade (a warning when staged), doctor fails', async () => {
    const { hooksUnsupported } = await import('../../src/node/host-gates.js');
    expect(hooksUnsupported([3, 88, 9])).toMatch(/3\.88\.9 ignores additional-hooks-paths \(added in 3\.89\.0\)/);
    expect(hooksUnsupported([3, 89, 0])).toBeUndefined();
    expect(hooksUnsupported(undefined)).toBeUndefined();
    const old = agent('3.88.1');
    // --dry-run without --root: planned for this host, so the gate applies.
    const r = await setup(HOSTS.l40s, undefined, ['--dry-run', '--bkci-bin', '/bin/true'], old);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${old}: buildkite-agent 3.88.1 ignores additional-hooks-paths`);
    expect(r.stderr).toMatch(/upgrade buildkite-agent to 3\.133\.0 or later/);
    expect(r.stdout).toBe('');
    const root = tmp('bkci-root-');
    const s = await setup(HOSTS.l40s, root, [], old);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/\(staged; on the host this is an error\): buildkite-agent 3\.88\.1 ignores additional-hooks-paths/);
    const { runDoctor } = await import('../../src/node/doctor.js');
    const items = await runDoctor({ root, hostRoot: HOSTS.l40s, staging: false }, quietIo(hostEnv(HOSTS.l40s)));
    expect(items.find((i) => i.check === 'agent version')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/3\.88\.1 ignores additional-hooks-paths/),
    });
  });

  it('3.133 and later: no ping-mode, no warning, doctor ok; before 3.119 (polling only) no ping-mode', async () => {
    const root = tmp('bkci-root-');
    const r = await setup(HOSTS.l40s, root);
    expect(r.code, r.stderr).toBe(0);
    expect(read(root, 'etc/buildkite-agent/bkci/agents/gpu0.cfg')).not.toContain('ping-mode');
    expect(r.stderr).not.toMatch(/environ/);
    const { runDoctor } = await import('../../src/node/doctor.js');
    const items = await runDoctor({ root, hostRoot: HOSTS.l40s, staging: false }, quietIo(hostEnv(HOSTS.l40s)));
    expect(items.find((i) => i.check === 'agent version')!.status).toBe('ok');
    const root2 = tmp('bkci-root-');
    expect((await setup(HOSTS.l40s, root2, [], agent('3.100.0'))).code).toBe(0);
    expect(read(root2, 'etc/buildkite-agent/bkci/agents/gpu0.cfg')).not.toContain('ping-mode');
  });
});

describe('a re-run never waits for a busy agent', () => {
  it('every start, stop and restart is queued (--no-block); stopping waits for the job (TimeoutStopSec=infinity); limits for NCCL', async () => {
    const root = tmp('bkci-root-');
    let r = await setup(HGX, root, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const unit = read(root, UNIT);
    expect(unit).toMatch(/^KillMode=mixed$/m);
    expect(unit).toMatch(/^TimeoutStopSec=infinity$/m);
    expect(unit).toMatch(/^LimitMEMLOCK=infinity$/m);
    expect(unit).toMatch(/^LimitNOFILE=1048576$/m);
    // A changed setting: the plan's systemctl calls never wait (staged: listed in the plan).
    const { detectHost } = await import('../../src/node/detect/index.js');
    const { planNodeSetup } = await import('../../src/node/plan.js');
    const { gatherState } = await import('../../src/node/state.js');
    const { setupOptions } = await import('./helpers.js');
    const facts = await detectHost(HGX, 'auto', quietIo(hostEnv(HGX)));
    const o1 = setupOptions({ queue: 'q' });
    const p1 = planNodeSetup(facts, o1, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    const { applyPlan } = await import('../../src/node/apply.js');
    await applyPlan(p1, { root, runCommands: false, start: false, staging: true, user: 'buildkite-agent' }, quietIo({}));
    const o2 = setupOptions({ queue: 'q', gpusPerAgent: 2, stopTimeout: '3h' });
    const draft = planNodeSetup(facts, o2, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    const state = await gatherState(
      root,
      draft.files.map((f) => f.path),
      draft.dirs.map((d) => d.path),
      'buildkite-agent',
      true,
    );
    const p2 = planNodeSetup(facts, o2, { ...state, userExists: true });
    const systemctl = p2.commands.map((c) => c.argv).filter((a) => a[0] === 'systemctl' && a[1] !== 'daemon-reload');
    expect(systemctl.length).toBeGreaterThan(0);
    for (const a of systemctl) expect(a, a.join(' ')).toContain('--no-block');
    expect(p2.commands.map((c) => c.argv.join(' '))).toContain('systemctl disable --now --no-block bkci-agent@gpu0.service');
    expect(p2.files.find((f) => f.path === '/etc/systemd/system/bkci-agent@.service')!.content).toMatch(/^TimeoutStopSec=3h$/m);
    // --stop-timeout on the command line; a bad one is exit 2 naming the flag.
    r = await setup(HGX, tmp('bkci-root-'), ['--stop-timeout', '90m']);
    expect(r.code, r.stderr).toBe(0);
    r = await setup(HGX, tmp('bkci-root-'), ['--stop-timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--stop-timeout "soon"/);
  });
});

describe('--bkci-bin', () => {
  it('refuses (exit 2, naming the path and why) a bkci a non-root user could replace', async () => {
    const dir = tmp('bkci-bin-');
    const bin = join(dir, 'bkci');
    writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    // --dry-run without --root: planned for this host, so the gate applies.
    const r = await setup(HOSTS.l40s, undefined, ['--dry-run', '--bkci-bin', bin]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--bkci-bin: ${bin}`);
    expect(r.stderr).toMatch(/can be changed by a user other than root|cannot enter/);
    expect(r.stderr).toMatch(/bkci self install/);
    // Staged (--root): the units are not run here; said as a warning.
    const s = await setup(HOSTS.l40s, tmp('bkci-root-'), ['--bkci-bin', bin]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/--bkci-bin \(staged; on the host this is an error\)/);
  });

  it('doctor checks the unit’s bkci', async () => {
    const { runDoctor } = await import('../../src/node/doctor.js');
    const root = tmp('bkci-root-');
    expect((await setup(HOSTS.l40s, root)).code).toBe(0);
    const unitPath = join(root, UNIT);
    const dir = tmp('bkci-bin-');
    writeFileSync(join(dir, 'bkci'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(unitPath, read(root, UNIT).replace(/^ExecStartPre=.* node check/m, `ExecStartPre=${join(dir, 'bkci')} node check`));
    const items = await runDoctor({ root, hostRoot: HOSTS.l40s, staging: false }, quietIo(hostEnv(HOSTS.l40s)));
    expect(items.find((i) => i.check === 'bkci binary')).toMatchObject({ status: 'fail', detail: expect.stringContaining(join(dir, 'bkci')) });
  });
});

describe('device access as the agent user', () => {
  it('doctor fails a device node the agent user cannot open (modes, owner, unit groups)', async () => {
    const { runDoctor } = await import('../../src/node/doctor.js');
    const root = tmp('bkci-root-');
    expect((await setup(HEADLESS, root)).code).toBe(0);
    const host = tmp('bkci-host-');
    cpSync(HEADLESS, host, { recursive: true });
    mkdirSync(join(root, 'etc'), { recursive: true });
    const me = process.getuid!();
    // The agent user is someone else than the owner of the fixture's device files.
    writeFileSync(
      join(root, 'etc/passwd'),
      `root:x:0:0::/root:/bin/sh\nbuildkite-agent:x:${me + 4242}:${me + 4242}::/var/lib/buildkite-agent:/usr/sbin/nologin\n`,
    );
    writeFileSync(join(root, 'etc/group'), `root:x:0:\nbuildkite-agent:x:${me + 4242}:\n`);
    for (const d of ['dev/nvidia0', 'dev/nvidia1', 'dev/nvidiactl']) chmodSync(join(host, d), 0o666);
    const doctor = async () => (await runDoctor({ root, hostRoot: host, staging: false }, quietIo(hostEnv(host)))).find((i) => i.check === 'device access')!;
    expect(await doctor()).toMatchObject({ status: 'ok', detail: expect.stringMatching(/can open its 4 device nodes/) });
    chmodSync(join(host, 'dev/nvidia1'), 0o600);
    expect(await doctor()).toMatchObject({ status: 'fail', detail: expect.stringContaining('gpu1: /dev/nvidia1') });
  });

  it('opens the nodes as the agent user with setpriv when bkci runs as root on the host', async () => {
    const { devicesUnopenable } = await import('../../src/node/host-facts.js');
    const dir = tmp('bkci-dev-');
    chmodSync(dir, 0o755);
    const open = join(dir, 'open');
    const closed = join(dir, 'closed');
    writeFileSync(open, '', { mode: 0o666 });
    writeFileSync(closed, '', { mode: 0o600 });
    chmodSync(open, 0o666);
    const nobody = { name: 'nobody', uid: 65534, gids: [65534] };
    const r = await devicesUnopenable([open, closed], nobody, quietIo({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }));
    if (process.getuid!() === 0 && spawnSync('setpriv', ['--version']).status === 0) expect(r).toEqual([closed]);
    // Not root (or no setpriv): it cannot ask, and says so instead of guessing.
    else expect(r).toBeUndefined();
  });
});
