// `bkci node check AGENT`: is this agent's hardware fit for the next job? Run by systemd as
// ExecStartPre before every (re)start of the agent, so a GPU left busy or failing keeps its own
// agent offline instead of failing a stream of jobs. Facts come from the vendor tool and statfs;
// judging them is pure (judgeHealth).
import { access, readFile, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError, UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { formatBytes } from '../util/bytes.js';
import { describeFailure, runTool } from './detect/tools.js';
import { vendorOf } from './vendors/index.js';
import type { GpuReport } from './vendors/types.js';
import { checkRoot, readManifest, under } from './state.js';
import { PATHS } from './units.js';

export type { GpuReport } from './vendors/types.js';

export interface CheckOptions {
  root: string;
  hostRoot: string;
  // Memory a GPU may show in use with nothing running on it (driver/context overhead).
  maxUsedMiB: number;
}

export interface HealthItem {
  check: string;
  ok: boolean;
  detail: string;
}

export interface CheckResult {
  agent: string;
  ok: boolean;
  items: HealthItem[];
}

export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

// An agent's environment file, by instance (gpu0) or by agent name (host-gpu0).
export async function readAgentEnv(root: string, agent: string): Promise<Record<string, string>> {
  if (!/^[A-Za-z0-9._-]+$/.test(agent))
    throw new UsageError(`agent ${JSON.stringify(agent)}: not an agent instance name`, 'use the instance, e.g. gpu0 (see bkci node status)');
  await checkRoot(root, true);
  const instance = (await readManifest(root).catch(() => undefined))?.agents.find((a) => a.name === agent)?.instance ?? agent;
  try {
    return parseEnvFile(await readFile(under(root, PATHS.agentEnv(instance)), 'utf8'));
  } catch {
    throw new UsageError(`no bkci agent ${agent}: ${under(root, PATHS.agentEnv(instance))} does not exist`, 'see bkci node status for the agents on this host');
  }
}

export const CLEANUP_FILE = 'disk-cleanup.json';

interface Disk {
  path: string;
  free: number;
  min: number;
  cleanup?: { freed: number; error?: string };
}

// Free space for the build path's file system (its nearest existing ancestor's).
async function diskFree(at: string, path: string, min: number): Promise<Disk | undefined> {
  for (let p = at; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return { path, free: s.bavail * s.bsize, min };
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

export function judgeHealth(agent: string, gpus: GpuReport[], disk: Disk | undefined, devicesMissing: string[], maxUsedMiB: number): CheckResult {
  const items: HealthItem[] = [];
  for (const g of gpus) {
    if (!g.present) {
      items.push({ check: `gpu ${g.id}`, ok: false, detail: `GPU ${g.id} is missing (${g.reason ?? 'the driver does not list it'})` });
      continue;
    }
    const problems: string[] = [];
    if (g.healthy === false) problems.push(`health is ${g.healthText ?? 'not OK'}`);
    if (g.processes.length)
      problems.push(`${g.processes.length} compute process${g.processes.length === 1 ? '' : 'es'} left on it (pid ${g.processes.join(', ')})`);
    if (g.memoryUsedMiB !== undefined && g.memoryUsedMiB > maxUsedMiB) problems.push(`${g.memoryUsedMiB} MiB of memory in use with no job running`);
    if (g.eccUncorrected) problems.push(`${g.eccUncorrected} uncorrected ECC error${g.eccUncorrected === 1 ? '' : 's'}`);
    if (g.retiredPending) problems.push('retired pages pending (reset the GPU)');
    if (g.remapPending) problems.push('row remapping pending (reset the GPU)');
    if (g.remapFailure) problems.push('row remapping failed (the GPU needs service)');
    if (g.recoveryAction !== undefined && !/^none$/i.test(g.recoveryAction)) problems.push(`the driver asks for recovery: ${g.recoveryAction}`);
    problems.push(...(g.problems ?? []));
    const detail = problems.length ? problems.join('; ') : 'present, idle, no uncorrected errors';
    const notes = [...(g.notApplicable?.length ? [`not applicable: ${g.notApplicable.join(', ')}`] : []), ...(g.note ? [g.note] : [])];
    items.push({ check: `gpu ${g.id}`, ok: problems.length === 0, detail: notes.length ? `${detail} (${notes.join('; ')})` : detail });
  }
  if (devicesMissing.length)
    items.push({ check: 'devices', ok: false, detail: `missing device node${devicesMissing.length === 1 ? '' : 's'}: ${devicesMissing.join(', ')}` });
  if (disk) {
    const ok = disk.free >= disk.min;
    const cleaned = disk.cleanup ? `; disk cleanup ${disk.cleanup.error ? `failed: ${disk.cleanup.error}, ` : ''}freed ${formatBytes(disk.cleanup.freed)}` : '';
    items.push({ check: 'disk', ok, detail: `${formatBytes(disk.free)} free at ${disk.path}${ok ? '' : ` (below ${formatBytes(disk.min)})`}${cleaned}` });
  }
  return { agent, ok: items.every((i) => i.ok), items };
}

export async function checkAgent(agent: string, opts: CheckOptions, io: Pick<Io, 'env' | 'log'>): Promise<CheckResult> {
  const env = await readAgentEnv(opts.root, agent);
  const id = env.BKCI_GPU_VENDOR ?? 'none';
  const vendor = vendorOf(id);
  if (!vendor)
    throw new InputError(`agent ${agent}: BKCI_GPU_VENDOR=${JSON.stringify(id)} in its environment file is not a vendor bkci knows`, 're-run bkci node setup');
  const gpus = await vendor.health(env, io);

  const devicesMissing: string[] = [];
  for (const d of (env.BKCI_DEVICES ?? '').split(',').filter(Boolean)) {
    try {
      await access(under(opts.hostRoot, d));
    } catch {
      devicesMissing.push(d);
    }
  }
  let disk = env.BKCI_BUILD_PATH ? await diskFree(under(opts.root, env.BKCI_BUILD_PATH), env.BKCI_BUILD_PATH, Number(env.BKCI_MIN_FREE_DISK ?? 0)) : undefined;
  // Below the minimum: the operator's cleanup (--disk-cleanup) first, then measure again.
  if (disk && disk.free < disk.min && env.BKCI_DISK_CLEANUP) {
    const before = disk.free;
    const cmd = under(opts.root, env.BKCI_DISK_CLEANUP);
    const r = await runTool(cmd, [], io, 10 * 60_000);
    const after = (await diskFree(under(opts.root, env.BKCI_BUILD_PATH!), env.BKCI_BUILD_PATH!, disk.min)) ?? disk;
    const freed = Math.max(0, after.free - before);
    const cleanup = r.ok ? { freed } : { freed, error: describeFailure(env.BKCI_DISK_CLEANUP, [], r) };
    disk = { ...after, cleanup };
    const said = r.ok
      ? `bkci: disk cleanup freed ${formatBytes(freed)} at ${disk.path} (${formatBytes(after.free)} free now)`
      : `bkci: disk cleanup ${cleanup.error} (freed ${formatBytes(freed)})`;
    io.log.info({ agent, freed, free: after.free }, said);
    // node status reads the last cleanup from the unit's runtime directory.
    const runtimeDir = io.env.RUNTIME_DIRECTORY?.split(':')[0];
    if (runtimeDir)
      await writeFile(
        join(runtimeDir, CLEANUP_FILE),
        JSON.stringify({ at: new Date().toISOString(), freed, free: after.free, error: cleanup.error }) + '\n',
      ).catch(() => undefined);
  }
  return judgeHealth(agent, gpus, disk, devicesMissing, opts.maxUsedMiB);
}
