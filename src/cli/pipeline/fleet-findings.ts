// `--fleet FILE` and `--check-queues` of `pipeline validate`: the pipeline's jobs held against the
// fleet file and against the agents connected now. Loaded only when one of them is given (the
// agents API, and so undici, only for --check-queues).
import type { Finding } from '../../pipeline/validate.js';
import type { Io } from '../../util/io.js';

export async function fleetFindings(text: string, flags: { fleet?: string; checkQueues?: boolean }, io: Io): Promise<Finding[]> {
  const out: Finding[] = [];
  if (flags.fleet !== undefined) {
    const [{ readInput }, { parseFleet }, { checkAgainstFleet }] = await Promise.all([
      import('../../util/io.js'),
      import('../../fleet/load.js'),
      import('../../fleet/check.js'),
    ]);
    const fleet = parseFleet(await readInput(flags.fleet, io, 'fleet file'), flags.fleet);
    out.push(...checkAgainstFleet(text, fleet));
  }
  if (flags.checkQueues) {
    const [{ withApi }, { listAgents }, { checkAgainstAgents }] = await Promise.all([
      import('../api-command.js'),
      import('../../api/agents.js'),
      import('../../fleet/status.js'),
    ]);
    const agents = await withApi({}, io, false, async (api) => {
      const { agents, skipped } = await listAgents(api.client, api.cfg.org);
      for (const why of skipped) io.log.warn(`left out of the agents: ${why}`);
      return agents;
    });
    out.push(...checkAgainstAgents(text, agents));
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col);
}
