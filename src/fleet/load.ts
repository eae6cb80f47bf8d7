// Reads and checks a fleet file. Every problem is reported at once, each as `file:line:col: what`
// naming the key (with a did-you-mean for a misspelt one); any problem is exit 2.
import type { z } from 'zod';
import { InputError } from '../util/errors.js';
import { didYouMean } from '../pipeline/validate.js';
import { composeYaml, PIPELINE_MAX_DEPTH } from '../pipeline/yaml-compose.js';
import { positionOf } from '../pipeline/yaml-load.js';
import { type Fleet, fleetModel, NO_GPU, type Queue, toQueue } from './model.js';

export interface FleetProblem {
  line: number;
  col: number;
  path: (string | number)[];
  message: string;
}

const QUEUE_KEYS = ['vendor', 'gpus', 'gpu-product', 'cpus', 'memory', 'tags', 'k8s', 'elastic'];
const KEYS_AT: Record<string, string[]> = {
  '': ['queues', 'default-queue'],
  queue: QUEUE_KEYS,
  k8s: ['node-selector', 'tolerations', 'image', 'priority-class', 'resource-class'],
  elastic: ['instance-types', 'gpus-per-instance', 'min', 'max', 'spot', 'token-parameter', 'image-id'],
  toleration: ['key', 'operator', 'value', 'effect', 'tolerationSeconds'],
};

function keysFor(path: (string | number)[]): string[] {
  if (path.length === 0) return KEYS_AT['']!;
  if (path[0] === 'queues' && path.length === 2) return KEYS_AT.queue!;
  if (path[0] === 'queues' && path.length === 3) return KEYS_AT[String(path[2])] ?? [];
  if (path[3] === 'tolerations') return KEYS_AT.toleration!;
  return [];
}

const dotted = (path: (string | number)[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.');

// What a YAML value is, in the words of a message.
function kind(v: unknown): string {
  if (v === undefined || v === null) return 'nothing (an empty value or null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the text ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping (`key: value` lines)',
  record: 'a mapping (`key: value` lines)',
  array: 'a list',
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
};

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

// One message per problem zod found, in plain words (never zod's own "expected record").
function describe(issue: z.core.$ZodIssue, root: unknown): string[] {
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map((k) => {
      const hint = didYouMean(k, keysFor(issue.path as (string | number)[]));
      return `unknown key \`${k}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}`;
    });
  if (issue.code === 'invalid_value') return [`expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`];
  if (issue.code === 'invalid_type') return [`expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${kind(valueAt(root, issue.path))}`];
  if (issue.code === 'invalid_key') return [issue.issues.map((i) => i.message).join('; ')];
  const unit = (origin: string) => (origin === 'string' ? ' characters' : origin === 'array' || origin === 'set' ? ' items' : '');
  if (issue.code === 'too_small')
    return [`must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}${unit(issue.origin)}, got ${kind(valueAt(root, issue.path))}`];
  if (issue.code === 'too_big')
    return [`must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}${unit(issue.origin)}, got ${kind(valueAt(root, issue.path))}`];
  return [issue.message];
}

// Checks that span fields, after the model has accepted each field alone.
function crossChecks(fleet: Fleet): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  for (const q of fleet.queues.values()) {
    const at = (...p: (string | number)[]) => ['queues', q.name, ...p];
    if (q.vendor === NO_GPU && q.gpus > 0)
      out.push({ path: at('gpus'), message: `vendor none has no GPUs to give (gpus: ${q.gpus}); use 0 or name the vendor` });
    if (q.vendor === NO_GPU && q.gpuProduct) out.push({ path: at('gpu-product'), message: 'vendor none has no GPU product' });
    if (q.vendor !== NO_GPU && q.gpus === 0)
      out.push({ path: at('gpus'), message: `a ${q.vendor} queue gives each agent at least one GPU (or use vendor: none)` });
    for (const [k] of q.tags) if (k === 'queue') out.push({ path: at('tags', k), message: 'the queue tag is the queue name itself; remove it from tags' });
    const e = q.elastic;
    if (e) {
      if (e.min > e.max) out.push({ path: at('elastic', 'min'), message: `min ${e.min} is above max ${e.max}` });
      if (q.gpus > 0 && (e['gpus-per-instance'] === 0 || e['gpus-per-instance'] % q.gpus !== 0))
        out.push({
          path: at('elastic', 'gpus-per-instance'),
          message: `gpus-per-instance ${e['gpus-per-instance']} is not a whole number of ${q.gpus}-GPU agents`,
        });
    }
  }
  if (!fleet.queues.has(fleet.defaultQueue) && fleet.defaultQueue !== 'default') {
    const hint = didYouMean(fleet.defaultQueue, [...fleet.queues.keys()]);
    out.push({ path: ['default-queue'], message: `default-queue ${fleet.defaultQueue} is not a queue of this fleet${hint ? ` (did you mean ${hint}?)` : ''}` });
  }
  return out;
}

// Parses and checks the text of a fleet file; `file` names it in messages.
export function parseFleet(text: string, file: string): Fleet {
  const fail = (problems: FleetProblem[]): never => {
    const lines = problems.map((p) => `${file}:${p.line}:${p.col}: ${p.path.length ? `${dotted(p.path)}: ` : ''}${p.message}`);
    throw new InputError(
      `${file}: ${problems.length === 1 ? 'a problem' : `${problems.length} problems`} in the fleet file\n${lines.join('\n')}`,
      'fix the fleet file (docs/fleet.md describes it)',
    );
  };
  // bkci's own YAML reading, as for pipelines (aliases bounded as go-yaml bounds them, nesting
  // limited, bkci's own messages); a repeated key, a warning in a pipeline, is an error here.
  const composed = composeYaml(text, { mode: 'pipeline', maxDepth: PIPELINE_MAX_DEPTH });
  const issues = [...composed.errors, ...composed.warnings].sort((a, b) => a.line - b.line || a.col - b.col);
  // The composer's words for a repeated key are a pipeline's (the agent keeps the last value).
  const fleetWords = (m: string) => m.replace(/: the agent keeps the last value$/, ': a key may be given only once');
  if (issues.length) fail(issues.map((e) => ({ line: e.line, col: e.col, path: [], message: fleetWords(e.message) })));
  if (composed.docs.length > 1) fail([{ ...composed.starts[1]!, path: [], message: 'a fleet file is one YAML document' }]);
  const { doc, value } = composed.docs[0] ?? { doc: undefined, value: undefined };
  const lineCounter = composed.lineCounter;
  const locate = (path: (string | number)[]) => (doc ? positionOf(doc, lineCounter, path) : { line: 1, col: 1 });
  const parsed = fleetModel.safeParse(value ?? {});
  if (!parsed.success) {
    fail(
      parsed.error.issues.flatMap((issue) => {
        const path = issue.path as (string | number)[];
        return describe(issue, value).map((message, i) => {
          const key = issue.code === 'unrecognized_keys' ? [...path, issue.keys[i]!] : path;
          return { ...locate(key), path: key, message };
        });
      }),
    );
  }
  const data = parsed.data!;
  const queues = new Map<string, Queue>(Object.entries(data.queues).map(([name, spec]) => [name, toQueue(name, spec)]));
  const fleet: Fleet = { file, queues, defaultQueue: data['default-queue'] ?? 'default' };
  if (queues.size === 0) fail([{ ...locate(['queues']), path: ['queues'], message: 'the fleet has no queues' }]);
  const cross = crossChecks(fleet);
  if (cross.length) fail(cross.map((c) => ({ ...locate(c.path), ...c })));
  return fleet;
}

// The queues named by --queue (all of them when none is named); an unknown name is exit 2.
export function pickQueues(fleet: Fleet, names: string[] | undefined, flag = '--queue'): Queue[] {
  if (!names?.length) return [...fleet.queues.values()];
  return names.map((n) => {
    const q = fleet.queues.get(n);
    if (!q) {
      const hint = didYouMean(n, [...fleet.queues.keys()]);
      throw new InputError(
        `${flag} ${n}: ${fleet.file} has no such queue${hint ? ` (did you mean ${hint}?)` : ''}`,
        `its queues: ${[...fleet.queues.keys()].join(', ')}`,
      );
    }
    return q;
  });
}
