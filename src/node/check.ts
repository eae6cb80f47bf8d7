// `bkci node check AGENT`: is this agent's hardware fit for the next job? Run by systemd as
// ExecStartPre before every (re)start of the agent, so a GPU left busy or failing keeps its own
// agent offline instead of failing a stream of jobs. Facts come from the vendor tool and statfs;
// judging them is pure (judgeHealth).
import { access, readFile, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';
import { formatBytes } from '../util/bytes.js';
import { parseNpuSmiInfo } from './detect/ascend.js';
import { normalizeBusId } from './detect/sysfs.js';
import { NVIDIA_APPS_QUERY, NVIDIA_HEALTH_QUERY, parseNvidiaApps, parseNvidiaHealth, type NvidiaHealth } from './detect/nvidia.js';
import { amdSmiJsonList, type AmdSmiGpu } from './detect/amd.js';
import { listAmdGpus } from './detect/index.js';
import { describeFailure, runTool, which } from './detect/tools.js';
import { checkRoot, readManifest, under } from './state.js';
import { PATHS } from './units.js';

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

// GPU facts for one agent, from its vendor's tool.
export interface GpuReport {
  id: string;
  present: boolean;
  // Why a GPU counts as missing, when the tool said (a driver error rather than an absent GPU).
  reason?: string;
  healthy?: boolean;
  healthText?: string;
  processes: number[];
  memoryUsedMiB?: number;
  eccUncorrected?: number;
  retiredPending?: boolean;
  remapFailure?: boolean;
  // Something the check could not see (reported, not failed).
  note?: string;
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
    if (g.remapFailure) problems.push('row remapping failed (the GPU needs service)');
    const detail = problems.length ? problems.join('; ') : 'present, idle, no uncorrected errors';
    items.push({ check: `gpu ${g.id}`, ok: problems.length === 0, detail: g.note ? `${detail} (${g.note})` : detail });
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
  const vendor = env.BKCI_GPU_VENDOR ?? 'none';
  let gpus: GpuReport[] = [];
  if (vendor === 'nvidia') gpus = await nvidiaReports(env, io);
  else if (vendor === 'amd') gpus = await amdReports(env, io);
  else if (vendor === 'ascend') gpus = await ascendReports(env, io);

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

// A tool run for the health check: its output even when it failed (nvidia-smi prints the GPUs it
// can read and an error for the one it cannot), and the error's first line.
async function toolRun(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>): Promise<{ stdout: string; error?: string } | undefined> {
  const path = await which(cmd, io.env);
  if (!path) return undefined;
  const r = await runTool(path, args, io, 30_000);
  if (r.ok) return { stdout: r.stdout };
  if (r.timedOut || r.spawnError) return { stdout: '', error: describeFailure(cmd, args, r) };
  const said = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !/^GPU-|^\d/.test(l));
  return { stdout: r.stdout, error: `${cmd} failed${r.exitCode !== undefined ? ` (exit ${r.exitCode})` : ''}${said ? `: ${said}` : ''}` };
}

// A tool's output when it ran cleanly, else undefined.
async function tool(cmd: string, args: string[], io: Pick<Io, 'env' | 'log'>): Promise<string | undefined> {
  const r = await toolRun(cmd, args, io);
  return r && r.error === undefined ? r.stdout : undefined;
}

async function nvidiaReports(env: Record<string, string>, io: Pick<Io, 'env' | 'log'>): Promise<GpuReport[]> {
  const uuids = (env.BKCI_GPU_UUIDS ?? env.NVIDIA_VISIBLE_DEVICES ?? '').split(',').filter(Boolean);
  // `-i`: under the unit's DevicePolicy=closed only this agent's GPUs can be opened; asking
  // nvidia-smi about the others would fail.
  const only = ['-i', uuids.join(',')];
  const run = await toolRun('nvidia-smi', [...NVIDIA_HEALTH_QUERY, ...only], io);
  const rows = new Map<string, NvidiaHealth>(
    parseNvidiaHealth(run?.stdout ?? '')
      .filter((h) => uuids.includes(h.uuid))
      .map((h) => [h.uuid, h]),
  );
  if (rows.size === 0) {
    // Without the health query (an old driver), presence still comes from the GPU list.
    const list = await toolRun('nvidia-smi', ['-L'], io);
    const why = list?.error ?? run?.error;
    return uuids.map((id) =>
      list && list.stdout.includes(id)
        ? { id, present: true, processes: [], note: `health fields unavailable from nvidia-smi${run?.error ? `: ${run.error}` : ''}` }
        : { id, present: false, processes: [], ...(why ? { reason: why } : run === undefined ? { reason: 'nvidia-smi is not on PATH' } : {}) },
    );
  }
  const appsText = await tool('nvidia-smi', [...NVIDIA_APPS_QUERY, ...only], io);
  const apps = parseNvidiaApps(appsText ?? '');
  return uuids.map((id) => {
    const h = rows.get(id);
    if (!h) return { id, present: false, processes: [], ...(run?.error ? { reason: run.error } : {}) };
    return {
      id,
      present: true,
      processes: apps.filter((a) => a.uuid === id).map((a) => a.pid),
      memoryUsedMiB: h.memoryUsedMiB,
      eccUncorrected: h.eccUncorrected,
      retiredPending: h.retiredPending,
      remapFailure: h.remapFailure,
      ...(appsText === undefined ? { note: 'compute processes could not be listed' } : {}),
    };
  });
}

async function amdReports(env: Record<string, string>, io: Pick<Io, 'env' | 'log'>): Promise<GpuReport[]> {
  const buses = (env.BKCI_GPU_BUSIDS ?? '').split(',').filter(Boolean);
  // The same tools, in the same order, as discovery used (amd-smi JSON or text, rocm-smi).
  let listed: AmdSmiGpu[] = [];
  let why: string | undefined;
  try {
    listed = await listAmdGpus(io);
  } catch (err) {
    why = (err as Error).message.replace(/^--vendor amd: /, '');
  }
  const indexOf = new Map(listed.map((g) => [normalizeBusId(g.busId), g.index]));
  const hasAmdSmi = (await which('amd-smi', io.env)) !== undefined;
  const procsText = hasAmdSmi ? await tool('amd-smi', ['process', '--json'], io) : undefined;
  const procs = jsonList(procsText);
  const ecc = jsonList(hasAmdSmi ? await tool('amd-smi', ['metric', '--ecc', '--json'], io) : undefined);
  return buses.map((bus): GpuReport => {
    const idx = indexOf.get(bus);
    if (idx === undefined) return { id: bus, present: false, processes: [], ...(why ? { reason: why } : {}) };
    const p = procs.find((x) => Number(x.gpu) === idx);
    const list = Array.isArray(p?.process_list) ? (p.process_list as unknown[]) : [];
    const pids = list
      .map((e) => (e as { process_info?: unknown }).process_info)
      .filter((i): i is { pid?: unknown } => typeof i === 'object' && i !== null)
      .map((i) => Number(i.pid));
    const e = ecc.find((x) => Number(x.gpu) === idx)?.ecc as Record<string, unknown> | undefined;
    const unc = e ? Number(e.total_uncorrectable_count ?? 0) : undefined;
    return {
      id: `${idx} (${bus})`,
      present: true,
      processes: pids,
      eccUncorrected: Number.isFinite(unc) ? unc : undefined,
      ...(procsText === undefined ? { note: hasAmdSmi ? 'compute processes could not be listed' : 'no amd-smi: processes and ECC not checked' } : {}),
    };
  });
}

function jsonList(text: string | undefined): Record<string, unknown>[] {
  try {
    return (text && amdSmiJsonList(text)) || [];
  } catch {
    return [];
  }
}

async function ascendReports(env: Record<string, string>, io: Pick<Io, 'env' | 'log'>): Promise<GpuReport[]> {
  const buses = (env.BKCI_GPU_BUSIDS ?? '').split(',').filter(Boolean);
  const run = await toolRun('npu-smi', ['info'], io);
  const info = run ? parseNpuSmiInfo(run.stdout) : { chips: [], processes: [] };
  const why = run === undefined ? 'npu-smi is not on PATH' : run.error;
  return buses.map((bus): GpuReport => {
    const c = info.chips.find((x) => normalizeBusId(x.busId) === bus);
    if (!c) return { id: bus, present: false, processes: [], ...(why ? { reason: why } : {}) };
    return {
      id: `${c.npu}${c.chip ? `/${c.chip}` : ''} (${bus})`,
      present: true,
      healthy: /^ok$/i.test(c.health),
      healthText: c.health,
      processes: info.processes.filter((p) => p.npu === c.npu && p.chip === c.chip).map((p) => p.pid),
    };
  });
}
