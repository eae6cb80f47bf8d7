// The pure planner of `bkci node setup`: host facts + options + what is on disk now → agents
// (GPUs, cpuset, memory share, environment, tags) and the files, directories and commands that make
// them so. No file system, no clock: the same inputs always give the same plan.
import { createHash } from 'node:crypto';
import { UsageError } from '../util/errors.js';
import { formatBytes } from '../util/bytes.js';
import { formatCpuList } from './cpulist.js';
import type { HostFacts, NumaNode, Vendor } from './detect/types.js';
import { vendorOf } from './vendors/index.js';
import { agentCacheDir, agentDirsEnv, agentTmpDir, buildBase, DEFAULT_AGENT_HOME, gitMirrorsDirFor, threadDefaults } from './agent-env.js';
import { hardwareTags } from './tags.js';
import { DEVICES_UNIT, DEVICES_UNIT_PATH, renderDevicesUnit } from './devices-service.js';
import { pingModeFor, type Version } from './host-gates.js';
import { planQueues, type CpuPlacement, type MoreQueue, type QueueFloors } from './queues.js';
import { busOfKey, carryOver, freeInstance, slotsOf, type PreviousAgent, type Slot } from './identity.js';
import { dockerRunArgs, extraDevices, joinForWordSplitting, renderAgentHook, renderComposeFile, renderDockerShim, renderSlice, SHIM_DIR } from './isolation.js';
import {
  PATHS,
  renderDiskCleanup,
  renderAgentCfg,
  renderAgentEnv,
  agentEnvValues,
  agentFilePaths,
  renderDropIn,
  renderTemplateUnit,
  renderTokenFile,
  unitName,
} from './units.js';

export interface SetupOptions {
  queue: string;
  gpusPerAgent: number;
  // CPU-only agents (vendor none).
  agents: number;
  name?: string;
  tags: [string, string][];
  memoryReserve: number;
  cpuReserve: number;
  user: string;
  agentBin: string;
  // argv prefix that runs this bkci (node + script, or --bkci-bin).
  bkciBin: string[];
  buildRoot: string;
  // The agent user's home in /etc/passwd (read under --host-root); undefined: the user is not there
  // yet (useradd makes it /var/lib/buildkite-agent). HOME of the agents, whatever --build-root is.
  agentHome?: string;
  mig: boolean;
  minFreeDisk: number;
  // A command run by the health check before the disk gate fails (pruning old docker images...).
  diskCleanup?: string;
  // --device-allow: device nodes or classes every agent may open besides its GPUs (InfiniBand, fuse, kvm).
  deviceAllow?: string[];
  // The agent registration token: only ever in the 0600 token file.
  token: string;
  // Several queues on one host (src/node/queues.ts): the CPU-only queues besides this one, and
  // this queue's floors (fleet `cpus`/`memory`), which the CPU-only agents leave it.
  moreQueues?: MoreQueue[];
  floors?: QueueFloors;
  // CPU-only agents placed by src/node/queues.ts: each agent's node, CPUs and memory as given.
  cpuPlacements?: CpuPlacement[];
  // Instance names of CPU-only agents: `cpu0`, `cpu1` (`upload-cpu0` for a second queue).
  cpuName?: string;
  // `buildkite-agent --version` of --agent-bin, when known (ping-mode for 3.119-3.127).
  agentVersion?: Version;
  // TimeoutStopSec= of the agents (--stop-timeout): `infinity` unless given.
  stopTimeout?: string;
}

export interface AgentPlan {
  instance: string;
  name: string;
  unit: string;
  gpus: string[];
  // The stable identity of each GPU slot (src/node/identity.ts): PCI bus id, MIG bus/gi/ci.
  gpuKeys: string[];
  // What operators call the GPUs, fixed when the agent is made (the vendor tool's index then).
  gpuLabels: string[];
  gpuIndices: number[];
  isolationIds: string[];
  vendor: Vendor;
  numaNode: number;
  // Every NUMA node the agent's GPUs sit on (more than one only when it spans nodes).
  numaNodes: number[];
  cpus: string;
  cpuCount: number;
  memNodes: string;
  memoryMax: number;
  memoryMaxText: string;
  buildPath: string;
  devices: string[];
  // The unit's DeviceAllow= entries (`/dev/nvidia3 rw`, `char-nvidia-uvm rw`).
  deviceAllow: string[];
  // SupplementaryGroups= of the unit: what the agent user needs to open its device nodes.
  groups: string[];
  // `docker run` arguments that give a container this agent's GPUs (devices, groups).
  dockerArgs: string[];
  env: Record<string, string>;
  // Exported by the hook only when the job has not set them (thread counts from the cpuset).
  jobDefaults: Record<string, string>;
  tags: string[];
  // In the manifest only: the agent's GPUs were gone at the last setup (bus ids), so it is stopped.
  missing?: { gpus: string[] };
}

export type FileAction = 'create' | 'update' | 'chmod' | 'unchanged';

export interface PlannedFile {
  path: string;
  mode: number;
  owner: 'root' | 'agent';
  content: string;
  // Never printed, logged or hashed into the manifest.
  secret: boolean;
  action: FileAction;
}

export interface PlannedDir {
  path: string;
  mode: number;
  owner: 'root' | 'agent';
  // config: removed by teardown when empty; build: removed only with --purge; shared: never.
  kind: 'config' | 'build' | 'shared';
  // Created by bkci (now or by an earlier setup): teardown removes it again once empty.
  created: boolean;
  action: 'create' | 'unchanged';
}

export interface NodePlan {
  agents: AgentPlan[];
  // Agents of the previous setup whose GPUs are gone: stopped, kept in the manifest.
  missing: MissingAgent[];
  files: PlannedFile[];
  dirs: PlannedDir[];
  // Files a previous setup created that this plan no longer has.
  removals: string[];
  removedInstances: string[];
  // `before` runs ahead of the file changes (user creation, stopping removed agents), `after` once
  // the files are in place.
  commands: PlannedCommand[];
  warnings: string[];
  changed: boolean;
  // The old and new manifests together, kept on disk while the plan is applied.
  journal: Manifest;
}

export interface PlannedCommand {
  phase: 'before' | 'after';
  argv: string[];
}

export interface FileState {
  sha256: string;
  mode: number;
}

export interface CurrentState {
  files: Map<string, FileState>;
  dirs: Set<string>;
  manifest: Manifest | undefined;
  userExists: boolean;
}

export interface ManifestFile {
  path: string;
  mode: number;
  sha256?: string;
  secret?: boolean;
}

export interface Manifest {
  managedBy: 'bkci';
  version: 1;
  // The first queue (the GPU queue); `queues` lists every queue when the host serves several.
  queue: string;
  queues?: string[];
  vendor: string;
  user: string;
  agents: AgentPlan[];
  files: ManifestFile[];
  dirs: { path: string; mode: number; owner: 'root' | 'agent'; kind: 'config' | 'build' | 'shared'; created: boolean }[];
}

const MiB = 1024 * 1024;

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function planNodeSetup(facts: HostFacts, opts: SetupOptions, current: CurrentState): NodePlan {
  const warnings = [...facts.warnings];
  const { agents, missing } = planQueues(facts, opts, warnings, current.manifest?.agents ?? []);
  const files: Omit<PlannedFile, 'action'>[] = [];
  const dirs: Omit<PlannedDir, 'action' | 'created'>[] = [];
  const add = (path: string, mode: number, content: string, secret = false, owner: 'root' | 'agent' = 'root') =>
    files.push({ path, mode, owner, content, secret });

  dirs.push({ path: PATHS.confDir, mode: 0o755, owner: 'root', kind: 'config' });
  dirs.push({ path: PATHS.agentsDir, mode: 0o755, owner: 'root', kind: 'config' });
  dirs.push({ path: PATHS.hooksDir, mode: 0o755, owner: 'root', kind: 'config' });
  dirs.push({ path: opts.buildRoot, mode: 0o755, owner: 'agent', kind: 'shared' });
  dirs.push({ path: pluginsPath(opts), mode: 0o750, owner: 'agent', kind: 'build' });
  dirs.push({ path: gitMirrorsDirFor(opts.buildRoot), mode: 0o750, owner: 'agent', kind: 'build' });
  add(PATHS.tokenFile, 0o600, renderTokenFile(opts.token), true);
  if (opts.diskCleanup !== undefined) add(PATHS.diskCleanup, 0o755, renderDiskCleanup(opts.diskCleanup));
  dirs.push({ path: SHIM_DIR, mode: 0o755, owner: 'root', kind: 'config' });
  add(PATHS.dockerShim, 0o755, renderDockerShim());
  // The vendor's device-node oneshot (bkci-gpu-devices.service) and the services the agents start
  // after (NVSwitch hosts: nvidia-fabricmanager.service).
  const devicesCmd = agents.some((a) => a.gpus.length) ? facts.services?.deviceNodes : undefined;
  if (devicesCmd) add(DEVICES_UNIT_PATH, 0o644, renderDevicesUnit(devicesCmd));
  const agentAfter = [...(devicesCmd ? [DEVICES_UNIT] : []), ...(facts.services?.after ?? [])];
  add(
    PATHS.templateUnit,
    0o644,
    renderTemplateUnit({
      user: opts.user,
      agentBin: opts.agentBin,
      bkciBin: opts.bkciBin,
      home: homeOf(opts),
      after: agentAfter,
      stopTimeout: opts.stopTimeout,
    }),
  );
  const pingMode = pingModeFor(opts.agentVersion);
  for (const a of agents) {
    dirs.push({ path: a.buildPath, mode: 0o750, owner: 'agent', kind: 'build' });
    // Its own TMPDIR and XDG_CACHE_HOME: only the agent user may read them.
    dirs.push({ path: agentTmpDir(a.buildPath), mode: 0o700, owner: 'agent', kind: 'build' });
    dirs.push({ path: agentCacheDir(a.buildPath), mode: 0o700, owner: 'agent', kind: 'build' });
    const cleanup = opts.diskCleanup ? PATHS.diskCleanup : undefined;
    add(PATHS.agentCfg(a.instance), 0o644, renderAgentCfg(a, { pluginsPath: pluginsPath(opts), gitMirrorsPath: gitMirrorsDirFor(opts.buildRoot), pingMode }));
    add(PATHS.agentEnv(a.instance), 0o644, renderAgentEnv(a, opts.minFreeDisk, cleanup));
    // The agent's own hooks directory: its environment hook with its values written in.
    dirs.push({ path: PATHS.agentHooksDir(a.instance), mode: 0o755, owner: 'root', kind: 'config' });
    // Jobs in docker: the arguments for docker run (the shim adds them), a compose service to
    // extend, and the names of the agent's variables for the docker plugin's env-propagation-list.
    const values = agentEnvValues(a, opts.minFreeDisk, cleanup);
    const hookEnv = {
      ...values,
      BKCI_DOCKER_RUN_ARGS: joinForWordSplitting(dockerRunArgs(a)),
      BKCI_COMPOSE_FILE: PATHS.agentCompose(a.instance),
      BKCI_CONTAINER_ENV: Object.keys(a.env).join(' '),
    };
    add(PATHS.agentHook(a.instance), 0o755, renderAgentHook(a, vendorOf(facts.vendor)!, { env: hookEnv, defaults: a.jobDefaults, pathFirst: SHIM_DIR }));
    add(PATHS.agentCompose(a.instance), 0o644, renderComposeFile(a, Object.keys(a.env)));
    add(PATHS.slice(a.instance), 0o644, renderSlice(a));
    dirs.push({ path: PATHS.dropInDir(a.instance), mode: 0o755, owner: 'root', kind: 'config' });
    add(PATHS.dropIn(a.instance), 0o644, renderDropIn(a));
  }
  // An agent whose GPU is gone keeps its build directory and files as they are (stopped), so it
  // comes back as it was when the GPU does.
  for (const { agent: a } of missing) {
    dirs.push({ path: a.buildPath, mode: 0o750, owner: 'agent', kind: 'build' });
    dirs.push({ path: PATHS.dropInDir(a.instance), mode: 0o755, owner: 'root', kind: 'config' });
    dirs.push({ path: PATHS.agentHooksDir(a.instance), mode: 0o755, owner: 'root', kind: 'config' });
  }
  const missingPaths = new Set(missing.flatMap(({ agent: a }) => agentFilePaths(a.instance)));
  const carriedFiles = (current.manifest?.files ?? []).filter((f) => missingPaths.has(f.path));

  // Every ancestor directory too, so teardown can remove what setup created and nothing else.
  const known = new Set(dirs.map((d) => d.path));
  for (const p of [...dirs.map((d) => d.path), ...files.map((f) => f.path), PATHS.manifest]) {
    for (let a = parentOf(p); a !== '/' && !known.has(a); a = parentOf(a)) {
      known.add(a);
      dirs.push({ path: a, mode: 0o755, owner: 'root', kind: 'shared' });
    }
  }
  dirs.sort((a, b) => a.path.split('/').length - b.path.split('/').length || a.path.localeCompare(b.path));
  const createdBefore = new Map((current.manifest?.dirs ?? []).map((d) => [d.path, d.created === true]));
  const plannedDirs = dirs.map((d): PlannedDir => {
    const exists = current.dirs.has(d.path);
    return { ...d, action: exists ? 'unchanged' : 'create', created: !exists || createdBefore.get(d.path) === true };
  });

  const manifest: Manifest = {
    managedBy: 'bkci',
    version: 1,
    queue: opts.queue,
    ...(opts.moreQueues?.length ? { queues: [opts.queue, ...opts.moreQueues.map((q) => q.queue)] } : {}),
    vendor: facts.vendor,
    user: opts.user,
    agents: [...agents, ...missing.map(({ agent, lost }) => ({ ...agent, missing: { gpus: lost } }))].sort(
      (a, b) => order(a) - order(b) || a.instance.localeCompare(b.instance, 'en', { numeric: true }),
    ),
    files: [
      ...files.map((f) => (f.secret ? { path: f.path, mode: f.mode, secret: true } : { path: f.path, mode: f.mode, sha256: sha256(f.content) })),
      ...carriedFiles,
      { path: PATHS.manifest, mode: 0o644 },
    ],
    dirs: [
      ...plannedDirs.map(({ path, mode, owner, kind, created }) => ({ path, mode, owner, kind, created })),
      // Directories an earlier setup made that this plan no longer needs (an agent removed, another
      // --build-root) stay bkci's: teardown removes them once empty, never their contents.
      ...(current.manifest?.dirs ?? [])
        .filter((d) => d.created && !known.has(d.path))
        .map((d) => ({ path: d.path, mode: d.mode, owner: d.owner, kind: 'shared' as const, created: true })),
    ],
  };
  add(PATHS.manifest, 0o644, JSON.stringify(manifest, null, 2) + '\n');

  const planned = files.map((f): PlannedFile => {
    const cur = current.files.get(f.path);
    const action: FileAction = !cur ? 'create' : cur.sha256 !== sha256(f.content) ? 'update' : cur.mode !== f.mode ? 'chmod' : 'unchanged';
    return { ...f, action };
  });

  const keepPaths = new Set([...planned.map((f) => f.path), ...missingPaths]);
  const removals = (current.manifest?.files ?? []).map((f) => f.path).filter((p) => !keepPaths.has(p));
  const instances = new Set([...agents, ...missing.map((m) => m.agent)].map((a) => a.instance));
  const removedInstances = (current.manifest?.agents ?? []).map((a) => a.instance).filter((i) => !instances.has(i));

  const changedInstances = agents
    .filter((a) =>
      planned.some(
        (f) =>
          f.action !== 'unchanged' &&
          f.action !== 'chmod' &&
          (f.path === PATHS.agentCfg(a.instance) ||
            f.path === PATHS.agentEnv(a.instance) ||
            f.path === PATHS.dropIn(a.instance) ||
            f.path === PATHS.slice(a.instance)),
      ),
    )
    .map((a) => a.instance);
  const sharedChanged = planned.some((f) => f.action === 'update' && (f.path === PATHS.templateUnit || f.path === PATHS.tokenFile));
  const previously = new Set((current.manifest?.agents ?? []).map((a) => a.instance));

  const commands: PlannedCommand[] = [];
  const before = (...argv: string[]) => commands.push({ phase: 'before', argv });
  const after = (...argv: string[]) => commands.push({ phase: 'after', argv });
  if (!current.userExists) before(...['useradd', '--system', '--create-home', '--home-dir', homeOf(opts), '--shell', '/usr/sbin/nologin', opts.user]);
  // --no-block everywhere: systemd stops a busy agent only once its job ends (TimeoutStopSec=
  // infinity), and setup must not wait for that.
  for (const i of removedInstances) before('systemctl', 'disable', '--now', '--no-block', unitName(i));
  // A unit of bkci's other than the agents' (bkci-gpu-devices.service) no longer planned.
  for (const p of removals) {
    const m = /^\/etc\/systemd\/system\/(bkci-[^@/]+\.service)$/.exec(p);
    if (m) before('systemctl', 'disable', '--now', '--no-block', m[1]!);
  }
  if (missing.length) before('systemctl', 'disable', '--now', '--no-block', ...missing.map((m) => m.agent.unit));
  const anyUnitChange =
    planned.some((f) => f.action !== 'unchanged' && f.action !== 'chmod' && (f.path.startsWith('/etc/systemd/') || f.path.startsWith(PATHS.confDir))) ||
    removals.length > 0;
  if (anyUnitChange) after('systemctl', 'daemon-reload');
  after('systemctl', 'enable', '--now', '--no-block', ...(devicesCmd ? [DEVICES_UNIT] : []), ...agents.map((a) => unitName(a.instance)));
  // Instances that were running with other settings pick them up on restart, queued without
  // waiting: SIGTERM is buildkite-agent's graceful stop (it finishes the running job, then exits;
  // KillMode=mixed sends it to the agent alone), so a busy agent restarts when its job ends and an
  // idle one at once. A changed device-node command runs again.
  const restart = agents.filter((a) => previously.has(a.instance) && (sharedChanged || changedInstances.includes(a.instance))).map((a) => unitName(a.instance));
  const devicesChanged = planned.some((f) => f.path === DEVICES_UNIT_PATH && f.action === 'update');
  if (restart.length || devicesChanged) after('systemctl', 'restart', '--no-block', ...(devicesChanged ? [DEVICES_UNIT] : []), ...restart);

  const changed = planned.some((f) => f.action !== 'unchanged') || plannedDirs.some((d) => d.action !== 'unchanged') || removals.length > 0;
  // What a run killed half way must leave known to the next setup or teardown: both manifests.
  const journal = mergeManifests(manifest, current.manifest);
  return { agents, missing, files: planned, dirs: plannedDirs, removals, removedInstances, commands, warnings, changed, journal };
}

// Everything two manifests name: the agents, files and directories of both (the first one's entry
// where both have one); a directory bkci created in either stays created.
export function mergeManifests(a: Manifest, b: Manifest | undefined): Manifest {
  if (!b) return a;
  const agents = new Map(a.agents.map((x) => [x.instance, x]));
  for (const x of b.agents) if (!agents.has(x.instance)) agents.set(x.instance, x);
  const files = new Map(a.files.map((f) => [f.path, f]));
  for (const f of b.files) if (!files.has(f.path)) files.set(f.path, f);
  const dirs = new Map(a.dirs.map((d) => [d.path, { ...d }]));
  for (const d of b.dirs) {
    const cur = dirs.get(d.path);
    if (!cur) dirs.set(d.path, { ...d, ...(d.kind === 'build' && !agents.has(d.path.split('/').pop()!) ? { kind: 'shared' as const } : {}) });
    else cur.created = cur.created || d.created;
  }
  return { ...a, agents: [...agents.values()], files: [...files.values()], dirs: [...dirs.values()] };
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

// HOME of the agents: the agent user's home, never derived from --build-root.
function homeOf(opts: SetupOptions): string {
  return opts.agentHome ?? DEFAULT_AGENT_HOME;
}

function pluginsPath(opts: SetupOptions): string {
  return `${buildBase(opts.buildRoot)}/plugins`;
}

// Groups GPUs into agents within NUMA nodes (across whole nodes when more GPUs per agent are asked
// for than a node holds), then shares each node's cores and memory among the agents on it.
export function planAgents(facts: HostFacts, opts: SetupOptions, warnings: string[] = [], previous: PreviousAgent[] = []): AgentPlan[] {
  return planAgentSet(facts, opts, warnings, previous).agents;
}

// An agent of the previous manifest whose GPU is gone: stopped, its files, name and share kept.
export interface MissingAgent {
  agent: AgentPlan;
  // The bus ids no longer on the host.
  lost: string[];
}

// The agents of a setup, and (with a previous manifest) those whose GPUs are gone. Agents of the
// previous manifest whose GPUs are all here keep their name, labels and place in their node's
// shares (src/node/identity.ts); new GPUs get new names that collide with none.
export function planAgentSet(
  facts: HostFacts,
  opts: SetupOptions,
  warnings: string[] = [],
  previous: PreviousAgent[] = [],
): { agents: AgentPlan[]; missing: MissingAgent[] } {
  checkValues(facts, opts);
  const extra = extraDevices(opts.deviceAllow ?? []);
  const baseName = opts.name ?? facts.hostname;
  const vendor = vendorOf(facts.vendor);
  if (!vendor) throw new UsageError(`vendor ${JSON.stringify(facts.vendor)}: not a vendor bkci knows`);
  const reserved = new Set(['queue', 'gpu', 'gpu-vendor', 'numa']);
  for (const [k] of opts.tags)
    if (reserved.has(k)) throw new UsageError(`--tags ${k}=...: bkci sets the ${k} tag itself`, k === 'queue' ? 'use --queue' : 'pick another tag name');

  // `nodes`: the NUMA nodes the agent's GPUs sit on (one, unless it spans nodes). `prev`: the
  // previous manifest's agent it is; `missing`: its GPUs are gone (it keeps its share, unplanned).
  // `fixed`: a CPU-only agent placed with its CPUs and memory (several queues on one host).
  type Group = { nodes: number[]; slots: Slot[]; prev?: PreviousAgent; missing?: string[]; fixed?: CpuPlacement };
  const groups: Group[] = [];
  if (facts.gpus.length === 0 && opts.cpuPlacements) {
    for (const p of opts.cpuPlacements) groups.push({ nodes: [p.node], slots: [], fixed: p });
  } else if (facts.gpus.length === 0) {
    if (opts.agents < 1) throw new UsageError(`--agents ${opts.agents}: at least one agent is needed`);
    for (let i = 0; i < opts.agents; i++) groups.push({ nodes: [facts.nodes[i % facts.nodes.length]!.id], slots: [] });
  } else {
    const slots = slotsOf(facts.gpus, opts.mig);
    if (!opts.mig && facts.gpus.some((g) => g.mig.length))
      warnings.push('MIG devices are present; agents get whole GPUs (pass --mig for one agent per MIG device)');
    // Two GPUs with one isolation id would be two agents on the same device (partitioned GPUs,
    // such as MI300X in CPX mode, can list several logical GPUs for one device): refuse.
    const byId = new Map<string, string>();
    for (const sl of slots) {
      const other = byId.get(sl.id);
      if (other !== undefined)
        throw new UsageError(
          `GPUs ${other} and ${sl.label} resolve to the same device (${sl.id}); agents cannot be isolated from each other`,
          'partitioned GPUs are not supported: switch the GPUs to a single partition (e.g. amd-smi set --compute-partition SPX), or file an issue with the vendor tool output',
        );
      byId.set(sl.id, sl.label);
    }
    const n = opts.gpusPerAgent;
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--gpus-per-agent ${n}: expected a positive whole number`);
    if (opts.mig && n !== 1) throw new UsageError('--mig gives one agent per MIG device; --gpus-per-agent must be 1');
    const carried = carryOver(slots, previous, n);
    // The previous agents in their manifest order (their order within each node's shares), then
    // the new ones.
    const missingOf = new Map(carried.missing.map((m) => [m.prev, m.lost]));
    const keptOf = new Map(carried.kept.map((k) => [k.prev, k.slots]));
    // In the manifest's agent order (GPU label, then name), whatever order the file lists them in.
    const inOrder = [...previous].sort((a, b) => order(a) - order(b) || a.instance.localeCompare(b.instance, 'en', { numeric: true }));
    for (const p of inOrder) {
      const kept = keptOf.get(p);
      if (kept) groups.push({ nodes: [...new Set(kept.map((s) => s.gpu.numaNode))], slots: kept, prev: p });
      const lost = missingOf.get(p);
      if (lost) {
        groups.push({ nodes: p.numaNodes ?? [p.numaNode ?? 0], slots: [], prev: p, missing: lost });
        warnings.push(`agent ${p.instance}: GPU ${lost.join(', ')} is gone from the host; the agent is stopped and keeps its name until the GPU is back`);
      }
    }
    if (carried.held.length)
      warnings.push(`GPU ${carried.held.map((s) => s.key).join(', ')} stays without an agent while the other GPU of its agent is missing`);
    groups.push(...groupSlots(carried.fresh, n, warnings));
  }

  // Shares per node: every GPU's agent (or group of GPUs) on a node, or CPU-only agent placed there,
  // takes one share of its cores and memory; an agent spanning nodes takes one share of each. The
  // MIG agents of one GPU take that GPU's one share together, split in proportion to their MIG
  // devices' memory (splitShare). A missing agent keeps its share, so the others' CPUs and memory
  // do not move.
  type Unit = { nodes: number[]; members: number[] };
  const units: Unit[] = [];
  const unitByGpu = new Map<string, Unit>();
  groups.forEach((g, i) => {
    // A CPU-only agent placed by src/node/queues.ts brings its own CPUs and memory.
    if (g.fixed) return;
    const gpu = migParentOf(g);
    const u = gpu === undefined ? undefined : unitByGpu.get(gpu);
    if (u) u.members.push(i);
    else {
      const fresh = { nodes: g.nodes, members: [i] };
      units.push(fresh);
      if (gpu !== undefined) unitByGpu.set(gpu, fresh);
    }
  });
  const unitsByNode = new Map<number, number>();
  for (const u of units) for (const node of u.nodes) unitsByNode.set(node, (unitsByNode.get(node) ?? 0) + 1);
  const cpuShares = new Map<number, number[][]>();
  const memShares = new Map<number, number>();
  for (const [nodeId, k] of unitsByNode) {
    const node = facts.nodes.find((x) => x.id === nodeId);
    if (!node)
      throw new UsageError(
        `NUMA node ${nodeId} of a previous agent is not on this host any more`,
        'tear the agents down (bkci node teardown) and set them up again',
      );
    cpuShares.set(nodeId, shareCores(node, facts.cores, k, opts.cpuReserve));
    memShares.set(nodeId, shareMemory(node, k, opts.memoryReserve));
  }
  const taken = new Map<number, number>();
  const shareOf = new Map<number, { cpus: number[]; memoryMax: number }>();
  for (const u of units) {
    const cpus: number[] = [];
    let memoryMax = 0;
    for (const node of u.nodes) {
      const idx = taken.get(node) ?? 0;
      taken.set(node, idx + 1);
      cpus.push(...cpuShares.get(node)![idx]!);
      memoryMax += memShares.get(node)!;
    }
    if (u.members.length === 1) shareOf.set(u.members[0]!, { cpus, memoryMax });
    else {
      const parts = splitShare(
        { cpus, memoryMax },
        u.members.map((i) => groups[i]!.slots),
        facts.cores,
        warnings,
      );
      u.members.forEach((i, k) => shareOf.set(i, parts[k]!));
    }
  }
  groups.forEach((g, i) => {
    if (g.fixed) shareOf.set(i, { cpus: [...g.fixed.cpus], memoryMax: g.fixed.memoryBytes });
  });
  const used = new Set(groups.flatMap((g) => (g.prev ? [g.prev.instance] : [])));
  const missing: MissingAgent[] = [];
  const plans: AgentPlan[] = [];
  groups.forEach((g, gi) => {
    const cpus = [...shareOf.get(gi)!.cpus];
    const memoryMax = shareOf.get(gi)!.memoryMax;
    if (g.missing) {
      missing.push({ agent: g.prev as AgentPlan, lost: g.missing });
      return;
    }
    const memNodes = formatCpuList(g.nodes);
    // Labels and names are fixed when an agent is made: a kept agent keeps them though the
    // vendor tool now numbers its GPUs otherwise.
    let gpuLabels = g.prev?.gpuLabels ?? g.slots.map((s) => s.label);
    let renamed: number | undefined;
    let instance = g.prev?.instance;
    if (!instance) {
      const candidate =
        g.slots.length === 0
          ? `${opts.cpuName ?? 'cpu'}${gi}`
          : `gpu${gpuLabels.length === 1 ? gpuLabels[0] : `${gpuLabels[0]}-${gpuLabels[gpuLabels.length - 1]}`}`;
      instance = freeInstance(candidate, used);
      used.add(instance);
      // A whole GPU whose index names another agent already: labelled as its name says (`gpu7`,
      // label 7), so no two agents share a label (the gpu= tag, BKCI_GPUS).
      const n = /^gpu(\d+)$/.exec(instance);
      if (instance !== candidate && n && g.slots.length === 1 && !g.slots[0]!.gpu.mig.some((m) => m.uuid === g.slots[0]!.id)) {
        renamed = Number(n[1]);
        gpuLabels = [n[1]!];
      }
    }
    const gpuIndices = g.prev && g.prev.gpuLabels ? g.prev.gpuIndices : renamed !== undefined ? [renamed] : [...new Set(g.slots.map((s) => s.gpu.index))];
    const ids = g.slots.map((s) => s.id);
    const devices = [...new Set(g.slots.flatMap((s) => s.gpu.devices))];
    const shared = g.slots.length ? facts.sharedDevices : [];
    const required = [...devices, ...shared.filter((d) => d.required).map((d) => d.path)];
    // DeviceAllow= entries: the required nodes, the optional ones (by class where they have one),
    // and whatever else the vendor grants (MIG capabilities).
    const deviceAllow = [
      ...new Set([
        ...required.map((d) => `${d} rw`),
        ...shared.filter((d) => !d.required).map((d) => `${d.allow ?? d.path} rw`),
        ...vendor.extraDeviceAllow(g.slots, opts.mig),
        ...extra.deviceAllow,
      ]),
    ];
    const groupsNeeded = g.slots.length ? facts.groups : [];
    const cpuText = formatCpuList(cpus);
    const memText = `${Math.floor(memoryMax / MiB)}M`;
    const buildPath = `${opts.buildRoot.replace(/\/$/, '')}/${instance}`;
    const env: Record<string, string> = {
      BKCI_AGENT: instance,
      BKCI_GPU_VENDOR: facts.vendor,
      BKCI_GPUS: gpuLabels.join(','),
      BKCI_CPUSET: cpuText,
      BKCI_MEMS: memNodes,
      BKCI_MEMORY: `${Math.floor(memoryMax / MiB)}m`,
      // The device nodes the agent cannot work without (checked by the hook and the health gate).
      BKCI_DEVICES: required.join(','),
      BKCI_GPU_BUSIDS: [...new Set(g.slots.map((s) => s.gpu.busId))].join(','),
      ...(g.slots.length ? facts.services?.env : {}),
      ...vendor.isolationEnv(g.slots),
      ...agentDirsEnv(buildPath, cpus.length),
    };
    // Every GPU of the agent, `+`-joined (a `-` range in the instance name can hide a gap: gpu0-2).
    const tagGpu = g.slots.length ? gpuLabels.join('+') : 'none';
    // The hardware tags (gpu-model, gpu-memory, cuda-cc/gfx, mig-profile); a --tags value replaces one.
    const given = new Set(opts.tags.map(([k]) => k));
    const tags = [
      `queue=${opts.queue}`,
      `gpu=${tagGpu}`,
      `gpu-vendor=${facts.vendor}`,
      `numa=${g.nodes.join('+')}`,
      ...hardwareTags(g.slots)
        .filter(([k]) => !given.has(k))
        .map(([k, v]) => `${k}=${v}`),
      ...opts.tags.map(([k, v]) => `${k}=${v}`),
    ];
    plans.push({
      instance,
      name: `${baseName}-${instance}`,
      unit: unitName(instance),
      gpus: g.slots.map((s) => s.id),
      gpuKeys: g.slots.map((s) => s.key),
      gpuLabels,
      gpuIndices,
      isolationIds: ids,
      vendor: facts.vendor,
      numaNode: g.nodes[0]!,
      numaNodes: g.nodes,
      cpus: cpuText,
      cpuCount: cpus.length,
      memNodes,
      memoryMax,
      memoryMaxText: memText,
      buildPath,
      devices,
      deviceAllow,
      groups: groupsNeeded,
      dockerArgs: [...vendor.dockerArgs(g.slots, [...required, ...shared.filter((d) => !d.required).map((d) => d.path)], groupsNeeded), ...extra.dockerArgs],
      env,
      jobDefaults: threadDefaults(cpus.length),
      tags,
    });
  });
  const byOrder = (a: AgentPlan, b: AgentPlan) => order(a) - order(b) || a.instance.localeCompare(b.instance, 'en', { numeric: true });
  return { agents: plans.sort(byOrder), missing: missing.sort((a, b) => byOrder(a.agent, b.agent)) };
}

// Groups new slots into agents of n within NUMA nodes, or (when some node's GPUs cannot be cut
// into groups of n) in node order across nodes, with a warning.
function groupSlots(slots: Slot[], n: number, warnings: string[]): { nodes: number[]; slots: Slot[] }[] {
  const groups: { nodes: number[]; slots: Slot[] }[] = [];
  if (slots.length % n !== 0) throw new UsageError(`--gpus-per-agent ${n} does not divide the ${slots.length} GPUs found`, `pick a divisor of ${slots.length}`);
  const byNode = new Map<number, Slot[]>();
  for (const s of slots) byNode.set(s.gpu.numaNode, [...(byNode.get(s.gpu.numaNode) ?? []), s]);
  const nodesInOrder = [...byNode].sort((a, b) => a[0] - b[0]);
  if (nodesInOrder.every(([, list]) => list.length % n === 0)) {
    for (const [node, list] of nodesInOrder) for (let i = 0; i < list.length; i += n) groups.push({ nodes: [node], slots: list.slice(i, i + n) });
  } else {
    const ordered = nodesInOrder.flatMap(([, list]) => list);
    for (let i = 0; i < ordered.length; i += n) {
      const chunk = ordered.slice(i, i + n);
      const nodes = [...new Set(chunk.map((s) => s.gpu.numaNode))];
      groups.push({ nodes, slots: chunk });
      if (nodes.length > 1)
        warnings.push(`GPUs ${chunk.map((s) => s.label).join(', ')} share an agent across NUMA nodes ${nodes.join(', ')}: it gets CPUs and memory from each`);
    }
  }
  return groups;
}

// A control character (a newline above all) in a value that reaches a generated file would start a
// new line there: another key in a .cfg, another variable in an EnvironmentFile, another setting in
// a unit. Refused wherever it comes from, naming the flag (or the fact) it came in.
export function controlCharAt(v: string): number {
  return v.search(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
}

export function refuseControl(what: string, v: string, hint?: string): void {
  const at = controlCharAt(v);
  if (at < 0) return;
  const code = v.codePointAt(at)!.toString(16).toUpperCase().padStart(4, '0');
  throw new UsageError(
    `${what} ${JSON.stringify(v.length > 80 ? v.slice(0, 80) + '…' : v)} has a control character (U+${code} at position ${at + 1}): it would start a new line in the files bkci writes`,
    hint ?? 'remove it (names, tags and paths are written into the agent config, environment files and units)',
  );
}

// An absolute path in normal form: no empty, `.` or `..` parts, so it stays under --root when joined.
export function isTargetPath(p: string): boolean {
  return (
    p === '/' ||
    (p.startsWith('/') &&
      p.length < 4096 &&
      p
        .slice(1)
        .split('/')
        .every((x) => x !== '' && x !== '.' && x !== '..') &&
      controlCharAt(p) < 0)
  );
}

function checkValues(facts: HostFacts, opts: SetupOptions): void {
  if (opts.name !== undefined) {
    refuseControl('--name', opts.name);
    if (opts.name.includes('\\')) throw new UsageError(`--name ${JSON.stringify(opts.name)}: a backslash is not allowed in an agent name`);
  } else {
    refuseControl('the hostname', facts.hostname, 'pass --name NAME for the agent names');
    if (facts.hostname.includes('\\'))
      throw new UsageError(`the hostname ${JSON.stringify(facts.hostname)} has a backslash`, 'pass --name NAME for the agent names');
  }
  refuseControl('--queue', opts.queue);
  if (opts.diskCleanup !== undefined) {
    refuseControl('--disk-cleanup', opts.diskCleanup);
    if (!opts.diskCleanup.trim()) throw new UsageError('--disk-cleanup: the command is empty');
  }
  for (const [k, v] of opts.tags) refuseControl('--tags', `${k}=${v}`);
  refuseControl('--user', opts.user);
  refuseControl('--build-root', opts.buildRoot);
  if (!isTargetPath(opts.buildRoot) || opts.buildRoot === '/')
    throw new UsageError(
      `--build-root ${JSON.stringify(opts.buildRoot)}: expected an absolute path without . or .. parts (and not /)`,
      'e.g. --build-root /nvme/buildkite/builds',
    );
  refuseControl('--agent-bin', opts.agentBin);
  for (const b of opts.bkciBin) refuseControl('--bkci-bin', b);
}

const order = (a: Pick<AgentPlan, 'gpuIndices'>) => (a.gpuIndices.length ? Math.min(...a.gpuIndices) : 1e9);

// The MIG device a slot is, when it is one (a whole GPU's slot is not).
const migOf = (s: Slot) => s.gpu.mig.find((m) => m.uuid === s.id);

// The GPU (bus id) whose share an agent's MIG devices come from; undefined for an agent of whole
// GPUs. A missing agent's from its keys (`bus/giN/ciM`), so it keeps its place in its GPU's share.
function migParentOf(g: { slots: Slot[]; prev?: PreviousAgent }): string | undefined {
  if (g.slots.length) {
    const buses = new Set(g.slots.map((s) => s.gpu.busId));
    return buses.size === 1 && g.slots.every((s) => migOf(s) !== undefined) ? g.slots[0]!.gpu.busId : undefined;
  }
  const keys = g.prev?.gpuKeys ?? [];
  const buses = new Set(keys.map(busOfKey));
  return keys.length && buses.size === 1 && keys.every((k) => k.includes('/')) ? busOfKey(keys[0]!) : undefined;
}

// One GPU's share of CPUs and memory split among its MIG agents (`members`: each agent's slots;
// none for a missing one) in proportion to their MIG devices' memory: a 3g.40gb + 2g.20gb +
// 1g.10gb + 1g.10gb GPU gives 4/8, 2/8, 1/8 and 1/8. Compute instances sharing one GPU instance
// (and so its memory) count a part of it each. Whole cores (SMT siblings together) while there are
// at least as many cores as agents, else single CPUs; memory in whole MiB, at least 256 MiB each;
// largest-remainder rounding, so the parts add up to the share exactly. Equal parts when a device's
// memory is unknown.
export function splitShare(
  share: { cpus: number[]; memoryMax: number },
  members: Slot[][],
  cores: number[][],
  warnings: string[] = [],
): { cpus: number[]; memoryMax: number }[] {
  const n = members.length;
  const weightOf = (slots: Slot[]): number | undefined => {
    if (slots.length !== 1) return undefined;
    const s = slots[0]!;
    const m = migOf(s);
    if (m?.memoryMiB === undefined) return undefined;
    const sharing = m.gi === undefined ? 1 : s.gpu.mig.filter((x) => x.gi === m.gi).length;
    return m.memoryMiB / Math.max(1, sharing);
  };
  let weights = members.map(weightOf);
  if (weights.some((w) => w === undefined || !(w > 0))) {
    const unknown = members.flatMap((slots) => (slots.length && weightOf(slots) === undefined ? slots.map((s) => s.id) : []));
    if (unknown.length)
      warnings.push(
        `MIG device ${unknown.join(', ')}: its memory is unknown (no size in its profile name or the MIG devices table); its GPU's CPUs and memory are split equally among its agents`,
      );
    weights = members.map(() => 1);
  }
  const w = weights as number[];
  const where = members.find((slots) => slots.length)?.[0];
  const gpuText = where ? `GPU ${where.gpu.index} (${where.gpu.busId})` : 'a GPU';
  // Whole cores of the share, in CPU order.
  const mine = new Set(share.cpus);
  let pieces = cores.map((c) => c.filter((x) => mine.has(x))).filter((c) => c.length > 0);
  if (pieces.length < n) {
    if (share.cpus.length < n)
      throw new UsageError(
        `${gpuText} has ${share.cpus.length} CPU${share.cpus.length === 1 ? '' : 's'} in its share, too few for its ${n} MIG agents (each needs one)`,
        'lower --cpu-reserve, or make fewer MIG devices on the GPU',
      );
    warnings.push(`${gpuText}: its share has ${pieces.length} cores for ${n} MIG agents; SMT siblings are split between agents`);
    pieces = [...share.cpus].sort((a, b) => a - b).map((c) => [c]);
  }
  const totalMiB = Math.floor(share.memoryMax / MiB);
  if (totalMiB < n * 256)
    throw new UsageError(
      `${gpuText} has ${formatBytes(share.memoryMax)} of memory in its share, too little for its ${n} MIG agents (256 MiB each)`,
      'lower --memory-reserve',
    );
  const cpuParts = apportion(pieces.length, w, 1);
  const memParts = apportion(totalMiB, w, 256);
  let at = 0;
  return cpuParts.map((k, i) => {
    const cpus = pieces
      .slice(at, at + k)
      .flat()
      .sort((a, b) => a - b);
    at += k;
    return { cpus, memoryMax: memParts[i]! * MiB };
  });
}

// Splits `total` whole units among `weights` in proportion: each gets the whole part of its quota,
// what is left goes one each to the largest remainders (ties: the earlier), then any part under
// `min` takes units from the part furthest above its quota (ties: the later). Deterministic; the
// parts add up to `total`. Needs total >= min × weights.length.
export function apportion(total: number, weights: number[], min = 0): number[] {
  const n = weights.length;
  if (!n) return [];
  if (!Number.isInteger(total) || total < n * min) throw new RangeError(`apportion: ${total} cannot give ${n} parts of at least ${min}`);
  const ws = weights.map((x) => (Number.isFinite(x) && x > 0 ? x : 0));
  const sum = ws.reduce((a, b) => a + b, 0);
  const quota = (sum > 0 ? ws : ws.map(() => 1)).map((x, _i, all) => (total * x) / all.reduce((a, b) => a + b, 0));
  const out = quota.map((q) => Math.floor(q));
  let left = total - out.reduce((a, b) => a + b, 0);
  const byRemainder = quota.map((_q, i) => i).sort((a, b) => quota[b]! - out[b]! - (quota[a]! - out[a]!) || a - b);
  for (const i of byRemainder) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  for (let low = out.findIndex((x) => x < min); low >= 0; low = out.findIndex((x) => x < min)) {
    let donor = -1;
    for (let j = 0; j < n; j++) if (out[j]! > min && (donor < 0 || out[j]! - quota[j]! >= out[donor]! - quota[donor]!)) donor = j;
    out[donor]!--;
    out[low]!++;
  }
  return out;
}

// Splits a node's cores (SMT siblings kept together) into k disjoint shares after reserving the
// first cores (at least `reserve` CPUs) for the host. Earlier shares get the remainder.
export function shareCores(node: NumaNode, cores: number[][], k: number, reserve: number): number[][] {
  const inNode = new Set(node.cpus);
  const nodeCores = cores.map((c) => c.filter((x) => inNode.has(x))).filter((c) => c.length > 0);
  let reservedCpus = 0;
  let start = 0;
  while (reservedCpus < reserve && start < nodeCores.length) reservedCpus += nodeCores[start++]!.length;
  const usable = nodeCores.slice(start);
  if (usable.length < k) {
    throw new UsageError(
      `NUMA node ${node.id} has ${usable.length} core${usable.length === 1 ? '' : 's'} left after --cpu-reserve ${reserve}, too few for ${k} agents`,
      'lower --cpu-reserve, or put more GPUs in each agent with --gpus-per-agent',
    );
  }
  const base = Math.floor(usable.length / k);
  const extra = usable.length % k;
  const shares: number[][] = [];
  let at = 0;
  for (let i = 0; i < k; i++) {
    const take = base + (i < extra ? 1 : 0);
    shares.push(
      usable
        .slice(at, at + take)
        .flat()
        .sort((a, b) => a - b),
    );
    at += take;
  }
  return shares;
}

// Each of k agents' MemoryMax on a node: (node memory − reserve) / k, whole MiB.
export function shareMemory(node: NumaNode, k: number, reserve: number): number {
  const usable = node.memBytes - reserve;
  if (node.memBytes <= 0) throw new UsageError(`NUMA node ${node.id}: its memory size is unknown (no meminfo)`, 'check --host-root');
  if (usable < k * 256 * MiB)
    throw new UsageError(
      `NUMA node ${node.id} has ${formatBytes(node.memBytes)}; after --memory-reserve ${formatBytes(reserve)} too little is left for ${k} agents`,
      'lower --memory-reserve',
    );
  return Math.floor(usable / k / MiB) * MiB;
}
