// NVIDIA: GPUs from nvidia-smi (CSV query and -L for MIG devices) and /proc/driver/nvidia for
// device minors (index, UUID, bus id and /dev/nvidiaN minor are four different things); the
// isolation variables take UUIDs; health from nvidia-smi's query fields.
import { readFile, stat } from 'node:fs/promises';
import { InputError } from '../../util/errors.js';
import { normalizeBusId, pciNumaNode } from '../detect/sysfs.js';
import { healthOutput, healthRun, requireTool, runBounded, runTool, which } from '../detect/tools.js';
import type { Gpu, MigDevice } from '../detect/types.js';
import { under } from '../safe-fs.js';
import { fabricNotReported, fabricProblem, gatherNvidiaServices, parseFabric, type FabricInfo } from './nvidia-host.js';
import {
  formatMigInstance,
  migCapNodes,
  migDevicesNow,
  migPartitionChanges,
  migReport,
  parseMigInstances,
  parseMigMinors,
  parseMigTable,
  parseNvidiaListing,
  partitionCheck,
  partitionDrift,
  type PartitionChange,
} from './nvidia-mig.js';
import type { AgentSlot, DetectContext, DeviceNode, DoctorContext, DoctorItem, GpuReport, ManifestAgent, ToolIo, VendorModule } from './types.js';

export interface NvidiaSmiGpu {
  index: number;
  uuid: string;
  name: string;
  busId: string;
  memoryMiB?: number;
}

export const NVIDIA_QUERY = ['--query-gpu=index,uuid,name,pci.bus_id,memory.total', '--format=csv,noheader,nounits'];

// `0, GPU-6c2f..., NVIDIA H100 80GB HBM3, 00000000:8D:00.0, 81559` per line. The name may hold commas.
// Lines that are not GPU rows (driver warnings such as "WARNING: infoROM is corrupted") are
// returned in `skipped` rather than failing the whole detection.
// Two rows with the same index, UUID or bus id are inconsistent output: an error naming both lines.
export function parseNvidiaQuery(text: string, skipped: string[] = []): NvidiaSmiGpu[] {
  const out: NvidiaSmiGpu[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (const [n, line] of lines.entries()) {
    if (!line.trim()) continue;
    const f = line.split(',').map((s) => s.trim());
    const [index, uuid] = f;
    if (f.length < 5 || !/^\d{1,6}$/.test(index!) || !/^GPU-/.test(uuid!)) {
      skipped.push(line.trim());
      continue;
    }
    const mem = f[f.length - 1]!;
    const bus = f[f.length - 2]!;
    const name = f.slice(2, f.length - 2).join(', ');
    for (const [what, v] of [
      ['index', index!],
      ['UUID', uuid!],
      ['bus id', normalizeBusId(bus)],
    ]) {
      const first = seen.get(`${what} ${v}`);
      if (first !== undefined)
        throw new InputError(
          `nvidia-smi ${NVIDIA_QUERY[0]} line ${n + 1}: ${what} ${v} was already given on line ${first + 1} (${JSON.stringify(lines[first]!.trim())}): inconsistent output`,
          'run the same nvidia-smi query by hand; a driver in a bad state (or a wrapper script) can print a GPU twice',
        );
      seen.set(`${what} ${v}`, n);
    }
    out.push({ index: Number(index), uuid: uuid!, name, busId: bus, memoryMiB: /^\d+$/.test(mem) ? Number(mem) : undefined });
  }
  return out;
}

// `nvidia-smi -L`: each GPU's MIG devices, by GPU UUID (src/node/vendors/nvidia-mig.ts parses it).
export function parseNvidiaList(text: string): Map<string, MigDevice[]> {
  return new Map(parseNvidiaListing(text).map((g) => [g.uuid, g.mig]));
}

// `Device Minor: 3` from /proc/driver/nvidia/gpus/<bus id>/information.
export function parseDeviceMinor(text: string): number | undefined {
  const m = /^Device Minor:\s*(\d{1,6})\s*$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

// /dev/nvidiactl is needed by every CUDA process. nvidia-uvm (and -tools) appear on first CUDA use
// (or from nvidia-modprobe -u), and headless hosts have no nvidia-modeset: allowed, never required.
// The uvm nodes are allowed by their device class (the major is dynamic), resolved when the unit
// starts; the modeset node by path (systemd skips a DeviceAllow= path that does not exist).
export const NVIDIA_DEVICES: DeviceNode[] = [
  { path: '/dev/nvidiactl', required: true },
  { path: '/dev/nvidia-uvm', required: false, allow: 'char-nvidia-uvm' },
  { path: '/dev/nvidia-uvm-tools', required: false, allow: 'char-nvidia-uvm' },
  { path: '/dev/nvidia-modeset', required: false },
];

// Health fields for `node check`.
// Health fields for `node check`, by name. gpu_recovery_action (what the driver says the GPU
// needs: None, GPU Reset, Node Reboot, Drain P2P, Drain and Reset) is asked only of a driver that
// lists it in --help-query-gpu: an older one rejects the whole query for an unknown field.
export const NVIDIA_HEALTH_FIELDS = [
  'uuid',
  'memory.used',
  'ecc.errors.uncorrected.volatile.total',
  'retired_pages.pending',
  'remapped_rows.pending',
  'remapped_rows.failure',
] as const;
export const NVIDIA_OPTIONAL_HEALTH_FIELDS = ['gpu_recovery_action'] as const;
export const nvidiaHealthQuery = (fields: readonly string[]) => [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
// Kept for callers that ask the base fields.
export const NVIDIA_HEALTH_QUERY = nvidiaHealthQuery(NVIDIA_HEALTH_FIELDS);
export const NVIDIA_APPS_QUERY = ['--query-compute-apps=gpu_uuid,pid,used_memory', '--format=csv,noheader,nounits'];

// The health fields of one GPU as nvidia-smi reports them (GpuReport's, by its UUID).
export interface NvidiaHealth extends Pick<
  GpuReport,
  'memoryUsedMiB' | 'eccUncorrected' | 'retiredPending' | 'remapPending' | 'remapFailure' | 'recoveryAction'
> {
  uuid: string;
  // Fields the GPU does not have (`[N/A]`: no ECC, retired pages on Ampere and later): not failures.
  notApplicable: string[];
  // Fields nvidia-smi could not read, with what it printed instead (`[Unknown Error]`,
  // `[GPU requires reset]`, `[GPU is lost]`, `[Insufficient Permissions]`).
  unreadable: { field: string; value: string }[];
}

const na = (s: string | undefined) => s === undefined || /^\[?(N\/A|Not Supported)\]?$/i.test(s);
// Any other bracketed value is nvidia-smi saying why it has none.
const unread = (s: string | undefined) => s !== undefined && /^\[.*\]$/.test(s) && !na(s);
// What an unreadable field says about the GPU itself: it needs a reset, or is gone.
export const GPU_UNFIT_VALUE = /GPU (requires reset|is lost)/i;
const yes = (s: string | undefined) => (na(s) || unread(s) ? undefined : /^yes$/i.test(s!));
const num = (s: string | undefined) => (s && /^\d{1,15}$/.test(s) ? Number(s) : undefined);

// One row per GPU, columns in the order of `fields` (as queried).
export function parseNvidiaHealth(text: string, fields: readonly string[] = NVIDIA_HEALTH_FIELDS): NvidiaHealth[] {
  return text
    .split('\n')
    .filter((l) => /^\s*GPU-/.test(l))
    .map((l) => {
      const cells = l.split(',').map((x) => x.trim());
      const f = (name: string) => {
        const i = fields.indexOf(name);
        return i < 0 ? undefined : cells[i];
      };
      const checked = [
        'ecc.errors.uncorrected.volatile.total',
        'retired_pages.pending',
        'remapped_rows.pending',
        'remapped_rows.failure',
        'gpu_recovery_action',
      ];
      const label = (k: string) => k.split('.')[0]!.replace(/_/g, ' ');
      const notApplicable = checked.filter((k) => fields.includes(k) && na(f(k))).map(label);
      const unreadable = checked.filter((k) => fields.includes(k) && unread(f(k))).map((k) => ({ field: label(k), value: f(k)! }));
      const action = f('gpu_recovery_action');
      return {
        uuid: cells[0]!,
        memoryUsedMiB: num(f('memory.used')),
        eccUncorrected: num(f('ecc.errors.uncorrected.volatile.total')),
        retiredPending: yes(f('retired_pages.pending')),
        remapPending: yes(f('remapped_rows.pending')),
        remapFailure: yes(f('remapped_rows.failure')),
        ...(action !== undefined && !na(action) && !unread(action) ? { recoveryAction: action } : {}),
        notApplicable: [...new Set(notApplicable)],
        unreadable,
      };
    });
}

export function parseNvidiaApps(text: string): { uuid: string; pid: number; usedMiB?: number }[] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !/No running/i.test(l))
    .map((l) => {
      const f = l.split(',').map((s) => s.trim());
      return { uuid: f[0]!, pid: Number(f[1]), usedMiB: num(f[2]) };
    });
}

// Each GPU's CUDA compute capability (`9.0`), asked only of a driver that lists `compute_cap` in
// --help-query-gpu (older ones reject the whole query for an unknown field). UUID → capability.
async function computeCapabilities(io: ToolIo): Promise<Map<string, string>> {
  const smi = (await which('nvidia-smi', io.env))!;
  const help = await runBounded(smi, ['--help-query-gpu'], io);
  if (!help.ok || !/"compute_cap"/.test(help.stdout)) return new Map();
  const r = await runBounded(smi, ['--query-gpu=uuid,compute_cap', '--format=csv,noheader'], io);
  return new Map(
    (r.ok ? r.stdout : '')
      .split('\n')
      .map((l) => l.split(',').map((x) => x.trim()))
      .filter(([u, c]) => /^GPU-/.test(u ?? '') && /^\d{1,2}\.\d{1,2}$/.test(c ?? ''))
      .map(([u, c]) => [u!, c!]),
  );
}

async function detect(ctx: DetectContext): Promise<Gpu[]> {
  const { host, nodes, io, warnings } = ctx;
  const skipped: string[] = [];
  const rows = parseNvidiaQuery(await requireTool('nvidia-smi', NVIDIA_QUERY, io, nvidia), skipped);
  for (const line of skipped) warnings.push(`nvidia-smi printed a line that is not a GPU: ${line}`);
  // MIG devices come from -L; a tool that cannot list them means none are used.
  const listing = await runBounded((await which('nvidia-smi', io.env))!, ['-L'], io);
  if (!listing.ok) warnings.push('nvidia-smi -L failed; assuming no MIG devices');
  const listed = parseNvidiaListing(listing.ok ? listing.stdout : '');
  // GPU and compute instance ids of the MIG devices (their stable identity with the bus id), and
  // their memory, from plain nvidia-smi's MIG devices table.
  let table: ReturnType<typeof parseMigTable> = [];
  if (listed.some((g) => g.mig.length)) {
    const plain = await runBounded((await which('nvidia-smi', io.env))!, [], io);
    table = parseMigTable(plain.ok ? plain.stdout : '');
    if (!table.length) warnings.push('nvidia-smi printed no MIG devices table; MIG agents are keyed by their UUIDs (they change when a GPU is re-partitioned)');
  }
  const migs = migDevicesNow(listed, table);
  const cc = await computeCapabilities(io);
  const minorsText = [...migs.values()].some((l) => l.length) ? await host.read('proc/driver/nvidia-caps/mig-minors') : undefined;
  const capMinors = parseMigMinors(minorsText ?? '');
  const gpus: Gpu[] = [];
  for (const r of rows) {
    const busId = normalizeBusId(r.busId);
    const numa = await pciNumaNode(host, busId, nodes);
    if (!numa.known && nodes.length > 1)
      warnings.push(`GPU ${r.index} (${busId}): no usable NUMA node in sysfs (numa_node, local_cpulist); assuming node ${numa.node}`);
    const info = await host.read(`proc/driver/nvidia/gpus/${busId}/information`);
    let minor = info ? parseDeviceMinor(info) : undefined;
    if (minor === undefined) {
      warnings.push(`GPU ${r.index} (${busId}): no device minor in /proc/driver/nvidia; assuming /dev/nvidia${r.index}`);
      minor = r.index;
    }
    // Each MIG instance's own capability nodes (its GPU instance and compute instance).
    for (const m of migs.get(r.uuid) ?? []) {
      const caps = m.gi !== undefined && m.ci !== undefined ? migCapNodes(capMinors, minor, m.gi, m.ci) : undefined;
      if (caps) m.caps = caps;
      else
        warnings.push(
          `MIG device ${m.uuid} of GPU ${r.index}: its capability nodes are not in /proc/driver/nvidia-caps/mig-minors${m.gi === undefined ? ' (no GPU/compute instance ids from nvidia-smi)' : ''}; a --mig agent for it could not open it`,
        );
    }
    gpus.push({
      vendor: 'nvidia',
      index: r.index,
      isolationId: r.uuid,
      uuid: r.uuid,
      name: r.name,
      busId,
      numaNode: numa.node,
      devices: [`/dev/nvidia${minor}`],
      memoryMiB: r.memoryMiB,
      ...(cc.has(r.uuid) ? { arch: { tag: 'cuda-cc', value: cc.get(r.uuid)! } } : {}),
      mig: migs.get(r.uuid) ?? [],
    });
  }
  return gpus;
}

function migEnv(slots: AgentSlot[]): Record<string, string> {
  const list = slots.flatMap((s) => {
    const m = s.gpu.mig.find((x) => x.uuid === s.id);
    return m && m.gi !== undefined && m.ci !== undefined
      ? [formatMigInstance({ uuid: m.uuid, parent: s.gpu.uuid ?? s.gpu.isolationId, gi: m.gi, ci: m.ci })]
      : [];
  });
  return list.length ? { BKCI_MIG_INSTANCES: list.join(',') } : {};
}

// A MIG agent's health: the parent GPU's (ECC, row remapping, recovery) narrowed to its own
// instance's processes and memory; a MIG UUID that is gone (re-partitioned) is unfit.
async function health(env: Record<string, string>, io: ToolIo): Promise<GpuReport[]> {
  const reports = await gpuHealth(env, io);
  const instances = parseMigInstances(env.BKCI_MIG_INSTANCES);
  if (!instances.length) return reports;
  const l = await healthRun('nvidia-smi', ['-L'], io);
  const listing = l && l.error === undefined ? l.stdout : undefined;
  const out: GpuReport[] = [];
  for (const inst of instances) {
    const parent = reports.find((r) => r.id === inst.parent) ?? { id: inst.parent, present: false, processes: [] };
    const table = await healthOutput('nvidia-smi', ['-i', inst.parent], io);
    out.push(migReport(parent, inst, listing, table));
  }
  return out;
}

async function gpuHealth(env: Record<string, string>, io: ToolIo): Promise<GpuReport[]> {
  const uuids = (env.BKCI_GPU_UUIDS ?? env.NVIDIA_VISIBLE_DEVICES ?? '').split(',').filter(Boolean);
  // `-i`: under the unit's DevicePolicy=closed only this agent's GPUs can be opened; asking
  // nvidia-smi about the others would fail.
  const only = ['-i', uuids.join(',')];
  // Probe the fields this driver knows (an older one fails the whole query on an unknown field).
  const help = await healthOutput('nvidia-smi', ['--help-query-gpu'], io);
  const fields = [...NVIDIA_HEALTH_FIELDS, ...NVIDIA_OPTIONAL_HEALTH_FIELDS.filter((f) => help !== undefined && new RegExp(`"${f}"|\\b${f}\\b`).test(help))];
  const run = await healthRun('nvidia-smi', [...nvidiaHealthQuery(fields), ...only], io);
  const rows = new Map<string, NvidiaHealth>(
    parseNvidiaHealth(run?.stdout ?? '', fields)
      .filter((h) => uuids.includes(h.uuid))
      .map((h) => [h.uuid, h]),
  );
  if (rows.size === 0) {
    // Without the health query (an old driver), presence still comes from the GPU list.
    const list = await healthRun('nvidia-smi', ['-L'], io);
    const why = list?.error ?? run?.error;
    return uuids.map((id) =>
      list && list.stdout.includes(id)
        ? { id, present: true, processes: [], note: `health fields unavailable from nvidia-smi${run?.error ? `: ${run.error}` : ''}` }
        : { id, present: false, processes: [], ...(why ? { reason: why } : run === undefined ? { reason: 'nvidia-smi is not on PATH' } : {}) },
    );
  }
  const appsText = await healthOutput('nvidia-smi', [...NVIDIA_APPS_QUERY, ...only], io);
  const apps = parseNvidiaApps(appsText ?? '');
  // NVSwitch hosts (BKCI_NVSWITCH from setup): each GPU's fabric must be registered (Completed).
  const fabric = env.BKCI_NVSWITCH ? await fabricOf(only, io) : undefined;
  return uuids.map((id) => {
    const h = rows.get(id);
    if (!h) return { id, present: false, processes: [], ...(run?.error ? { reason: run.error } : {}) };
    // A GPU nvidia-smi -q did not list (or a failed -q) is unknown, and unfit; a GPU it lists
    // without a fabric state (no Fabric section, N/A) has none to wait for: not applicable.
    const f: FabricInfo | undefined = fabric && (fabric.get(id) ?? { uuid: id, state: `unknown (${fabric.error ?? 'nvidia-smi -q did not list this GPU'})` });
    const fProblem = f && fabricProblem(f);
    const fNotReported = f !== undefined && fabricNotReported(f);
    const notApplicable = [...h.notApplicable, ...(fNotReported ? ['fabric state'] : [])];
    // A field nvidia-smi could not read because the GPU needs a reset or is gone fails the GPU;
    // any other unreadable field is said, not failed.
    const problems = [
      ...(fProblem ? [fProblem] : []),
      ...h.unreadable.filter((u) => GPU_UNFIT_VALUE.test(u.value)).map((u) => `nvidia-smi cannot read ${u.field}: ${u.value}`),
    ];
    const unreadNote = h.unreadable
      .filter((u) => !GPU_UNFIT_VALUE.test(u.value))
      .map((u) => `${u.field} unreadable: ${u.value}`)
      .join('; ');
    const notes = [unreadNote, appsText === undefined ? 'compute processes could not be listed' : ''].filter(Boolean).join('; ');
    return {
      ...(f ? { fabric: { state: f.state ?? 'not reported', ...(f.status !== undefined ? { status: f.status } : {}) } } : {}),
      ...(problems.length ? { problems } : {}),
      id,
      present: true,
      processes: apps.filter((a) => a.uuid === id).map((a) => a.pid),
      memoryUsedMiB: h.memoryUsedMiB,
      eccUncorrected: h.eccUncorrected,
      retiredPending: h.retiredPending,
      remapPending: h.remapPending,
      remapFailure: h.remapFailure,
      ...(h.recoveryAction !== undefined ? { recoveryAction: h.recoveryAction } : {}),
      ...(notApplicable.length ? { notApplicable } : {}),
      ...(notes ? { note: notes } : {}),
    };
  });
}

// `nvidia-smi -q -i UUID,...`: the Fabric state of each of the agent's GPUs, by UUID.
async function fabricOf(only: string[], io: ToolIo): Promise<Map<string, FabricInfo> & { error?: string }> {
  const run = await healthRun('nvidia-smi', ['-q', ...only], io);
  const out: Map<string, FabricInfo> & { error?: string } = new Map(parseFabric(run?.stdout ?? '').map((f) => [f.uuid, f]));
  if (!run) out.error = 'nvidia-smi is not on PATH';
  else if (run.error) out.error = `nvidia-smi -q failed: ${run.error}`;
  return out;
}

const item = (check: string, status: DoctorItem['status'], detail: string, fix?: string): DoctorItem => ({ check, status, detail, ...(fix ? { fix } : {}) });

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

// Docker needs the nvidia runtime (or a CDI spec) for `--gpus`.
async function checkRuntime(ctx: DoctorContext): Promise<DoctorItem> {
  if (!ctx.docker) return item('nvidia container runtime', 'skip', 'docker is not installed');
  const daemon = await readFile(under(ctx.root, '/etc/docker/daemon.json'), 'utf8').catch(() => '');
  const cdi = (await exists(under(ctx.root, '/etc/cdi/nvidia.yaml'))) || (await exists(under(ctx.hostRoot, '/var/run/cdi/nvidia.yaml')));
  if (/"nvidia"\s*:/.test(daemon) || cdi)
    return item('nvidia container runtime', 'ok', /"nvidia"/.test(daemon) ? 'docker has the nvidia runtime' : 'NVIDIA CDI spec present');
  return item(
    'nvidia container runtime',
    'fail',
    'docker has no nvidia runtime: `docker run --gpus` fails with "could not select device driver"',
    'install nvidia-container-toolkit, then nvidia-ctk runtime configure --runtime=docker && systemctl restart docker',
  );
}

// Without persistence mode the driver tears a GPU's state down whenever no process holds it, so
// every job's first CUDA call waits seconds for the GPU to come up again.
async function checkPersistenceMode(io: ToolIo): Promise<DoctorItem> {
  const smi = await which('nvidia-smi', io.env);
  if (!smi) return item('persistence mode', 'skip', 'nvidia-smi is not on PATH');
  const r = await runTool(smi, ['--query-gpu=index,persistence_mode', '--format=csv,noheader'], io, 30_000);
  if (!r.ok) return item('persistence mode', 'skip', `nvidia-smi could not say (exit ${r.exitCode ?? '?'})`);
  const off = r.stdout
    .split('\n')
    .map((l) => l.split(',').map((x) => x.trim()))
    .filter(([i, mode]) => /^\d+$/.test(i ?? '') && /^disabled$/i.test(mode ?? ''))
    .map(([i]) => i);
  if (off.length) {
    return item(
      'persistence mode',
      'warn',
      `off on GPU${off.length > 1 ? 's' : ''} ${off.join(', ')}: the driver tears the GPU down between jobs and each job's first CUDA call waits for it`,
      'systemctl enable --now nvidia-persistenced (or nvidia-smi -pm 1)',
    );
  }
  return item('persistence mode', 'ok', 'enabled on every GPU');
}

// The manifest's MIG agents against each GPU's MIG devices now (nvidia-smi -L and the MIG devices
// table of plain nvidia-smi). Undefined when nvidia-smi cannot list them (with why); nothing is run
// when no agent is a MIG agent.
async function partitionChanges(agents: ManifestAgent[], io: ToolIo): Promise<{ changes?: PartitionChange[]; why?: string; migAgents: number }> {
  const migAgents = agents.filter((a) => !a.missing && parseMigInstances(a.env?.BKCI_MIG_INSTANCES).length).length;
  if (!migAgents) return { changes: [], migAgents };
  const l = await healthRun('nvidia-smi', ['-L'], io);
  if (!l) return { why: 'nvidia-smi is not on PATH', migAgents };
  if (l.error !== undefined) return { why: l.error, migAgents };
  const listed = parseNvidiaListing(l.stdout);
  const table = listed.some((g) => g.mig.length) ? await healthOutput('nvidia-smi', [], io) : undefined;
  return { changes: migPartitionChanges(agents, migDevicesNow(listed, parseMigTable(table ?? ''))), migAgents };
}

async function checkPartitions(agents: ManifestAgent[], io: ToolIo): Promise<DoctorItem[]> {
  const r = await partitionChanges(agents, io);
  return r.migAgents ? [partitionCheck(r.migAgents, r.changes, r.why)] : [];
}

export const nvidia: VendorModule = {
  id: 'nvidia',
  label: 'NVIDIA',
  kubernetes: { resource: 'nvidia.com/gpu', productLabel: 'nvidia.com/gpu.product' },
  tools: ['nvidia-smi'],
  pciVendors: ['0x10de'],
  detect,
  sharedDevices: async () => NVIDIA_DEVICES,
  // bkci-gpu-devices.service's command; NVSwitch hosts: the fabric manager before the agents.
  hostServices: gatherNvidiaServices,
  // MIG instances are opened through capability nodes; without --mig no cap is needed.
  // A MIG agent opens its instance through that instance's two capability nodes, and only those.
  extraDeviceAllow: (slots: AgentSlot[], mig: boolean) =>
    mig ? slots.flatMap((s) => (s.gpu.mig.find((m) => m.uuid === s.id)?.caps ?? []).map((c) => `${c} r`)) : [],
  // The nvidia device nodes are 0666 by default.
  supplementaryGroups: async () => [],
  isolationEnv: (slots): Record<string, string> => {
    if (!slots.length) return {};
    const ids = slots.map((s) => s.id).join(',');
    return {
      NVIDIA_VISIBLE_DEVICES: ids,
      CUDA_VISIBLE_DEVICES: ids,
      BKCI_GPU_UUIDS: [...new Set(slots.map((s) => s.gpu.uuid ?? s.gpu.isolationId))].join(','),
      // MIG instances (with their GPU and compute instance): the health gate looks at these only.
      ...migEnv(slots),
    };
  },
  // The quoted form: unquoted, docker splits the device list at the comma.
  dockerArgs: (slots) => (slots.length ? ['--gpus', `"device=${slots.map((s) => s.id).join(',')}"`] : []),
  hookCheck: `
# Every GPU of this agent must still answer the driver (asked one by one: the unit's device policy
# lets this agent open only its own GPUs).
if command -v nvidia-smi >/dev/null 2>&1; then
  for id in \${BKCI_GPU_UUIDS//,/ }; do
    seen="$(nvidia-smi --query-gpu=uuid --format=csv,noheader -i "$id" 2>&1)" || seen=""
    if [[ "$seen" != *"$id"* ]]; then
      echo "bkci: GPU $id of agent $BKCI_AGENT is missing; refusing to run the job" >&2
      exit 1
    fi
  done
fi
`,
  health,
  doctorChecks: async (ctx) => [await checkRuntime(ctx), await checkPersistenceMode(ctx.io), ...(await checkPartitions(ctx.agents, ctx.io))],
  // A re-partitioned MIG GPU: its agents' rows in node status say so.
  agentDrift: async (agents, io) => partitionDrift((await partitionChanges(agents, io)).changes ?? []),
  driverFix: (msg) => {
    if (/Driver\/library version mismatch/i.test(msg))
      return 'the NVIDIA driver was upgraded while the old kernel module stayed loaded: reboot (or stop everything using the GPUs and reload the nvidia modules)';
    if (/couldn't communicate with the NVIDIA driver|NVIDIA-SMI has failed/i.test(msg))
      return 'the nvidia kernel module is not loaded (lsmod | grep nvidia; dmesg): reinstall the driver or its DKMS module for the running kernel';
    if (/No devices were found|Unable to determine the device handle|GPU is lost/i.test(msg))
      return 'a GPU is not answering: look for Xid errors in dmesg; reset the GPU (nvidia-smi -r) or reboot';
    return 'check the driver (dmesg, nvidia-smi run by hand)';
  },
};
