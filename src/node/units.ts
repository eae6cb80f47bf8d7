// The files bkci writes on a host, rendered from an agent plan. Paths are target paths (under /);
// the applier prefixes --root. Every file says it is managed, so an operator knows to re-run setup.
import { UsageError } from '../util/errors.js';
import type { AgentPlan } from './plan.js';
import { sliceName } from './isolation.js';

const CONF = '/etc/buildkite-agent/bkci';

export const PATHS = {
  confDir: CONF,
  agentsDir: `${CONF}/agents`,
  hooksDir: `${CONF}/hooks`,
  // The host's own hooks (the packaged agent's hooks-path): secrets hooks and the like keep running.
  hostHooksDir: '/etc/buildkite-agent/hooks',
  // Each agent's own hooks directory (its additional-hooks-paths), its values written into the hook.
  agentHooksDir: (i: string) => `${CONF}/hooks/${i}`,
  agentHook: (i: string) => `${CONF}/hooks/${i}/environment`,
  slice: (i: string) => `/etc/systemd/system/bkci-${i}.slice`,
  agentCompose: (i: string) => `${CONF}/agents/${i}.compose.yml`,
  dockerShim: `${CONF}/bin/docker`,
  tokenFile: `${CONF}/token.env`,
  diskCleanup: `${CONF}/disk-cleanup`,
  manifest: `${CONF}/manifest.json`,
  templateUnit: '/etc/systemd/system/bkci-agent@.service',
  agentCfg: (i: string) => `${CONF}/agents/${i}.cfg`,
  agentEnv: (i: string) => `${CONF}/agents/${i}.env`,
  dropInDir: (i: string) => `/etc/systemd/system/bkci-agent@${i}.service.d`,
  dropIn: (i: string) => `/etc/systemd/system/bkci-agent@${i}.service.d/50-bkci.conf`,
};

// Every file setup writes for one agent (kept as they are while its GPU is missing).
export const agentFilePaths = (i: string): string[] => [
  PATHS.agentCfg(i),
  PATHS.agentEnv(i),
  PATHS.dropIn(i),
  PATHS.agentHook(i),
  PATHS.agentCompose(i),
  PATHS.slice(i),
];

export const unitName = (instance: string) => `bkci-agent@${instance}.service`;

const HEADER = 'Managed by bkci (bkci node setup): re-run setup to change it; bkci node status reports hand edits.';

// Values that go unquoted into an EnvironmentFile (no `export`: systemd does not understand it)
// and are sourced by the bash hook: no spaces, quotes or shell metacharacters.
const SAFE = /^[A-Za-z0-9._,:/+=@%-]*$/;

function checkSafe(what: string, v: string): string {
  if (!SAFE.test(v))
    throw new UsageError(`${what} ${JSON.stringify(v)} has characters bkci will not put in an environment file or unit`, 'use letters, digits and ._,:/+=@%-');
  return v;
}

function checkPath(what: string, p: string): string {
  if (!p.startsWith('/') || /[\s"'\\%$`]/.test(p)) throw new UsageError(`${what} ${JSON.stringify(p)}: expected an absolute path without spaces, quotes or %`);
  return p;
}

// The operator's --disk-cleanup command, run by `node check` (as the agent user, from the unit's
// ExecStartPre) when the build path's free space is below --min-free-disk.
export function renderDiskCleanup(cmd: string): string {
  return `#!/bin/sh\n# ${HEADER}\n# Run by bkci node check before the disk gate fails (bkci node setup --disk-cleanup).\n${cmd}\n`;
}

export function renderTokenFile(token: string): string {
  if (!/^[!-~]+$/.test(token) || /["'\\$`]/.test(token))
    throw new UsageError('the agent token has spaces, quotes or non-ASCII characters', 'check the token file: it should hold only the token');
  return `# ${HEADER}\n# The agent registration token, read by systemd (root) before it drops privileges.\nBUILDKITE_AGENT_TOKEN=${token}\n`;
}

// The agent's variables: in its environment file (systemd, node check) and written into its hook.
export function agentEnvValues(a: AgentPlan, minFreeDisk: number, diskCleanup?: string): Record<string, string> {
  return { ...a.env, BKCI_BUILD_PATH: a.buildPath, BKCI_MIN_FREE_DISK: String(minFreeDisk), ...(diskCleanup ? { BKCI_DISK_CLEANUP: diskCleanup } : {}) };
}

export function renderAgentEnv(a: AgentPlan, minFreeDisk: number, diskCleanup?: string): string {
  const lines = [`# ${HEADER}`, `# Environment of agent ${a.name}; systemd passes it to the agent and every job inherits it.`];
  const env = agentEnvValues(a, minFreeDisk, diskCleanup);
  for (const [k, v] of Object.entries(env)) lines.push(`${k}=${checkSafe(k, v)}`);
  return lines.join('\n') + '\n';
}

// pingMode: `poll-only` for agents 3.119-3.127, whose streaming mode idles up to 60 s after a job
// before disconnect-after-job takes effect (host-gates.ts pingModeFor).
export function renderAgentCfg(a: AgentPlan, p: { pluginsPath: string; gitMirrorsPath: string; pingMode?: string }): string {
  const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  for (const t of a.tags) checkSafe('tag', t);
  return [
    `# ${HEADER}`,
    '# The token is not here: it comes from BUILDKITE_AGENT_TOKEN in the root-only token.env.',
    `name=${q(a.name)}`,
    `tags=${q(a.tags.join(','))}`,
    `build-path=${q(a.buildPath)}`,
    "# The host's hooks keep running; this agent's own environment hook runs after them (agent >= 3.89).",
    `hooks-path=${q(PATHS.hostHooksDir)}`,
    `additional-hooks-paths=${q(PATHS.agentHooksDir(a.instance))}`,
    `plugins-path=${q(p.pluginsPath)}`,
    '# One git mirror per repository for every agent of the host (the agent locks each while it updates it).',
    `git-mirrors-path=${q(p.gitMirrorsPath)}`,
    '# One job per process: after each job the agent exits, systemd runs `bkci node check` and only',
    '# then starts it again, so a GPU left unhealthy takes its own agent offline.',
    'disconnect-after-job=true',
    ...(p.pingMode
      ? ['# This agent version idles up to 60 s after a job in streaming mode before it disconnects.', `ping-mode=${checkSafe('ping-mode', p.pingMode)}`]
      : []),
    '',
  ].join('\n');
}

export interface TemplateOptions {
  user: string;
  agentBin: string;
  bkciBin: string[];
  home: string;
  // Units the agents start after and want (bkci-gpu-devices.service, nvidia-fabricmanager.service).
  after?: string[];
  // TimeoutStopSec=: how long a stop waits for the running job (`infinity`, like the packaged unit).
  stopTimeout?: string;
}

export function renderTemplateUnit(o: TemplateOptions): string {
  checkSafe('--user', o.user);
  checkPath('--agent-bin', o.agentBin);
  o.bkciBin.forEach((b) => checkPath('--bkci-bin', b));
  checkPath('home', o.home);
  const after = (o.after ?? []).map((u) => {
    if (!/^[A-Za-z0-9@._-]+\.service$/.test(u)) throw new UsageError(`unit ${JSON.stringify(u)}: not a unit name`);
    return u;
  });
  const stop = o.stopTimeout ?? 'infinity';
  if (!/^(?:infinity|\d+(?:s|min|h)?)$/.test(stop)) throw new UsageError(`--stop-timeout ${JSON.stringify(stop)}: expected infinity or a duration`);
  return `# ${HEADER}
# One instance per agent: bkci-agent@gpu0.service, ... Resource limits are in each instance's drop-in.
[Unit]
Description=Buildkite agent %i (bkci)
Documentation=https://buildkite.com/docs/agent/v3
# After docker when the host has it (jobs in containers need it up); only an ordering otherwise.
After=network-online.target docker.service${after.map((u) => ` ${u}`).join('')}
Wants=network-online.target${after.map((u) => ` ${u}`).join('')}
ConditionPathExists=${CONF}/agents/%i.cfg
# Keep retrying: an agent whose GPU fails the health check comes back once the GPU is healthy.
StartLimitIntervalSec=0

[Service]
Type=simple
User=${o.user}
Environment=HOME=${o.home}
EnvironmentFile=${CONF}/token.env
EnvironmentFile=${CONF}/agents/%i.env
# The health gate: refuses to start the agent while its GPU is missing, busy or failing; it waits
# longer after each failure in a row (counted in the runtime directory, kept across restarts).
ExecStartPre=${o.bkciBin.join(' ')} node check %i --backoff
RuntimeDirectory=bkci-agent-%i
RuntimeDirectoryPreserve=yes
ExecStart=${o.agentBin} start --config ${CONF}/agents/%i.cfg
# disconnect-after-job: the agent exits after each job and is back 5 s later (after the check).
Restart=always
RestartSec=5
# SIGTERM lets buildkite-agent finish its job; the rest of the cgroup is killed only after that.
# A stop (or a restart after setup changed the unit) waits for the job: TimeoutStopSec= is
# --stop-timeout, unlimited by default like the packaged buildkite-agent.service.
KillMode=mixed
TimeoutStartSec=5min
TimeoutStopSec=${stop}
# NCCL, RDMA and GPUDirect pin memory and open many files.
LimitMEMLOCK=infinity
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
`;
}

export function renderDropIn(a: AgentPlan): string {
  const lines = [
    `# ${HEADER}`,
    `# Agent ${a.name}: GPUs ${a.gpuIndices.join(',') || 'none'} on NUMA node${a.numaNodes.length > 1 ? 's' : ''} ${a.numaNodes.join(',')}.`,
    '[Service]',
    `# Its CPUs and memory are the slice's, shared with its jobs' containers (docker run --cgroup-parent).`,
    `Slice=${sliceName(a.instance)}`,
    '# Only this agent’s GPU device nodes (and the usual pseudo-devices) can be opened.',
    'DevicePolicy=closed',
  ];
  for (const d of a.deviceAllow) {
    const [what, access] = d.split(' ');
    if (!/^(?:char|block)-[A-Za-z0-9_-]+$/.test(what!)) checkPath('device', what!);
    if (!/^r?w?m?$/.test(access ?? '')) throw new UsageError(`device access ${JSON.stringify(access)}: expected r, w, m`);
    lines.push(`DeviceAllow=${d}`);
  }
  if (a.groups.length) {
    lines.push('# The groups that own its device nodes (useradd --system gives none).');
    lines.push(`SupplementaryGroups=${a.groups.map((g) => checkSafe('group', g)).join(' ')}`);
  }
  return lines.join('\n') + '\n';
}
