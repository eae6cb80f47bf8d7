// `bkci queue status`: connected agents of a queue: total, idle, busy, and what each runs.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table } from '../../util/output.js';
import { apiOptions, type CommonFlags, printJson, withApi } from '../api-command.js';

export function statusCommand(queue: Command, io: Io): Command {
  return apiOptions(
    queue
      .command('status')
      .description('connected agents of a queue: total, idle, busy, and what each runs')
      .argument('<queue>', 'queue name (the queue=NAME agent tag)'),
  ).action(async (name: string, flags: CommonFlags) => {
    await withApi(flags, io, false, async (api) => {
      const { listAgents, queueStatus } = await import('../../api/agents.js');
      const { agents, skipped } = await listAgents(api.client, api.cfg.org);
      for (const why of skipped) io.log.warn({ queue: name }, `left out of the count: ${why}`);
      const s = queueStatus(agents, name);
      if (flags.json) return printJson(io, s);
      io.stdout.write(
        `queue ${s.queue}: ${s.total} agents, ${s.idle} idle, ${s.busy} busy\n` +
          (s.agents.length
            ? table(
                io,
                ['agent', 'state', 'gpu', 'job'],
                s.agents.map((a) => [a.name, a.busy ? 'busy' : 'idle', a.gpu ?? '', a.job ?? '']),
              )
            : ''),
      );
    });
  });
}
