// Each agent's own environment: HOME from the agent user's passwd entry (not from --build-root), a
// TMPDIR and XDG_CACHE_HOME of its own (0700, the agent's), one git mirrors directory per host, and
// thread counts from the cpuset that a job's own values win over (a real bash runs the hook).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { passwdHome, threadDefaults } from '../../src/node/agent-env.js';
import { detectHost } from '../../src/node/detect/index.js';
import { planNodeSetup } from '../../src/node/plan.js';
import { runBkci } from '../helpers/io.js';
import { hostEnv, HOSTS, quietIo, setupOptions } from './helpers.js';

const facts = (host: string) => detectHost(host, 'auto', quietIo(hostEnv(host)));
const empty = () => ({ files: new Map(), dirs: new Set<string>(), manifest: undefined, userExists: true });
const modeOf = (p: string) => (statSync(p).mode & 0o7777).toString(8).padStart(4, '0');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('per-agent environment (planner)', () => {
  it('passwdHome reads the user’s home field', () => {
    const text = 'root:x:0:0:root:/root:/bin/bash\nbuildkite-agent:x:998:998::/home/buildkite/:/usr/sbin/nologin\nbk:x:1:1\n';
    expect(passwdHome(text, 'buildkite-agent')).toBe('/home/buildkite');
    expect(passwdHome(text, 'root')).toBe('/root');
    expect(passwdHome(text, 'bk')).toBeUndefined();
    expect(passwdHome(text, 'nobody')).toBeUndefined();
    expect(threadDefaults(12)).toEqual({ MAX_JOBS: '12', CMAKE_BUILD_PARALLEL_LEVEL: '12', OMP_NUM_THREADS: '12' });
  });

  it('HOME is the passwd home whatever --build-root is; TMPDIR, XDG_CACHE_HOME per agent; one git-mirrors-path', async () => {
    const p = planNodeSetup(await facts(HOSTS.h100), setupOptions({ buildRoot: '/nvme/builds', agentHome: '/home/buildkite' }), empty());
    const unit = p.files.find((f) => f.path === '/etc/systemd/system/bkci-agent@.service')!.content;
    expect(unit).toMatch(/^Environment=HOME=\/home\/buildkite$/m);
    expect(unit).not.toContain('HOME=/nvme');
    const a = p.agents[3]!;
    expect(a.env).toMatchObject({ TMPDIR: '/nvme/builds/gpu3/tmp', XDG_CACHE_HOME: '/nvme/builds/gpu3/cache', BKCI_CPU_COUNT: String(a.cpuCount) });
    expect(a.jobDefaults).toEqual(threadDefaults(a.cpuCount));
    expect(a.cpuCount).toBe(12);
    const dirs = new Map(p.dirs.map((d) => [d.path, d]));
    expect(dirs.get('/nvme/builds/gpu3/tmp')).toMatchObject({ mode: 0o700, owner: 'agent', kind: 'build' });
    expect(dirs.get('/nvme/builds/gpu3/cache')).toMatchObject({ mode: 0o700, owner: 'agent', kind: 'build' });
    expect(dirs.get('/nvme/git-mirrors')).toMatchObject({ mode: 0o750, owner: 'agent', kind: 'build' });
    const cfgs = p.files.filter((f) => f.path.endsWith('.cfg'));
    expect(cfgs).toHaveLength(8);
    for (const c of cfgs) expect(c.content).toContain('git-mirrors-path="/nvme/git-mirrors"');
    // The user does not exist yet: useradd gives it the packaged agent's home.
    const fresh = planNodeSetup(await facts(HOSTS.h100), setupOptions({ buildRoot: '/nvme/builds' }), { ...empty(), userExists: false });
    expect(fresh.commands[0]!.argv).toEqual(expect.arrayContaining(['--home-dir', '/var/lib/buildkite-agent']));
    expect(fresh.files.find((f) => f.path === '/etc/systemd/system/bkci-agent@.service')!.content).toMatch(/^Environment=HOME=\/var\/lib\/buildkite-agent$/m);
  });
});

describe('per-agent environment (CLI, hook run by bash)', () => {
  it('stages HOME from the host’s passwd, the agent directories with their modes; the hook sets thread counts unless the job did', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bkci-agentenv-'));
    const host = mkdtempSync(join(tmpdir(), 'bkci-agentenv-host-'));
    cpSync(HOSTS.h100, host, { recursive: true });
    mkdirSync(join(host, 'etc'), { recursive: true });
    writeFileSync(join(host, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nbuildkite-agent:x:998:998::/srv/buildkite:/usr/sbin/nologin\n');
    const agentBin = join(root, 'buildkite-agent');
    writeFileSync(agentBin, '#!/bin/sh\n', { mode: 0o755 });
    const r = await runBkci(
      ['node', 'setup', '--queue', 'h100', '--host-root', host, '--root', root, '--agent-bin', agentBin, '--build-root', '/nvme/builds'],
      {
        env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: 'bkat_agentenvtoken' }),
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(root, 'etc/systemd/system/bkci-agent@.service'), 'utf8')).toMatch(/^Environment=HOME=\/srv\/buildkite$/m);
    expect(modeOf(join(root, 'nvme/builds/gpu2/tmp'))).toBe('0700');
    expect(modeOf(join(root, 'nvme/builds/gpu2/cache'))).toBe('0700');
    expect(modeOf(join(root, 'nvme/git-mirrors'))).toBe('0750');
    expect(readFileSync(join(root, 'etc/buildkite-agent/bkci/agents/gpu2.cfg'), 'utf8')).toContain('git-mirrors-path="/nvme/git-mirrors"');

    // The agent's environment hook (its own when it has one, else the shared one), pointed at the
    // staged tree, its device check satisfied by the fixture host's nodes.
    const conf = join(root, 'etc/buildkite-agent/bkci');
    const hooks = walk(conf).filter((p) => p.endsWith('/environment'));
    const hookPath = hooks.find((p) => relative(conf, p).includes('gpu2')) ?? hooks[0]!;
    const staged = (s: string) => s.replaceAll('/etc/buildkite-agent/bkci', conf).replaceAll('/dev/', `${host}/dev/`);
    const envFile = join(conf, 'agents/gpu2.env');
    writeFileSync(envFile, staged(readFileSync(envFile, 'utf8')));
    const hook = join(root, 'hook-under-test');
    writeFileSync(hook, staged(readFileSync(hookPath, 'utf8')), { mode: 0o755 });
    const show = 'echo "MAX_JOBS=$MAX_JOBS CMAKE=$CMAKE_BUILD_PARALLEL_LEVEL OMP=$OMP_NUM_THREADS CPUS=$BKCI_CPU_COUNT TMPDIR=$TMPDIR CACHE=$XDG_CACHE_HOME"';
    const run = (env: Record<string, string>) =>
      spawnSync('bash', ['-c', `source ${hook} >/dev/null && ${show}`], { env: { PATH: hostEnv(host).PATH, BKCI_AGENT: 'gpu2', ...env }, encoding: 'utf8' });
    let out = run({});
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe('MAX_JOBS=12 CMAKE=12 OMP=12 CPUS=12 TMPDIR=/nvme/builds/gpu2/tmp CACHE=/nvme/builds/gpu2/cache');
    // The job's own values win; the ones it did not set still come from the cpuset.
    out = run({ MAX_JOBS: '3', OMP_NUM_THREADS: '1' });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toContain('MAX_JOBS=3 CMAKE=12 OMP=1 CPUS=12');
    // An empty value counts as not set.
    out = run({ CMAKE_BUILD_PARALLEL_LEVEL: '' });
    expect(out.stdout).toContain('CMAKE=12');
  });
});
