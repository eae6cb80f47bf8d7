// `bkci node doctor`'s checks of what agents need to come up: systemd new enough for the pinning,
// an agent that keeps its token out of /proc, a bkci the units may run as the health check, and
// device nodes the agent user can open. Facts from host-facts.ts, decisions from host-gates.ts.
import { readFile } from 'node:fs/promises';
import type { Io } from '../util/io.js';
import { parseEnvFile } from './check.js';
import { agentVersion, configuredDockerDriver, deviceFacts, dockerInfo, devicesUnopenable, pathEntries, systemdVersion, userIds } from './host-facts.js';
import {
  BKCI_BIN_FIX,
  devicesDenied,
  dockerCgroupVerdict,
  hooksUnsupported,
  PINNING_FIX,
  PINNING_SYSTEMD,
  tokenExposure,
  unsafeExecutable,
  versionText,
} from './host-gates.js';
import type { Manifest } from './plan.js';
import { under } from './safe-fs.js';
import { PATHS } from './units.js';
import type { DoctorItem, DoctorStatus } from './vendors/types.js';

export interface GateDoctorOptions {
  root: string;
  hostRoot: string;
  staging: boolean;
}

const item = (check: string, status: DoctorStatus, detail: string, fix?: string): DoctorItem => ({ check, status, detail, ...(fix ? { fix } : {}) });

// The unit's command lines: ExecStart='s binary, ExecStartPre='s bkci argv (before ` node check`).
export function unitCommands(unit: string): { agentBin?: string; bkciBin?: string[] } {
  const agentBin = /^ExecStart=(\S+)/m.exec(unit)?.[1];
  const pre = /^ExecStartPre=(.+?)\s+node check\b/m.exec(unit)?.[1];
  return { ...(agentBin ? { agentBin } : {}), ...(pre ? { bkciBin: pre.trim().split(/\s+/) } : {}) };
}

export async function gateChecks(opts: GateDoctorOptions, m: Manifest, io: Pick<Io, 'env' | 'log'>): Promise<DoctorItem[]> {
  const out: DoctorItem[] = [];
  const unit = await readFile(under(opts.root, PATHS.templateUnit), 'utf8').catch(() => '');
  const { agentBin, bkciBin } = unitCommands(unit);
  // On a staged tree (--root) the binaries and systemd are this machine's: said, not failed.
  const failOr = (bad: boolean): DoctorStatus => (!bad ? 'ok' : opts.staging ? 'warn' : 'fail');

  const systemd = await systemdVersion(opts.hostRoot, io);
  if (systemd === undefined)
    out.push(
      item(
        'systemd version',
        'warn',
        opts.hostRoot === '/'
          ? 'systemctl --version gave no version'
          : `no systemd version found under ${opts.hostRoot} (libsystemd-shared-<version>.so in usr/lib/systemd or usr/lib64/systemd, or var/lib/dpkg/status)`,
        `check it on the host: systemctl --version (AllowedCPUs= and AllowedMemoryNodes= need ${PINNING_SYSTEMD} or later)`,
      ),
    );
  else
    out.push(
      systemd < PINNING_SYSTEMD
        ? item(
            'systemd version',
            'fail',
            `systemd ${systemd} is older than ${PINNING_SYSTEMD}: it ignores AllowedCPUs= and AllowedMemoryNodes=, so the agents are not pinned to their CPUs and memory nodes`,
            PINNING_FIX.replace(/, or pass --allow-unpinned.*$/, ''),
          )
        : item('systemd version', 'ok', `systemd ${systemd}`),
    );

  const version = agentBin ? await agentVersion(agentBin, io) : undefined;
  if (!version) out.push(item('agent version', 'skip', `the version of ${agentBin ?? 'buildkite-agent'} is unknown`));
  else {
    const exposure = hooksUnsupported(version) ?? tokenExposure(version);
    out.push(
      exposure
        ? item('agent version', failOr(true), exposure, 'upgrade buildkite-agent, then re-run bkci node setup')
        : item('agent version', 'ok', `buildkite-agent ${versionText(version)} keeps the registration token out of /proc/<pid>/environ`),
    );
  }

  const user = await userIds(opts.staging ? '/' : opts.root, m.user);
  if (!bkciBin) out.push(item('bkci binary', 'fail', `${PATHS.templateUnit} has no ExecStartPre= health check`, 're-run bkci node setup'));
  else {
    const problems: string[] = [];
    for (const [i, file] of bkciBin.entries()) {
      const why = unsafeExecutable(file, await pathEntries(file), user, i === 0);
      if (why) problems.push(why);
    }
    out.push(
      problems.length
        ? item('bkci binary', failOr(true), problems.join('; '), BKCI_BIN_FIX)
        : item('bkci binary', 'ok', `${bkciBin.join(' ')}: root's, and ${m.user} can run it`),
    );
  }
  out.push(await deviceAccess(opts, m, io));
  return out;
}

// Every device node of every agent (its env file's BKCI_DEVICES and its DeviceAllow= paths that
// exist), opened as the agent user with its unit's groups.
async function deviceAccess(opts: GateDoctorOptions, m: Manifest, io: Pick<Io, 'env' | 'log'>): Promise<DoctorItem> {
  const denied: string[] = [];
  let checked = 0;
  for (const a of m.agents) {
    const env = parseEnvFile(await readFile(under(opts.root, PATHS.agentEnv(a.instance)), 'utf8').catch(() => ''));
    const paths = [
      ...new Set([
        ...(env.BKCI_DEVICES ?? '').split(',').filter(Boolean),
        ...(a.deviceAllow ?? []).map((d) => d.split(' ')[0]!).filter((p) => p.startsWith('/dev/')),
      ]),
    ];
    const facts = (await deviceFacts(opts.hostRoot, paths)).filter((d) => d.exists);
    if (!facts.length) continue;
    checked += facts.length;
    const user = await userIds(opts.staging ? '/' : opts.root, m.user, a.groups ?? []);
    // On the host itself as root: really open them as the agent user; else decide on the modes.
    const real =
      !opts.staging && opts.hostRoot === '/'
        ? await devicesUnopenable(
            facts.map((d) => d.path),
            user,
            io,
          )
        : undefined;
    const bad = real ?? devicesDenied(facts, user).map((d) => d.path);
    for (const p of bad) denied.push(`${a.instance}: ${p}`);
  }
  if (!checked) return item('device access', 'skip', 'no device nodes to check');
  if (denied.length)
    return item(
      'device access',
      // A staged tree's device files are fixtures: their modes are said, not failed.
      opts.staging ? 'warn' : 'fail',
      `${m.user} cannot open ${denied.join(', ')} (read-write)`,
      'check the node’s group (ls -l) and the unit’s SupplementaryGroups=; re-run bkci node setup so it reads the groups again',
    );
  return item('device access', 'ok', `${m.user} can open its ${checked} device node${checked === 1 ? '' : 's'}`);
}

// Docker's cgroup driver (docker is installed): only the systemd driver keeps jobs' containers,
// started with --cgroup-parent bkci-<i>.slice, inside their agent's slice. An unreachable daemon
// is a warning (unless daemon.json names another driver), never a crash.
export async function dockerCgroupCheck(opts: GateDoctorOptions, io: Pick<Io, 'env' | 'log'>): Promise<DoctorItem> {
  const { info, error } = await dockerInfo(io);
  const v = dockerCgroupVerdict(info, error, await configuredDockerDriver(opts.root));
  return item('docker cgroup driver', v.status, v.detail, v.fix);
}
