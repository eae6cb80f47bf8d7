// A quick yes to "does this step satisfy bkci's zod model?", from the JSON Schema zod itself makes
// of the model (model-schema.json, kept current by a test), so validating a good pipeline needs
// neither zod's ~20 ms of loading nor its slow first parse in a cold process. Anything it does not
// pass goes to zod, which has the messages. Supports exactly the JSON Schema zod emits for the
// model: type, anyOf, enum, const, pattern, maxLength, minimum, maximum, minItems, items,
// properties, required, additionalProperties, propertyNames.
import { isRecord } from '../util/guards.js';
import type { StepType } from './model.js';
import MODEL from './model-schema.json' with { type: 'json' };

type Schema = Record<string, unknown>;

const SCHEMAS = MODEL as unknown as { top: Schema; steps: Record<StepType, Schema> };
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const regexes = new Map<string, RegExp>();
const KNOWN = new Set(['type', 'anyOf', 'enum', 'const', 'pattern', 'maxLength', 'minimum', 'maximum', 'minItems', 'items', 'properties', 'required', 'additionalProperties', 'propertyNames', 'default', 'description']);

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

export function matches(s: Schema, v: unknown): boolean {
  for (const k in s) if (!KNOWN.has(k)) return false; // a keyword this checker does not know: ask zod
  if (s.anyOf && !(s.anyOf as Schema[]).some((x) => matches(x, v))) return false;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!types.some((t) => typeMatches(t, v))) return false;
  }
  if (s.enum && !(s.enum as unknown[]).includes(v)) return false;
  if ('const' in s && s.const !== v) return false;
  if (typeof v === 'string') {
    if (typeof s.maxLength === 'number' && v.length > s.maxLength) return false;
    if (typeof s.pattern === 'string') {
      let re = regexes.get(s.pattern);
      if (!re) regexes.set(s.pattern, (re = new RegExp(s.pattern)));
      if (!re.test(v)) return false;
    }
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) return false;
    if (typeof s.maximum === 'number' && v > s.maximum) return false;
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return false;
    if (s.items && !v.every((x) => matches(s.items as Schema, x))) return false;
  }
  if (isRecord(v) && (s.properties || s.additionalProperties !== undefined || s.required || s.propertyNames)) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in v)) return false;
    for (const [k, x] of Object.entries(v)) {
      if (s.propertyNames && !matches(s.propertyNames as Schema, k)) return false;
      if (Object.prototype.hasOwnProperty.call(props, k)) {
        if (!matches(props[k]!, x)) return false;
      } else if (s.additionalProperties === false) return false;
      else if (isRecord(s.additionalProperties) && !matches(s.additionalProperties, x)) return false;
    }
  }
  return true;
}

// The model's two refinements, which JSON Schema cannot say.
function refinementsHold(body: Record<string, unknown>): boolean {
  for (const k of ['key', 'identifier', 'id']) if (typeof body[k] === 'string' && UUID_RE.test(body[k])) return false;
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
