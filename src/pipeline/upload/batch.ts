// Splits a pipeline into uploads of at most `maxJobs` jobs each, so that the build they make is the
// build one upload would make. Pure: parsed documents in, batch documents out.
//
// - A group is never split; a group (or a step) alone above the limit is a PlanError naming it.
// - Batches are ordered so that every `depends_on` key is defined in the same or an earlier batch
//   (the server refuses a dependency on a key the build does not have yet).
// - `wait` and `block` steps are positional: each waits for every step before it in the build, and a
//   step without `depends_on` waits for the last one before it. The agent inserts each upload right
//   after the uploading job, so a second upload lands *before* the first in the build's order, and
//   positions across batches would be wrong. When a document with top-level wait/block steps is
//   split, those implicit dependencies are written out as explicit `depends_on` (keys are added
//   where a step that is waited for has none), which hold whatever the order.
// - Top-level `notify` goes with the first batch of its document only (build notifications are
//   per build: repeated, they would fire once per batch); every other top-level key (`env`,
//   `agents`, `secrets`, `image`, `priority`, ...) applies to the steps of its own upload and is
//   kept in every batch.
import { isRecord } from '../../util/guards.js';
import { stepType } from '../validate.js';
import { documentSteps, isSkipped, itemJobs } from './count.js';

export const DEFAULT_MAX_JOBS = 500;

export type Path = (string | number)[];

export class PlanError extends Error {
  constructor(
    message: string,
    // The document (0-based) and the path of the offending step inside it.
    readonly doc: number,
    readonly path: Path,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'PlanError';
  }
}

export interface PlannedBatch {
  // 0-based index of the input document the batch comes from.
  document: number;
  // The pipeline document to upload.
  pipeline: Record<string, unknown>;
  jobs: number;
  // Top-level indexes (in the input document) of the steps in this batch, in upload order.
  items: number[];
}

export interface UploadPlan {
  // False when every document fits one upload: the input then goes to the agent unchanged.
  split: boolean;
  totalJobs: number;
  batches: PlannedBatch[];
  // Keys bkci added to steps so that explicit dependencies could name them.
  generatedKeys: string[];
}

export interface PlanOptions {
  maxJobs: number;
}

// The key a step is known by (`key`, or its aliases `identifier` and `id`).
export function keyOf(body: Record<string, unknown>): string | undefined {
  for (const k of ['key', 'identifier', 'id'] as const) if (typeof body[k] === 'string' && body[k] !== '') return body[k];
  return undefined;
}

// The keys named by a `depends_on` in any of its forms: a string, a list of strings, a list of
// {step, allow_failure}; null/[] name none.
export function dependencyKeys(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return items.flatMap((d) => (typeof d === 'string' ? [d] : isRecord(d) && typeof d.step === 'string' ? [d.step] : []));
}

// The mapping that holds a step's attributes (the inner one of `- wait: {key: x}`), or undefined
// for a string step.
function bodyOf(step: unknown): Record<string, unknown> | undefined {
  if (!isRecord(step)) return undefined;
  return stepType(step)?.body ?? step;
}

type Kind = 'barrier' | 'input' | 'group' | 'step';
function kindOf(step: unknown): Kind {
  if (typeof step === 'string') return step === 'input' ? 'input' : step === 'wait' || step === 'waiter' || step === 'block' ? 'barrier' : 'step';
  if (!isRecord(step)) return 'step';
  const t = stepType(step)?.type;
  return t === 'wait' || t === 'block' ? 'barrier' : t === 'input' ? 'input' : t === 'group' ? 'group' : 'step';
}

// Every key a top-level item defines: its own and, for a group, its steps'.
function keysDefined(item: unknown): string[] {
  const body = bodyOf(item);
  if (!body) return [];
  const own = keyOf(body);
  const out = own ? [own] : [];
  if (kindOf(item) === 'group' && Array.isArray(body.steps))
    for (const s of body.steps) {
      const b = bodyOf(s);
      const k = b && keyOf(b);
      if (k) out.push(k);
    }
  return out;
}

// Every key a top-level item depends on: its own `depends_on` and, for a group, its steps'.
function keysNeeded(item: unknown): string[] {
  const body = bodyOf(item);
  if (!body) return [];
  const out = dependencyKeys(body.depends_on);
  if (kindOf(item) === 'group' && Array.isArray(body.steps))
    for (const s of body.steps) {
      const b = bodyOf(s);
      if (b) out.push(...dependencyKeys(b.depends_on));
    }
  return out;
}

// A short name for messages: `group "Kernels" (key kernels)`.
export function describeItem(item: unknown): string {
  const body = bodyOf(item);
  const kind = kindOf(item);
  if (!body) return `\`${String(item)}\` step`;
  const t = isRecord(item) ? stepType(item)?.type : undefined;
  const label = [body.group, body.label, body.name, body.block, body.input, body.trigger].find((v) => typeof v === 'string' && v !== '') as string | undefined;
  const key = keyOf(body);
  const what = kind === 'group' ? 'group' : `${t ?? 'command'} step`;
  return `${what}${label !== undefined ? ` ${JSON.stringify(label)}` : ''}${key ? ` (key ${key})` : ''}`;
}

const isConditional = (b: Record<string, unknown>) =>
  b.if !== undefined ||
  (b.branches !== undefined && b.branches !== '' && !(Array.isArray(b.branches) && b.branches.length === 0)) ||
  b.if_changed !== undefined ||
  isSkipped(b.skip);

// Writes the implicit dependencies of top-level wait/block steps out as `depends_on`, in place.
// A barrier waits for every step since the last unconditional barrier, and for the barriers between
// (a conditional one may be left out of the build); a step without `depends_on` waits for the
// barriers back to the last unconditional one (or for nothing, before the first barrier). Input
// steps neither wait nor are barriers. Steps inside groups keep their order-based dependencies:
// those are scoped to the group, which is never split. Returns the keys it had to add.
export function makeDependenciesExplicit(steps: unknown[], takenKeys: Set<string>, keyPrefix: string): string[] {
  const added: string[] = [];
  const bodyAt = (i: number): Record<string, unknown> => {
    const s = steps[i];
    if (isRecord(s)) return bodyOf(s)!;
    // A string step becomes the mapping it stands for, so it can carry a key and depends_on.
    const m: Record<string, unknown> = s === 'block' ? { type: 'block' } : s === 'input' ? { type: 'input' } : { wait: null };
    steps[i] = m;
    return m;
  };
  const keyAt = (i: number): string => {
    const body = bodyAt(i);
    const k = keyOf(body);
    if (k) return k;
    let key = `${keyPrefix}${i + 1}`;
    for (let n = 2; takenKeys.has(key); n++) key = `${keyPrefix}${i + 1}-${n}`;
    takenKeys.add(key);
    body.key = key;
    added.push(key);
    return key;
  };
  let chain: number[] = [];
  let segment: number[] = [];
  steps.forEach((step, i) => {
    const kind = kindOf(step);
    if (kind === 'barrier') {
      const body = bodyAt(i);
      if (!Object.hasOwn(body, 'depends_on')) {
        const cof = body.continue_on_failure === true || body.continue_on_failure === 'true';
        body.depends_on = [...segment.map((j) => (cof ? { step: keyAt(j), allow_failure: true } : keyAt(j))), ...chain.map(keyAt)];
      }
      if (isConditional(body)) chain.push(i);
      else {
        chain = [i];
        segment = [];
      }
      return;
    }
    if (kind !== 'input') {
      const body = bodyAt(i);
      if (!Object.hasOwn(body, 'depends_on')) body.depends_on = chain.map(keyAt);
    }
    segment.push(i);
  });
  return added;
}

// A small binary heap of numbers (the ready steps, lowest document position first).
class MinHeap {
  private a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export function planUpload(documents: unknown[], opts: PlanOptions): UploadPlan {
  const maxJobs = opts.maxJobs;
  const perDoc = documents.map((d) => documentSteps(d).map(itemJobs));
  const totalJobs = perDoc.flat().reduce((a, b) => a + b, 0);
  const docJobs = perDoc.map((j) => j.reduce((a, b) => a + b, 0));
  if (docJobs.every((j) => j <= maxJobs)) {
    return {
      split: false,
      totalJobs,
      batches: documents.map((d, k) => ({ document: k, pipeline: asMapping(d), jobs: docJobs[k]!, items: documentSteps(d).map((_s, i) => i) })),
      generatedKeys: [],
    };
  }
  // Where each key is defined: [document, top-level index].
  const owner = new Map<string, [number, number]>();
  documents.forEach((d, k) => documentSteps(d).forEach((s, i) => keysDefined(s).forEach((key) => owner.has(key) || owner.set(key, [k, i]))));
  const taken = new Set(owner.keys());
  const batches: PlannedBatch[] = [];
  const generatedKeys: string[] = [];
  documents.forEach((doc, k) => {
    const stepsPath = (i: number): Path => (Array.isArray(doc) ? [i] : ['steps', i]);
    const original = documentSteps(doc);
    const jobs = perDoc[k]!;
    if (docJobs[k]! <= maxJobs) {
      batches.push({ document: k, pipeline: asMapping(doc), jobs: docJobs[k]!, items: original.map((_s, i) => i) });
      return;
    }
    jobs.forEach((n, i) => {
      if (n > maxJobs) {
        const item = original[i];
        const what = describeItem(item);
        throw new PlanError(
          `${what} has ${n} jobs, more than the ${maxJobs} one upload may create; a ${kindOf(item) === 'group' ? 'group' : 'step'} is never split across uploads`,
          k,
          stepsPath(i),
          kindOf(item) === 'group'
            ? 'split it into smaller groups, or raise --max-jobs (BKCI_MAX_UPLOAD_JOBS) if your organization has a higher limit'
            : 'lower its parallelism or matrix, or raise --max-jobs (BKCI_MAX_UPLOAD_JOBS) if your organization has a higher limit',
        );
      }
    });
    const steps = copyTree(original) as unknown[];
    if (steps.some((s) => kindOf(s) === 'barrier')) generatedKeys.push(...makeDependenciesExplicit(steps, taken, `bkci-upload-${k + 1}-`));
    // Dependencies between top-level items of this document (keys as defined after the rewrite).
    const local = new Map<string, number>();
    steps.forEach((s, i) => keysDefined(s).forEach((key) => local.has(key) || local.set(key, i)));
    const deps = steps.map((s, i) => {
      const out = new Set<number>();
      for (const key of keysNeeded(s)) {
        const j = local.get(key);
        if (j !== undefined) {
          if (j !== i) out.add(j);
          continue;
        }
        const o = owner.get(key);
        if (o && o[0] > k)
          throw new PlanError(
            `${describeItem(original[i])} depends on \`${key}\`, which only a later YAML document defines; the agent uploads the documents in order, so the key would not exist yet`,
            k,
            stepsPath(i),
            'move the step into the later document, or the key into this one',
          );
        // Otherwise an earlier document's key, or a step already in the build.
      }
      return out;
    });
    // Topological order, closest to the document's: the lowest-placed ready step first.
    const waiting = deps.map((d) => d.size);
    const users: number[][] = steps.map(() => []);
    deps.forEach((d, i) => d.forEach((j) => users[j]!.push(i)));
    const ready = new MinHeap();
    waiting.forEach((n, i) => n === 0 && ready.push(i));
    const order: number[] = [];
    while (ready.size) {
      const i = ready.pop();
      order.push(i);
      for (const u of users[i]!) if (--waiting[u]! === 0) ready.push(u);
    }
    if (order.length < steps.length) {
      const stuck = waiting.findIndex((n) => n > 0);
      throw new PlanError(
        `${describeItem(original[stuck])} is part of a depends_on cycle, so no upload order defines every key before it is needed`,
        k,
        stepsPath(stuck),
        'break the cycle: a step cannot (indirectly) depend on itself',
      );
    }
    // Greedy packing in that order; within a batch the document's order is kept.
    const packed: { items: number[]; jobs: number }[] = [];
    for (const i of order) {
      const cur = packed[packed.length - 1];
      if (cur && cur.jobs + jobs[i]! <= maxJobs) {
        cur.items.push(i);
        cur.jobs += jobs[i]!;
      } else packed.push({ items: [i], jobs: jobs[i]! });
    }
    packed.forEach((b, j) => {
      const items = [...b.items].sort((x, y) => x - y);
      batches.push({
        document: k,
        pipeline: withSteps(
          doc,
          items.map((i) => steps[i]),
          j === 0,
        ),
        jobs: b.jobs,
        items,
      });
    });
  });
  return { split: true, totalJobs, batches, generatedKeys };
}

// A copy in which every place holds its own value. A step used twice through a YAML alias is one
// shared object after parsing (structuredClone keeps that sharing), and the key or depends_on
// written for one place would land on both; here each place gets its own copy. A value that
// contains itself (an alias inside its own anchor) cannot be copied as a tree and is kept shared.
function copyTree(v: unknown, ancestors: Set<object> = new Set()): unknown {
  if (typeof v !== 'object' || v === null || ancestors.has(v)) return v;
  ancestors.add(v);
  let out: unknown;
  if (Array.isArray(v)) out = v.map((x) => copyTree(x, ancestors));
  else if (isRecord(v)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = copyTree(x, ancestors);
    out = o;
  } else out = structuredClone(v);
  ancestors.delete(v);
  return out;
}

// A document as a mapping with `steps` (a list document is its steps).
function asMapping(doc: unknown): Record<string, unknown> {
  return isRecord(doc) ? doc : { steps: documentSteps(doc) };
}

// The document's top-level keys around new steps, in their order; `notify` only on its first batch.
function withSteps(doc: unknown, steps: unknown[], first: boolean): Record<string, unknown> {
  if (!isRecord(doc)) return { steps };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'notify' && !first) continue;
    out[k] = k === 'steps' ? steps : v;
  }
  return out;
}
