// Jobs an upload creates, counted as Buildkite's server counts them against its per-upload limit
// (500 by default): a command step is `parallelism` jobs, or one job per matrix combination
// (after adjustments); wait, block, input and trigger steps are one job each; a group is one job
// of its own plus its steps. Sources in docs/pipeline.md#counting-jobs. Pure.
import { isRecord } from '../../util/guards.js';
import { stepType } from '../validate.js';

// The combinations a `matrix` expands into: the elements of a list, or the product of the
// dimensions of `setup`, plus each adjustment that adds a combination not in `setup`, minus each
// `skip` adjustment that names one that is.
export function matrixCombinations(matrix: unknown): number {
  if (Array.isArray(matrix)) return matrix.length;
  if (!isRecord(matrix)) return 1;
  const setup = matrix.setup;
  const adjustments = Array.isArray(matrix.adjustments) ? matrix.adjustments.filter(isRecord) : [];
  let combos: number;
  let inSetup: (w: unknown) => boolean;
  if (Array.isArray(setup)) {
    combos = setup.length;
    inSetup = (w) => !isRecord(w) && !Array.isArray(w) && setup.some((x) => sameScalar(x, w));
  } else if (isRecord(setup)) {
    const dims = Object.entries(setup).map(([k, v]) => [k, Array.isArray(v) ? v : [v]] as const);
    combos = dims.reduce((n, [, v]) => n * v.length, 1);
    inSetup = (w) => isRecord(w) && Object.keys(w).length === dims.length && dims.every(([k, v]) => Object.hasOwn(w, k) && v.some((x) => sameScalar(x, w[k])));
  } else {
    return 1;
  }
  // Each combination once: two adjustments naming the same one change it once.
  const seen = new Set<string>();
  for (const a of adjustments) {
    const id = JSON.stringify(a.with, (_k, v: unknown) => (isRecord(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1))) : v));
    const skip = isSkipped(a.skip);
    const known = inSetup(a.with);
    if (known && skip && !seen.has(id)) combos -= 1;
    else if (!known && !skip && !seen.has(id)) combos += 1;
    seen.add(id);
  }
  return Math.max(0, combos);
}

const sameScalar = (a: unknown, b: unknown) =>
  a === b || (a !== null && b !== null && typeof a !== 'object' && typeof b !== 'object' && String(a) === String(b));

// `skip: true` or a reason skips; `false` and "" do not.
export function isSkipped(v: unknown): boolean {
  return v === true || (typeof v === 'string' && v !== '' && v !== 'false');
}

// Jobs of one step that is not a group (a string step like `wait` is one).
export function stepJobs(step: unknown): number {
  if (!isRecord(step)) return 1;
  const t = stepType(step);
  if (!t || t.type !== 'command') return 1;
  const par = t.body.parallelism;
  const copies = typeof par === 'number' && Number.isInteger(par) && par > 1 ? par : 1;
  return t.body.matrix === undefined ? copies : copies * matrixCombinations(t.body.matrix);
}

// Jobs of a top-level item: a group counts itself plus its steps.
export function itemJobs(item: unknown): number {
  if (!isRecord(item)) return 1;
  const t = stepType(item);
  if (t?.type === 'group') {
    const steps = Array.isArray(t.body.steps) ? t.body.steps : [];
    return 1 + steps.reduce((n: number, s) => n + stepJobs(s), 0);
  }
  return stepJobs(item);
}

// The steps of one pipeline document: `steps:` of a mapping, or the document itself when it is a list.
export function documentSteps(doc: unknown): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (isRecord(doc) && Array.isArray(doc.steps)) return doc.steps;
  return [];
}

// Jobs one upload of this document creates.
export function documentJobs(doc: unknown): number {
  return documentSteps(doc).reduce((n: number, s) => n + itemJobs(s), 0);
}
