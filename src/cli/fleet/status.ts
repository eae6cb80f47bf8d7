// `bkci fleet status`: per queue of the fleet, the agents connected now (busy / idle), from the
// agents API; queues with no agent are flagged.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table, writeResult } from '../../util/output.js';
import { apiOptions, type CommonFlags, withApi } from '../api-command.js';
import { collect } from '../command.js';
import { loadFleet, queuesOf } from './shared.js';

export function statusCommand(fleet: Command, io: Io): Command {
  return apiOptions(
    fleet
      .command('status')
      .description('per queue of the fleet: agents connected, busy and idle now; queues with none flagged')
      .argument('<file>', 'the fleet file (- for stdin)')
      .option('--queue <name>', 'only this queue; repeatable', collect, []),
  ).action(async (file: string, flags: CommonFlags & { queue: string[] }) => {
    const f = await loadFleet(file, io);
    const named = await queuesOf(f, flags.queue);
    const rows = await withApi(flags, io, false, async (api) => {
      const [{ listAgents }, { fleetStatus }] = await Promise.all([import('../../api/agents.js'), import('../../fleet/status.js')]);
      const { agents, skipped } = await listAgents(api.client, api.cfg.org);
      for (const why of skipped) io.log.warn(`left out of the count: ${why}`);
      const all = fleetStatus(f, agents);
      return named ? all.filter((r) => named.some((q) => q.name === r.queue)) : all;
    });
    for (const r of rows) if (r.empty) io.log.warn({ queue: r.queue }, `queue ${r.queue} has no connected agent: its jobs wait`);
    writeResult(io, flags.json ? 'json' : 'text', rows, () =>
      table(
        io,
        ['queue', 'agents', 'busy', 'idle', ''],
        rows.map((r) => [r.queue, String(r.total), String(r.busy), String(r.idle), r.empty ? 'NO AGENTS' : '']),
      ),
    );
  });
}
