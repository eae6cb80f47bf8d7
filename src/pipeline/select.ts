// Changed-file step selection for the bundled template (and --explain for any test list): which
// steps run, which wait behind a block step, and why. Pure: facts in, decisions out.
import { isRecord } from '../util/guards.js';
export interface SelectionInput {
  steps: unknown[];
  changedFiles: string[] | undefined;
  runAll: boolean;
  nightly: boolean;
  onlySteps: string[] | undefined;
}

export interface StepDecision {
  id: string;
  label: string;
  run: boolean;
  blocked: boolean;
  reasons: string[];
}

const asList = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []);

// The id selection uses for a step: its key, else its label.
export function stepId(step: Record<string, unknown>, index: number): string {
  return String(step.key ?? step.label ?? step.name ?? `step-${index + 1}`);
}

function matchChange(deps: string[], files: string[]): { file: string; prefix: string } | undefined {
  const include = deps.filter((d) => !d.startsWith('!'));
  const exclude = deps.filter((d) => d.startsWith('!')).map((d) => d.slice(1));
  for (const file of files) {
    if (exclude.some((x) => file.startsWith(x))) continue;
    const prefix = include.find((p) => file.startsWith(p));
    if (prefix !== undefined) return { file, prefix };
  }
  return undefined;
}

export function selectSteps(input: SelectionInput): StepDecision[] {
  const steps = input.steps.filter(isRecord);
  const decisions = steps.map((step, i): StepDecision => {
    const id = stepId(step, i);
    const label = String(step.label ?? step.name ?? id);
    const d: StepDecision = { id, label, run: false, blocked: false, reasons: [] };
    if (input.onlySteps) {
      d.run = input.onlySteps.includes(id);
      d.reasons.push(d.run ? 'named by --only-steps' : 'not named by --only-steps');
      return d;
    }
    if (step.optional === true && !input.nightly) {
      d.run = true;
      d.blocked = true;
      d.reasons.push('optional: behind a block step (runs unattended only with --nightly)');
      return d;
    }
    if (step.optional === true) d.reasons.push('optional, nightly');
    const deps = asList(step.source_file_dependencies);
    if (input.runAll) {
      d.run = true;
      d.reasons.push('run_all');
    } else if (deps.length === 0) {
      d.run = true;
      d.reasons.push('no source_file_dependencies');
    } else if (input.changedFiles === undefined) {
      d.run = true;
      d.reasons.push('no change information (pass --changed-files or --diff-base)');
    } else {
      const m = matchChange(deps, input.changedFiles);
      d.run = m !== undefined;
      d.reasons.push(m ? `${m.file} matches ${m.prefix}` : `no changed file matches ${deps.join(', ')}`);
    }
    return d;
  });
  keepDependencies(steps, decisions);
  return decisions;
}

// `depends_on: key`, `[key, ...]` or `[{step: key}, ...]` as a list of keys.
function dependencyIds(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return items.flatMap((d) => (typeof d === 'string' ? [d] : isRecord(d) && typeof d.step === 'string' ? [d.step] : []));
}

// Every step a selected step depends on is selected too (transitively), so the graph stays whole.
function keepDependencies(steps: Record<string, unknown>[], decisions: StepDecision[]): void {
  const byId = new Map(decisions.map((d, i) => [d.id, i]));
  const queue = decisions.filter((d) => d.run).map((d) => d.id);
  while (queue.length) {
    const id = queue.shift()!;
    const step = steps[byId.get(id)!]!;
    for (const dep of dependencyIds(step.depends_on)) {
      const j = byId.get(dep);
      if (j === undefined) continue;
      const d = decisions[j]!;
      if (!d.run) {
        d.run = true;
        d.reasons.push(`dependency of ${id}`);
        queue.push(d.id);
      }
    }
  }
}

// Prefixes that match no tracked file (a typo there silently disables a test).
export function deadPrefixes(steps: unknown[], tracked: string[]): { prefix: string; steps: string[] }[] {
  // One verdict per distinct prefix (a test list repeats them, and a repository has thousands of files).
  const dead = new Map<string, string[]>();
  const alive = new Set<string>();
  steps.filter(isRecord).forEach((s, i) => {
    for (const dep of asList(s.source_file_dependencies)) {
      if (dep.startsWith('!') || alive.has(dep)) continue;
      let users = dead.get(dep);
      if (!users) {
        if (tracked.some((f) => f.startsWith(dep))) {
          alive.add(dep);
          continue;
        }
        dead.set(dep, (users = []));
      }
      users.push(stepId(s, i));
    }
  });
  return [...dead].map(([prefix, users]) => ({ prefix, steps: users }));
}
