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
