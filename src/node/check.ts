// `bkci node check AGENT`: is this agent's hardware fit for the next job? Run by systemd as
// ExecStartPre before every (re)start of the agent, so a GPU left busy or failing keeps its own
// agent offline instead of failing a stream of jobs. Facts come from the vendor tool and statfs;
// judging them is pure (judgeHealth).
import { access, readFile, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError, UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { formatBytes } from '../util/bytes.js';
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

export function judgeHealth(
  agent: string,
  gpus: GpuReport[],
  disk: { path: string; free: number; min: number } | undefined,
  devicesMissing: string[],
  maxUsedMiB: number,
): CheckResult {
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
    const detail = problems.length ? problems.join('; ') : 'present, idle, no uncorrected errors';
    const notes = [...(g.notApplicable?.length ? [`not applicable: ${g.notApplicable.join(', ')}`] : []), ...(g.note ? [g.note] : [])];
    items.push({ check: `gpu ${g.id}`, ok: problems.length === 0, detail: notes.length ? `${detail} (${notes.join('; ')})` : detail });
  }
  if (devicesMissing.length)
    items.push({ check: 'devices', ok: false, detail: `missing device node${devicesMissing.length === 1 ? '' : 's'}: ${devicesMissing.join(', ')}` });
  if (disk) {
    const ok = disk.free >= disk.min;
    items.push({ check: 'disk', ok, detail: `${formatBytes(disk.free)} free at ${disk.path}${ok ? '' : ` (below ${formatBytes(disk.min)})`}` });
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
  let disk: { path: string; free: number; min: number } | undefined;
  if (env.BKCI_BUILD_PATH) {
    let p = under(opts.root, env.BKCI_BUILD_PATH);
    for (;;) {
      try {
        const s = await statfs(p);
        disk = { path: env.BKCI_BUILD_PATH, free: s.bavail * s.bsize, min: Number(env.BKCI_MIN_FREE_DISK ?? 0) };
        break;
      } catch {
        if (dirname(p) === p) break;
        p = dirname(p);
      }
    }
  }
  return judgeHealth(agent, gpus, disk, devicesMissing, opts.maxUsedMiB);
}
