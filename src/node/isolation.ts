// What keeps one agent's jobs on its own GPUs, CPUs and memory beyond the unit's own cgroup:
//  - the per-agent slice (bkci-<instance>.slice) holding the CPU and memory limits: the agent's
//    unit runs in it, and docker containers started with `--cgroup-parent` land in it too (dockerd
//    starts them outside the unit, so the unit's own limits would not reach them);
//  - the per-agent environment hook, with the agent's values written into it: a job can set any
//    variable it likes (BKCI_AGENT=gpu5 included), the hook never reads one to find out who it is;
//  - BKCI_DOCKER_RUN_ARGS, the `docker run` arguments that carry the limits and the GPUs into a
//    container, built so that the shell's word splitting of `$BKCI_DOCKER_RUN_ARGS` gives them back.
// Pure: rendered from an agent plan.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { UsageError } from '../util/errors.js';
import type { AgentPlan } from './plan.js';
import type { VendorModule } from './vendors/types.js';

export const sliceName = (instance: string) => `bkci-${instance}.slice`;

// `docker run` arguments that keep a container inside the agent's limits and give it the agent's
// GPUs: the slice as cgroup parent (with docker's systemd cgroup driver, the default on cgroup v2),
// the cpuset, the memory nodes and the memory limit, then the vendor's device arguments.
export function dockerRunArgs(a: Pick<AgentPlan, 'instance' | 'cpus' | 'memNodes' | 'memoryMax' | 'dockerArgs'>): string[] {
  return [
    '--cgroup-parent',
    sliceName(a.instance),
    '--cpuset-cpus',
    a.cpus,
    '--cpuset-mems',
    a.memNodes,
    '--memory',
    `${Math.floor(a.memoryMax / 2 ** 20)}m`,
    ...a.dockerArgs,
  ];
}

// One string that a shell's word splitting turns back into `args` (`docker run $BKCI_DOCKER_RUN_ARGS`):
// no argument may hold whitespace (it would split), be empty (it would vanish) or hold a glob
// character (pathname expansion runs after splitting). Quotes inside an argument are kept as they
// are, which is what `--gpus "device=A,B"` needs: docker reads the value as CSV, and the quotes
// keep the comma inside one field.
export function joinForWordSplitting(args: string[]): string {
  for (const x of args)
    if (x === '' || /[\s*?[\]\\$`]/.test(x))
      throw new UsageError(
        `docker argument ${JSON.stringify(x)} cannot go into BKCI_DOCKER_RUN_ARGS: the shell would split or expand it`,
        'file an issue with the plan (--dry-run --json)',
      );
  return args.join(' ');
}

// Single-quoted for bash: the value exactly, whatever it holds.
export const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

export interface HookValues {
  // Exported as they are, over whatever the job set.
  env: Record<string, string>;
  // Exported only when the job has not set them (thread counts and the like).
  defaults?: Record<string, string>;
  // Put first on PATH (the docker shim's directory).
  pathFirst?: string;
}

const HEADER = 'Managed by bkci (bkci node setup): re-run setup to change it; bkci node status reports hand edits.';

// The environment hook of one agent. The buildkite agent sources it (bash) before every job, with
// the job's environment already in place: every value is a literal here, so nothing the job sets
// changes which GPUs, CPUs or memory it gets. It refuses the job when a device node or a GPU of the
// agent is missing.
export function renderAgentHook(a: Pick<AgentPlan, 'name' | 'instance'>, vendor: VendorModule, values: HookValues): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(values.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new UsageError(`environment variable name ${JSON.stringify(k)} is not one a shell accepts`);
    lines.push(`export ${k}=${shellQuote(v)}`);
  }
  for (const [k, v] of Object.entries(values.defaults ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new UsageError(`environment variable name ${JSON.stringify(k)} is not one a shell accepts`);
    lines.push(`[[ -n "\${${k}:-}" ]] || ${k}=${shellQuote(v)}`, `export ${k}`);
  }
  if (values.pathFirst) {
    const d = shellQuote(values.pathFirst);
    lines.push(`[[ ":$PATH:" == *:${d}:* ]] || export PATH=${d}":$PATH"`);
  }
  return `#!/bin/bash
# ${HEADER}
# The environment hook of agent ${a.name} (bkci): runs before every job of this agent only (its
# additional-hooks-paths), after the host's own hooks. The agent's values are written here, not
# read from the environment, so a job that sets BKCI_AGENT, the GPU variables or anything
# else still gets this agent's GPUs, CPUs and memory. Jobs in docker: docker run $BKCI_DOCKER_RUN_ARGS ...
set -euo pipefail
${lines.join('\n')}
IFS=, read -r -a bkci_devices <<<"$BKCI_DEVICES"
for dev in "\${bkci_devices[@]}"; do
  if [[ ! -e "$dev" ]]; then
    echo "bkci: device $dev of agent $BKCI_AGENT is missing; refusing to run the job" >&2
    exit 1
  fi
done
${vendor.hookCheck.trim()}
echo "bkci: agent $BKCI_AGENT: GPUs \${BKCI_GPUS:-none}, CPUs $BKCI_CPUSET, memory node $BKCI_MEMS, memory $BKCI_MEMORY"
`;
}

// The agent's slice: the CPU and memory limits for the agent and for every container started
// with `--cgroup-parent bkci-<instance>.slice`. A `-` in a slice name is its place in the tree, so
// bkci-gpu0.slice sits in bkci.slice, which holds every agent (systemd-cgtop bkci.slice).
export function renderSlice(a: Pick<AgentPlan, 'name' | 'cpus' | 'memNodes' | 'memoryMaxText' | 'gpuIndices'>): string {
  for (const [what, v] of [
    ['cpus', a.cpus],
    ['memory nodes', a.memNodes],
    ['memory', a.memoryMaxText],
  ] as const)
    if (!/^[0-9,\-A-Za-z]+$/.test(v)) throw new UsageError(`${what} ${JSON.stringify(v)}: not a value for a slice unit`);
  return `# ${HEADER}
# The CPUs and memory of agent ${a.name}: its unit runs in this slice, and so do the containers its
# jobs start with docker run --cgroup-parent (BKCI_DOCKER_RUN_ARGS), so together they stay within it.
[Unit]
Description=bkci agent ${a.name.replace(/%/g, '%%')} and its jobs' containers
Before=slices.target

[Slice]
AllowedCPUs=${a.cpus}
AllowedMemoryNodes=${a.memNodes}
MemoryMax=${a.memoryMaxText}
`;
}

// Where the docker shim lives; the hook puts it first on the job's PATH.
export const SHIM_DIR = '/etc/buildkite-agent/bkci/bin';

// A `docker` first on the job's PATH that adds $BKCI_DOCKER_RUN_ARGS to `docker run` and
// `docker create` (the docker plugin and scripts that do not pass them), then runs the real docker
// (the next one on PATH). A command line that already has --cgroup-parent is left as it is (it
// passed the arguments itself, or chose otherwise).
export function renderDockerShim(): string {
  return `#!/bin/bash
# ${HEADER}
# bkci's docker shim: adds the agent's limits and GPUs (BKCI_DOCKER_RUN_ARGS, exported by the
# agent's environment hook) to docker run and docker create, then runs the real docker.
set -f
real=""
IFS=: read -r -a bkci_path <<<"\${PATH:-}"
for d in "\${bkci_path[@]}"; do
  [[ -z "$d" || "$d" == "${SHIM_DIR}" || "$d/docker" -ef "$0" ]] && continue
  if [[ -x "$d/docker" && ! -d "$d/docker" ]]; then real="$d/docker"; break; fi
done
if [[ -z "$real" ]]; then
  echo "docker: command not found (bkci's docker shim found no docker on PATH)" >&2
  exit 127
fi
args=("$@")
i=0
# Global options come before the command (docker --context x run ...).
while (( i < \${#args[@]} )); do
  case "\${args[i]}" in
    --config|--context|-c|--host|-H|--log-level|-l|--tlscacert|--tlscert|--tlskey) i=$((i + 2)) ;;
    -*) i=$((i + 1)) ;;
    *) break ;;
  esac
done
n=1
cmd="\${args[i]:-}"
if [[ "$cmd" == container ]]; then
  n=2
  cmd="\${args[i + 1]:-}"
fi
if [[ ( "$cmd" == run || "$cmd" == create ) && -n "\${BKCI_DOCKER_RUN_ARGS:-}" && " $* " != *" --cgroup-parent"* ]]; then
  # shellcheck disable=SC2206 # split on purpose: the value is built for word splitting
  extra=($BKCI_DOCKER_RUN_ARGS)
  exec "$real" "\${args[@]:0:i+n}" "\${extra[@]}" "\${args[@]:i+n}"
fi
exec "$real" "$@"
`;
}

// A compose file with one service, `bkci`, holding the same limits and devices, for
// `extends: { file: \${BKCI_COMPOSE_FILE}, service: bkci }` in a job's docker-compose.yml.
export function renderComposeFile(
  a: Pick<AgentPlan, 'name' | 'instance' | 'cpus' | 'memNodes' | 'memoryMax' | 'dockerArgs' | 'env'>,
  containerEnv: string[],
): string {
  const service: Record<string, unknown> = {
    cgroup_parent: sliceName(a.instance),
    cpuset: a.cpus,
    mem_limit: `${Math.floor(a.memoryMax / 2 ** 20)}m`,
  };
  const devices: string[] = [];
  const groups: string[] = [];
  const volumes: string[] = [];
  const gpuIds: string[] = [];
  const args = a.dockerArgs;
  for (let i = 0; i < args.length; i++) {
    const [flag, value] = [args[i]!, args[i + 1] ?? ''];
    if (flag === '--device') devices.push(value);
    else if (flag === '--group-add') groups.push(value);
    else if (flag === '-v' || flag === '--volume') volumes.push(value);
    else if (flag === '--gpus') gpuIds.push(...value.replace(/^"device=|"$/g, '').split(','));
    else throw new UsageError(`docker argument ${flag}: bkci does not know its compose form`, 'file an issue with the plan (--dry-run --json)');
    i++;
  }
  if (devices.length) service.devices = devices;
  if (groups.length) service.group_add = groups;
  if (volumes.length) service.volumes = volumes;
  // What `--gpus device=...` asks docker for: GPUs by id, from the driver that offers `gpu`.
  if (gpuIds.length) service.deploy = { resources: { reservations: { devices: [{ capabilities: ['gpu'], device_ids: gpuIds }] } } };
  service.environment = Object.fromEntries(containerEnv.filter((k) => k in a.env).map((k) => [k, a.env[k]]));
  return `# ${HEADER}\n# Agent ${a.name}: its CPUs, memory and devices for docker compose. In a job's compose file:\n#   services:\n#     app:\n#       extends: { file: \${BKCI_COMPOSE_FILE}, service: bkci }\n${stringify({ services: { bkci: service } })}`;
}

// `--device-allow PATH|CLASS`: a device node under /dev (`/dev/fuse`, `/dev/infiniband/uverbs0`)
// or a systemd device class (`char-infiniband_verbs`, `char-kvm`), granted rw to every agent
// besides its GPUs. No globs: systemd's DeviceAllow= takes one node or one class.
export function checkDeviceAllow(v: string): string {
  const isClass = /^(?:char|block)-[A-Za-z0-9_-]{1,64}$/.test(v);
  const isPath =
    /^\/dev\/[A-Za-z0-9._:+@/-]+$/.test(v) &&
    v
      .slice(1)
      .split('/')
      .every((x) => x !== '' && x !== '.' && x !== '..');
  if (!isClass && !isPath)
    throw new UsageError(
      `--device-allow ${JSON.stringify(v)}: expected a device node under /dev (e.g. /dev/infiniband/uverbs0, /dev/fuse, /dev/kvm) or a device class (char-infiniband_verbs, as /proc/devices names it)`,
      'one node or class per flag, no wildcards: repeat --device-allow for each',
    );
  return v;
}

// The extra devices' DeviceAllow= entries and docker arguments (classes have no docker form:
// containers get the nodes by path).
export function extraDevices(list: string[]): { deviceAllow: string[]; dockerArgs: string[] } {
  const checked = [...new Set(list.map(checkDeviceAllow))];
  return { deviceAllow: checked.map((d) => `${d} rw`), dockerArgs: checked.filter((d) => d.startsWith('/')).flatMap((d) => ['--device', d]) };
}

// Doctor: InfiniBand device nodes on the host that no agent may open (NCCL and GPUDirect RDMA in
// jobs need them): a note naming them and the flag. Undefined when there are none.
export async function infinibandNote(hostRoot: string, agents: Pick<AgentPlan, 'deviceAllow'>[]): Promise<{ detail: string; fix: string } | undefined> {
  const nodes = await readdir(join(hostRoot, 'dev/infiniband')).catch(() => [] as string[]);
  if (!nodes.length) return undefined;
  const allowed = agents.flatMap((a) => a.deviceAllow ?? []);
  const missing = nodes.filter((n) => !allowed.some((d) => d.startsWith(`/dev/infiniband/${n} `)));
  if (!missing.length || allowed.some((d) => /^char-(?:infiniband|uverbs|umad|rdma)/.test(d))) return undefined;
  return {
    detail: `InfiniBand devices present but not allowed to the agents: ${missing.map((n) => `/dev/infiniband/${n}`).join(', ')} (NCCL/GPUDirect RDMA in jobs cannot use them)`,
    fix: `re-run setup with ${missing.map((n) => `--device-allow /dev/infiniband/${n}`).join(' ')}`,
  };
}
