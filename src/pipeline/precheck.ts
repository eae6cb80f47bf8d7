// A quick yes to "does this step satisfy bkci's zod model?", from the JSON Schema zod itself makes
// of the model (model-schema.json, kept current by a test), so validating a good pipeline needs
// neither zod's ~20 ms of loading nor its slow first parse in a cold process. Anything it does not
// pass goes to zod, which has the messages. Supports exactly the JSON Schema zod emits for the
// model: type, anyOf, enum, const, pattern, maxLength, minimum, maximum, minItems, items,
// properties, required, additionalProperties, propertyNames.
import { isRecord } from '../util/guards.js';
import type { StepType } from './model.js';
import MODEL from './model-schema.json' with { type: 'json' };
import { stepKeyProblem } from './step-key.js';

type Schema = Record<string, unknown>;

const SCHEMAS = MODEL as unknown as { top: Schema; steps: Record<StepType, Schema> };
const KNOWN = new Set([
  'type',
  'anyOf',
  'enum',
  'const',
  'pattern',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'items',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'default',
  'description',
]);

function typeMatches(t: string, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isSafeInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array':
      return Array.isArray(v);
    case 'object':
      return isRecord(v);
    default:
      return false;
  }
}

type Check = (v: unknown) => boolean;
const compiled = new WeakMap<Schema, Check>();

export function matches(s: Schema, v: unknown): boolean {
  return compile(s)(v);
}

// Each schema node becomes one function that tests only the keywords the node has, built once:
// in a cold process that is several times cheaper than re-reading the schema for every value.
function compile(s: Schema): Check {
  let c = compiled.get(s);
  if (!c) {
    c = build(s);
    compiled.set(s, c);
  }
  return c;
}

function build(s: Schema): Check {
  for (const k in s) if (!KNOWN.has(k)) return () => false; // a keyword this checker does not know: ask zod
  const checks: Check[] = [];
  if (s.anyOf) {
    const alts = (s.anyOf as Schema[]).map(compile);
    checks.push((v) => alts.some((a) => a(v)));
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    checks.push(types.length === 1 ? (v) => typeMatches(types[0]!, v) : (v) => types.some((t) => typeMatches(t, v)));
  }
  if (s.enum) {
    const allowed = s.enum as unknown[];
    checks.push((v) => allowed.includes(v));
  }
  if ('const' in s) checks.push((v) => s.const === v);
  if (typeof s.maxLength === 'number') {
    const max = s.maxLength;
    checks.push((v) => typeof v !== 'string' || v.length <= max);
  }
  if (typeof s.pattern === 'string') {
    const re = new RegExp(s.pattern);
    checks.push((v) => typeof v !== 'string' || re.test(v));
  }
  if (typeof s.minimum === 'number') {
    const min = s.minimum;
    checks.push((v) => typeof v !== 'number' || v >= min);
  }
  if (typeof s.maximum === 'number') {
    const max = s.maximum;
    checks.push((v) => typeof v !== 'number' || v <= max);
  }
  if (typeof s.minItems === 'number') {
    const min = s.minItems;
    checks.push((v) => !Array.isArray(v) || v.length >= min);
  }
  if (s.items) {
    const item = compile(s.items as Schema);
    checks.push((v) => !Array.isArray(v) || v.every(item));
  }
  if (s.properties || s.additionalProperties !== undefined || s.required || s.propertyNames) {
    const props = new Map(Object.entries((s.properties ?? {}) as Record<string, Schema>).map(([k, x]) => [k, compile(x)]));
    const required = (s.required ?? []) as string[];
    const names = s.propertyNames ? compile(s.propertyNames as Schema) : undefined;
    const extra = s.additionalProperties === false ? false : isRecord(s.additionalProperties) ? compile(s.additionalProperties) : true;
    checks.push((v) => {
      if (!isRecord(v)) return true;
      for (const r of required) if (!(r in v)) return false;
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        if (names && !names(k)) return false;
        const p = props.get(k);
        if (p) {
          if (!p(v[k])) return false;
        } else if (extra === false) return false;
        else if (extra !== true && !extra(v[k])) return false;
      }
      return true;
    });
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (v) => {
    for (const c of checks) if (!c(v)) return false;
    return true;
  };
}

// The model's two refinements, which JSON Schema cannot say.
function refinementsHold(body: Record<string, unknown>): boolean {
  for (const k of ['key', 'identifier', 'id']) if (typeof body[k] === 'string' && stepKeyProblem(body[k]) !== undefined) return false;
  const plugins = body.plugins;
  if (Array.isArray(plugins) && plugins.some((p) => isRecord(p) && Object.keys(p).length > 1)) return false;
  return true;
}

export function stepPasses(type: StepType, body: Record<string, unknown>): boolean {
  return matches(SCHEMAS.steps[type], body) && refinementsHold(body);
}

export function topPasses(value: Record<string, unknown>): boolean {
  return matches(SCHEMAS.top, value);
}
