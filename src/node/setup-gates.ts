// The host gates of `bkci node setup`, applied before anything is written: facts from
// host-facts.ts, decisions from host-gates.ts. Returns warnings; throws a UsageError (exit 2) for
// a host the agents would run on unpinned (unless --allow-unpinned) or a bkci the units must not run.
import { UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { agentVersion, pathEntries, pinningFacts, userIds } from './host-facts.js';
import {
  AGENT_UPGRADE_FIX,
  BKCI_BIN_FIX,
  hooksUnsupported,
  PINNING_FIX,
  PINNING_LIMITS,
  PINNING_SYSTEMD,
  pinningLost,
  tokenExposure,
  unsafeExecutable,
  type Version,
} from './host-gates.js';

export interface GateRequest {
  root: string;
  hostRoot: string;
  staging: boolean;
  user: string;
  agentBin: string;
  bkciBin: string[];
  allowUnpinned?: boolean;
}

export interface GateResult {
  agentVersion?: Version;
  warnings: string[];
}

export async function setupGates(req: GateRequest, io: Pick<Io, 'env' | 'log'>): Promise<GateResult> {
  const warnings: string[] = [];
  const pinning = await pinningFacts(req.hostRoot, io);
  if (pinning.systemd === undefined)
    warnings.push(
      `could not tell the systemd version of ${req.hostRoot === '/' ? 'this host (systemctl --version)' : `${req.hostRoot} (no libsystemd-shared-<version>.so under usr/lib/systemd or usr/lib64/systemd, no systemd in var/lib/dpkg/status)`}: AllowedCPUs= and AllowedMemoryNodes= need systemd ${PINNING_SYSTEMD} or later, which was not checked`,
    );
  const lost = pinningLost(pinning);
  if (lost.length) {
    const what = `${lost.join('; ')}: ${PINNING_LIMITS} would be silently ignored, so every agent would share all CPUs and memory nodes`;
    if (!req.allowUnpinned) throw new UsageError(what, PINNING_FIX);
    warnings.push(`--allow-unpinned: ${what}`);
  }
  // Root runs the health check (ExecStartPre=) as the agent user before every job: each file it
  // names must be root's alone, and readable through directories the agent user can enter.
  const user = await userIds(req.staging ? '/' : req.root, req.user);
  for (const [i, file] of req.bkciBin.entries()) {
    const why = unsafeExecutable(file, await pathEntries(file), user, i === 0);
    if (!why) continue;
    if (!req.staging) throw new UsageError(`--bkci-bin: ${why}`, BKCI_BIN_FIX);
    warnings.push(`--bkci-bin (staged; on the host this is an error): ${why}`);
  }
  const version = await agentVersion(req.agentBin, io);
  if (!version) warnings.push(`could not tell the version of ${req.agentBin} (--version): agent-version gates skipped`);
  const noHooks = hooksUnsupported(version);
  if (noHooks) {
    if (!req.staging) throw new UsageError(`${req.agentBin}: ${noHooks}`, AGENT_UPGRADE_FIX);
    warnings.push(`${req.agentBin} (staged; on the host this is an error): ${noHooks}`);
  }
  const exposure = tokenExposure(version);
  if (exposure) warnings.push(exposure);
  return { ...(version ? { agentVersion: version } : {}), warnings };
}
