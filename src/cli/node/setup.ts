// `bkci node setup`: detect GPUs, NUMA CPUs and memory; write one systemd agent per GPU (or group); start them.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseStopTimeout } from '../../node/host-gates.js';
import { vendorFlag, vendorIds } from '../../node/vendors/index.js';
import { parseBytes } from '../../util/bytes.js';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF, viaUsage, wholeNumber } from '../command.js';
import { selfCommand } from '../self.js';
import { rootOf, tagsArg } from './shared.js';
import type { QueueFlags } from '../../node/queues.js';

export interface SetupInput {
  queue: string;
  // Every --queue, in order (several only with --fleet: the GPU queue plus CPU-only queues).
  queues: string[];
  tokenFile?: string;
  gpusPerAgent: number;
  // auto, or a vendor id of src/node/vendors.
  vendor: string;
  // CPU-only agents and extra tags of the first queue (after QUEUE: scoping).
  agents: number;
  name?: string;
  tags: [string, string][];
  // Every queue's --agents and --tags (scopeFlags: `QUEUE:` values for one queue, plain ones for
  // all), and the --agents values as given (held against the fleet's GPU queues).
  perQueue: [string, QueueFlags][];
  agentsGiven: string[];
  memoryReserve: number;
  cpuReserve: number;
  user: string;
  // Absolute; undefined: found on PATH when run.
  agentBin?: string;
  // The command line the units run for the health check.
  bkciBin: string[];
  buildRoot: string;
  minFreeDisk: number;
  // Run by the health check before it fails on low disk.
  diskCleanup?: string;
  // --device-allow, repeatable.
  deviceAllow: string[];
  mig: boolean;
  // Run unpinned where systemd < 244 or cgroup v1 would ignore AllowedCPUs= (else exit 2).
  allowUnpinned: boolean;
  // TimeoutStopSec= of the agents: `infinity` or a systemd duration (30min, 3h).
  stopTimeout: string;
  root: string;
  staging: boolean;
  hostRoot: string;
  dryRun: boolean;
  start: boolean;
  json: boolean;
  // --fleet FILE: the --queue's definition there sets GPUs per agent, vendor and tags; the flags
  // the command line gave explicitly are kept to be held against it.
  fleet?: { file: string; gpusPerAgent?: number; vendor?: string };
}

const bytes = (flag: string) => viaUsage((v) => parseBytes(v, flag));

function setupOptions(cmd: Command): Command {
  return cmd
    .option(
      '--queue <queue>',
      'the queue the agents serve (queue=QUEUE tag); with --fleet repeatable: GPU agents for its GPU queue plus CPU-only agents for the others',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--token-file <file>', 'agent token file (default: $BUILDKITE_AGENT_TOKEN)')
    .addOption(
      new Option('--gpus-per-agent <n>', 'GPUs per agent, grouped within a NUMA node where they fit (else across nodes, with a warning)')
        .argParser(wholeNumber(1))
        .default(1),
    )
    .addOption(
      new Option('--vendor <vendor>', `GPU vendor: auto, ${vendorIds().join(', ')}`)
        .argParser(viaUsage((v) => (v === 'auto' ? v : vendorFlag(v).id)))
        .default('auto'),
    )
    .option(
      '--agents <n|queue:n>',
      'number of CPU-only agents (with --vendor none, no GPUs, or a CPU-only fleet queue); QUEUE:N for one of several queues (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--name <name>', 'agent name prefix (default: the hostname)')
    .option(
      '--tags <[queue:]k=v,...>',
      'extra agent tags, for every queue; QUEUE:k=v for one of several queues (repeatable)',
      (v: string, prev: [string, string][] = []) => [...prev, ...tagsArg(v)],
    )
    .addOption(new Option('--memory-reserve <size>', 'memory per NUMA node left to the host').argParser(bytes('--memory-reserve')).default(4 * 2 ** 30, '4G'))
    .addOption(new Option('--cpu-reserve <n>', 'CPUs per NUMA node left to the host (whole cores)').argParser(wholeNumber(0)).default(0))
    .option('--user <user>', 'the user agents run as', 'buildkite-agent')
    .option('--agent-bin <path>', 'buildkite-agent binary (default: found on PATH)')
    .option('--bkci-bin <path>', 'the bkci the units run for the health check (default: this one)')
    .option('--build-root <dir>', 'parent of the per-agent build directories', '/var/lib/buildkite-agent/builds')
    .addOption(
      new Option('--min-free-disk <size>', 'the health check fails below this free space on the build path')
        .argParser(bytes('--min-free-disk'))
        .default(20 * 2 ** 30, '20G'),
    )
    .option('--disk-cleanup <cmd>', 'command the health check runs before failing on low disk (e.g. docker image prune -af --filter until=24h)')
    .option(
      '--device-allow <path|class>',
      'a device every agent may open besides its GPUs (/dev/infiniband/uverbs0, /dev/fuse, /dev/kvm, char-infiniband_verbs); repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--mig', 'one agent per MIG device instead of per physical GPU')
    .addOption(
      new Option('--stop-timeout <duration>', 'how long stopping an agent waits for its running job (infinity, or e.g. 30min, 3h)')
        .argParser(
          viaUsage((v) => {
            const t = parseStopTimeout(v);
            if (!t) throw new UsageError(`--stop-timeout ${JSON.stringify(v)}: expected infinity or a duration such as 90, 30s, 45min, 3h`);
            return t;
          }),
        )
        .default('infinity'),
    )
    .option('--allow-unpinned', 'set up even where systemd < 244 or cgroup v1 ignores AllowedCPUs=/AllowedMemoryNodes= (agents unpinned)')
    .option('--root <dir>', 'write every file under DIR instead of / and run no systemctl (staging)')
    .option('--host-root <dir>', 'read /sys, /proc and /dev under DIR instead of /', '/')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--no-start', 'write the files but do not enable or start the units')
    .option('--json', 'print JSON')
    .option('--fleet <file>', 'plan from the --queue definition in this fleet file: its GPUs per agent, vendor, tags, and cpus/memory floors')
    .addHelpText(
      'after',
      `
Examples:
  sudo BUILDKITE_AGENT_TOKEN=... bkci node setup --queue h100 --dry-run
  sudo bkci node setup --queue h100 --token-file /root/agent-token --cpu-reserve 2 --memory-reserve 16G
  bkci node setup --queue mi300 --gpus-per-agent 2 --root /tmp/stage --agent-bin /usr/bin/buildkite-agent
  sudo bkci node setup --fleet fleet.yaml --queue h100 --token-file /root/agent-token`,
    );
}

type SetupFlags = Omit<
  SetupInput,
  'root' | 'staging' | 'bkciBin' | 'tags' | 'dryRun' | 'mig' | 'json' | 'queue' | 'queues' | 'fleet' | 'allowUnpinned' | 'agents' | 'perQueue' | 'agentsGiven'
> & {
  agents?: string[];
  allowUnpinned?: boolean;
  fleet?: string;
  queue?: string[];
  root?: string;
  bkciBin?: string;
  tags?: [string, string][];
  dryRun?: boolean;
  mig?: boolean;
  json?: boolean;
};

// Every --queue (several only with --fleet), and each one's --agents and --tags (`QUEUE:` scoped).
async function queueFlags(flags: SetupFlags): Promise<{ queues: string[]; perQueue: [string, QueueFlags][] }> {
  const queues = flags.queue ?? [];
  if (queues.length > 1 && flags.fleet === undefined)
    throw new UsageError(
      `--queue given ${queues.length} times (${queues.join(', ')}): several queues on one host need --fleet FILE`,
      'the fleet file says which queue has the GPUs and what each agent needs (cpus, memory); or pass one --queue',
    );
  if (new Set(queues).size !== queues.length) throw new UsageError(`--queue ${queues.find((q, i) => queues.indexOf(q) !== i)} is given twice`);
  const { scopeFlags } = await import('../../node/queues.js');
  return { queues, perQueue: queues.length ? [...scopeFlags(queues, { agents: flags.agents ?? [], tags: flags.tags ?? [] })] : [] };
}

export function setupCommand(node: Command, io: Io, run: RunF<SetupInput> = runSetupCommand): Command {
  const cmd = setupOptions(node.command('setup').description('detect GPUs, NUMA CPUs and memory; write one systemd agent per GPU (or group); start them'));
  return cmd.action(async (flags: SetupFlags) => {
    const { queues, perQueue } = await queueFlags(flags);
    const firstFlags = perQueue[0]?.[1];
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          queue: z
            .string({ error: 'the queue these agents serve, e.g. --queue h100 (create the queue in your cluster first)' })
            .regex(/^[A-Za-z0-9._-]+$/, { error: 'use letters, digits and ._-' }),
          queues: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'use letters, digits and ._-' })),
          tokenFile: z.string().optional(),
          gpusPerAgent: z.number().int().min(1),
          vendor: z.string(),
          agents: z.number().int().min(1),
          name: z.string().optional(),
          tags: z.array(z.tuple([z.string(), z.string()])),
          perQueue: z.array(
            z.tuple([z.string(), z.object({ agents: z.number().int().min(1), agentsGiven: z.boolean(), tags: z.array(z.tuple([z.string(), z.string()])) })]),
          ),
          agentsGiven: z.array(z.string()),
          memoryReserve: z.number().min(0),
          cpuReserve: z.number().int().min(0),
          user: z.string().min(1, { error: 'the user agents run as' }),
          agentBin: z.string().optional(),
          bkciBin: z.array(z.string()),
          buildRoot: z.string(),
          minFreeDisk: z.number().min(0),
          diskCleanup: z.string().min(1, { error: 'a command (leave the flag out for none)' }).optional(),
          deviceAllow: z.array(z.string()),
          mig: z.boolean(),
          allowUnpinned: z.boolean(),
          stopTimeout: z.string(),
          root: z.string(),
          staging: z.boolean(),
          hostRoot: z.string(),
          dryRun: z.boolean(),
          start: z.boolean(),
          json: z.boolean(),
          fleet: z.object({ file: z.string().min(1), gpusPerAgent: z.number().optional(), vendor: z.string().optional() }).optional(),
        }),
      {
        ...flags,
        queue: queues[0],
        queues,
        ...rootOf(io, flags.root),
        agents: firstFlags?.agents ?? 1,
        tags: firstFlags?.tags ?? flags.tags ?? [],
        perQueue,
        agentsGiven: flags.agents ?? [],
        deviceAllow: flags.deviceAllow ?? [],
        agentBin: flags.agentBin === undefined ? undefined : resolve(io.cwd, flags.agentBin),
        bkciBin: selfCommand(flags.bkciBin, io),
        buildRoot: flags.buildRoot.replace(/\/+$/, ''),
        hostRoot: resolve(io.cwd, flags.hostRoot),
        mig: flags.mig === true,
        allowUnpinned: flags.allowUnpinned === true,
        dryRun: flags.dryRun === true,
        json: flags.json === true,
        fleet:
          flags.fleet === undefined
            ? undefined
            : {
                file: flags.fleet,
                gpusPerAgent: cmd.getOptionValueSource('gpusPerAgent') === 'cli' ? flags.gpusPerAgent : undefined,
                vendor: cmd.getOptionValueSource('vendor') === 'cli' ? flags.vendor : undefined,
              },
      },
    );
    await run(input, io);
  });
}

export async function runSetupCommand(given: SetupInput, io: Io): Promise<void> {
  const fleet = given.fleet && (await fleetSetup(given, io));
  const input = fleet ? fleet.input : given;
  const [{ readToken }, { which }, { prepareSetup, runSetup }, { setupView, setupPlanText, agentsText }] = await Promise.all([
    import('../../util/token.js'),
    import('../../node/detect/tools.js'),
    import('../../node/setup.js'),
    import('../../node/plan-view.js'),
  ]);
  const token = await readToken(
    {
      file: input.tokenFile,
      variable: 'BUILDKITE_AGENT_TOKEN',
      missing: 'no agent token: pass --token-file FILE or set BUILDKITE_AGENT_TOKEN',
      hint: 'the agent token is on the Agents page of your organization (Agent Tokens / cluster tokens), not an API token',
    },
    io,
  );
  if (!input.staging && !input.dryRun && io.uid !== undefined && io.uid !== 0)
    throw new UsageError(
      'bkci node setup writes under /etc and runs systemctl: run it as root (sudo)',
      'or stage the files with --root DIR, or look first with --dry-run',
    );
  let agentBin = input.agentBin ?? (await which('buildkite-agent', io.env));
  if (!agentBin) {
    if (!input.staging)
      throw new UsageError(
        'buildkite-agent is not on PATH',
        'install it (https://buildkite.com/docs/agent/v3/linux; e.g. apt install buildkite-agent) or pass --agent-bin PATH',
      );
    agentBin = '/usr/bin/buildkite-agent';
    io.log.warn({ agentBin }, 'buildkite-agent is not on PATH; the staged units name /usr/bin/buildkite-agent');
  }
  const req = { ...input, token, agentBin };
  const { plan, facts } = await prepareSetup(req, io);
  if (fleet) {
    const { checkVendor, checkFloors } = await import('../../fleet/node.js');
    checkVendor(fleet.queue, facts.vendor, fleet.file);
    // Each queue's floors against its own agents.
    for (const q of fleet.all)
      checkFloors(q, fleet.all.length > 1 ? plan.agents.filter((a) => a.tags.includes(`queue=${q.name}`)) : plan.agents, {
        file: fleet.file,
        cpuReserve: input.cpuReserve,
        memoryReserve: input.memoryReserve,
        agents: fleet.agentsOf(q.name),
      });
  }
  for (const w of plan.warnings) io.log.warn(w);
  const nodes = facts.nodes.length;
  io.log.info(
    { vendor: facts.vendor, gpus: facts.gpus.length, numaNodes: nodes, agents: plan.agents.length },
    `found ${facts.gpus.length} ${facts.gpus.length ? `${facts.vendor} ` : ''}GPUs on ${nodes} NUMA node${nodes === 1 ? '' : 's'}`,
  );
  const view = setupView(plan, input.user, input.staging);
  if (input.dryRun) return writeResult(io, input.json, view, (v) => setupPlanText(io, v, plan.changed));
  const result = await runSetup(plan, req, input.start && !input.staging, io);
  if (!plan.changed) io.log.info('nothing to change: the host already matches this setup');
  else
    io.log.info(
      { written: result.written.length, removed: result.removed.length, dirs: result.createdDirs.length },
      `wrote ${result.written.length} file${result.written.length === 1 ? '' : 's'}, removed ${result.removed.length}`,
    );
  if (input.staging) io.log.info({ root: input.root }, 'staged under --root: no systemctl or useradd was run');
  const done = { ...view, changed: plan.changed, written: result.written, removed: result.removed, ran: result.ran.map((c) => c.join(' ')) };
  writeResult(io, input.json, done, (d) => agentsText(io, d));
}

// --fleet: the queue's definition as the setup's GPUs per agent, vendor (what to detect with) and
// tags; flags given explicitly must agree with it (src/fleet/node.ts). Several queues: the GPU queue
// (or the first) and the others (CPU-only), each with its floors, agents and tags
// (src/node/queues.ts places them).
async function fleetSetup(input: SetupInput, io: Io) {
  const [{ loadFleet }, { pickQueues }, { queueSetup, planHostQueues, checkAgentsFlag }] = await Promise.all([
    import('../fleet/shared.js'),
    import('../../fleet/load.js'),
    import('../../fleet/node.js'),
  ]);
  const f = await loadFleet(input.fleet!.file, io);
  const all = pickQueues(f, input.queues);
  checkAgentsFlag(all, input.agentsGiven);
  const flags = new Map(input.perQueue);
  const { first, more } = planHostQueues(all, f.file, flags);
  const mine = flags.get(first.queue.name)!;
  const setup = queueSetup(first.queue, { gpusPerAgent: input.fleet!.gpusPerAgent, vendor: input.fleet!.vendor, tags: mine.tags, mig: input.mig }, f.file);
  return {
    queue: first.queue,
    all,
    file: f.file,
    agentsOf: (q: string) => flags.get(q)?.agents ?? 1,
    input: {
      ...input,
      queue: first.queue.name,
      gpusPerAgent: setup.gpusPerAgent,
      vendor: setup.detect,
      agents: mine.agents,
      tags: setup.tags,
      ...(more.length ? { moreQueues: more, floors: first.floors } : {}),
    },
  };
}
