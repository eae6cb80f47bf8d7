// `bkci node doctor`: check this host for the classic agent failures.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CheckFailed } from '../../util/errors.js';
import type { Io } from '../../util/io.js';
import { rootOf } from './shared.js';

export function doctorCommand(node: Command, io: Io): Command {
  return node
    .command('doctor')
    .description('check this host for the classic agent failures and say how to fix each; exit 1 when one fails')
    .option('--root <dir>', 'check a staged tree under DIR')
    .option('--host-root <dir>', 'read /sys, /proc and /dev under DIR', '/')
    .option('--json', 'print JSON')
    .action(async (flags: { root?: string; hostRoot: string; json?: boolean }) => {
      const { root, staging } = rootOf(io, flags.root);
      const { runDoctor } = await import('../../node/doctor.js');
      const items = await runDoctor({ root, staging, hostRoot: resolve(io.cwd, flags.hostRoot) }, io);
      if (flags.json) io.stdout.write(JSON.stringify({ ok: !items.some((i) => i.status === 'fail'), checks: items }, null, 2) + '\n');
      else
        for (const i of items)
          io.stdout.write(`${i.status.toUpperCase().padEnd(4)}  ${i.check}: ${i.detail}\n${i.fix && i.status !== 'ok' ? `      fix: ${i.fix}\n` : ''}`);
      const failed = items.filter((i) => i.status === 'fail');
      if (failed.length) throw new CheckFailed(`${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((i) => i.check).join(', ')}`);
    });
}
