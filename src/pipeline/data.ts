// Reading the template's DATA (YAML or JSON) and `-D` definitions into template values, keeping
// what minijinja keeps: int vs float (`1.0` stays a float), YAML merge keys, sorted maps.
import { InputError } from '../util/errors.js';
import { fastParseYaml } from '../util/fast-yaml.js';
import { serdeNumber } from '../util/fast-yaml-scalars.js';
import { json5ToJson } from './json5.js';
import { composeYaml, DATA_MAX_DEPTH } from './yaml-compose.js';
import { JFloat } from './jinja/index.js';
import { sortedMap } from './jinja/values.js';
import { firstNonPrintable, nonPrintableMessage } from './text-check.js';

// Converts a value parsed with `intAsBigInt` + `mapAsMap`: bigints are ints, numbers are floats.
function convert(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return new JFloat(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(convert);
  if (v instanceof Map) {
    const entries: [unknown, unknown][] = [];
    for (const [k, x] of v as Map<unknown, unknown>) entries.push([convert(k), convert(x)]);
    return sortedMap(entries);
  }
  if (v instanceof Set) return [...v].map(convert);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return String(v);
}

// A scalar as a template value: ints (BigInt from the parsers) are numbers, numbers floats.
function scalarValue(v: unknown, node: { type?: string; tag?: string; source?: string }): unknown {
  if (node.type === 'PLAIN' && !node.tag && typeof node.source === 'string') {
    const s = serdeNumber(node.source);
    if (s !== undefined) v = s;
  }
  return convert(v);
}

const DATA_HINT = 'fix the data file (YAML or JSON, read as minijinja-cli reads it)';

// Parses YAML (JSON is YAML too) into template values; errors name file:line:col. Numbers are
// read as minijinja-cli's serde_yaml reads them (`010` is a string, `0b101` and `+0x1F` integers);
// so are its limits: 128 levels of nesting, alias expansion bounded, one document, and (in YAML
// data files, `uniqueKeys`) no repeated keys.
export function parseYamlValue(text: string, source: string, uniqueKeys = false): unknown {
  const fast = fastParseYaml(text, { mapAsMap: true, intAsBigInt: true, serdeNumbers: true, maxDepth: DATA_MAX_DEPTH });
  if (fast && fast.docs.length <= 1 && !(uniqueKeys && fast.repeatedKeys.length)) return convert(fast.docs[0] ?? null);
  const r = composeYaml(
    text,
    { mode: 'data', maxDepth: DATA_MAX_DEPTH, uniqueKeys },
    { intAsBigInt: true, scalar: scalarValue as (v: unknown, n: unknown) => unknown, makeMap: (entries) => sortedMap(entries) },
  );
  const err = r.errors[0];
  if (err) throw new InputError(`${source}:${err.line}:${err.col}: cannot parse: ${err.message}`, DATA_HINT);
  if (r.starts.length > 1) {
    const p = r.starts[1]!;
    throw new InputError(
      `${source}:${p.line}:${p.col}: a second YAML document: minijinja-cli reads data with one document only`,
      'remove the `---` line and what follows, or merge the documents into one mapping',
    );
  }
  return r.docs[0]?.value ?? null;
}

// The root context from a data file: a mapping at the top, or nothing.
// `select`: minijinja-cli's --select, a dotted path (`ci.linux`, `matrix.0`) to the part of the
// data that becomes the context.
export function parseDataFile(text: string, source: string, select?: string): Map<string, unknown> {
  const ext = /\.([a-z0-9]+)$/i.exec(source)?.[1]?.toLowerCase();
  if (ext && !['yaml', 'yml', 'json', 'json5'].includes(ext) && source !== '<stdin>') {
    throw new InputError(`${source}: cannot tell the data format from the extension .${ext}`, 'use a .yaml, .yml or .json file (or - for YAML/JSON on stdin)');
  }
  // .json is JSON5 for minijinja-cli; JSON5 made plain JSON is YAML, which keeps `1.0` a float.
  const json = ext === 'json' || ext === 'json5';
  // serde_yaml's reader refuses characters outside YAML's printable set, as go-yaml's does.
  const bad = json ? undefined : firstNonPrintable(text);
  if (bad) throw new InputError(`${source}:${bad.line}:${bad.col}: cannot parse: ${nonPrintableMessage(bad.code, 'minijinja-cli')}`, DATA_HINT);
  // YAML data refuses repeated keys (serde_yaml); JSON keeps the last (minijinja's JSON reader).
  let v = parseYamlValue(json ? json5ToJson(text, source) : text, source, !json);
  if (select !== undefined) {
    for (const part of select.split('.')) {
      let next: unknown;
      if (Array.isArray(v) && /^\d+$/.test(part)) next = v[Number(part)];
      else if (v instanceof Map) next = v.has(part) ? v.get(part) : /^\d+$/.test(part) ? v.get(Number(part)) : undefined;
      if (next === undefined) {
        throw new InputError(
          `--select ${select}: ${source} has nothing at '${part}' (the value there is ${v === null ? 'none' : Array.isArray(v) ? 'a list' : v instanceof Map ? 'a mapping without that key' : typeof v})`,
          'name a path of keys (and list indexes) in the data, e.g. --select ci.linux',
        );
      }
      v = next;
    }
  }
  if (v === null) return new Map();
  const where = select === undefined ? 'at the top level' : `at --select ${select}`;
  if (!(v instanceof Map))
    throw new InputError(
      `${source}: the data must be a mapping ${where}, got ${Array.isArray(v) ? 'a list' : typeof v}`,
      select === undefined ? 'wrap the value in a key, e.g. `steps: [...]`' : 'select a mapping',
    );
  return new Map([...v].map(([k, x]) => [String(k), x]));
}

// `-D key=value` (string), `-D key:=value` (YAML value), `-D key` (true), as minijinja-cli reads them.
export function parseDefine(def: string): [string, unknown] {
  const raw = def.indexOf(':=');
  const eq = def.indexOf('=');
  if (raw !== -1 && (eq === -1 || raw < eq)) {
    const key = def.slice(0, raw);
    if (!key) throw new InputError(`-D ${def}: missing variable name`, 'write -D name:=value');
    return [key, parseYamlValue(def.slice(raw + 2), `-D ${key}`)];
  }
  if (eq !== -1) {
    const key = def.slice(0, eq);
    if (!key) throw new InputError(`-D ${def}: missing variable name`, 'write -D name=value');
    return [key, def.slice(eq + 1)];
  }
  if (!def) throw new InputError('-D needs a variable name', 'write -D name=value');
  return [def, true];
}
