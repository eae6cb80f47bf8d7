// `bkci node check`: the health gate a unit runs before its agent starts.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CheckFailed } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { positiveInt, rootOf } from './shared.js';

export function checkCommand(node: Command, io: Io): Command {
  return node
    .command('check')
    .description("the health gate: exit 1 when AGENT's GPUs are unfit for a job (missing, busy, ECC errors) or its disk is full")
    .argument('<agent>', 'agent instance (gpu0, gpu0-1, cpu0) or agent name (see bkci node status)')
    .option('--root <dir>', 'read a staged tree under DIR')
    .option('--host-root <dir>', 'read /dev under DIR', '/')
    .option('--max-used-memory <MiB>', 'GPU memory in use that still counts as idle', '1024')
    .option('--json', 'print JSON')
    .option('--backoff', "as the unit's ExecStartPre: after repeated failures, wait longer (up to 2 min) before failing; needs $RUNTIME_DIRECTORY")
    .action(async (agent: string, flags: { root?: string; hostRoot: string; maxUsedMemory: string; json?: boolean; backoff?: boolean }) => {
      const { root } = rootOf(io, flags.root);
      const { checkAgent } = await import('../../node/check.js');
      const r = await checkAgent(
        agent,
        { root, hostRoot: resolve(io.cwd, flags.hostRoot), maxUsedMiB: positiveInt(flags.maxUsedMemory, '--max-used-memory', 0) },
        io,
      );
      if (flags.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else for (const i of r.items) io.stdout.write(`${i.ok ? 'ok  ' : 'FAIL'}  ${i.check}: ${i.detail}\n`);
      // systemd sets RUNTIME_DIRECTORY for the unit (RuntimeDirectory=); elsewhere there is no backoff.
      const stateDir = flags.backoff ? io.env.RUNTIME_DIRECTORY?.split(':')[0] : undefined;
      if (stateDir) {
        const { backoffSeconds, recordCheck } = await import('../../node/backoff.js');
        // The count is a nicety: a runtime directory that cannot be written means no backoff, not a failed gate.
        const failures = await recordCheck(stateDir, r.ok).catch((err: Error) => {
          io.log.warn({ dir: stateDir }, `cannot keep the failure count (${err.message}); no backoff`);
          return 0;
        });
        const wait = backoffSeconds(failures);
        if (wait > 0) {
          io.log.warn({ agent, failures, waitSeconds: wait }, `check failed ${failures} times in a row; waiting ${wait}s before reporting it`);
          await io.sleep(wait * 1000);
        }
      }
      if (!r.ok)
        throw new CheckFailed(
          `agent ${agent} is unfit for a job: ${r.items
            .filter((i) => !i.ok)
            .map((i) => `${i.check}: ${i.detail}`)
            .join('; ')}`,
          'the agent stays offline until this passes; fix the GPU (or reset it); systemd retries it, backing off to every ~2 minutes',
        );
    });
}
