// Validates a pipeline as Buildkite's server judges an upload: bkci's zod model per step type
// (unknown properties rejected with a did-you-mean), plus the rules the official schema misses
// (a step with no type, duplicate keys) and the upload limits (500 jobs, matrix sizes).
import { isRecord } from '../util/guards.js';
import type { z } from 'zod';
import { fastParseYaml } from '../util/fast-yaml.js';
import { loadPipelineYaml, positionOf, type LoadedYaml } from './yaml-load.js';
import type { StepType } from './model.js';
import { stepPasses, topPasses } from './precheck.js';
import { documentJobs, matrixCombinations } from './upload/count.js';
import { decodeUtf8, firstNonPrintable, invalidUtf8Message, nonPrintableMessage } from './text-check.js';

type Model = typeof import('./model.js');

export interface Finding {
  severity: 'error' | 'warning';
  path: string;
  line: number;
  col: number;
  message: string;
}

export interface ValidationResult {
  valid: boolean;
  findings: Finding[];
  documents: unknown[];
  jobs: number;
}

export const MAX_JOBS_PER_UPLOAD = 500;
// buildkite/docs build_matrix.md "Matrix limits" (25 elements per dimension since 2026-01, was 20).
export const MATRIX_LIMITS = { dimensions: 6, elementsPerDimension: 25, adjustments: 12, jobsPerStep: 50, elementBytes: 128 };

type Path = (string | number)[];

const NESTED_TYPES: Record<string, StepType> = {
  command: 'command',
  commands: 'command',
  script: 'command',
  wait: 'wait',
  waiter: 'wait',
  block: 'block',
  input: 'input',
  trigger: 'trigger',
};
const TYPE_FIELD: Record<string, StepType> = {
  script: 'command',
  command: 'command',
  commands: 'command',
  wait: 'wait',
  waiter: 'wait',
  block: 'block',
  input: 'input',
  trigger: 'trigger',
};

export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out || '(top level)';
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_v, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

export function didYouMean(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const dist = o.startsWith(word) || word.startsWith(o) ? Math.abs(o.length - word.length) * 0.5 : levenshtein(word, o);
    if (dist < bestD) {
      best = o;
      bestD = dist;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

// Works out a step's type the way the server does; undefined when it has none.
export function stepType(step: Record<string, unknown>): { type: StepType; body: Record<string, unknown>; nested: string | null } | undefined {
  const keys = Object.keys(step);
  if (keys.length === 1 && keys[0]! in NESTED_TYPES && isRecord(step[keys[0]!])) {
    return { type: NESTED_TYPES[keys[0]!]!, body: step[keys[0]!] as Record<string, unknown>, nested: keys[0]! };
  }
  if (typeof step.type === 'string' && step.type in TYPE_FIELD) return { type: TYPE_FIELD[step.type]!, body: step, nested: null };
  if ('group' in step) return { type: 'group', body: step, nested: null };
  if ('trigger' in step) return { type: 'trigger', body: step, nested: null };
  if ('block' in step) return { type: 'block', body: step, nested: null };
  if ('input' in step) return { type: 'input', body: step, nested: null };
  if ('wait' in step || 'waiter' in step) return { type: 'wait', body: step, nested: null };
  if ('command' in step || 'commands' in step || 'script' in step || 'plugins' in step) return { type: 'command', body: step, nested: null };
  return undefined;
}

class Validator {
  findings: Finding[] = [];
  jobs = 0;
  // Set when the quick check could not pass something: the caller re-runs with zod.
  unsure = false;
  constructor(
    private readonly locate: (p: Path) => { line: number; col: number },
    // Step keys seen so far (shared by every document of one upload).
    private readonly keys: Map<string, string>,
    // zod's model, or undefined for the quick check against its JSON Schema.
    readonly model: Model | undefined,
  ) {}

  add(severity: Finding['severity'], path: Path, message: string): void {
    const { line, col } = this.locate(path);
    this.findings.push({ severity, path: formatPath(path), line, col, message });
  }

  zodIssues(err: z.ZodError, base: Path, stepName?: string, type?: StepType): void {
    for (const issue of err.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) {
          const where = [...base, ...(issue.path as Path)];
          const options = issue.path.length === 0 && type && this.model ? this.model.allowedKeys(type) : [];
          const hint = didYouMean(k, options);
          const on = issue.path.length === 0 && stepName ? `on the \`${stepName}\` step` : `in ${formatPath(where)}`;
          this.add('error', [...where, k], `\`${k}\` is not a valid property ${on}${hint ? ` (did you mean \`${hint}\`?)` : ''}`);
        }
      } else {
        const { path: at, message } = explainIssue(issue);
        this.add('error', [...base, ...(at as Path)], message);
      }
    }
  }

  step(step: unknown, path: Path, inGroup: boolean): void {
    if (typeof step === 'string') {
      if (!['wait', 'waiter', 'block', 'input'].includes(step))
        this.add('error', path, `\`${step}\` is not a step: a step written as a string must be wait, waiter, block or input`);
      return;
    }
    if (!isRecord(step)) {
      this.add(
        'error',
        path,
        `a step must be a mapping or one of wait/block/input, got ${step === null ? 'null' : Array.isArray(step) ? 'a list' : typeof step}`,
      );
      return;
    }
    const t = stepType(step);
    if (!t) {
      this.add('error', path, 'Step is missing a type: add command/commands, wait, block, input, trigger or group');
      return;
    }
    const bodyPath = t.nested ? [...path, t.nested] : path;
    if (t.type === 'group' && inGroup) {
      this.add('error', path, 'a group cannot contain another group');
      return;
    }
    if (!this.model) {
      if (!stepPasses(t.type, t.body)) this.unsure = true;
    } else {
      const r = this.model.STEP_MODELS[t.type].safeParse(t.body);
      if (!r.success) this.zodIssues(r.error, bodyPath, t.type === 'command' ? 'command' : t.type, t.type);
    }
    for (const k of ['key', 'identifier', 'id'] as const) {
      const v = t.body[k];
      if (typeof v !== 'string') continue;
      const prev = this.keys.get(v);
      const here = `${formatPath(bodyPath)}.${k}`;
      if (!prev) this.keys.set(v, here);
      else if (k === 'key' && prev.endsWith('.key')) {
        this.add('error', [...bodyPath, k], `The key \`${v}\` has already been used by another step in this build (${prev})`);
      } else {
        // `id` and `identifier` are legacy aliases of `key`; the official examples reuse them, so
        // a clash involving them is reported without failing the pipeline.
        this.add('warning', [...bodyPath, k], `\`${v}\` is already used by ${prev}; step keys should be unique`);
      }
    }
    if (t.type === 'group' && Array.isArray(t.body.steps)) t.body.steps.forEach((s, i) => this.step(s, [...bodyPath, 'steps', i], true));
    if (t.type === 'command') this.countJobs(t.body, bodyPath);
    if (t.type === 'trigger' && typeof t.body.parallelism === 'number' && t.body.parallelism < 1)
      this.add('error', [...bodyPath, 'parallelism'], 'parallelism must be at least 1');
  }

  // Matrix elements and dimension names are at most 128 bytes; a value the agent interpolates
  // ($VAR) is judged by Buildkite after interpolation, so it is left alone here.
  matrixElementSizes(values: unknown[], path: Path): void {
    values.forEach((v, i) => {
      if (typeof v !== 'string' || v.includes('$')) return;
      const bytes = Buffer.byteLength(v);
      if (bytes > MATRIX_LIMITS.elementBytes)
        this.add('error', [...path, i], `a matrix element is ${bytes} bytes; Buildkite allows ${MATRIX_LIMITS.elementBytes}`);
    });
  }

  countJobs(step: Record<string, unknown>, path: Path): void {
    let n = 1;
    const par = step.parallelism;
    if (typeof par === 'number') {
      if (par < 1) this.add('error', [...path, 'parallelism'], 'parallelism must be at least 1');
      n = Math.max(1, par);
    }
    const m = step.matrix;
    if (m !== undefined && par !== undefined) this.add('error', [...path, 'matrix'], 'a step cannot have both matrix and parallelism');
    if (Array.isArray(m)) {
      if (m.length > MATRIX_LIMITS.elementsPerDimension)
        this.add('error', [...path, 'matrix'], `a matrix dimension has ${m.length} elements; Buildkite allows ${MATRIX_LIMITS.elementsPerDimension}`);
      this.matrixElementSizes(m, [...path, 'matrix']);
      n *= Math.max(1, m.length);
    } else if (isRecord(m) && m.setup !== undefined) {
      const setup = m.setup;
      const dims: unknown[][] = Array.isArray(setup) ? [setup] : isRecord(setup) ? Object.values(setup).filter(Array.isArray) : [];
      if (dims.length > MATRIX_LIMITS.dimensions)
        this.add('error', [...path, 'matrix', 'setup'], `the matrix has ${dims.length} dimensions; Buildkite allows ${MATRIX_LIMITS.dimensions}`);
      const names = isRecord(setup) ? Object.keys(setup).filter((k) => Array.isArray(setup[k])) : [];
      dims.forEach((d, i) => {
        const where = [...path, 'matrix', 'setup', ...(Array.isArray(setup) ? [] : [names[i]!])];
        if (d.length > MATRIX_LIMITS.elementsPerDimension)
          this.add('error', where, `a matrix dimension has ${d.length} elements; Buildkite allows ${MATRIX_LIMITS.elementsPerDimension}`);
        this.matrixElementSizes(d, where);
      });
      for (const name of names) {
        const bytes = Buffer.byteLength(name);
        if (bytes > MATRIX_LIMITS.elementBytes)
          this.add('error', [...path, 'matrix', 'setup', name], `a matrix dimension name is ${bytes} bytes; Buildkite allows ${MATRIX_LIMITS.elementBytes}`);
      }
      let combos = dims.reduce((acc, d) => acc * Math.max(1, d.length), 1);
      const adj = Array.isArray(m.adjustments) ? m.adjustments : [];
      if (adj.length > MATRIX_LIMITS.adjustments)
        this.add('error', [...path, 'matrix', 'adjustments'], `the matrix has ${adj.length} adjustments; Buildkite allows ${MATRIX_LIMITS.adjustments}`);
      for (const a of adj) {
        if (!isRecord(a)) continue;
        const inSetup =
          isRecord(a.with) &&
          isRecord(setup) &&
          Object.entries(a.with).every(([k, v]) => Array.isArray(setup[k]) && (setup[k] as unknown[]).some((x) => String(x) === String(v)));
        const skipped = a.skip !== undefined && a.skip !== false;
        if (!inSetup && !skipped) combos += 1;
        if (inSetup && skipped) combos -= 1;
      }
      // The jobs a matrix step creates are counted as the upload limit counts them (upload/count.ts).
      const created = matrixCombinations(m);
      if (created > MATRIX_LIMITS.jobsPerStep)
        this.add('error', [...path, 'matrix'], `the matrix creates ${created} jobs; Buildkite allows ${MATRIX_LIMITS.jobsPerStep} per matrix step`);
      n *= Math.max(0, combos);
    }
    this.jobs += n;
  }
}

const NOUNS: Record<string, string> = {
  string: 'a string',
  array: 'a list',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  null: 'nothing (~)',
};
const noun = (t: string) => NOUNS[t] ?? t;

// A union the value matched none of: when the value has the type of one alternative and fails
// inside it, that inner issue (with its longer path); otherwise what the alternatives expect.
function explainIssue(issue: z.core.$ZodIssue): { path: PropertyKey[]; message: string } {
  if (issue.code !== 'invalid_union') return { path: issue.path, message: describeIssue(issue) };
  const atRoot = (b: z.core.$ZodIssue[]) => b.length === 1 && b[0]!.path.length === 0 && b[0]!.code !== 'invalid_union' && b[0]!.code !== 'unrecognized_keys';
  const inside = issue.errors.filter((b) => b.length > 0 && !atRoot(b));
  if (inside.length === 1) {
    const inner = explainIssue(inside[0]![0]!);
    return { path: [...issue.path, ...inner.path], message: inner.message };
  }
  const wants: string[] = [];
  let got: string | undefined;
  for (const b of issue.errors) {
    const i = b[0];
    if (!i) continue;
    if (i.code === 'invalid_type') wants.push(noun(i.expected));
    else if (i.code === 'invalid_value') wants.push(i.values.map((v) => JSON.stringify(v)).join(', '));
    else if (i.code === 'invalid_format' || i.code === 'custom') wants.push('a string with a $VARIABLE the agent interpolates');
    got ??= /received (\w+)/.exec(i.message)?.[1];
  }
  const unique = [...new Set(wants)];
  if (!unique.length || inside.length > 1) return { path: issue.path, message: 'matches none of the forms this field takes (check its type and keys)' };
  const list = unique.length === 1 ? unique[0]! : `${unique.slice(0, -1).join(', ')} or ${unique.at(-1)!}`;
  return { path: issue.path, message: `expected ${list}${got ? `, got ${noun(got)}` : ''}` };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${noun(issue.expected)}`;
    case 'invalid_union':
      return explainIssue(issue).message;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

// A pipeline file's bytes as text, or the finding that they are not UTF-8 (the agent refuses them).
export function decodePipeline(bytes: Uint8Array): { text: string; invalid?: Finding } {
  const d = decodeUtf8(bytes);
  if ('text' in d) return { text: d.text };
  const { line, col, byte } = d.invalid;
  return { text: '', invalid: { severity: 'error', path: '(file)', line, col, message: invalidUtf8Message(byte, 'pipeline', 'the agent') } };
}

// Validates pipeline YAML text; positions refer to `source`. The fast parser reads the common
// YAML of pipelines; npm `yaml` reads the rest, and is consulted for positions only when there is
// something to report. Steps are checked against the JSON Schema of the zod model first; zod
// itself loads only when that check cannot pass something, and then judges the whole upload.
// `maxJobs`: the per-upload job limit to check (null: none, for `pipeline upload`, which batches).
export async function validatePipelineText(text: string, opts: { maxJobs?: number | null } = {}): Promise<ValidationResult> {
  const maxJobs = opts.maxJobs === undefined ? MAX_JOBS_PER_UPLOAD : opts.maxJobs;
  // go-yaml's reader refuses the whole file before parsing: nothing else is worth reporting.
  const bad = firstNonPrintable(text);
  if (bad) {
    const finding: Finding = { severity: 'error', path: '(yaml)', line: bad.line, col: bad.col, message: nonPrintableMessage(bad.code, 'the agent') };
    return { valid: false, findings: [finding], documents: [], jobs: 0 };
  }
  const yamlFindings: Finding[] = [];
  let values: unknown[];
  let loaded: LoadedYaml | undefined;
  const fast = fastParseYaml(text);
  if (fast) {
    values = fast.docs;
    for (const r of fast.repeatedKeys)
      yamlFindings.push({
        severity: 'warning',
        path: '(yaml)',
        line: r.line,
        col: r.col,
        message: `repeated key \`${r.key}\`: the agent keeps the last value`,
      });
  } else {
    loaded = loadPipelineYaml(text);
    for (const e of loaded.errors) yamlFindings.push({ severity: 'error', path: '(yaml)', line: e.line, col: e.col, message: e.message });
    for (const w of loaded.warnings) yamlFindings.push({ severity: 'warning', path: '(yaml)', line: w.line, col: w.col, message: w.message });
    values = loaded.docs.map((d) => d.value);
  }
  const located = (): LoadedYaml => (loaded ??= loadPipelineYaml(text));
  const judge = (model: Model | undefined) => {
    const findings = [...yamlFindings];
    let jobs = 0;
    let unsure = false;
    const keysAcrossDocs = new Map<string, string>();
    values.forEach((value, k) => {
      const v = new Validator(
        (p) => {
          const l = located();
          const d = l.docs[k];
          return d ? positionOf(d.doc, l.lineCounter, p) : { line: 1, col: 1 };
        },
        keysAcrossDocs,
        model,
      );
      validateDocument(v, value);
      findings.push(...v.findings);
      // Each document is its own upload (the agent uploads them one by one), counted as the server
      // counts: parallelism, matrix combinations, +1 per group, 1 per wait/block/input/trigger.
      const docJobs = documentJobs(value);
      jobs += docJobs;
      unsure ||= v.unsure;
      if (maxJobs !== null && docJobs > maxJobs)
        findings.push({
          severity: 'error',
          path: 'steps',
          line: 1,
          col: 1,
          message: `the upload creates ${docJobs} jobs (parallelism, matrix combinations, +1 per group, 1 per wait/block/input/trigger step); Buildkite allows ${maxJobs} per upload: \`bkci pipeline upload\` splits it into batches`,
        });
    });
    return { findings, jobs, unsure };
  };
  let result = judge(undefined);
  if (result.unsure) result = judge(await import('./model.js'));
  const { findings, jobs } = result;
  return { valid: !findings.some((f) => f.severity === 'error'), findings, documents: values, jobs };
}

function validateDocument(v: Validator, value: unknown): void {
  if (value === null || value === undefined) {
    v.add('error', [], 'the pipeline is empty: expected `steps:` or a list of steps');
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((s, i) => v.step(s, [i], false));
    return;
  }
  if (!isRecord(value)) {
    v.add('error', [], 'a pipeline must be a mapping with `steps:` or a list of steps');
    return;
  }
  const r = v.model ? v.model.pipelineTop.safeParse(value) : undefined;
  if (!v.model && !topPasses(value)) v.unsure = true;
  if (r && !r.success) {
    for (const issue of r.error.issues) {
      if (issue.path[0] === 'steps' && issue.code === 'invalid_type' && value.steps === undefined) v.add('error', [], 'missing `steps`');
      else {
        const { path: at, message } = explainIssue(issue);
        v.add('error', at as Path, message);
      }
    }
  }
  if (Array.isArray(value.steps)) value.steps.forEach((s, i) => v.step(s, ['steps', i], false));
}
