// Several queues on one host (`node setup --fleet F --queue h100 --queue upload`): the GPU queue's
// agents first, NUMA-local as ever; then each CPU-only queue's agents on what is left of each node
// (the CPUs no agent before holds, past the --cpu-reserve cores, and the memory they leave). With
// several queues, each agent of every queue but the last is sized to its queue's floor
// (`cpus`/`memory` in the fleet), so the queues after it have room. Pure.
import { UsageError } from '../util/errors.js';
import { parseCpuList } from './cpulist.js';
import type { HostFacts, NumaNode } from './detect/types.js';
import { planTeardown, type TeardownPlan } from './apply.js';
import { planAgentSet, type AgentPlan, type Manifest, type MissingAgent, type SetupOptions } from './plan.js';
import { agentFilePaths, unitName } from './units.js';
import type { PreviousAgent } from './identity.js';

export interface MoreQueue {
  queue: string;
  // CPU-only agents of the queue.
  agents: number;
  tags: [string, string][];
  // Each agent's size when a queue follows (its floor); undefined: all that is left.
  cap?: { cpus?: number; memoryBytes?: number };
}

const MiB = 2 ** 20;

// The host as the next queue sees it: per NUMA node the CPUs no agent holds (past the reserved
// cores) and the memory the agents leave (an agent spanning nodes counted evenly on each), no GPUs.
export function leftover(
  facts: HostFacts,
  taken: Pick<AgentPlan, 'cpus' | 'numaNodes' | 'memoryMax'>[],
  opts: Pick<SetupOptions, 'cpuReserve' | 'memoryReserve'>,
): HostFacts {
  const used = new Set(taken.flatMap((a) => parseCpuList(a.cpus)));
  const nodes: NumaNode[] = [];
  for (const n of facts.nodes) {
    const inNode = new Set(n.cpus);
    const cores = facts.cores.map((c) => c.filter((x) => inNode.has(x))).filter((c) => c.length);
    let reserved = 0;
    let start = 0;
    while (reserved < opts.cpuReserve && start < cores.length) reserved += cores[start++]!.length;
    const cpus = cores
      .slice(start)
      .flat()
      .filter((c) => !used.has(c))
      .sort((a, b) => a - b);
    const mem = n.memBytes - opts.memoryReserve - taken.filter((a) => a.numaNodes.includes(n.id)).reduce((s, a) => s + a.memoryMax / a.numaNodes.length, 0);
    if (cpus.length) nodes.push({ id: n.id, cpus, memBytes: Math.max(0, Math.floor(mem / MiB) * MiB) });
  }
  const free = new Set(nodes.flatMap((n) => n.cpus));
  return {
    ...facts,
    vendor: 'none',
    gpus: [],
    sharedDevices: [],
    groups: [],
    warnings: [],
    nodes,
    cores: facts.cores.map((c) => c.filter((x) => free.has(x))).filter((c) => c.length),
  };
}

// Every queue's agents: the first queue's as planAgentSet makes them (with the previous manifest's
// identities), then each of `more` on what is left. Errors name the queue.
export function planQueues(
  facts: HostFacts,
  opts: SetupOptions,
  warnings: string[],
  previous: PreviousAgent[],
): { agents: AgentPlan[]; missing: MissingAgent[] } {
  const first = planAgentSet(facts, opts, warnings, previous);
  const more = opts.moreQueues ?? [];
  if (!more.length) return first;
  const agents = [...first.agents];
  let before = opts.queue;
  for (const q of more) {
    const rest = leftover(facts, [...agents, ...first.missing.map((m) => m.agent)], opts);
    const fix = `give the queues before it less: set queues.${before}.cpus and memory in the fleet file (with several queues on one host, each agent of a queue but the last gets its floor), or lower --cpu-reserve/--memory-reserve`;
    if (!rest.nodes.length) throw new UsageError(`queue ${q.queue}: no CPUs are left on this host after the agents of queue ${before}`, fix);
    try {
      const planned = planAgentSet(
        rest,
        {
          ...opts,
          queue: q.queue,
          tags: q.tags,
          agents: q.agents,
          gpusPerAgent: 1,
          mig: false,
          cpuReserve: 0,
          memoryReserve: 0,
          cpuName: `${q.queue}-cpu`,
          agentCap: q.cap,
          moreQueues: undefined,
        },
        warnings,
        [],
      );
      agents.push(...planned.agents);
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`queue ${q.queue}: ${err.message} (what the agents of queue ${before} leave)`, fix);
      throw err;
    }
    before = q.queue;
  }
  return { agents, missing: first.missing };
}

// The queues a manifest's host serves, and an agent's queue (its queue= tag).
export const queuesOf = (m: Pick<Manifest, 'queue' | 'queues'>): string[] => m.queues ?? [m.queue];
export const queueOfAgent = (a: Pick<AgentPlan, 'tags'>): string | undefined => (a.tags ?? []).find((t) => t.startsWith('queue='))?.slice('queue='.length);

// `node teardown --queue Q`: only that queue's agents go (units, files, their directories once
// empty, with --purge their build directories); the manifest is rewritten with the rest. Naming
// every queue of the host is the whole teardown.
export function planQueueTeardown(m: Manifest, queues: string[], purge: boolean): TeardownPlan & { manifest?: Manifest } {
  const have = queuesOf(m);
  for (const q of queues)
    if (!have.includes(q))
      throw new UsageError(`--queue ${q}: this host's agents serve ${have.join(', ')}`, `name one of them, or leave --queue out to tear everything down`);
  if (have.every((q) => queues.includes(q))) return planTeardown(m, purge);
  const gone = m.agents.filter((a) => queues.includes(queueOfAgent(a) ?? m.queue));
  const goneFiles = new Set(gone.flatMap((a) => agentFilePaths(a.instance)));
  const files = m.files.map((f) => f.path).filter((p) => goneFiles.has(p));
  const parents = new Set(files.map((p) => p.slice(0, p.lastIndexOf('/'))));
  const ownBuild = (p: string) => gone.some((a) => p === a.buildPath || p.startsWith(a.buildPath + '/'));
  const deepestFirst = (a: string, b: string) => b.split('/').length - a.split('/').length || a.localeCompare(b);
  const purgeDirs = purge ? gone.map((a) => a.buildPath).filter((p) => m.dirs.some((d) => d.path === p && d.kind === 'build')) : [];
  const dirs = m.dirs
    .filter((d) => parents.has(d.path) && (d.kind === 'config' || d.created))
    .map((d) => d.path)
    .sort(deepestFirst);
  const left = have.filter((q) => !queues.includes(q));
  const goneDirs = new Set([...dirs, ...(purge ? m.dirs.filter((d) => ownBuild(d.path)).map((d) => d.path) : [])]);
  const manifest: Manifest = {
    ...m,
    queue: left[0]!,
    agents: m.agents.filter((a) => !gone.includes(a)),
    files: m.files.filter((f) => !goneFiles.has(f.path)),
    // A kept build directory of a removed agent is no agent's any more: teardown removes it once
    // empty, never its contents.
    dirs: m.dirs.filter((d) => !goneDirs.has(d.path)).map((d) => (ownBuild(d.path) ? { ...d, kind: 'shared' as const, created: true } : d)),
  };
  if (left.length > 1) manifest.queues = left;
  else delete manifest.queues;
  const units = gone.map((a) => unitName(a.instance));
  return {
    units,
    files,
    dirs,
    purge: purgeDirs,
    commands: [...(units.length ? [['systemctl', 'disable', '--now', '--no-block', ...units]] : []), ['systemctl', 'daemon-reload']],
    manifest,
  };
}
