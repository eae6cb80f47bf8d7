// `bkci node status`: the agents bkci manages here and their drift.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table } from '../../util/output.js';
import { rootOf } from './shared.js';

export function statusCommand(node: Command, io: Io): Command {
  return node
    .command('status')
    .description('the agents bkci manages here, their GPUs, cpusets, unit state, and hand edits (drift)')
    .option('--root <dir>', 'read a staged tree under DIR')
    .option('--json', 'print JSON')
    .action(async (flags: { root?: string; json?: boolean }) => {
      const { root, staging } = rootOf(io, flags.root);
      const { nodeStatus } = await import('../../node/status.js');
      const s = await nodeStatus(root, io, !staging);
      if (flags.json) io.stdout.write(JSON.stringify(s, null, 2) + '\n');
      else if (!s.managed) io.stdout.write('no agents managed by bkci on this host (run bkci node setup)\n');
      else {
        io.stdout.write(`queue ${s.queue}, vendor ${s.vendor}, ${s.agents.length} agent${s.agents.length === 1 ? '' : 's'}\n`);
        io.stdout.write(
          table(
            io,
            ['agent', 'gpus', 'cpus', 'memory', 'state', 'reason'],
            s.agents.map((a) => [a.name, a.gpus.join(',') || '-', a.cpus, a.memoryMax, a.state, a.reason ?? '']),
          ),
        );
        for (const d of s.drift) io.stdout.write(`drift: ${d.path}: ${d.problem}\n`);
        const { formatBytes } = await import('../../util/bytes.js');
        for (const a of s.agents)
          if (a.lastDiskCleanup)
            io.stdout.write(
              `disk cleanup: ${a.name}: ${a.lastDiskCleanup.error ? `${a.lastDiskCleanup.error}, ` : ''}freed ${formatBytes(a.lastDiskCleanup.freed)}${a.lastDiskCleanup.at ? ` at ${a.lastDiskCleanup.at}` : ''}\n`,
            );
      }
      if (s.drift.length) io.log.warn({ files: s.drift.length }, 'managed files were changed by hand; re-run bkci node setup to restore them');
    });
}
