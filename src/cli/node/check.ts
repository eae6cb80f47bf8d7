// `bkci node check`: the health gate a unit runs before its agent starts (exit 1: unfit for a job).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { CheckFailed } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { writeResult } from '../../util/output.js';
import { checkInput, type RunF, wholeNumber } from '../command.js';
import { rootOf } from './shared.js';

export interface CheckInput {
  agent: string;
  root: string;
  hostRoot: string;
  maxUsedMiB: number;
  // The unit's runtime directory when --backoff is given under systemd; else no backoff.
  backoffDir?: string;
  json: boolean;
}

export function checkCommand(node: Command, io: Io, run: RunF<CheckInput> = runCheck): Command {
  const cmd = node
    .command('check')
    .description("the health gate: exit 1 when AGENT's GPUs are unfit for a job (missing, busy, ECC errors) or its disk is full")
    .argument('<agent>', 'agent instance (gpu0, gpu0-1, cpu0) or agent name (see bkci node status)')
    .option('--root <dir>', 'read a staged tree under DIR')
    .option('--host-root <dir>', 'read /dev under DIR', '/')
    .addOption(new Option('--max-used-memory <MiB>', 'GPU memory in use that still counts as idle').argParser(wholeNumber(0)).default(1024))
    .option('--json', 'print JSON')
    .option('--backoff', "as the unit's ExecStartPre: after repeated failures, wait longer (up to 2 min) before failing; needs $RUNTIME_DIRECTORY");
  return cmd.action(async (agent: string, flags: { root?: string; hostRoot: string; maxUsedMemory: number; json?: boolean; backoff?: boolean }) => {
    const { backoffDir } = await import('../../node/check-backoff.js');
    const input = await checkInput(
      cmd,
      (z) =>
        z.object({
          agent: z.string().regex(/^[^\u0000-\u001f\u007f/]+$/, { error: 'an agent instance or name (no /, no control characters)' }),
          root: z.string(),
          hostRoot: z.string(),
          maxUsedMiB: z.number().int().min(0),
          backoffDir: z.string().optional(),
          json: z.boolean(),
        }),
      {
        agent,
        root: rootOf(io, flags.root).root,
        hostRoot: resolve(io.cwd, flags.hostRoot),
        maxUsedMiB: flags.maxUsedMemory,
        backoffDir: flags.backoff ? backoffDir(io.env) : undefined,
        json: flags.json === true,
      },
    );
    await run(input, io);
  });
}

export async function runCheck(input: CheckInput, io: Io): Promise<void> {
  const { checkAgent } = await import('../../node/check.js');
  const r = await checkAgent(input.agent, { root: input.root, hostRoot: input.hostRoot, maxUsedMiB: input.maxUsedMiB }, io);
  writeResult(io, input.json, r, (r) => r.items.map((i) => `${i.ok ? 'ok  ' : 'FAIL'}  ${i.check}: ${i.detail}\n`).join(''));
  if (input.backoffDir) {
    const { backOffAfter } = await import('../../node/check-backoff.js');
    await backOffAfter(input.agent, r.ok, input.backoffDir, io);
  }
  if (!r.ok)
    throw new CheckFailed(
      `agent ${input.agent} is unfit for a job: ${r.items
        .filter((i) => !i.ok)
        .map((i) => `${i.check}: ${i.detail}`)
        .join('; ')}`,
      'the agent stays offline until this passes; fix the GPU (or reset it); systemd retries it, backing off to every ~2 minutes',
    );
}
