// What the bundled template emits for the steps selection does not run (`--unselected`), as data
// for its `selection` map. Pure: the test list's steps and the selection's decisions in, one entry
// per step out. A step is "held" when it does not run by itself: no changed file selects it, it is
// `optional` (and not --nightly), or --only-steps leaves it out.
//   (not given)   today's output: held optional steps get a block + command pair, the others are left out
//   block         every held step gets a block + command pair (vLLM's generator does this): 2 jobs each
//   group-block   one block step per group (the test list's `group:`; ungrouped steps share one) gates
//                 that group's held steps: 1 job each, plus 1 per group
//   skip          every held step is emitted with `skip:` and the reason: 1 job each, not runnable
import { isRecord } from '../util/guards.js';
import { stepId, type StepDecision } from './select.js';

export const UNSELECTED_MODES = ['block', 'group-block', 'skip'] as const;
export type UnselectedMode = (typeof UNSELECTED_MODES)[number];

// The template's `selection[id]`: `run` = emit the step; `blocked` = behind the block step
// `block_key` (emitted before this step when `emit_block`); `skip` = the skip reason.
export interface SelectionEntry {
  run: boolean;
  blocked: boolean;
  reasons: string[];
  block_key?: string;
  block_label?: string;
  emit_block?: boolean;
  skip?: string;
}

// A block step's key: `block-` and the id with anything but [a-z0-9_.-] as "-" (Buildkite's key
// rules; no `$`, which the agent would interpolate), at most 100 characters. vLLM's keys have this form.
export function blockKey(id: string): string {
  let slug = '';
  for (const ch of id.toLowerCase()) slug += /[a-z0-9_.-]/.test(ch) ? ch : '-';
  return `block-${slug}`.slice(0, 100);
}

// Buildkite refuses a skip reason over 70 characters.
const MAX_SKIP_REASON = 70;

export function unselectedEntries(steps: unknown[], decisions: StepDecision[], mode: UnselectedMode | undefined): SelectionEntry[] {
  const records = steps.filter(isRecord);
  // Held steps per group, for group-block: the first one emits the group's block.
  const groupOf = (i: number): string | undefined => {
    const g = records[i]?.group;
    return typeof g === 'string' && g !== '' ? g : undefined;
  };
  const held = decisions.map((d) => !d.run || d.blocked);
  const heldPerGroup = new Map<string, number>();
  held.forEach((h, i) => h && heldPerGroup.set(groupOf(i) ?? '', (heldPerGroup.get(groupOf(i) ?? '') ?? 0) + 1));
  const groupSeen = new Set<string>();
  return decisions.map((d, i): SelectionEntry => {
    const base = { run: d.run, blocked: d.blocked, reasons: d.reasons };
    const step = records[i] ?? {};
    const label = step.label ? String(step.label) : stepId(step, i);
    if (!held[i]) return base;
    switch (mode) {
      case undefined:
        return d.blocked ? { ...base, block_key: blockKey(d.id), block_label: `Run ${label}`, emit_block: true } : base;
      case 'block':
        return { ...base, run: true, blocked: true, block_key: blockKey(d.id), block_label: `Run ${label}`, emit_block: true };
      case 'group-block': {
        const g = groupOf(i);
        const n = heldPerGroup.get(g ?? '')!;
        const first = !groupSeen.has(g ?? '');
        groupSeen.add(g ?? '');
        return {
          ...base,
          run: true,
          blocked: true,
          block_key: blockKey(g === undefined ? 'unselected' : `group-${g}`),
          block_label: g === undefined ? `Run the ${n} unselected step${n === 1 ? '' : 's'}` : `Run the ${n} unselected step${n === 1 ? '' : 's'} of ${g}`,
          emit_block: first,
        };
      }
      case 'skip': {
        const why = `not selected: ${d.reasons.join('; ')}`;
        return { ...base, run: true, blocked: false, skip: why.length > MAX_SKIP_REASON ? `${why.slice(0, MAX_SKIP_REASON - 3)}...` : why };
      }
    }
  });
}
