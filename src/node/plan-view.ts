// How a node plan is shown: the view `node setup --dry-run --json` prints (and `node setup --json`
// extends), its text form, and the same for a teardown plan. Pure: plans in, data and text out.
import type { Io } from '../util/io.js';
import { table } from '../util/output.js';
import type { TeardownPlan } from './apply.js';
import type { NodePlan } from './plan.js';

const mode = (m: number) => m.toString(8).padStart(4, '0');

export interface SetupView {
  agents: {
    name: string;
    unit: string;
    gpus: number[];
    gpuIds: string[];
    numaNode: number;
    cpus: string;
    memNodes: string;
    memoryMax: string;
    memoryMaxBytes: number;
    buildPath: string;
    env: Record<string, string>;
    tags: string[];
  }[];
  // Agents of the previous setup whose GPUs are gone (bus ids): stopped, name and files kept.
  missing: { name: string; unit: string; gpus: string[] }[];
  files: { path: string; mode: string; action: string }[];
  dirs: { path: string; mode: string; owner: string; action: string }[];
  removals: string[];
  commands: string[];
}

// `user` owns the agents' directories; a staged setup runs no commands, so none are shown.
export function setupView(plan: NodePlan, user: string, staging: boolean): SetupView {
  return {
    agents: plan.agents.map((a) => ({
      name: a.name,
      unit: a.unit,
      // GPUs by the vendor tool's index (what operators call them), and by the ids the
      // isolation variables use (UUIDs, ROCR ids, chip logic ids, MIG UUIDs).
      gpus: a.gpuIndices,
      gpuIds: a.isolationIds,
      numaNode: a.numaNode,
      cpus: a.cpus,
      memNodes: a.memNodes,
      memoryMax: a.memoryMaxText,
      memoryMaxBytes: a.memoryMax,
      buildPath: a.buildPath,
      env: a.env,
      tags: a.tags,
    })),
    missing: plan.missing.map((m) => ({ name: m.agent.name, unit: m.agent.unit, gpus: m.lost })),
    files: plan.files.map((f) => ({ path: f.path, mode: mode(f.mode), action: f.action })),
    dirs: plan.dirs.map((d) => ({ path: d.path, mode: mode(d.mode), owner: d.owner === 'agent' ? user : 'root', action: d.action })),
    removals: plan.removals,
    commands: staging ? [] : plan.commands.map((c) => c.argv.join(' ')),
  };
}

// The dry run as text: the agents, then every directory, file, removal and command.
export function setupPlanText(io: Io, view: SetupView, changed: boolean): string {
  let out = table(
    io,
    ['agent', 'gpus', 'numa', 'cpus', 'memory', 'tags'],
    view.agents.map((a) => [a.name, a.gpus.join(',') || '-', String(a.numaNode), a.cpus, a.memoryMax, a.tags.join(',')]),
  );
  out += view.missing.map((m) => `missing   ${m.name}: GPU ${m.gpus.join(', ')} is gone; ${m.unit} is stopped, its name and files kept\n`).join('');
  out += '\n' + view.dirs.map((d) => `${d.action.padEnd(9)} ${d.mode} ${d.owner.padEnd(15)} ${d.path}/\n`).join('');
  out += view.files.map((f) => `${f.action.padEnd(9)} ${f.mode} ${'root'.padEnd(15)} ${f.path}\n`).join('');
  out += view.removals.map((p) => `remove    ${p}\n`).join('');
  out += '\n' + view.commands.map((c) => `run       ${c}\n`).join('');
  if (!changed) out += '\nnothing to change: the host already matches this setup\n';
  return out;
}

// The agents a setup made, as text.
export function agentsText(io: Io, view: SetupView): string {
  return (
    table(
      io,
      ['agent', 'gpus', 'numa', 'cpus', 'memory'],
      view.agents.map((a) => [a.name, a.gpus.join(',') || '-', String(a.numaNode), a.cpus, a.memoryMax]),
    ) + view.missing.map((m) => `missing: ${m.name}: GPU ${m.gpus.join(', ')} is gone; ${m.unit} is stopped\n`).join('')
  );
}

export interface TeardownView {
  units: string[];
  files: string[];
  dirs: string[];
  purge: string[];
  commands: string[];
}

export function teardownView(t: TeardownPlan, staging: boolean): TeardownView {
  return { units: t.units, files: t.files, dirs: t.dirs, purge: t.purge, commands: staging ? [] : t.commands.map((c) => c.join(' ')) };
}

export function teardownPlanText(view: TeardownView): string {
  return (
    [
      ...view.commands.map((c) => `run    ${c}`),
      ...view.files.map((f) => `remove ${f}`),
      ...view.dirs.map((d) => `rmdir  ${d} (if empty)`),
      ...view.purge.map((d) => `purge  ${d}`),
    ].join('\n') + '\n'
  );
}
