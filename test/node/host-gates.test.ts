// The pure decisions of "agents must come up" (src/node/host-gates.ts, vendors/nvidia-host.ts,
// devices-service.ts) on gathered facts and fixture-host tool output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderDevicesUnit } from '../../src/node/devices-service.js';
import {
  devicesDenied,
  parseAgentVersion,
  parseStopTimeout,
  parseSystemdVersion,
  pingModeFor,
  pinningLost,
  tokenExposure,
  unsafeExecutable,
  userMay,
  type PathEntry,
} from '../../src/node/host-gates.js';
import { deviceNodeCommand, fabricNotReported, fabricProblem, nvidiaServices, parseFabric } from '../../src/node/vendors/nvidia-host.js';
import { HOSTS } from './helpers.js';

const HGX = join(HOSTS.h100, '../hgx-8xh100-nvswitch');
const NVIDIA_FIX = join(HOSTS.h100, '../../nvidia');

describe('versions', () => {
  it('reads buildkite-agent and systemd versions as their tools print them', () => {
    expect(parseAgentVersion('buildkite-agent version 3.128.0, build 11017\n')).toEqual([3, 128, 0]);
    expect(parseAgentVersion('buildkite-agent version 3.99.0, build 1')).toEqual([3, 99, 0]);
    expect(parseAgentVersion('no version here')).toBeUndefined();
    expect(parseSystemdVersion('systemd 239 (239-82.el8_10.2)\n+PAM +AUDIT default-hierarchy=legacy\n')).toBe(239);
    expect(parseSystemdVersion('systemd 252 (252.38-1~deb12u1)\n')).toBe(252);
    expect(parseSystemdVersion('')).toBeUndefined();
  });

  it('ping-mode=poll-only only for 3.119 to 3.127 (streaming idles after the job; older agents only poll)', () => {
    expect(pingModeFor([3, 118, 9])).toBeUndefined();
    expect(pingModeFor([3, 119, 0])).toBe('poll-only');
    expect(pingModeFor([3, 127, 5])).toBe('poll-only');
    expect(pingModeFor([3, 128, 0])).toBeUndefined();
    expect(pingModeFor([4, 0, 0])).toBeUndefined();
    expect(pingModeFor(undefined)).toBeUndefined();
  });

  it('below 3.133 the token stays in /proc/<pid>/environ: named with the upgrade', () => {
    expect(tokenExposure([3, 132, 9])).toMatch(/3\.132\.9 keeps the registration token in its \/proc\/<pid>\/environ.*upgrade to buildkite-agent 3\.133\.0/);
    expect(tokenExposure([3, 133, 0])).toBeUndefined();
    expect(tokenExposure(undefined)).toBeUndefined();
  });
});

describe('pinning: systemd >= 244 on the unified hierarchy', () => {
  it('names each reason AllowedCPUs=/AllowedMemoryNodes= would be ignored', () => {
    expect(pinningLost({ systemd: 252, cgroup: 'unified', controllers: ['cpuset', 'cpu', 'memory'] })).toEqual([]);
    expect(pinningLost({ systemd: 239, cgroup: 'legacy' })).toEqual([
      expect.stringMatching(/systemd 239 is older than 244/),
      expect.stringMatching(/cgroup v1, where systemd does not apply/),
    ]);
    expect(pinningLost({ systemd: 249, cgroup: 'hybrid' })).toEqual([expect.stringMatching(/cgroup v1 \(hybrid\)/)]);
    expect(pinningLost({ systemd: 250, cgroup: 'unified', controllers: ['cpu', 'io'] })).toEqual([
      expect.stringMatching(/lacks the cpuset and memory controllers/),
    ]);
    // An unknown systemd (no systemctl) is not a reason on its own.
    expect(pinningLost({ cgroup: 'unified', controllers: ['cpuset', 'memory'] })).toEqual([]);
  });

  it('--stop-timeout: infinity by default, systemd durations otherwise', () => {
    expect(parseStopTimeout('infinity')).toBe('infinity');
    expect(parseStopTimeout('0')).toBe('infinity');
    expect(parseStopTimeout('90')).toBe('90s');
    expect(parseStopTimeout('45m')).toBe('45min');
    expect(parseStopTimeout('3h')).toBe('3h');
    for (const bad of ['', 'soon', '-5', '3d', '1.5h']) expect(parseStopTimeout(bad), bad).toBeUndefined();
  });
});

describe('--bkci-bin: root runs it as the health check', () => {
  const dir = (path: string, mode: number, uid = 0, gid = 0): PathEntry => ({ path, mode, uid, gid, dir: true, link: false });
  const file = (path: string, mode: number, uid = 0, gid = 0): PathEntry => ({ path, mode, uid, gid, dir: false, link: false });
  const agent = { name: 'buildkite-agent', uid: 998, gids: [997] };
  const fresh = { name: 'buildkite-agent', gids: [] };

  it('accepts a root-owned install the agent user can reach', () => {
    const entries = [dir('/', 0o755), dir('/usr', 0o755), dir('/usr/local', 0o755), dir('/usr/local/bin', 0o755), file('/usr/local/bin/bkci', 0o755)];
    expect(unsafeExecutable('/usr/local/bin/bkci', entries, agent, true)).toBeUndefined();
    // A user that does not exist yet (created by setup) is "others".
    expect(unsafeExecutable('/usr/local/bin/bkci', entries, fresh, true)).toBeUndefined();
  });

  it('refuses a bkci under /root/.nvm (0700): the agent user cannot enter it', () => {
    const p = '/root/.nvm/versions/node/v20.19.0/lib/node_modules/bkci/dist/bundle/bin.js';
    const entries = [dir('/', 0o755), dir('/root', 0o700), dir('/root/.nvm', 0o755), file(p, 0o644)];
    expect(unsafeExecutable(p, entries, agent, false)).toMatch(/the agent user buildkite-agent cannot enter \/root \(mode 0700\)/);
  });

  it('refuses one a non-root user can change: /tmp, a home, a group-writable directory', () => {
    expect(unsafeExecutable('/tmp/bkci', [dir('/', 0o755), dir('/tmp', 0o1777), file('/tmp/bkci', 0o755)], agent, true)).toMatch(
      /\/tmp\/bkci: \/tmp can be changed by a user other than root \(it is world-writable\)/,
    );
    const home = [dir('/', 0o755), dir('/home', 0o755), dir('/home/alice', 0o750, 1000, 1000), file('/home/alice/bkci', 0o755, 1000, 1000)];
    expect(unsafeExecutable('/home/alice/bkci', home, agent, true)).toMatch(/\/home\/alice can be changed .*owned by uid 1000/);
    expect(unsafeExecutable('/opt/bkci', [dir('/', 0o755), dir('/opt', 0o775, 0, 50), file('/opt/bkci', 0o755)], agent, true)).toMatch(
      /group-writable \(gid 50\)/,
    );
    expect(unsafeExecutable('/opt/bkci', [], agent, true)).toBe('/opt/bkci does not exist');
  });

  it('refuses one the agent user cannot run (not executable) or read (a script node reads)', () => {
    const base = [dir('/', 0o755), dir('/opt', 0o755)];
    expect(unsafeExecutable('/opt/bkci', [...base, file('/opt/bkci', 0o700)], agent, true)).toMatch(/cannot execute it \(mode 0700\)/);
    expect(unsafeExecutable('/opt/bin.js', [...base, file('/opt/bin.js', 0o600)], agent, false)).toMatch(/cannot read it/);
    // Group permission counts for a member of the group.
    expect(unsafeExecutable('/opt/bin.js', [...base, file('/opt/bin.js', 0o640, 0, 997)], agent, false)).toBeUndefined();
  });
});

describe('device access as the agent user', () => {
  it('decides on mode, owner, group and the unit groups', () => {
    const user = { name: 'buildkite-agent', uid: 998, gids: [998, 109] };
    expect(userMay({ mode: 0o666, uid: 0, gid: 0 }, user, 6)).toBe(true);
    expect(userMay({ mode: 0o660, uid: 0, gid: 109 }, user, 6)).toBe(true);
    expect(userMay({ mode: 0o660, uid: 0, gid: 44 }, user, 6)).toBe(false);
    const denied = devicesDenied(
      [
        { path: '/dev/nvidia0', exists: true, mode: 0o666, uid: 0, gid: 0 },
        { path: '/dev/kfd', exists: true, mode: 0o660, uid: 0, gid: 109 },
        { path: '/dev/dri/renderD128', exists: true, mode: 0o660, uid: 0, gid: 44 },
        { path: '/dev/nvidia-uvm', exists: false },
      ],
      user,
    );
    expect(denied.map((d) => d.path)).toEqual(['/dev/dri/renderD128']);
  });
});

describe('NVIDIA host services', () => {
  it('prefers nvidia-ctk for the device nodes, else nvidia-modprobe -u -c0, else none with a warning', () => {
    expect(deviceNodeCommand({ nvidiaCtk: '/usr/bin/nvidia-ctk', nvidiaModprobe: '/usr/bin/nvidia-modprobe' })).toEqual([
      '/usr/bin/nvidia-ctk',
      'system',
      'create-device-nodes',
      '--control-devices',
      '--load-kernel-modules',
    ]);
    expect(deviceNodeCommand({ nvidiaModprobe: '/usr/bin/nvidia-modprobe' })).toEqual(['/usr/bin/nvidia-modprobe', '-u', '-c0']);
    const none = nvidiaServices({}, []);
    expect(none.deviceNodes).toBeUndefined();
    expect(none.warnings).toEqual([expect.stringMatching(/neither nvidia-ctk nor nvidia-modprobe/)]);
  });

  it('NVSwitch functions make the agents want the fabric manager and the check read the fabric', () => {
    expect(nvidiaServices({ nvidiaModprobe: '/usr/bin/nvidia-modprobe' }, ['0000:05:00.0', '0000:06:00.0'])).toMatchObject({
      after: ['nvidia-fabricmanager.service'],
      env: { BKCI_NVSWITCH: '2' },
    });
    expect(nvidiaServices({ nvidiaModprobe: '/usr/bin/nvidia-modprobe' }, []).after).toBeUndefined();
  });

  it('reads the Fabric section of nvidia-smi -q per GPU UUID', () => {
    // Real output: an 8x H100 HGX host, driver 535.161.08 (no CliqueId yet).
    const text = readFileSync(join(HGX, 'out/nvidia-q.txt'), 'utf8');
    const f = parseFabric(text);
    expect(f).toHaveLength(8);
    expect(f.every((x) => x.state === 'Completed' && x.status === 'Success')).toBe(true);
    // The same GPUs as the host's other tools list, in the same order.
    const query = readFileSync(join(HGX, 'out/nvidia-query.csv'), 'utf8').trim().split('\n');
    expect(f.map((x) => x.uuid)).toEqual(query.map((l) => l.split(', ')[1]));
    const pending = text.replace('State                             : Completed', 'State                             : In Progress');
    expect(parseFabric(pending)[0]!.state).toBe('In Progress');
    // A GPU without an NVSwitch fabric (PCIe cards) says N/A.
    expect(
      parseFabric(
        'GPU 00000000:4F:00.0\n    GPU UUID                              : GPU-a\n    Fabric\n        State                             : N/A\n        Status                            : N/A\n',
      ),
    ).toEqual([{ uuid: 'GPU-a', state: 'N/A', status: 'N/A' }]);
  });

  it('a GPU without a fabric state to report: N/A (PCIe cards, A100 HGX), Not Supported, or no Fabric section', () => {
    // Real output: a TITAN V, driver 560.35.03, whose Fabric section says N/A (with CliqueId).
    const titan = parseFabric(readFileSync(join(NVIDIA_FIX, 'gpud-nvidia-smi-query.560.35.03.out.0.valid'), 'utf8'));
    expect(titan).toEqual([{ uuid: expect.stringMatching(/^GPU-/), state: 'N/A', status: 'N/A' }]);
    expect(fabricProblem(titan[0]!)).toBeUndefined();
    expect(fabricNotReported(titan[0]!)).toBe(true);
    expect(fabricProblem({ state: 'Not Supported', status: 'Success' })).toBeUndefined();
    // A driver before the fabric probe prints no Fabric section: each GPU is still listed, with no state.
    const real = readFileSync(join(HGX, 'out/nvidia-q.txt'), 'utf8');
    const old = parseFabric(real.replace(/^ {4}Fabric\n(?: {8}.*\n)+/gm, ''));
    expect(old).toHaveLength(8);
    expect(old.every((x) => x.state === undefined && fabricProblem(x) === undefined && fabricNotReported(x))).toBe(true);
  });

  it('reads the wider key column of R580 and skips the Health subsection', () => {
    // The Fabric section of a real R580 nvidia-smi -q (NVIDIA/gpu-operator#2511), under a real
    // GPU header of the HGX host: keys in a wider column, Health's own Status-like keys nested.
    const real = readFileSync(join(HGX, 'out/nvidia-q.txt'), 'utf8');
    const r580 = readFileSync(join(NVIDIA_FIX, 'fabric-r580-in-progress-gpu-operator-2511.txt'), 'utf8');
    const head = real.slice(real.indexOf('GPU 00000000:19:00.0'), real.indexOf('    Fabric\n'));
    expect(parseFabric(head + r580)).toEqual([{ uuid: 'GPU-ee7954ec-da95-fd7a-ddfd-c6b32cc2f8aa', state: 'In Progress', status: 'N/A' }]);
    expect(fabricProblem(parseFabric(head + r580)[0]!)).toMatch(/In Progress \(not Completed\)/);
  });

  it('fails a fabric that is not Completed, or completed with an error status', () => {
    // Completed with Insufficient Resources (CliqueId 0): a real node in Azure/azhpc-images#506.
    expect(fabricProblem({ state: 'Completed', status: 'Insufficient Resources' })).toMatch(/status is Insufficient Resources/);
    expect(fabricProblem({ state: 'Completed', status: 'Success' })).toBeUndefined();
    expect(fabricProblem({ state: 'In Progress', status: 'N/A' })).toMatch(/fabric state is In Progress \(not Completed\)/);
    expect(fabricProblem({ state: 'Not Started' })).toMatch(/Not Started/);
    expect(fabricProblem({ state: 'Completed', status: 'NVML_ERROR_INSUFFICIENT_RESOURCES' })).toMatch(/status is NVML_ERROR/);
  });

  it('the devices unit is a oneshot ordered before the agents and refuses a command that is not absolute', () => {
    const u = renderDevicesUnit(['/usr/bin/nvidia-modprobe', '-u', '-c0']);
    // Ordered by the agents' After= (the same edge), so the file does not change with the agents.
    expect(u).not.toContain('bkci-agent@');
    expect(u).toContain('Type=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/nvidia-modprobe -u -c0');
    expect(() => renderDevicesUnit(['nvidia-modprobe'])).toThrow(/absolute path/);
    expect(() => renderDevicesUnit(['/usr/bin/x', 'a;b'])).toThrow(/plain arguments/);
  });
});
