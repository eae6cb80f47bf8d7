// Gathers the facts host-gates.ts decides on: `systemctl --version`, the cgroup hierarchy under
// --host-root, `buildkite-agent --version`, the owner and mode of each component of a path, the
// agent user's ids, and device nodes' modes. Reads only.
import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Io } from '../util/io.js';
import { runTool, which } from './detect/tools.js';
import { HostTree } from './detect/sysfs.js';
import {
  daemonJsonCgroupDriver,
  parseAgentVersion,
  parseDockerInfo,
  type DockerInfo,
  parseSystemdVersion,
  systemdVersionFromDpkg,
  systemdVersionFromLibs,
  type CgroupMode,
  type DeviceFact,
  type PathEntry,
  type PinningFacts,
  type UserIds,
  type Version,
} from './host-gates.js';
import { under } from './safe-fs.js';

type ToolIo = Pick<Io, 'env' | 'log'>;

// systemd's version: on this machine (--host-root /) from `systemctl --version` on PATH; on
// another tree (a fixture, a mounted image) from its files, never from this machine's systemctl:
// the libsystemd-shared-<version>.so file name, else dpkg's status file. undefined when unknown.
export async function systemdVersion(hostRoot: string, io: ToolIo): Promise<number | undefined> {
  if (hostRoot === '/') {
    const systemctl = await which('systemctl', io.env);
    if (!systemctl) return undefined;
    const r = await runTool(systemctl, ['--version'], io, 15_000);
    return r.ok ? parseSystemdVersion(r.stdout) : undefined;
  }
  const host = new HostTree(hostRoot);
  const multiarch = (await host.list('usr/lib')).filter((d) => /-linux-/.test(d)).map((d) => `usr/lib/${d}/systemd`);
  const names: string[] = [];
  for (const d of ['usr/lib/systemd', 'usr/lib64/systemd', 'lib/systemd', 'lib64/systemd', ...multiarch]) names.push(...(await host.list(d)));
  return systemdVersionFromLibs(names) ?? systemdVersionFromDpkg((await host.read('var/lib/dpkg/status')) ?? '');
}

// unified: /sys/fs/cgroup is cgroup2 (it has cgroup.controllers); hybrid: a cgroup2 mount at
// /sys/fs/cgroup/unified beside v1 controllers; legacy: v1 controller directories only.
export async function cgroupMode(hostRoot: string): Promise<Pick<PinningFacts, 'cgroup' | 'controllers'>> {
  const host = new HostTree(hostRoot);
  const controllers = await host.read('sys/fs/cgroup/cgroup.controllers');
  if (controllers !== undefined) return { cgroup: 'unified', controllers: controllers.trim().split(/\s+/).filter(Boolean) };
  const entries = await host.list('sys/fs/cgroup');
  let mode: CgroupMode = 'unknown';
  if (entries.includes('unified')) mode = 'hybrid';
  else if (entries.some((e) => ['cpuset', 'memory', 'cpu,cpuacct', 'systemd'].includes(e))) mode = 'legacy';
  return { cgroup: mode };
}

export async function pinningFacts(hostRoot: string, io: ToolIo): Promise<PinningFacts> {
  const systemd = await systemdVersion(hostRoot, io);
  return { ...(systemd !== undefined ? { systemd } : {}), ...(await cgroupMode(hostRoot)) };
}

// `buildkite-agent --version` (undefined when it cannot be run: a staged tree without the agent).
export async function agentVersion(agentBin: string, io: ToolIo): Promise<Version | undefined> {
  const r = await runTool(agentBin, ['--version'], io, 15_000).catch(() => undefined);
  return r?.ok ? parseAgentVersion(r.stdout) : undefined;
}

async function entry(p: string): Promise<PathEntry | undefined> {
  try {
    const s = await lstat(p);
    return { path: p, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, dir: s.isDirectory(), link: s.isSymbolicLink() };
  } catch {
    return undefined;
  }
}

// Every component from / to `file`'s real path (links resolved), each with its owner and mode; []
// when the file does not exist. Links on the way are listed too (a link is replaced by whoever can
// write its directory, which the directory's own entry covers).
export async function pathEntries(file: string): Promise<PathEntry[]> {
  let real: string;
  try {
    real = await realpath(file);
    await stat(real);
  } catch {
    return [];
  }
  const chain: string[] = [];
  for (let p = real; ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  const out: PathEntry[] = [];
  for (const p of chain) {
    const e = await entry(p);
    if (e) out.push(e);
  }
  return out;
}

// The agent user's uid and groups (primary and supplementary) from /etc/passwd and /etc/group under
// `root`, plus the unit's SupplementaryGroups= names.
export async function userIds(root: string, user: string, extraGroups: string[] = []): Promise<UserIds> {
  const passwd = await readFile(under(root, '/etc/passwd'), 'utf8').catch(() => '');
  const group = await readFile(under(root, '/etc/group'), 'utf8').catch(() => '');
  const pw = passwd
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === user);
  if (!pw) return { name: user, gids: [] };
  const gids = new Set<number>([Number(pw[3])]);
  for (const line of group.split('\n')) {
    const f = line.split(':');
    if (f.length < 3) continue;
    if ((f[3] ?? '').split(',').includes(user) || extraGroups.includes(f[0]!)) gids.add(Number(f[2]));
  }
  return { name: user, uid: Number(pw[2]), gids: [...gids].filter(Number.isInteger) };
}

export async function deviceFacts(hostRoot: string, paths: string[]): Promise<DeviceFact[]> {
  return Promise.all(
    paths.map(async (path) => {
      try {
        const s = await stat(under(hostRoot, path));
        return { path, exists: true, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
      } catch {
        return { path, exists: false };
      }
    }),
  );
}

// Opens each device read-write as the agent user (setpriv with its uid, gid and groups): the real
// answer where bkci runs as root on the host itself. The paths it could not open, or undefined
// when it cannot ask (not root, no setpriv, the user does not exist).
export async function devicesUnopenable(paths: string[], user: UserIds, io: ToolIo): Promise<string[] | undefined> {
  if (user.uid === undefined || process.getuid?.() !== 0) return undefined;
  const setpriv = await which('setpriv', io.env);
  if (!setpriv) return undefined;
  const denied: string[] = [];
  for (const p of paths) {
    const gid = user.gids[0] ?? user.uid;
    const r = await runTool(
      setpriv,
      [
        `--reuid=${user.uid}`,
        `--regid=${gid}`,
        user.gids.length ? `--groups=${user.gids.join(',')}` : '--clear-groups',
        '--',
        '/bin/sh',
        '-c',
        'exec 3<>"$1"',
        'sh',
        p,
      ],
      io,
      15_000,
    );
    if (!r.ok) denied.push(p);
  }
  return denied;
}

// `docker info --format '{{json .}}'` from the docker on PATH, and why it gave nothing (not on
// PATH, failed, timed out, not JSON). A daemon that cannot be reached still prints JSON, with
// ServerErrors.
export async function dockerInfo(io: ToolIo): Promise<{ info?: DockerInfo; error?: string }> {
  const docker = await which('docker', io.env);
  if (!docker) return { error: 'docker is not on PATH' };
  const r = await runTool(docker, ['info', '--format', '{{json .}}'], io, 20_000);
  const info = parseDockerInfo(r.stdout);
  if (info) return { info };
  const why =
    r.spawnError ?? (r.timedOut ? `docker info did not answer within ${Math.round((r.timeoutMs ?? 20_000) / 1000)} s` : r.stderr.trim().split('\n')[0]);
  return { error: why || `docker info exited ${r.exitCode ?? '?'} without JSON` };
}

// The cgroup driver /etc/docker/daemon.json (under `root`) asks for, if any.
export async function configuredDockerDriver(root: string): Promise<string | undefined> {
  const text = await readFile(under(root, '/etc/docker/daemon.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : daemonJsonCgroupDriver(text);
}
