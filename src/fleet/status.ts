// `bkci fleet status` and `pipeline validate --check-queues`: the fleet and pipelines held against
// the agents connected now (the agents API, every page). Pure: the agents are gathered by the caller.
import { queueStatus, type QueueStatus } from '../api/agents.js';
import type { Agent } from '../api/types.js';
import type { Finding } from '../pipeline/validate.js';
import { formatPath } from '../pipeline/validate.js';
import { loadPipelineYaml, positionOf } from '../pipeline/yaml-load.js';
import { commandSteps } from './check.js';
import type { Fleet, Queue } from './model.js';

export interface FleetQueueStatus extends QueueStatus {
  // A queue of the fleet with no connected agent: its jobs wait.
  empty: boolean;
}

// Every queue of the fleet in its order, or only the `only` ones (--queue).
export function fleetStatus(fleet: Fleet, agents: Agent[], only?: readonly Queue[]): FleetQueueStatus[] {
  const names = [...fleet.queues.keys()].filter((name) => !only || only.some((q) => q.name === name));
  return names.map((name) => {
    const s = queueStatus(agents, name);
    return { ...s, empty: s.total === 0 };
  });
}

// An agent's tags as key -> value (`queue=x` in meta_data; the cluster queue when it has no tag).
function tagsOf(a: Agent): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of a.meta_data ?? []) {
    const eq = t.indexOf('=');
    if (eq > 0) m.set(t.slice(0, eq), t.slice(eq + 1));
  }
  if (!m.has('queue')) m.set('queue', a.queue ?? 'default');
  return m;
}

// Connected agents whose tags include every one the step asks for (`*` matches any value).
export function matchingAgents(wanted: Map<string, string>, agents: Agent[]): number {
  return agents.filter((a) => {
    if ((a.connection_state ?? 'connected') !== 'connected') return false;
    const have = tagsOf(a);
    for (const [k, v] of wanted) {
      const got = have.get(k);
      if (got === undefined || (v !== '*' && got !== v)) return false;
    }
    return true;
  }).length;
}

// One warning per command step that no connected agent could take now (with the count of agents
// that match, 0); steps whose targeting is interpolated at upload are left out.
export function checkAgainstAgents(text: string, agents: Agent[]): Finding[] {
  const loaded = loadPipelineYaml(text);
  const out: Finding[] = [];
  loaded.docs.forEach(({ value, doc }) => {
    for (const step of commandSteps(value)) {
      if ([...step.tags.values()].some((v) => /\$(\{|[A-Za-z_])/.test(v))) continue;
      const wanted = new Map(step.tags);
      if (!wanted.has('queue')) wanted.set('queue', 'default');
      const n = matchingAgents(wanted, agents);
      if (n === 0)
        out.push({
          severity: 'warning',
          path: formatPath(step.path),
          ...positionOf(doc, loaded.lineCounter, step.path),
          message: `no connected agent matches ${[...wanted].map(([k, v]) => `${k}=${v}`).join(', ')} (0 agents now): the job would wait`,
        });
    }
  });
  return out;
}
