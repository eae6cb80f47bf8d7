// `bkci queue status`: connected agents of a queue: total, idle, busy, and what each runs.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table, writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';

export interface QueueStatusInput extends ApiInput {
  queue: string;
}

export function statusCommand(queue: Command, io: Io, run: RunF<QueueStatusInput> = runQueueStatus): Command {
  const cmd = queue
    .command('status')
    .description('connected agents of a queue: total, idle, busy, and what each runs')
    .argument('<queue>', 'queue name (the queue=NAME agent tag)');
  apiOptions(cmd);
  return cmd.action(async (name: string, flags: ApiFlagValues) => {
    const input = await checkInput(cmd, (z) => z.object({ ...apiShape(z), queue: z.string().min(1, { error: 'a queue name' }) }), {
      ...apiInput(flags, io),
      queue: name,
    });
    await run(input, io);
  });
}

export async function runQueueStatus(input: QueueStatusInput, io: Io): Promise<void> {
  await withApi(input, io, false, async (api) => {
    const { listAgents, queueStatus } = await import('../../api/agents.js');
    const { agents, skipped } = await listAgents(api.client, api.cfg.org);
    for (const why of skipped) io.log.warn({ queue: input.queue }, `left out of the count: ${why}`);
    writeApiResult(
      io,
      input.json,
      queueStatus(agents, input.queue),
      (s) =>
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
}
