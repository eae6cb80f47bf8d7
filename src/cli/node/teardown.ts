// `bkci node teardown`: stop the agents and remove exactly the files setup created.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BkciError, UsageError } from '../../util/errors.js';
import type { Manifest } from '../../node/plan.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { durationMs, rootOf } from './shared.js';

export interface TeardownInput {
  root: string;
  staging: boolean;
  purge: boolean;
  // Only these queues' agents (a host set up with several --queue); none: everything.
  queues: string[];
  dryRun: boolean;
  json: boolean;
  // --timeout: how long to wait for running jobs before cancelling them (ms); none: no limit.
  timeoutMs?: number;
  // --no-block: queue the stops and return at once.
  noBlock: boolean;
  // --agent: forget these agents (instance, name or GPU bus id) whose GPUs are gone for good.
  agents: string[];
  // --force: forget them even though their GPUs are still on the host.
  force: boolean;
  // Where --agent looks for the GPUs present now (/sys, /proc, /dev under it).
  hostRoot: string;
}

export function teardownCommand(node: Command, io: Io, run: RunF<TeardownInput> = runTeardown): Command {
  const cmd = node
    .command('teardown')
    .description('stop and disable the agents and remove exactly the files setup created')
    .option('--root <dir>', 'tear down a staged tree under DIR (no systemctl)')
    .option('--purge', 'also remove the build directories')
    .option('--queue <queue>', "only this queue's agents (repeatable; a host set up with several --queue)", (v: string, prev: string[] = []) => [...prev, v])
    .option('--timeout <duration>', 'wait at most DURATION (90, 30s, 45min, 3h) for running jobs, then cancel them (default: no limit)')
    .option('--no-block', 'queue the stops and return at once; busy agents stop when their job ends (run teardown again to remove their files)')
    .option(
      '--agent <name|bus-id>',
      'forget this agent, whose GPU is gone for good (instance gpu2, agent name, or the GPU bus id; repeatable): only its files go',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--force', 'with --agent: forget it even though its GPU is still on the host')
    .option('--host-root <dir>', 'with --agent: read /sys, /proc and /dev under DIR (a fixture tree)', '/')
    .option('--dry-run', 'print what would be removed')
    .option('--json', 'print JSON');
  return cmd.action(
    async (flags: {
      root?: string;
      purge?: boolean;
      queue?: string[];
      timeout?: string;
      block?: boolean;
      dryRun?: boolean;
      json?: boolean;
      agent?: string[];
      force?: boolean;
      hostRoot: string;
    }) => {
      if (flags.agent?.length && flags.queue?.length)
        throw new UsageError('--agent and --queue exclude each other', 'forget agents, or tear queues down: one at a time');
      if (flags.force && !flags.agent?.length) throw new UsageError('--force is for --agent: it forgets an agent whose GPU is still present');
      let timeoutMs: number | undefined;
      if (flags.timeout !== undefined) {
        timeoutMs = durationMs(flags.timeout);
        if (timeoutMs === undefined)
          throw new UsageError(
            `--timeout ${JSON.stringify(flags.timeout)} is not a duration`,
            'give seconds (90), or 30s, 45min, 3h; infinity (the default) waits for the jobs however long they take',
          );
        if (timeoutMs === Number.POSITIVE_INFINITY) timeoutMs = undefined;
      }
      const noBlock = flags.block === false;
      if (noBlock && flags.timeout !== undefined)
        throw new UsageError('--no-block and --timeout exclude each other: --no-block does not wait at all', 'pick one');
      const input = await checkInput(
        cmd,
        (z) =>
          z.object({
            root: z.string(),
            staging: z.boolean(),
            purge: z.boolean(),
            queues: z.array(z.string()),
            dryRun: z.boolean(),
            json: z.boolean(),
            timeoutMs: z.number().positive().optional(),
            noBlock: z.boolean(),
            agents: z.array(z.string().min(1, { error: 'an agent name or GPU bus id' })),
            force: z.boolean(),
            hostRoot: z.string(),
          }),
        {
          ...rootOf(io, flags.root),
          purge: flags.purge === true,
          queues: flags.queue ?? [],
          dryRun: flags.dryRun === true,
          json: flags.json === true,
          timeoutMs,
          noBlock,
          agents: flags.agent ?? [],
          force: flags.force === true,
          hostRoot: resolve(io.cwd, flags.hostRoot),
        },
      );
      await run(input, io);
    },
  );
}

export async function runTeardown(input: TeardownInput, io: Io): Promise<void> {
  const { root, staging } = input;
  if (!staging && !input.dryRun && io.uid !== undefined && io.uid !== 0)
    throw new UsageError('bkci node teardown changes /etc and runs systemctl: run it as root (sudo)', 'or look first with --dry-run');
  // One after the other: with Promise.all over these four imports vitest's module runner never
  // settled (the in-process CLI tests hung here; the bundle was not affected).
  const { readManifest } = await import('../../node/state.js');
  const { planTeardown, applyTeardown } = await import('../../node/apply.js');
  const { teardownView, teardownPlanText } = await import('../../node/plan-view.js');
  const { planQueueTeardown } = await import('../../node/queues.js');
  const m = await readManifest(root);
  if (!m) {
    io.log.info('nothing to tear down: no bkci manifest on this host');
    return writeResult(io, input.json, { removed: [], kept: [] }, () => '');
  }
  const t = input.agents.length
    ? await forgetPlan(m, input, io)
    : input.queues.length
      ? planQueueTeardown(m, input.queues, input.purge)
      : planTeardown(m, input.purge);
  if (!t) return writeResult(io, input.json, { removed: [], kept: [] }, () => '');
  if (input.dryRun) return writeResult(io, input.json, teardownView(t, staging), teardownPlanText);
  const r = await applyTeardown(t, root, !staging, io, { noBlock: input.noBlock, ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}) });
  if (r.stopping?.length) return writeResult(io, input.json, r, (r) => (r.stopping ?? []).map((u) => `stopping ${u}\n`).join(''));
  if (!input.purge) io.log.info({ kept: m.dirs.filter((d) => d.kind === 'build').length }, 'kept the build directories (use --purge to remove them)');
  writeResult(io, input.json, r, (r) => r.removed.map((p) => `removed ${p}\n`).join(''));
}

// --agent: the agents to forget, refused while their GPUs are present (unless --force); undefined
// when every one named is forgotten already (nothing to do).
async function forgetPlan(m: Manifest, input: TeardownInput, io: Io) {
  const { resolveForget, refusePresent, planForget } = await import('../../node/forget.js');
  const { agents, already } = resolveForget(m, input.agents);
  for (const f of already) io.log.info({ agent: f.instance }, `agent ${f.instance} is forgotten already: nothing to do for it`);
  if (!agents.length) return undefined;
  if (!input.force) {
    const { detectHost } = await import('../../node/detect/index.js');
    const { normalBusId } = await import('../../node/forget.js');
    let present: Set<string>;
    try {
      const facts = await detectHost(input.hostRoot, m.vendor, io);
      present = new Set(facts.gpus.map((g) => normalBusId(g.busId) ?? g.busId));
    } catch (err) {
      if (!(err instanceof BkciError)) throw err;
      throw new UsageError(
        `--agent: cannot tell whether the GPUs of ${agents.map((a) => a.instance).join(', ')} are gone: ${err.message}`,
        'fix the vendor tool (bkci node doctor says more), or add --force to forget the agents anyway',
      );
    }
    refusePresent(agents, present);
  }
  for (const a of agents) io.log.info({ agent: a.instance }, `forgetting agent ${a.instance} (GPU ${a.missing?.gpus.join(', ') ?? 'present, --force'})`);
  return planForget(m, agents, input.purge);
}
