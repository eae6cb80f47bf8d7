// Several queues on one host (`node setup --fleet F --queue h100 --queue upload`): the CPU-only
// queues' agents take their floors first from what the GPU agents' NUMA nodes can spare, the GPU
// agents share the rest with the CPU-only agents of queues without floors (placeCpuAgents has the
// rule). Pure. Also the teardown of some queues' agents.
import { formatBytes } from '../util/bytes.js';
import { UsageError } from '../util/errors.js';
import { didYouMean } from '../pipeline/validate.js';
import type { HostFacts } from './detect/types.js';
import { planTeardown, type TeardownPlan } from './apply.js';
import { planAgentSet, type AgentPlan, type Manifest, type MissingAgent, type SetupOptions } from './plan.js';
import { agentFilePaths, unitName } from './units.js';
import type { PreviousAgent } from './identity.js';

// A queue's floors (fleet `cpus`, logical CPUs, and `memory`, bytes) for each of its agents.
export interface QueueFloors {
  cpus?: number;
  memoryBytes?: number;
}

export interface MoreQueue {
  queue: string;
  // CPU-only agents of the queue.
  agents: number;
  tags: [string, string][];
  floors?: QueueFloors;
}

// A CPU-only agent as placed: its NUMA node, CPUs and memory (bytes).
export interface CpuPlacement {
  node: number;
  cpus: number[];
  memoryBytes: number;
}

const MiB = 2 ** 20;
// The least memory an agent is given (as shareMemory asks of every share).
const MIN_MEMORY = 256 * MiB;

interface CpuQueue {
  queue: string;
  agents: number;
  tags: [string, string][];
  floors: QueueFloors;
  cpuName: string;
}

// A CPU-only agent placed on a node: `cores`/`memory` set when its queue has that floor (then it
// gets exactly that), undefined when it shares what the floors leave.
interface Member {
  q: number;
  index: number;
  cores?: number;
  memory?: number;
}

// A NUMA node as the CPU-only agents see it.
interface Room {
  id: number;
  // Its cores after --cpu-reserve (SMT siblings together), in node order.
  cores: number[][];
  // Its memory after --memory-reserve.
  memory: number;
  // CPUs of its narrowest core: a floor of N CPUs needs ceil(N / width) cores.
  width: number;
  // The GPU agents on it (those whose GPUs are gone too: they keep their share), and what their
  // floors hold of it.
  gpuAgents: number;
  gpuCores: number;
  gpuMemory: number;
  placed: Member[];
}

interface Budget {
  // What the CPU-only agents' floors leave of the node, how many agents share it (its GPU agents
  // and the CPU-only agents without that floor), and the share of each CPU-only one.
  poolCores: number;
  poolMemory: number;
  sharersCores: number;
  sharersMemory: number;
  shareCores: number;
  shareMemory: number;
  fits: { cpus: boolean; memory: boolean };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mibDown = (b: number) => Math.floor(b / MiB) * MiB;
const mibUp = (b: number) => Math.ceil(b / MiB) * MiB;

// Even shares of `pool` among `gpu` GPU agents and `flex` CPU-only ones, except that the GPU agents
// never get less than their floors (`gpuFloor` in all): then they get those and the CPU-only ones
// split what is left. `unit` rounds a share down (1 core, 1 MiB), `least` is the least an agent
// without a floor may get.
function evenShare(pool: number, gpu: number, gpuFloor: number, flex: number, round: (x: number) => number, least: number) {
  const k = gpu + flex;
  if (!k) return { share: 0, fits: pool >= 0 };
  let share = round(pool / k);
  if (gpu && gpuFloor && share * gpu < gpuFloor) share = flex ? round((pool - gpuFloor) / flex) : 0;
  const gpuEach = gpu ? (pool - share * flex) / gpu : 0;
  const fits = pool - gpuFloor >= 0 && (!flex || share >= least) && (!gpu || gpuFloor > 0 || round(gpuEach) >= least);
  return { share, fits };
}

function budget(r: Room, members: Member[]): Budget {
  const poolCores = r.cores.length - sum(members.map((m) => m.cores ?? 0));
  const poolMemory = r.memory - sum(members.map((m) => m.memory ?? 0));
  const flexCores = members.filter((m) => m.cores === undefined).length;
  const flexMemory = members.filter((m) => m.memory === undefined).length;
  const c = evenShare(poolCores, r.gpuAgents, r.gpuCores, flexCores, Math.floor, 1);
  const m = evenShare(poolMemory, r.gpuAgents, r.gpuMemory, flexMemory, mibDown, MIN_MEMORY);
  return {
    poolCores,
    poolMemory,
    sharersCores: r.gpuAgents + flexCores,
    sharersMemory: r.gpuAgents + flexMemory,
    shareCores: c.share,
    shareMemory: m.share,
    fits: { cpus: c.fits, memory: m.fits },
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// Places every CPU-only agent of several queues on the host's NUMA nodes, beside the GPU queue's
// agents (`gpu`: their nodes, its name and floors). The rule, per node:
// - each CPU-only agent of a queue with floors gets exactly them (CPUs as whole cores, taken from
//   the end of the node; memory to the MiB), and the GPU agents' floors are kept for them;
// - what is left after every floor is shared evenly by the node's GPU agents and the CPU-only
//   agents of queues without that floor (a GPU agent gets its floor plus its share); on a node
//   with no such agent, its CPU-only agents share it on top of their floors;
// - each agent goes to the node where the agents sharing the rest get the most CPUs each (then
//   memory), those with a `cpus` floor first, ties to the lower node; an agent that fits on no node
//   is exit 2 naming its queue, the floor and each node's numbers.
// Returns each queue's placements (in agent order) and what they take of each node.
export function placeCpuAgents(
  facts: HostFacts,
  reserve: Pick<SetupOptions, 'cpuReserve' | 'memoryReserve'>,
  gpu: { queue: string; floors: QueueFloors; agents: Pick<AgentPlan, 'numaNodes'>[] } | undefined,
  queues: CpuQueue[],
): { placements: CpuPlacement[][]; taken: Map<number, { cpus: Set<number>; memory: number }> } {
  const rooms: Room[] = facts.nodes.map((n) => {
    const inNode = new Set(n.cpus);
    const cores = facts.cores.map((c) => c.filter((x) => inNode.has(x))).filter((c) => c.length);
    let reserved = 0;
    let start = 0;
    while (reserved < reserve.cpuReserve && start < cores.length) reserved += cores[start++]!.length;
    const usable = cores.slice(start);
    return {
      id: n.id,
      cores: usable,
      memory: Math.max(0, n.memBytes - reserve.memoryReserve),
      width: usable.length ? Math.min(...usable.map((c) => c.length)) : 1,
      gpuAgents: 0,
      gpuCores: 0,
      gpuMemory: 0,
      placed: [],
    };
  });
  const roomOf = new Map(rooms.map((r) => [r.id, r]));
  for (const a of gpu?.agents ?? [])
    for (const id of a.numaNodes) {
      const r = roomOf.get(id);
      if (!r) continue;
      r.gpuAgents++;
      // An agent spanning nodes holds its floor in equal parts of each.
      if (gpu!.floors.cpus !== undefined) r.gpuCores += Math.ceil(gpu!.floors.cpus / a.numaNodes.length / r.width);
      if (gpu!.floors.memoryBytes !== undefined) r.gpuMemory += mibUp(gpu!.floors.memoryBytes / a.numaNodes.length);
    }
  const cpusOf = (r: Room, cores: number) => cores * r.width;
  for (const r of rooms) {
    if (!r.gpuAgents || !gpu) continue;
    const b = budget(r, []);
    if (!b.fits.cpus || !b.fits.memory) {
      const key = !b.fits.cpus ? 'cpus' : 'memory';
      const need = key === 'cpus' ? `${plural(cpusOf(r, r.gpuCores), 'CPU')}` : formatBytes(r.gpuMemory);
      const has =
        key === 'cpus'
          ? `${plural(cpusOf(r, r.cores.length), 'CPU')} after --cpu-reserve ${reserve.cpuReserve}`
          : `${formatBytes(r.memory)} after --memory-reserve ${formatBytes(reserve.memoryReserve)}`;
      throw new UsageError(
        `queue ${gpu.queue}: its ${plural(r.gpuAgents, 'agent')} on NUMA node ${r.id} need ${need} (queues.${gpu.queue}.${key}), the node has ${has}`,
        `change one of: a lower floor (queues.${gpu.queue}.${key}); fewer, larger agents (more gpus per agent); less --${key === 'cpus' ? 'cpu' : 'memory'}-reserve`,
      );
    }
  }
  // The agents with a `cpus` floor first, in queue and agent order; then the others.
  const all: Member[] = queues.flatMap((q, qi) =>
    Array.from({ length: q.agents }, (_, index) => {
      const r0 = rooms[0];
      return {
        q: qi,
        index,
        ...(q.floors.cpus !== undefined ? { cores: Math.ceil(q.floors.cpus / (r0?.width ?? 1)) } : {}),
        ...(q.floors.memoryBytes !== undefined ? { memory: mibUp(q.floors.memoryBytes) } : {}),
      };
    }),
  );
  const order = [...all.filter((m) => m.cores !== undefined), ...all.filter((m) => m.cores === undefined)];
  for (const m of order) {
    let best: { r: Room; score: number } | undefined;
    for (const r of rooms) {
      // Cores in this node's width.
      const cand = { ...m, ...(m.cores !== undefined ? { cores: Math.ceil(queues[m.q]!.floors.cpus! / r.width) } : {}) };
      const b = budget(r, [...r.placed, cand]);
      if (!b.fits.cpus || !b.fits.memory) continue;
      const score = b.poolCores / Math.max(b.sharersCores, 1);
      if (!best || score > best.score) best = { r, score };
    }
    if (!best) throw noRoom(queues, m, rooms, gpu, reserve);
    best.r.placed.push(m.cores !== undefined ? { ...m, cores: Math.ceil(queues[m.q]!.floors.cpus! / best.r.width) } : m);
  }

  const placements: CpuPlacement[][] = queues.map(() => []);
  const taken = new Map<number, { cpus: Set<number>; memory: number }>();
  for (const r of rooms) {
    if (!r.placed.length) continue;
    const members = [...r.placed].sort((a, b) => a.q - b.q || a.index - b.index);
    const b = budget(r, members);
    const coreCount = members.map((m) => m.cores ?? b.shareCores);
    const memory = members.map((m) => m.memory ?? b.shareMemory);
    // No agent shares the rest (no GPU agents, every CPU-only one has floors): they share it.
    if (b.sharersCores === 0)
      members.forEach((_, i) => (coreCount[i]! += Math.floor(b.poolCores / members.length) + (i < b.poolCores % members.length ? 1 : 0)));
    if (b.sharersMemory === 0) members.forEach((_, i) => (memory[i]! += mibDown(b.poolMemory / members.length)));
    let at = r.cores.length - sum(coreCount);
    const cpus = new Set<number>();
    members.forEach((m, i) => {
      const mine = r.cores
        .slice(at, at + coreCount[i]!)
        .flat()
        .sort((x, y) => x - y);
      at += coreCount[i]!;
      for (const c of mine) cpus.add(c);
      placements[m.q]![m.index] = { node: r.id, cpus: mine, memoryBytes: memory[i]! };
    });
    taken.set(r.id, { cpus, memory: sum(memory) });
  }
  return { placements, taken };
}

function noRoom(
  queues: CpuQueue[],
  m: Member,
  rooms: Room[],
  gpu: { queue: string; floors: QueueFloors } | undefined,
  reserve: Pick<SetupOptions, 'cpuReserve' | 'memoryReserve'>,
): UsageError {
  const q = queues[m.q]!;
  const want = [
    q.floors.cpus !== undefined ? `${plural(q.floors.cpus, 'CPU')} (queues.${q.queue}.cpus)` : 'a core of what the floors leave (no cpus floor)',
    q.floors.memoryBytes !== undefined ? `${formatBytes(q.floors.memoryBytes)} (queues.${q.queue}.memory)` : undefined,
  ].filter(Boolean);
  const node = (r: Room) => {
    const b = budget(r, r.placed);
    const held: string[] = [];
    if (r.gpuAgents && gpu)
      held.push(
        `${plural(r.gpuAgents, `${gpu.queue} agent`)}${gpu.floors.cpus !== undefined ? ` x ${plural(gpu.floors.cpus, 'CPU')}` : ''}${gpu.floors.memoryBytes !== undefined ? ` x ${formatBytes(gpu.floors.memoryBytes)}` : ''}`,
      );
    queues.forEach((x, qi) => {
      const n = r.placed.filter((p) => p.q === qi).length;
      if (n)
        held.push(
          `${plural(n, `${x.queue} agent`)}${x.floors.cpus !== undefined ? ` x ${plural(x.floors.cpus, 'CPU')}` : ''}${x.floors.memoryBytes !== undefined ? ` x ${formatBytes(x.floors.memoryBytes)}` : ''}`,
        );
    });
    return `  NUMA node ${r.id}: ${plural(r.cores.length * r.width, 'CPU')} and ${formatBytes(r.memory)} after the reserves; ${held.length ? held.join(', ') : 'no agents'}; ${plural(Math.max(0, b.poolCores - r.gpuCores) * r.width, 'CPU')} and ${formatBytes(Math.max(0, b.poolMemory - r.gpuMemory))} left after the floors`;
  };
  const keys = [
    gpu && gpu.floors.cpus !== undefined ? `queues.${gpu.queue}.cpus` : '',
    gpu && gpu.floors.memoryBytes !== undefined ? `queues.${gpu.queue}.memory` : '',
    ...queues.flatMap((x) => [
      x.floors.cpus !== undefined ? `queues.${x.queue}.cpus` : '',
      x.floors.memoryBytes !== undefined ? `queues.${x.queue}.memory` : '',
    ]),
  ].filter(Boolean);
  return new UsageError(
    `queue ${q.queue}: agent ${q.cpuName}${m.index} (${m.index + 1} of ${q.agents}) needs ${want.join(' and ')}, and no NUMA node has it beside the agents placed there:\n${rooms.map(node).join('\n')}`,
    `change one of: fewer agents for queue ${q.queue} (--agents ${q.queue}:N, now ${q.agents})${keys.length ? `; a lower floor (${keys.join(', ')} in the fleet file)` : ''}; less --cpu-reserve/--memory-reserve (now ${reserve.cpuReserve}, ${formatBytes(reserve.memoryReserve)})`,
  );
}

// Every queue's agents. One queue: as planAgentSet makes them. Several (`moreQueues`): the CPU-only
// queues' agents are placed first (placeCpuAgents), then the GPU queue's agents are planned on what
// they leave of each node, NUMA-local and keyed by their GPUs as ever. Errors name the queue.
export function planQueues(
  facts: HostFacts,
  opts: SetupOptions,
  warnings: string[],
  previous: PreviousAgent[],
): { agents: AgentPlan[]; missing: MissingAgent[] } {
  const more = opts.moreQueues ?? [];
  const single = { ...opts, moreQueues: undefined, cpuPlacements: undefined };
  if (!more.length) return planAgentSet(facts, single, warnings, previous);
  const gpuFirst = facts.gpus.length > 0;
  const queues: CpuQueue[] = [
    ...(gpuFirst ? [] : [{ queue: opts.queue, agents: opts.agents, tags: opts.tags, floors: opts.floors ?? {}, cpuName: opts.cpuName ?? 'cpu' }]),
    ...more.map((q) => ({ queue: q.queue, agents: q.agents, tags: q.tags, floors: q.floors ?? {}, cpuName: `${q.queue}-cpu` })),
  ];
  for (const q of queues) if (q.agents < 1) throw new UsageError(`queue ${q.queue}: --agents ${q.agents}: at least one agent is needed`);
  // Where the GPU agents are (a first plan on the whole host, its warnings dropped: the real one
  // below repeats them).
  const probe = gpuFirst ? planAgentSet(facts, single, [], previous) : undefined;
  const { placements, taken } = placeCpuAgents(
    facts,
    opts,
    probe ? { queue: opts.queue, floors: opts.floors ?? {}, agents: [...probe.agents, ...probe.missing.map((m) => m.agent)] } : undefined,
    queues,
  );
  const agents: AgentPlan[] = [];
  let missing: MissingAgent[] = [];
  if (gpuFirst) {
    const rest: HostFacts = {
      ...facts,
      nodes: facts.nodes.map((n) => {
        const t = taken.get(n.id);
        return t ? { ...n, cpus: n.cpus.filter((c) => !t.cpus.has(c)), memBytes: n.memBytes - t.memory } : n;
      }),
    };
    const first = planAgentSet(rest, single, warnings, previous);
    agents.push(...first.agents);
    missing = first.missing;
  }
  const cpuHost: HostFacts = { ...facts, vendor: 'none', gpus: [], sharedDevices: [], groups: [], warnings: [] };
  queues.forEach((q, i) => {
    const planned = planAgentSet(
      cpuHost,
      {
        ...single,
        queue: q.queue,
        tags: q.tags,
        agents: q.agents,
        gpusPerAgent: 1,
        mig: false,
        cpuName: q.cpuName,
        cpuPlacements: placements[i]!,
      },
      warnings,
      [],
    );
    agents.push(...planned.agents);
  });
  return { agents, missing };
}

// `--agents` and `--tags` with several queues: a plain value is for every queue (`--agents 2`:
// each CPU-only queue; `--tags team=ml`: every queue's agents), `QUEUE:` scopes it to one
// (`--agents upload:4`, `--tags upload:role=uploader`), and a scoped value wins over a plain one.
// A tag key cannot itself hold a `:` on the command line (put such a tag in the fleet file).
export interface ScopedFlags {
  // Every --agents value, as given: `N` or `QUEUE:N`; none: 1 each.
  agents: string[];
  // Every --tags pair; a key `QUEUE:k` is scoped.
  tags: [string, string][];
}

export interface QueueFlags {
  agents: number;
  // Whether --agents named this queue (or gave a plain number).
  agentsGiven: boolean;
  tags: [string, string][];
}

export function scopeFlags(queues: string[], f: ScopedFlags): Map<string, QueueFlags> {
  const known = (q: string, flag: string, value: string) => {
    if (queues.includes(q)) return q;
    const hint = didYouMean(q, queues);
    throw new UsageError(
      `${flag} ${value}: ${JSON.stringify(q)} is not a queue given with --queue${hint ? ` (did you mean ${hint}?)` : ''}`,
      `the queues set up here: ${queues.join(', ')}; ${flag === '--agents' ? '--agents N is for every CPU-only queue, --agents QUEUE:N for one' : '--tags k=v is for every queue, --tags QUEUE:k=v for one (a tag key with ":" goes in the fleet file)'}`,
    );
  };
  let plain: number | undefined;
  const scoped = new Map<string, number>();
  for (const v of f.agents) {
    const m = /^(?:([^:]+):)?(\d+)$/.exec(v.trim());
    const n = m ? Number(m[2]) : NaN;
    if (!m || !Number.isSafeInteger(n) || n < 1)
      throw new UsageError(`--agents ${JSON.stringify(v)}: expected a whole number of at least 1, or QUEUE:N`, 'e.g. --agents 2, or --agents upload:4');
    if (m[1] === undefined) plain = n;
    else scoped.set(known(m[1], '--agents', v), n);
  }
  const out = new Map<string, QueueFlags>();
  for (const q of queues) out.set(q, { agents: scoped.get(q) ?? plain ?? 1, agentsGiven: scoped.has(q) || plain !== undefined, tags: [] });
  const scopedTags = new Map<string, [string, string][]>(queues.map((q) => [q, []]));
  const plainTags: [string, string][] = [];
  for (const [k, v] of f.tags) {
    const i = k.indexOf(':');
    if (i < 0) plainTags.push([k, v]);
    else scopedTags.get(known(k.slice(0, i), '--tags', `${k}=${v}`))!.push([k.slice(i + 1), v]);
  }
  for (const q of queues) {
    const mine = scopedTags.get(q)!;
    const keys = new Set(mine.map(([k]) => k));
    out.get(q)!.tags = [...plainTags.filter(([k]) => !keys.has(k)), ...mine];
  }
  return out;
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
  const t = planAgentsTeardown(
    m,
    m.agents.filter((a) => queues.includes(queueOfAgent(a) ?? m.queue)),
    purge,
  );
  const left = have.filter((q) => !queues.includes(q));
  t.manifest.queue = left[0]!;
  if (left.length > 1) t.manifest.queues = left;
  else delete t.manifest.queues;
  return t;
}

// Some agents' units, files, their directories once empty (with --purge their build directories),
// and the manifest without them; every other agent's files stay as they are.
export function planAgentsTeardown(m: Manifest, gone: AgentPlan[], purge: boolean): TeardownPlan & { manifest: Manifest } {
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
  const goneDirs = new Set([...dirs, ...(purge ? m.dirs.filter((d) => ownBuild(d.path)).map((d) => d.path) : [])]);
  const manifest: Manifest = {
    ...m,
    agents: m.agents.filter((a) => !gone.includes(a)),
    files: m.files.filter((f) => !goneFiles.has(f.path)),
    // A kept build directory of a removed agent is no agent's any more: teardown removes it once
    // empty, never its contents.
    dirs: m.dirs.filter((d) => !goneDirs.has(d.path)).map((d) => (ownBuild(d.path) ? { ...d, kind: 'shared' as const, created: true } : d)),
  };
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
