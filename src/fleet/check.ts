// `pipeline validate --fleet` / `pipeline render --fleet`: a job whose queue the fleet does not have,
// or whose resource class its queue lacks, waits forever ("no agent will ever take this job").
// Each such step is an error at its position, with a did-you-mean.
import { didYouMean, type Finding, formatPath, stepType } from '../pipeline/validate.js';
import { loadPipelineYaml, positionOf } from '../pipeline/yaml-load.js';
import { resourceClassOf } from './k8s.js';
import type { Fleet } from './model.js';

type Path = (string | number)[];

// A step's agent targeting as key -> value: the map form, or the list form ["queue=x", ...].
export function agentTags(agents: unknown): Map<string, string> | undefined {
  if (agents === undefined || agents === null) return undefined;
  const out = new Map<string, string>();
  if (Array.isArray(agents)) {
    for (const item of agents) {
      if (typeof item !== 'string') continue;
      const eq = item.indexOf('=');
      if (eq > 0) out.set(item.slice(0, eq), item.slice(eq + 1));
    }
    return out;
  }
  if (typeof agents === 'object') {
    for (const [k, v] of Object.entries(agents as Record<string, unknown>)) if (v !== null && v !== undefined) out.set(k, String(v));
    return out;
  }
  return undefined;
}

// Interpolated by the agent at upload time (`$QUEUE`, `${QUEUE:-x}`): not known here.
const INTERPOLATED = /\$(\{[^}]*\}|[A-Za-z_])/;

export interface CommandStepTargeting {
  // Where the step is, and where its own `agents` is.
  path: Path;
  agentsPath: Path;
  // The pipeline's `agents` merged with the step's own (the step's win per key).
  tags: Map<string, string>;
  own: Map<string, string> | undefined;
}

// Every command step of a parsed pipeline document (those inside groups too) with its targeting.
export function* commandSteps(value: unknown): Generator<CommandStepTargeting> {
  if (!value || typeof value !== 'object') return;
  const top = Array.isArray(value) ? { steps: value } : (value as Record<string, unknown>);
  if (!Array.isArray(top.steps)) return;
  const topAgents = agentTags(top.agents) ?? new Map<string, string>();
  function* visit(steps: unknown[], prefix: Path): Generator<CommandStepTargeting> {
    for (const [i, step] of steps.entries()) {
      const at = [...prefix, i];
      if (!step || typeof step !== 'object' || Array.isArray(step)) continue;
      const kind = stepType(step as Record<string, unknown>);
      if (!kind) continue;
      const inner: Path = [...at, ...(kind.nested ? [kind.nested] : [])];
      if (kind.type === 'group') {
        const nested = (kind.body as { steps?: unknown }).steps;
        if (Array.isArray(nested)) yield* visit(nested, [...inner, 'steps']);
        continue;
      }
      if (kind.type !== 'command') continue;
      const own = agentTags((kind.body as { agents?: unknown }).agents);
      yield { path: at, agentsPath: [...inner, 'agents'], tags: new Map([...topAgents, ...(own ?? [])]), own };
    }
  }
  yield* visit(top.steps, Array.isArray(value) ? [] : ['steps']);
}

export function checkAgainstFleet(text: string, fleet: Fleet): Finding[] {
  const loaded = loadPipelineYaml(text);
  const findings: Finding[] = [];
  const queues = [...fleet.queues.keys()];
  loaded.docs.forEach(({ value, doc }) => {
    const add = (severity: Finding['severity'], path: Path, message: string) =>
      findings.push({ severity, path: formatPath(path), ...positionOf(doc, loaded.lineCounter, path), message });
    for (const { path: at, agentsPath, tags, own } of commandSteps(value)) {
      const queue = tags.get('queue');
      const queuePath = own?.has('queue') ? [...agentsPath, 'queue'] : at;
      if (queue !== undefined && INTERPOLATED.test(queue)) {
        add('warning', queuePath, `agents.queue ${queue} is interpolated at upload; not checked against ${fleet.file}`);
        continue;
      }
      const name = queue ?? fleet.defaultQueue;
      const q = fleet.queues.get(name);
      if (!q) {
        const hint = didYouMean(name, queues);
        add(
          'error',
          queuePath,
          queue === undefined
            ? `no agents.queue: the job goes to the default queue \`${name}\`, which ${fleet.file} does not have, so no agent will ever take it (set agents.queue${hint ? `, e.g. ${hint}` : ''})`
            : `queue \`${queue}\` is not in ${fleet.file}: no agent will ever take this job${hint ? ` (did you mean \`${hint}\`?)` : ''}`,
        );
        continue;
      }
      const rc = tags.get('resource_class');
      if (rc === undefined || INTERPOLATED.test(rc)) continue;
      const has = q.k8s ? resourceClassOf(q) : undefined;
      if (rc !== has)
        add(
          'error',
          own?.has('resource_class') ? [...agentsPath, 'resource_class'] : at,
          has
            ? `resource_class \`${rc}\` is not defined for queue ${q.name} (its class is \`${has}\`): no agent will ever take this job`
            : `resource_class \`${rc}\`: queue ${q.name} is not an agent-stack-k8s queue in ${fleet.file} and has no resource classes`,
        );
    }
  });
  return findings;
}
