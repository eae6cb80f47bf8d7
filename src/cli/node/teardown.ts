// `bkci node teardown`: stop the agents and remove exactly the files setup created.
import type { Command } from 'commander';
import { UsageError } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF } from '../command.js';
import { rootOf } from './shared.js';

export interface TeardownInput {
  root: string;
  staging: boolean;
  purge: boolean;
  // Only these queues' agents (a host set up with several --queue); none: everything.
  queues: string[];
  dryRun: boolean;
  json: boolean;
}

export function teardownCommand(node: Command, io: Io, run: RunF<TeardownInput> = runTeardown): Command {
  const cmd = node
    .command('teardown')
    .description('stop and disable the agents and remove exactly the files setup created')
    .option('--root <dir>', 'tear down a staged tree under DIR (no systemctl)')
    .option('--purge', 'also remove the build directories')
    .option('--queue <queue>', "only this queue's agents (repeatable; a host set up with several --queue)", (v: string, prev: string[] = []) => [...prev, v])
    .option('--dry-run', 'print what would be removed')
    .option('--json', 'print JSON');
  return cmd.action(async (flags: { root?: string; purge?: boolean; queue?: string[]; dryRun?: boolean; json?: boolean }) => {
    const input = await checkInput(
      cmd,
      (z) => z.object({ root: z.string(), staging: z.boolean(), purge: z.boolean(), queues: z.array(z.string()), dryRun: z.boolean(), json: z.boolean() }),
      { ...rootOf(io, flags.root), purge: flags.purge === true, queues: flags.queue ?? [], dryRun: flags.dryRun === true, json: flags.json === true },
    );
    await run(input, io);
  });
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
  const t = input.queues.length ? planQueueTeardown(m, input.queues, input.purge) : planTeardown(m, input.purge);
  if (input.dryRun) return writeResult(io, input.json, teardownView(t, staging), teardownPlanText);
  const r = await applyTeardown(t, root, !staging, io);
  if (!input.purge) io.log.info({ kept: m.dirs.filter((d) => d.kind === 'build').length }, 'kept the build directories (use --purge to remove them)');
  writeResult(io, input.json, r, (r) => r.removed.map((p) => `removed ${p}\n`).join(''));
}
