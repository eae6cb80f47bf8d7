// `bkci node status`: the agents bkci manages here (from the manifest), each unit's state and why
// it is down (the health check's last words in the journal), and drift: managed files edited,
// re-moded or deleted by hand.
import { readFile } from 'node:fs/promises';
import type { Io } from '../util/io.js';
import { CLEANUP_FILE } from './check.js';
import { runTool, which } from './detect/tools.js';
import type { AgentPlan, Manifest } from './plan.js';
import { fileState, readManifest, under } from './state.js';
import { vendorOf } from './vendors/index.js';

export interface Drift {
  path: string;
  problem: string;
}

export interface AgentStatus {
  instance: string;
  // The queue it serves (its queue= tag).
  queue?: string;
  name: string;
  unit: string;
  gpus: number[];
  cpus: string;
  memNodes: string;
  memoryMax: string;
  state: string;
  reason?: string;
  // The agent no longer matches its GPU as setup found it (a re-partitioned MIG GPU): why, and the fix.
  drift?: { problem: string; fix: string };
  // The last disk cleanup the health check ran (--disk-cleanup), from the unit's runtime directory.
  lastDiskCleanup?: { at?: string; freed: number; free?: number; error?: string };
}

export interface NodeStatus {
  managed: boolean;
  queue?: string;
  // Every queue the host serves (one unless set up with several --queue).
  queues?: string[];
  vendor?: string;
  agents: AgentStatus[];
  drift: Drift[];
}

// Compares the manifest's files with what is on disk.
export async function findDrift(root: string, m: Manifest): Promise<Drift[]> {
  const out: Drift[] = [];
  for (const f of m.files) {
    if (!f.sha256 && !f.secret) continue; // the manifest itself
    const s = await fileState(under(root, f.path));
    if (!s) out.push({ path: f.path, problem: 'missing' });
    else if (f.sha256 && s.sha256 !== f.sha256) out.push({ path: f.path, problem: 'edited by hand (re-run setup to restore it)' });
    else if (s.mode !== f.mode)
      out.push({ path: f.path, problem: `mode ${s.mode.toString(8).padStart(4, '0')}, expected ${f.mode.toString(8).padStart(4, '0')}` });
  }
  return out;
}

async function unitState(unit: string, io: Io): Promise<{ state: string; reason?: string }> {
  const systemctl = await which('systemctl', io.env);
  if (!systemctl) return { state: 'unknown (no systemctl)' };
  const r = await runTool(systemctl, ['show', '--property=ActiveState,SubState,Result', unit], io);
  if (!r.ok) return { state: 'unknown' };
  const p = Object.fromEntries(
    String(r.stdout)
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  const state = `${p.ActiveState ?? 'unknown'}${p.SubState && p.SubState !== p.ActiveState ? ` (${p.SubState})` : ''}`;
  if (p.ActiveState === 'active' && p.SubState === 'running') return { state };
  const journal = await which('journalctl', io.env);
  if (!journal) return { state };
  const j = await runTool(journal, ['--unit', unit, '--lines', '50', '--output', 'cat', '--no-pager'], io);
  const reason = String(j.stdout ?? '')
    .split('\n')
    .filter((l) => /^bkci: /.test(l) || /unfit/.test(l))
    .pop();
  return { state, reason };
}

async function lastCleanup(root: string, instance: string): Promise<{ lastDiskCleanup?: AgentStatus['lastDiskCleanup'] }> {
  try {
    const d = JSON.parse(await readFile(under(root, `/run/bkci-agent-${instance}/${CLEANUP_FILE}`), 'utf8')) as Record<string, unknown>;
    if (typeof d.freed !== 'number') return {};
    return {
      lastDiskCleanup: {
        freed: d.freed,
        ...(typeof d.at === 'string' ? { at: d.at } : {}),
        ...(typeof d.free === 'number' ? { free: d.free } : {}),
        ...(typeof d.error === 'string' ? { error: d.error } : {}),
      },
    };
  } catch {
    return {};
  }
}

// Why setup stopped an agent: its GPUs gone from the host (by bus id).
export function missingReason(a: Pick<AgentPlan, 'missing'>): string {
  const gpus = a.missing?.gpus ?? [];
  return `stopped by bkci node setup: GPU ${gpus.join(', ')} is gone from the host (dmesg; the vendor tool); re-run setup once it is back`;
}

export async function nodeStatus(root: string, io: Io, queryUnits: boolean): Promise<NodeStatus> {
  const m = await readManifest(root);
  if (!m) return { managed: false, agents: [], drift: [] };
  const agents: AgentStatus[] = [];
  // What the vendor finds changed under the agents since setup (a re-partitioned MIG GPU).
  const drifted = new Map(((await vendorOf(m.vendor)?.agentDrift?.(m.agents, io)) ?? []).map((d) => [d.instance, d]));
  for (const a of m.agents as AgentPlan[]) {
    const d = drifted.get(a.instance);
    const u = queryUnits ? await unitState(a.unit, io) : { state: 'not queried (--root)' };
    // An agent whose GPU was gone at the last setup: stopped by it, and why.
    if (a.missing) u.reason = missingReason(a);
    const queue = (a.tags ?? []).find((t) => t.startsWith('queue='))?.slice('queue='.length);
    agents.push({
      instance: a.instance,
      ...(queue !== undefined ? { queue } : {}),
      name: a.name,
      unit: a.unit,
      gpus: a.gpuIndices,
      cpus: a.cpus,
      memNodes: a.memNodes,
      memoryMax: a.memoryMaxText,
      state: u.state,
      ...(u.reason ? { reason: u.reason } : {}),
      ...(d ? { drift: { problem: d.problem, fix: d.fix } } : {}),
      ...(await lastCleanup(root, a.instance)),
    });
  }
  return { managed: true, queue: m.queue, queues: m.queues ?? [m.queue], vendor: m.vendor, agents, drift: await findDrift(root, m) };
}
