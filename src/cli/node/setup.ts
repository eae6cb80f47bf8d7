// `bkci node setup`: detect GPUs, NUMA CPUs and memory; write one systemd agent per GPU (or group); start them.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { vendorIds } from '../../node/vendors/index.js';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { table } from '../../util/output.js';
import { selfCommand } from '../self.js';
import { mode, parseTags, positiveInt, rootOf } from './shared.js';

interface SetupFlags {
  queue?: string;
  tokenFile?: string;
  gpusPerAgent: string;
  vendor: string;
  agents: string;
  name?: string;
  tags?: string;
  memoryReserve: string;
  cpuReserve: string;
  user: string;
  agentBin?: string;
  bkciBin?: string;
  buildRoot: string;
  root?: string;
  hostRoot: string;
  dryRun?: boolean;
  start: boolean;
  mig?: boolean;
  minFreeDisk: string;
  diskCleanup?: string;
  json?: boolean;
}

export function setupCommand(node: Command, io: Io): Command {
  return node
    .command('setup')
    .description('detect GPUs, NUMA CPUs and memory; write one systemd agent per GPU (or group); start them')
    .option('--queue <queue>', 'the queue the agents serve (queue=QUEUE tag)')
    .option('--token-file <file>', 'agent token file (default: $BUILDKITE_AGENT_TOKEN)')
    .option('--gpus-per-agent <n>', 'GPUs per agent, grouped within a NUMA node where they fit (else across nodes, with a warning)', '1')
    .option('--vendor <vendor>', `GPU vendor: auto, ${vendorIds().join(', ')}`, 'auto')
    .option('--agents <n>', 'number of CPU-only agents (with --vendor none or no GPUs)', '1')
    .option('--name <name>', 'agent name prefix (default: the hostname)')
    .option('--tags <k=v,...>', 'extra agent tags')
    .option('--memory-reserve <size>', 'memory per NUMA node left to the host', '4G')
    .option('--cpu-reserve <n>', 'CPUs per NUMA node left to the host (whole cores)', '0')
    .option('--user <user>', 'the user agents run as', 'buildkite-agent')
    .option('--agent-bin <path>', 'buildkite-agent binary (default: found on PATH)')
    .option('--bkci-bin <path>', 'the bkci the units run for the health check (default: this one)')
    .option('--build-root <dir>', 'parent of the per-agent build directories', '/var/lib/buildkite-agent/builds')
    .option('--min-free-disk <size>', 'the health check fails below this free space on the build path', '20G')
    .option('--disk-cleanup <cmd>', 'command the health check runs before failing on low disk (e.g. docker image prune -af --filter until=24h)')
    .option('--mig', 'one agent per MIG device instead of per physical GPU')
    .option('--root <dir>', 'write every file under DIR instead of / and run no systemctl (staging)')
    .option('--host-root <dir>', 'read /sys, /proc and /dev under DIR instead of /', '/')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--no-start', 'write the files but do not enable or start the units')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  sudo BUILDKITE_AGENT_TOKEN=... bkci node setup --queue h100 --dry-run
  sudo bkci node setup --queue h100 --token-file /root/agent-token --cpu-reserve 2 --memory-reserve 16G
  bkci node setup --queue mi300 --gpus-per-agent 2 --root /tmp/stage --agent-bin /usr/bin/buildkite-agent`,
    )
    .action(async (flags: SetupFlags) => {
      if (!flags.queue) throw new UsageError('--queue is required: the queue these agents serve', 'e.g. --queue h100 (create the queue in your cluster first)');
      if (!/^[A-Za-z0-9._-]+$/.test(flags.queue)) throw new UsageError(`--queue ${JSON.stringify(flags.queue)}: use letters, digits and ._-`);
      const { parseBytes } = await import('../../util/bytes.js');
      const { root, staging } = rootOf(io, flags.root);
      const hostRoot = resolve(io.cwd, flags.hostRoot);
      const { readToken } = await import('../../util/token.js');
      const token = await readToken(
        {
          file: flags.tokenFile,
          variable: 'BUILDKITE_AGENT_TOKEN',
          missing: 'no agent token: pass --token-file FILE or set BUILDKITE_AGENT_TOKEN',
          hint: 'the agent token is on the Agents page of your organization (Agent Tokens / cluster tokens), not an API token',
        },
        io,
      );
      if (!staging && !flags.dryRun && io.uid !== undefined && io.uid !== 0) {
        throw new UsageError(
          'bkci node setup writes under /etc and runs systemctl: run it as root (sudo)',
          'or stage the files with --root DIR, or look first with --dry-run',
        );
      }
      const { which } = await import('../../node/detect/tools.js');
      let agentBin = flags.agentBin ? resolve(io.cwd, flags.agentBin) : await which('buildkite-agent', io.env);
      if (!agentBin) {
        if (!staging)
          throw new UsageError(
            'buildkite-agent is not on PATH',
            'install it (https://buildkite.com/docs/agent/v3/linux; e.g. apt install buildkite-agent) or pass --agent-bin PATH',
          );
        agentBin = '/usr/bin/buildkite-agent';
        io.log.warn({ agentBin }, 'buildkite-agent is not on PATH; the staged units name /usr/bin/buildkite-agent');
      }
      const { prepareSetup, runSetup } = await import('../../node/setup.js');
      const req = {
        queue: flags.queue,
        token,
        gpusPerAgent: positiveInt(flags.gpusPerAgent, '--gpus-per-agent'),
        agents: positiveInt(flags.agents, '--agents'),
        name: flags.name,
        tags: parseTags(flags.tags),
        memoryReserve: parseBytes(flags.memoryReserve, '--memory-reserve'),
        cpuReserve: positiveInt(flags.cpuReserve, '--cpu-reserve', 0),
        user: flags.user,
        agentBin,
        bkciBin: selfCommand(flags.bkciBin, io),
        buildRoot: flags.buildRoot.replace(/\/+$/, ''),
        mig: flags.mig === true,
        minFreeDisk: parseBytes(flags.minFreeDisk, '--min-free-disk'),
        diskCleanup: flags.diskCleanup,
        vendor: flags.vendor as 'auto',
        root,
        hostRoot,
        staging,
      };
      const { plan, facts } = await prepareSetup(req, io);
      for (const w of plan.warnings) io.log.warn(w);
      io.log.info(
        { vendor: facts.vendor, gpus: facts.gpus.length, numaNodes: facts.nodes.length, agents: plan.agents.length },
        `found ${facts.gpus.length} ${facts.gpus.length ? `${facts.vendor} ` : ''}GPUs on ${facts.nodes.length} NUMA node${facts.nodes.length === 1 ? '' : 's'}`,
      );
      const view = {
        agents: plan.agents.map((a) => ({
          name: a.name,
          unit: a.unit,
          // GPUs by the vendor tool's index (what operators call them), and by the ids the
          // isolation variables use (UUIDs, ROCR ids, chip logic ids, MIG UUIDs).
          gpus: a.gpuIndices,
          gpuIds: a.isolationIds,
          numaNode: a.numaNode,
          cpus: a.cpus,
          memNodes: a.memNodes,
          memoryMax: a.memoryMaxText,
          memoryMaxBytes: a.memoryMax,
          buildPath: a.buildPath,
          env: a.env,
          tags: a.tags,
        })),
        files: plan.files.map((f) => ({ path: f.path, mode: mode(f.mode), action: f.action })),
        dirs: plan.dirs.map((d) => ({ path: d.path, mode: mode(d.mode), owner: d.owner === 'agent' ? req.user : 'root', action: d.action })),
        removals: plan.removals,
        commands: staging ? [] : plan.commands.map((c) => c.argv.join(' ')),
      };
      if (flags.dryRun) {
        if (flags.json) io.stdout.write(JSON.stringify(view, null, 2) + '\n');
        else io.stdout.write(renderPlan(io, view, plan.changed));
        return;
      }
      const result = await runSetup(plan, req, flags.start && !staging, io);
      if (!plan.changed) io.log.info('nothing to change: the host already matches this setup');
      else
        io.log.info(
          { written: result.written.length, removed: result.removed.length, dirs: result.createdDirs.length },
          `wrote ${result.written.length} file${result.written.length === 1 ? '' : 's'}, removed ${result.removed.length}`,
        );
      if (staging) io.log.info({ root }, 'staged under --root: no systemctl or useradd was run');
      if (flags.json)
        io.stdout.write(
          JSON.stringify(
            { ...view, changed: plan.changed, written: result.written, removed: result.removed, ran: result.ran.map((c) => c.join(' ')) },
            null,
            2,
          ) + '\n',
        );
      else
        io.stdout.write(
          table(
            io,
            ['agent', 'gpus', 'numa', 'cpus', 'memory'],
            plan.agents.map((a) => [a.name, a.gpuIndices.join(',') || '-', String(a.numaNode), a.cpus, a.memoryMaxText]),
          ),
        );
    });
}

function renderPlan(
  io: Io,
  view: {
    agents: { name: string; gpus: number[]; numaNode: number; cpus: string; memoryMax: string; tags: string[] }[];
    files: { path: string; mode: string; action: string }[];
    dirs: { path: string; mode: string; owner: string; action: string }[];
    removals: string[];
    commands: string[];
  },
  changed: boolean,
): string {
  let out = table(
    io,
    ['agent', 'gpus', 'numa', 'cpus', 'memory', 'tags'],
    view.agents.map((a) => [a.name, a.gpus.join(',') || '-', String(a.numaNode), a.cpus, a.memoryMax, a.tags.join(',')]),
  );
  out += '\n' + view.dirs.map((d) => `${d.action.padEnd(9)} ${d.mode} ${d.owner.padEnd(15)} ${d.path}/\n`).join('');
  out += view.files.map((f) => `${f.action.padEnd(9)} ${f.mode} ${'root'.padEnd(15)} ${f.path}\n`).join('');
  out += view.removals.map((p) => `remove    ${p}\n`).join('');
  out += '\n' + view.commands.map((c) => `run       ${c}\n`).join('');
  if (!changed) out += '\nnothing to change: the host already matches this setup\n';
  return out;
}
