// `node teardown --agent NAME|BUS-ID`: forget an agent whose GPU is gone for good. After a GPU
// falls off the bus setup keeps its agent (stopped, its name and share held for when it is back);
// this removes that agent's unit, files, hook and drop-in directories (with --purge its build
// directory) and its manifest entry, and records it as forgotten so that asking again is a no-op.
// Every other agent's files stay byte for byte. Pure: the CLI gathers the GPUs present now.
import { didYouMean } from '../pipeline/validate.js';
import { UsageError } from '../util/errors.js';
import type { TeardownPlan } from './apply.js';
import { busOfKey } from './identity.js';
import type { AgentPlan, Manifest } from './plan.js';
import { planAgentsTeardown } from './queues.js';

// An agent forgotten by teardown --agent, kept in the manifest until the next setup rewrites it.
export interface Forgotten {
  instance: string;
  name: string;
  gpus: string[];
}

export type ForgetManifest = Manifest & { forgotten?: Forgotten[] };

// A PCI bus id as sysfs writes it (`0000:3a:00.0`), from that form, nvidia-smi's
// (`00000000:3A:00.0`) or the short one (`3a:00.0`); undefined when it is none of them.
export function normalBusId(s: string): string | undefined {
  const m = /^(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i.exec(s.trim());
  if (!m) return undefined;
  const hex = (x: string, n: number) => parseInt(x, 16).toString(16).padStart(n, '0');
  return `${hex(m[1] ?? '0', 4)}:${hex(m[2]!, 2)}:${hex(m[3]!, 2)}.${m[4]}`;
}

// The bus ids of an agent's GPUs (a MIG agent: its parent GPU's).
export function agentBuses(a: Pick<AgentPlan, 'gpuKeys' | 'env'>): string[] {
  const keys = a.gpuKeys?.length ? a.gpuKeys : (a.env?.BKCI_GPU_BUSIDS ?? '').split(',').filter(Boolean);
  return [...new Set(keys.map((k) => busOfKey(k)).map((b) => normalBusId(b) ?? b))];
}

// The agents the --agent values name (instance `gpu2`, agent name, unit, or a bus id of one of its
// GPUs), and those forgotten already. An unknown name is exit 2 with a did-you-mean; a CPU-only
// agent is exit 2 (setup makes it again: --queue or fewer --agents remove it).
export function resolveForget(m: ForgetManifest, names: string[]): { agents: AgentPlan[]; already: Forgotten[] } {
  const agents: AgentPlan[] = [];
  const already: Forgotten[] = [];
  for (const n of names) {
    const bus = normalBusId(n);
    const a = m.agents.find((x) => x.instance === n || x.name === n || x.unit === n || (bus !== undefined && agentBuses(x).includes(bus)));
    if (a) {
      if (!agentBuses(a).length)
        throw new UsageError(
          `--agent ${n}: agent ${a.instance} has no GPU; the next setup would make it again`,
          `remove CPU-only agents with --queue ${m.queues?.length ? '<queue>' : m.queue} or fewer --agents at setup`,
        );
      if (!agents.includes(a)) agents.push(a);
      continue;
    }
    const f = (m.forgotten ?? []).find((x) => x.instance === n || x.name === n || (bus !== undefined && x.gpus.includes(bus)));
    if (f) {
      already.push(f);
      continue;
    }
    const hint = didYouMean(n, [...m.agents.map((x) => x.instance), ...(bus === undefined ? [] : m.agents.flatMap(agentBuses))]);
    throw new UsageError(
      `--agent ${n}: no agent of this host has that name or GPU${hint ? ` (did you mean ${hint}?)` : ''}`,
      `its GPU agents: ${
        m.agents
          .filter((x) => agentBuses(x).length)
          .map((x) => `${x.instance} (${agentBuses(x).join('+')}${x.missing ? ', GPU gone' : ''})`)
          .join(', ') || 'none'
      }`,
    );
  }
  return { agents, already };
}

// Refuses to forget an agent any of whose GPUs the vendor tool lists now (`present`: bus ids),
// unless --force.
export function refusePresent(agents: AgentPlan[], present: Set<string>): void {
  const here = agents.map((a) => ({ a, buses: agentBuses(a).filter((b) => present.has(b)) })).filter((x) => x.buses.length);
  if (!here.length) return;
  throw new UsageError(
    `${here.map((x) => `agent ${x.a.instance}: its GPU ${x.buses.join(', ')} is on this host`).join('; ')}: --agent forgets an agent whose GPU is gone for good`,
    'to bring the agent back, run bkci node setup again; to remove it anyway, add --force (the next setup makes a new agent for a GPU that is present)',
  );
}

// The teardown of the agents, and the manifest without them (recording them as forgotten).
export function planForget(m: ForgetManifest, agents: AgentPlan[], purge: boolean): TeardownPlan & { manifest: ForgetManifest } {
  const t = planAgentsTeardown(m, agents, purge);
  const forgotten = [...(m.forgotten ?? []), ...agents.map((a) => ({ instance: a.instance, name: a.name, gpus: agentBuses(a) }))];
  return { ...t, manifest: { ...t.manifest, forgotten } };
}
