// What the host must be for bkci's agents to come up and stay pinned, decided on gathered facts
// (host-facts.ts gathers them): systemd and cgroup versions, the buildkite-agent version, whether
// the bkci the units run is safe for root to run as the agent's health check, and whether the
// agent user can open its device nodes. Pure: no file system, no processes.

// ---- versions ----

export type Version = [number, number, number];

// `buildkite-agent version 3.128.0, build 12345` (or `3.99.0`), `systemd 239 (239-78.el8)`.
export function parseAgentVersion(text: string): Version | undefined {
  const m = /\bversion\s+v?(\d{1,4})\.(\d{1,5})(?:\.(\d{1,5}))?/i.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function parseSystemdVersion(text: string): number | undefined {
  const m = /^systemd\s+(\d{2,4})\b/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

// systemd's version from a host tree's files, for a --host-root that is not this machine: the
// private library every systemd since 231 installs as `libsystemd-shared-<version>.so` (Fedora
// and RHEL 9 tag it with the release: `libsystemd-shared-255.4-1.fc40.so`), in
// /usr/lib/systemd, /usr/lib64/systemd, /lib/systemd or a Debian multiarch directory.
export function systemdVersionFromLibs(names: string[]): number | undefined {
  const found = names.map((n) => /^libsystemd-shared-(\d{3,4})(?:[.-][^/]*)?\.so(?:\.\d+)*$/.exec(n)?.[1]).filter((v): v is string => v !== undefined);
  return found.length ? Math.max(...found.map(Number)) : undefined;
}

// The installed systemd package's version from dpkg's status file (`Package: systemd` ...
// `Status: install ok installed` ... `Version: 255.4-1ubuntu8.4`).
export function systemdVersionFromDpkg(status: string): number | undefined {
  for (const para of status.split(/\n\s*\n/)) {
    if (!/^Package: systemd$/m.test(para) || !/^Status: .*\binstalled$/m.test(para)) continue;
    const m = /^Version: (?:\d+:)?(\d{3,4})\b/m.exec(para);
    if (m) return Number(m[1]);
  }
  return undefined;
}

export const versionText = (v: Version) => v.join('.');

export function versionBelow(v: Version, min: Version): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! < min[i]!;
  return false;
}

// buildkite-agent 3.119 added streaming pings (`ping-mode`, default auto = streaming when the
// server offers it). Until 3.128 an agent with disconnect-after-job in streaming mode noticed the
// end of its job only at the next server message, up to ~60 s later (fixed by "Fix delayed
// disconnect-after-job in streaming ping mode", agent 3.128.0): poll-only pings right after the job.
export const PING_MODE_SINCE: Version = [3, 119, 0];
export const PROMPT_DISCONNECT_SINCE: Version = [3, 128, 0];
// buildkite-agent 3.133.0 re-execs `agent start` with the registration token passed over a pipe, so
// it is no longer in /proc/<pid>/environ, which every job of the same user can read.
export const TOKEN_SCRUBBED_SINCE: Version = [3, 133, 0];

// buildkite-agent 3.89 added `additional-hooks-paths`, which is how each agent runs its own
// environment hook (its GPUs, limits and docker arguments) beside the host's hooks-path. An older
// agent ignores the setting, so its jobs would run with no isolation variables at all.
export const ADDITIONAL_HOOKS_SINCE: Version = [3, 89, 0];

export function hooksUnsupported(agent: Version | undefined): string | undefined {
  if (!agent || !versionBelow(agent, ADDITIONAL_HOOKS_SINCE)) return undefined;
  return `buildkite-agent ${versionText(agent)} ignores additional-hooks-paths (added in ${versionText(ADDITIONAL_HOOKS_SINCE)}), so no agent would run its own environment hook: its jobs would see every GPU and none of its limits`;
}

export const AGENT_UPGRADE_FIX = `upgrade buildkite-agent to ${versionText(TOKEN_SCRUBBED_SINCE)} or later (apt install buildkite-agent / yum update buildkite-agent), then re-run bkci node setup`;

export function pingModeFor(agent: Version | undefined): string | undefined {
  if (!agent) return undefined;
  return !versionBelow(agent, PING_MODE_SINCE) && versionBelow(agent, PROMPT_DISCONNECT_SINCE) ? 'poll-only' : undefined;
}

export function tokenExposure(agent: Version | undefined): string | undefined {
  if (!agent || !versionBelow(agent, TOKEN_SCRUBBED_SINCE)) return undefined;
  return `buildkite-agent ${versionText(agent)} keeps the registration token in its /proc/<pid>/environ, which every job (same user) can read: upgrade to buildkite-agent ${versionText(TOKEN_SCRUBBED_SINCE)} or later (apt install buildkite-agent / yum update buildkite-agent)`;
}

// ---- systemd and cgroups: AllowedCPUs=/AllowedMemoryNodes= ----

export type CgroupMode = 'unified' | 'hybrid' | 'legacy' | 'unknown';

export interface PinningFacts {
  systemd?: number;
  cgroup: CgroupMode;
  // Controllers of the unified hierarchy (cgroup.controllers), when unified.
  controllers?: string[];
}

// systemd 244 added AllowedCPUs= and AllowedMemoryNodes= (cpuset on the unified hierarchy); older
// ones (RHEL 8's 239) and cgroup v1/hybrid hosts accept the unit and silently leave the agent on
// every CPU and memory node. The reasons pinning does not hold, or [] when it does.
export const PINNING_SYSTEMD = 244;

export function pinningLost(f: PinningFacts): string[] {
  const out: string[] = [];
  if (f.systemd !== undefined && f.systemd < PINNING_SYSTEMD)
    out.push(`systemd ${f.systemd} is older than ${PINNING_SYSTEMD}, which added AllowedCPUs= and AllowedMemoryNodes=`);
  if (f.cgroup === 'legacy' || f.cgroup === 'hybrid')
    out.push(`the host runs cgroup v1${f.cgroup === 'hybrid' ? ' (hybrid)' : ''}, where systemd does not apply AllowedCPUs= and AllowedMemoryNodes=`);
  else if (f.cgroup === 'unified' && f.controllers) {
    const missing = ['cpuset', 'memory'].filter((c) => !f.controllers!.includes(c));
    if (missing.length) out.push(`the unified cgroup hierarchy lacks the ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''}`);
  }
  return out;
}

export const PINNING_LIMITS = 'each agent’s CPU pinning (AllowedCPUs=) and memory-node binding (AllowedMemoryNodes=)';

export const PINNING_FIX =
  'upgrade to systemd 244 or later with the unified cgroup hierarchy (RHEL 8: move to RHEL 9, or boot with systemd.unified_cgroup_hierarchy=1 — RHEL 8’s systemd 239 still ignores AllowedCPUs=), or pass --allow-unpinned to run the agents unpinned';

// ---- the bkci the units run (ExecStartPre=) ----

// One path component, from lstat (and the target of a link, from stat).
export interface PathEntry {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  dir: boolean;
  link: boolean;
}

export interface UserIds {
  name: string;
  // undefined: the user does not exist yet (setup creates it with useradd --system: no groups).
  uid?: number;
  gids: number[];
}

// Permission bits `bits` (r=4, w=2, x=1) for a user on an entry, as the kernel checks them.
export function userMay(e: Pick<PathEntry, 'mode' | 'uid' | 'gid'>, u: UserIds, bits: number): boolean {
  if (u.uid === 0) return (bits & 1) === 0 || (e.mode & 0o111) !== 0;
  const shift = u.uid !== undefined && e.uid === u.uid ? 6 : u.gids.includes(e.gid) ? 3 : 0;
  return ((e.mode >> shift) & bits) === bits;
}

// Why root must not run this file as the agent's health check, or undefined. `entries`: every
// component from / to the file (of its real path when it is a link; links themselves are resolved
// by the gatherer). `executable`: run directly (argv[0]) rather than read by node.
export function unsafeExecutable(file: string, entries: PathEntry[], user: UserIds, executable: boolean): string | undefined {
  if (!entries.length) return `${file} does not exist`;
  for (const e of entries) {
    const others = [
      e.uid !== 0 ? `it is owned by uid ${e.uid}` : undefined,
      e.mode & 0o020 && e.gid !== 0 ? `it is group-writable (gid ${e.gid})` : undefined,
      e.mode & 0o002 ? 'it is world-writable' : undefined,
    ].filter((x): x is string => x !== undefined);
    if (others.length)
      return `${e.path === file ? file : `${file}: ${e.path}`} can be changed by a user other than root (${others.join(', ')}): root runs it as the health check before every job`;
  }
  for (const e of entries.slice(0, -1))
    if (e.dir && !userMay(e, user, 1))
      return `${file}: the agent user ${user.name} cannot enter ${e.path} (mode ${(e.mode & 0o7777).toString(8).padStart(4, '0')}), so the unit's health check cannot run it`;
  const last = entries[entries.length - 1]!;
  if (last.dir) return `${file} is a directory`;
  if (!userMay(last, user, executable ? 1 : 4))
    return `${file}: the agent user ${user.name} cannot ${executable ? 'execute' : 'read'} it (mode ${(last.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

export const BKCI_BIN_FIX =
  'install bkci where root owns every directory and the agent user can read it: the single executable with `bkci self install` (/usr/local/bin/bkci), or `npm install -g` with a system node (/usr/bin/node, not ~/.nvm); then pass --bkci-bin PATH or re-run setup';

// ---- device nodes ----

export interface DeviceFact {
  path: string;
  exists: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
}

// The device nodes the agent user cannot open read-write (permission bits and groups; the unit's
// DeviceAllow= is checked elsewhere). Missing nodes are not this check's business.
export function devicesDenied(devices: DeviceFact[], user: UserIds): DeviceFact[] {
  return devices.filter((d) => d.exists && d.mode !== undefined && !userMay({ mode: d.mode, uid: d.uid ?? 0, gid: d.gid ?? 0 }, user, 6));
}

// ---- --stop-timeout ----

// `infinity` (the default: a stop waits for the running job however long it takes, like the
// packaged buildkite-agent.service's TimeoutStopSec=0), or a duration: `90` (seconds), `30s`,
// `45min` (or `45m`), `3h`. Returns the TimeoutStopSec= value, or undefined when it is not one.
export function parseStopTimeout(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'infinity' || t === 'unlimited' || t === '0') return 'infinity';
  const m = /^(\d{1,7})\s*(s|sec|m|min|h)?$/.exec(t);
  if (!m || Number(m[1]) === 0) return undefined;
  const unit = m[2] === 'h' ? 'h' : m[2] === 'm' || m[2] === 'min' ? 'min' : 's';
  return `${Number(m[1])}${unit}`;
}

// ---- docker's cgroup driver: containers in the agent's slice ----

// What `docker info --format '{{json .}}'` says that matters here. The CLI prints the daemon's
// /info fields at the top level (CgroupDriver `systemd`|`cgroupfs`|`none`, CgroupVersion `1`|`2`,
// absent before docker 20.10; SecurityOptions with `name=rootless` for a rootless daemon) and,
// when the daemon cannot be reached, `ServerErrors` (exit 0 with a format, the fields empty).
export interface DockerInfo {
  cgroupDriver?: string;
  cgroupVersion?: string;
  rootless: boolean;
  serverVersion?: string;
  serverErrors: string[];
}

export function parseDockerInfo(text: string): DockerInfo | undefined {
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) continue;
    const r = o as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const out: DockerInfo = {
      rootless: list(r.SecurityOptions).some((s) => s.split(',').includes('name=rootless')),
      serverErrors: list(r.ServerErrors),
    };
    if (str(r.CgroupDriver)) out.cgroupDriver = str(r.CgroupDriver)!;
    if (str(r.CgroupVersion)) out.cgroupVersion = str(r.CgroupVersion)!;
    if (str(r.ServerVersion)) out.serverVersion = str(r.ServerVersion)!;
    return out;
  }
  return undefined;
}

// `"exec-opts": ["native.cgroupdriver=cgroupfs"]` in daemon.json: the driver the daemon is told
// to use (undefined when it is not set there, or the file is not JSON).
export function daemonJsonCgroupDriver(text: string): string | undefined {
  try {
    const o = JSON.parse(text) as { 'exec-opts'?: unknown };
    const opts = Array.isArray(o['exec-opts']) ? o['exec-opts'] : [];
    for (const x of opts) {
      const m = typeof x === 'string' ? /^native\.cgroupdriver\s*=\s*(\S+)$/.exec(x.trim()) : null;
      if (m) return m[1];
    }
  } catch {
    // not JSON: docker itself refuses to start then
  }
  return undefined;
}

export const DOCKER_SYSTEMD_FIX =
  'add "exec-opts": ["native.cgroupdriver=systemd"] to /etc/docker/daemon.json (merge it into the existing JSON), then systemctl restart docker (running containers stop unless "live-restore" is on) and run bkci node doctor again';

export const DOCKER_ROOTLESS_FIX =
  'delegate the controllers to the agent user’s systemd: /etc/systemd/system/user@.service.d/delegate.conf with [Service] and Delegate=cpu cpuset io memory pids, systemctl daemon-reload, then restart that user’s docker (systemctl --user restart docker); or use the system docker with the systemd cgroup driver';

export interface DockerVerdict {
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

// Whether a job's containers, started with `--cgroup-parent bkci-<i>.slice`, land in the agent's
// slice and keep its limits. Only docker's systemd cgroup driver reads that value as a systemd
// slice; the cgroupfs driver makes a plain cgroup named bkci-<i>.slice at the top of the tree,
// outside the slice. `why`: why `docker info` gave nothing; `configured`: daemon.json's driver.
export function dockerCgroupVerdict(info: DockerInfo | undefined, why: string | undefined, configured: string | undefined): DockerVerdict {
  const unreachable = !info || info.serverErrors.length > 0 || !info.cgroupDriver;
  if (unreachable) {
    const reason = info?.serverErrors[0] ?? why ?? 'docker info printed no cgroup driver';
    if (configured && configured !== 'systemd')
      return {
        status: 'fail',
        detail: `docker did not answer (${reason}), and /etc/docker/daemon.json sets native.cgroupdriver=${configured}: with that driver --cgroup-parent bkci-<agent>.slice puts a job's containers outside the agent's slice and its CPU and memory limits`,
        fix: DOCKER_SYSTEMD_FIX,
      };
    return {
      status: 'warn',
      detail: `docker did not answer (${reason}): its cgroup driver is unknown, so whether jobs' containers stay in their agent's slice (--cgroup-parent bkci-<agent>.slice, which needs the systemd driver) was not checked`,
      fix: 'start docker (systemctl start docker) and run bkci node doctor again',
    };
  }
  const driver = info.cgroupDriver!;
  const version = info.cgroupVersion ?? '1';
  if (info.rootless) {
    if (driver !== 'systemd' || version !== '2')
      return {
        status: 'fail',
        detail: `docker runs rootless with the ${driver} cgroup driver on cgroup v${version}: rootless docker applies --cpuset-cpus, --cpuset-mems and --memory only with the systemd driver on cgroup v2, so jobs' containers run without their agent's CPU and memory limits`,
        fix: `boot with the unified cgroup hierarchy (systemd.unified_cgroup_hierarchy=1) so rootless docker uses the systemd driver; ${DOCKER_ROOTLESS_FIX}`,
      };
    return {
      status: 'warn',
      detail:
        "docker runs rootless (SecurityOptions name=rootless): its containers are made by the agent user's own systemd (user@<uid>.service), so --cgroup-parent bkci-<agent>.slice names a slice there, not the agent's system slice: the slice's limits do not cover them. Each container keeps its own --cpuset-cpus, --cpuset-mems and --memory only where that user's systemd is delegated the cpuset and memory controllers (by default it gets memory, pids and cpu, not cpuset)",
      fix: DOCKER_ROOTLESS_FIX,
    };
  }
  if (driver !== 'systemd')
    return {
      status: 'fail',
      detail: `docker uses the ${driver} cgroup driver: --cgroup-parent bkci-<agent>.slice then makes a cgroup of that name at the top of the tree, outside the agent's slice, so jobs' containers escape the slice's CPU and memory limits (each keeps only its own --cpuset-cpus and --memory)`,
      fix: DOCKER_SYSTEMD_FIX,
    };
  if (version !== '2')
    return {
      status: 'warn',
      detail: `docker uses the systemd cgroup driver on cgroup v${version}${info.cgroupVersion ? '' : ' (docker older than 20.10 reports no version)'}: containers stay in their agent's slice, but on cgroup v1 systemd does not apply the slice's AllowedCPUs= (see the cgroup v2 check)`,
      fix: 'boot with systemd.unified_cgroup_hierarchy=1 (and docker 20.10 or later)',
    };
  return {
    status: 'ok',
    detail: `docker${info.serverVersion ? ` ${info.serverVersion}` : ''} uses the systemd cgroup driver on cgroup v2: jobs' containers (--cgroup-parent bkci-<agent>.slice) stay in their agent's slice and its limits`,
  };
}
