// Queue capacity from the agents list: agents whose `queue=Q` tag (or cluster queue) matches,
// connected ones counted as idle (no job) or busy.
import type { ApiClient } from './client.js';
import { AgentSchema, parseListItem, type Agent } from './types.js';

export interface QueueAgent {
  name: string;
  busy: boolean;
  job: string | null;
  gpu: string | null;
}

export interface QueueStatus {
  queue: string;
  total: number;
  idle: number;
  busy: number;
  agents: QueueAgent[];
}

function tag(a: Agent, key: string): string | undefined {
  const hit = (a.meta_data ?? []).find((t) => t.startsWith(`${key}=`));
  return hit?.slice(key.length + 1);
}

export function queueStatus(agents: Agent[], queue: string): QueueStatus {
  const inQueue = agents.filter((a) => (tag(a, 'queue') ?? a.queue ?? 'default') === queue && (a.connection_state ?? 'connected') === 'connected');
  const rows = inQueue
    .map((a) => ({ name: a.name, busy: a.job != null, job: a.job ? (a.job.name ?? a.job.id) : null, gpu: tag(a, 'gpu') ?? tag(a, 'gpu-index') ?? null }))
    .sort((x, y) => x.name.localeCompare(y.name, 'en', { numeric: true }));
  const busy = rows.filter((r) => r.busy).length;
  return { queue, total: rows.length, idle: rows.length - busy, busy, agents: rows };
}

// Every agent of the organization. One agent the API describes oddly is left out (and counted in
// `skipped`) rather than failing the whole count.
export async function listAgents(client: ApiClient, org: string): Promise<{ agents: Agent[]; skipped: string[] }> {
  const agents: Agent[] = [];
  const skipped: string[] = [];
  for await (const a of client.paginate<unknown>(`organizations/${encodeURIComponent(org)}/agents`, {
    scope: 'read_agents',
    what: `the agents of organization ${org}`,
  })) {
    const agent = parseListItem(AgentSchema, a, 'an agent', (why) => skipped.push(why));
    if (agent) agents.push(agent);
  }
  return { agents, skipped };
}
