// `bkci fleet status`: per queue of the fleet, the agents connected now (busy / idle), from the
// agents API; queues with no agent are flagged.
import type { Command } from 'commander';
import type { Io } from '../../util/io.js';
import { table, writeApiResult } from '../../util/output.js';
import { type ApiFlagValues, type ApiInput, apiInput, apiOptions, apiShape, withApi } from '../api-command.js';
import { checkInput, type RunF } from '../command.js';
import { type FleetInput, fleetArguments, fleetShape, loadFleet, queuesOf } from './shared.js';

export interface FleetStatusInput extends ApiInput, FleetInput {}

export function statusCommand(fleet: Command, io: Io, run: RunF<FleetStatusInput> = runFleetStatus): Command {
  const cmd = fleetArguments(
    fleet.command('status').description('per queue of the fleet: agents connected, busy and idle now; queues with none flagged'),
    'only this queue; repeatable',
  );
  apiOptions(cmd);
  return cmd.action(async (file: string, flags: ApiFlagValues & { queue: string[] }) => {
    const input = await checkInput(cmd, (z) => z.object({ ...apiShape(z), ...fleetShape(z) }), { ...apiInput(flags, io), file, queue: flags.queue });
    await run(input, io);
  });
}

export async function runFleetStatus(input: FleetStatusInput, io: Io): Promise<void> {
  const f = await loadFleet(input.file, io);
  const named = await queuesOf(f, input.queue);
  const rows = await withApi(input, io, false, async (api) => {
    const [{ listAgents }, { fleetStatus }] = await Promise.all([import('../../api/agents.js'), import('../../fleet/status.js')]);
    const { agents, skipped } = await listAgents(api.client, api.cfg.org);
    for (const why of skipped) io.log.warn(`left out of the count: ${why}`);
    return fleetStatus(f, agents, named);
  });
  for (const r of rows) if (r.empty) io.log.warn({ queue: r.queue }, `queue ${r.queue} has no connected agent: its jobs wait`);
  writeApiResult(io, input.json, rows, () =>
    table(
      io,
      ['queue', 'agents', 'busy', 'idle', ''],
      rows.map((r) => [r.queue, String(r.total), String(r.busy), String(r.idle), r.empty ? 'NO AGENTS' : '']),
    ),
  );
}
