// A fleet queue on a systemd host (`bkci node setup|doctor --fleet FILE --queue Q`): the queue's
// definition turned into setup options, and the checks of a plan or a host against it. Pure: the
// CLI gathers the facts and the plan, these decide.
import { formatBytes } from '../util/bytes.js';
import { UsageError } from '../util/errors.js';
import type { MoreQueue, QueueFlags, QueueFloors } from '../node/queues.js';
import type { DoctorItem } from '../node/vendors/types.js';
import { NO_GPU, type Queue } from './model.js';

// What the command line said on its own (undefined: the flag was not given).
export interface GivenFlags {
  gpusPerAgent?: number;
  vendor?: string;
  tags: [string, string][];
  mig?: boolean;
}

export interface QueueSetup {
  queue: string;
  // What to detect with: `auto` for a GPU queue (the detected vendor is then held against the
  // queue's by checkVendor), `none` for a CPU-only queue (agents without GPUs on any host).
  detect: string;
  gpusPerAgent: number;
  // The queue's tags first, then the command line's others.
  tags: [string, string][];
}

// The queue's definition as `node setup` options. A flag given explicitly that says otherwise than
// the fleet is an error naming both: the fleet file is the one place the queue is described.
export function queueSetup(q: Queue, given: GivenFlags, file: string): QueueSetup {
  const at = `${file}: queues.${q.name}`;
  const gpuQueue = q.vendor !== NO_GPU;
  if (given.vendor !== undefined && given.vendor !== 'auto' && given.vendor !== q.vendor)
    throw new UsageError(
      `--vendor ${given.vendor} contradicts the fleet: ${at}.vendor is ${q.vendor}`,
      `drop --vendor (the fleet sets it), or change the queue in ${file}`,
    );
  if (given.gpusPerAgent !== undefined && given.gpusPerAgent !== q.gpus)
    throw new UsageError(
      gpuQueue
        ? `--gpus-per-agent ${given.gpusPerAgent} contradicts the fleet: ${at}.gpus is ${q.gpus}`
        : `--gpus-per-agent ${given.gpusPerAgent}: queue ${q.name} is CPU-only (vendor none in ${file})`,
      `drop --gpus-per-agent (the fleet sets it), or change the queue in ${file}`,
    );
  if (given.mig && q.gpus !== 1) throw new UsageError(`--mig gives one agent per MIG device, but ${at}.gpus is ${q.gpus}`, 'drop --mig, or set gpus: 1');
  const fleetTags = new Map(q.tags);
  for (const [k, v] of given.tags) {
    const theirs = fleetTags.get(k);
    if (theirs !== undefined && theirs !== v)
      throw new UsageError(
        `--tags ${k}=${v} contradicts the fleet: ${at}.tags.${k} is ${JSON.stringify(theirs)}`,
        `drop ${k} from --tags, or change the queue in ${file}`,
      );
  }
  const tags: [string, string][] = [...q.tags, ...given.tags.filter(([k]) => !fleetTags.has(k))];
  return { queue: q.name, detect: gpuQueue ? 'auto' : NO_GPU, gpusPerAgent: gpuQueue ? q.gpus : 1, tags };
}

// Several queues on one host (`node setup --fleet F --queue h100 --queue upload`): the GPU queue
// (there can be one: the GPUs are its agents') and the CPU-only ones, each with its floors, agents
// and tags (`flags`: src/node/queues.ts scopeFlags). How they share the host: placeCpuAgents.
export function planHostQueues(
  queues: Queue[],
  file: string,
  flags: Map<string, QueueFlags>,
): { first: { queue: Queue; floors: QueueFloors }; more: MoreQueue[] } {
  const gpu = queues.filter(hasGpus);
  if (gpu.length > 1)
    throw new UsageError(
      `--queue ${gpu.map((q) => q.name).join(' --queue ')}: ${gpu.length} GPU queues (${file}), but one host's GPUs serve one queue`,
      'set up this host for one GPU queue, plus any CPU-only (vendor none) queues',
    );
  const first = gpu[0] ?? queues[0]!;
  const floors = (q: Queue): QueueFloors => ({
    ...(q.cpus !== undefined ? { cpus: q.cpus } : {}),
    ...(q.memoryBytes !== undefined ? { memoryBytes: q.memoryBytes } : {}),
  });
  const more = queues
    .filter((q) => q !== first)
    .map((q) => {
      const f = flags.get(q.name)!;
      // The queue's tags first (a contradicting --tags is exit 2), then the command line's others.
      const { tags } = queueSetup(q, { tags: f.tags }, file);
      return { queue: q.name, agents: f.agents, tags, floors: floors(q) };
    });
  return { first: { queue: first, floors: floors(first) }, more };
}

// --agents QUEUE:N for a GPU queue: its agents are one per `gpus` GPUs, not a number to choose.
export function checkAgentsFlag(queues: Queue[], given: string[]): void {
  for (const v of given) {
    const name = /^([^:]+):\d+$/.exec(v.trim())?.[1];
    const q = queues.find((x) => x.name === name);
    if (q && hasGpus(q))
      throw new UsageError(
        `--agents ${v}: queue ${q.name} has GPUs (vendor ${q.vendor}): it gets one agent per ${q.gpus === 1 ? 'GPU' : `${q.gpus} GPUs`}`,
        `--agents sets the number of agents of CPU-only (vendor none) queues; drop ${JSON.stringify(v)}`,
      );
  }
}

// The vendor found on the host against the queue's (`none`: no GPUs found).
export function checkVendor(q: Queue, detected: string, file: string): void {
  if (q.vendor === NO_GPU || detected === q.vendor) return;
  throw new UsageError(
    detected === NO_GPU
      ? `queue ${q.name} wants ${q.vendor} GPUs (${file}), but this host has no GPUs bkci can use`
      : `queue ${q.name} wants ${q.vendor} GPUs (${file}), but this host's GPUs are ${detected}`,
    `set up this host for a queue of the fleet with vendor ${detected}, or check the driver tools (--vendor ${q.vendor} shows what they report)`,
  );
}

// What a planned agent got: its name, CPUs and memory share (bytes).
export interface PlannedShare {
  name: string;
  cpuCount: number;
  memoryMax: number;
}

export interface FloorViolation {
  agent: string;
  resource: 'cpus' | 'memory';
  got: number;
  floor: number;
}

// Every agent below the queue's `cpus` or `memory` floor.
export function floorViolations(q: Queue, agents: PlannedShare[]): FloorViolation[] {
  const out: FloorViolation[] = [];
  for (const a of agents) {
    if (q.cpus !== undefined && a.cpuCount < q.cpus) out.push({ agent: a.name, resource: 'cpus', got: a.cpuCount, floor: q.cpus });
    if (q.memoryBytes !== undefined && a.memoryMax < q.memoryBytes) out.push({ agent: a.name, resource: 'memory', got: a.memoryMax, floor: q.memoryBytes });
  }
  return out;
}

// The setup values the advice names.
export interface FloorContext {
  file: string;
  cpuReserve: number;
  memoryReserve: number;
  // CPU-only agents planned (for a CPU-only queue).
  agents: number;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// Throws (exit 2) when the plan leaves an agent below a floor: each agent named with what it got,
// the floor, and what to change.
export function checkFloors(q: Queue, agents: PlannedShare[], ctx: FloorContext): void {
  const v = floorViolations(q, agents);
  if (!v.length) return;
  const show = (x: FloorViolation) => (x.resource === 'cpus' ? plural(x.got, 'CPU') : formatBytes(x.got));
  const floorText = (x: FloorViolation) => (x.resource === 'cpus' ? plural(x.floor, 'CPU') : formatBytes(x.floor));
  const lines = v.map((x) => `  ${x.agent}: ${show(x)}, the floor is ${floorText(x)} (queues.${q.name}.${x.resource})`);
  const cpu = v.some((x) => x.resource === 'cpus');
  const mem = v.some((x) => x.resource === 'memory');
  const fixes: string[] = [];
  if (cpu && ctx.cpuReserve > 0) fixes.push(`less --cpu-reserve (now ${ctx.cpuReserve})`);
  if (mem && ctx.memoryReserve > 0) fixes.push(`less --memory-reserve (now ${formatBytes(ctx.memoryReserve)})`);
  // Agents share their NUMA node's CPUs and memory: fewer of them, each larger, get more.
  if (q.vendor === NO_GPU) fixes.push(ctx.agents > 1 ? `fewer agents (--agents, now ${ctx.agents})` : 'a host with more CPUs or memory');
  else fixes.push(`fewer, larger agents (more GPUs per agent: queues.${q.name}.gpus, now ${q.gpus})`);
  fixes.push(`a lower floor (queues.${q.name}.${cpu && mem ? 'cpus/memory' : cpu ? 'cpus' : 'memory'} in ${ctx.file})`);
  const names = new Set(v.map((x) => x.agent));
  throw new UsageError(
    `${plural(names.size, 'agent')} of ${agents.length} would get less than queue ${q.name} asks for (${ctx.file}):\n${lines.join('\n')}`,
    `change one of: ${fixes.join('; ')}`,
  );
}

// GPU model names compared as nvidia-smi prints them ("NVIDIA H100 80GB HBM3") and as Kubernetes
// labels spell them ("NVIDIA-H100-80GB-HBM3", "AMD_Instinct_MI300X"): case, spaces, dashes and
// underscores do not count.
export function normaliseProduct(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[\s_-]+/g, '-');
}

// A queue whose agents have GPUs (not vendor none).
export const hasGpus = (q: Queue): boolean => q.vendor !== NO_GPU;

const item = (check: string, status: DoctorItem['status'], detail: string, fix?: string): DoctorItem => ({ check, status, detail, ...(fix ? { fix } : {}) });

// Doctor items of a host against a fleet queue: its GPU vendor, every GPU's model against
// `gpu-product`, and the GPU count as a whole number of `gpus`-GPU agents.
export function fleetDoctorItems(q: Queue, host: { vendor: string; gpuNames: string[] }, file: string): DoctorItem[] {
  const where = `queues.${q.name} in ${file}`;
  if (q.vendor === NO_GPU) return [item('fleet gpus', 'skip', `queue ${q.name} is CPU-only (vendor none)`)];
  const out: DoctorItem[] = [];
  const n = host.gpuNames.length;
  if (host.vendor !== q.vendor || n === 0) {
    out.push(
      item(
        'fleet vendor',
        'fail',
        n === 0
          ? `queue ${q.name} wants ${q.vendor} GPUs; this host has none bkci can use`
          : `queue ${q.name} wants ${q.vendor} GPUs; this host's are ${host.vendor}`,
        `run this host in a queue of its vendor, or fix ${where}`,
      ),
    );
    return out;
  }
  out.push(item('fleet vendor', 'ok', `${q.vendor}, as queue ${q.name} wants`));
  if (q.gpuProduct === undefined) out.push(item('fleet gpu model', 'skip', `${where} sets no gpu-product`));
  else {
    const want = normaliseProduct(q.gpuProduct);
    const other = new Map<string, number>();
    for (const name of host.gpuNames) if (normaliseProduct(name) !== want) other.set(name, (other.get(name) ?? 0) + 1);
    if (other.size)
      out.push(
        item(
          'fleet gpu model',
          'fail',
          `queue ${q.name} wants ${q.gpuProduct}; ${[...other].map(([name, k]) => `${k} of ${n} GPUs are ${JSON.stringify(name)}`).join(', ')}`,
          `set up this host for the queue of its GPU model, or correct gpu-product in ${where} (jobs there expect ${q.gpuProduct})`,
        ),
      );
    else out.push(item('fleet gpu model', 'ok', `${plural(n, 'GPU')} ${JSON.stringify(host.gpuNames[0])}, as ${q.gpuProduct}`));
  }
  if (n % q.gpus !== 0)
    out.push(
      item(
        'fleet gpu count',
        'fail',
        `${plural(n, 'GPU')} is not a whole number of ${q.gpus}-GPU agents (queue ${q.name}): ${n % q.gpus} would be left idle`,
        `find the missing GPU (dmesg, the vendor tool), or put this host in a queue whose gpus divides ${n}`,
      ),
    );
  else out.push(item('fleet gpu count', 'ok', `${plural(n, 'GPU')}: ${plural(n / q.gpus, `${q.gpus}-GPU agent`)}`));
  return out;
}
