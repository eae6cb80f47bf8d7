// Python methods on values (`s.startswith('x')`, `d.items()`, `d.get('k')`), as Python's Jinja2
// allows. minijinja-cli without --py-compat rejects them; bkci accepts them as a superset.
import { EvalError } from './errors.js';
import { replaceFirst, splitString, titleCase } from './filters.js';
import { type CallArgs, compareValues, isTrue, JIterator, kindOf, Namespace, normKey, seqItems, sortValues, toStr, typeName, valuesEqual } from './values.js';

type Method = (self: never, a: unknown[]) => unknown;

const strip = (s: string, chars: unknown, left: boolean, right: boolean): string => {
  const set = chars === undefined || chars === null ? null : new Set(toStr(chars));
  const isStrip = (c: string) => (set ? set.has(c) : /\s/.test(c));
  let i = 0;
  let j = s.length;
  if (left) while (i < j && isStrip(s[i]!)) i++;
  if (right) while (j > i && isStrip(s[j - 1]!)) j--;
  return s.slice(i, j);
};

const prefixes = (p: unknown): string[] => (Array.isArray(p) ? p.map(toStr) : [toStr(p)]);

const STRING: Record<string, (s: string, a: unknown[]) => unknown> = {
  startswith: (s, [p]) => prefixes(p).some((x) => s.startsWith(x)),
  endswith: (s, [p]) => prefixes(p).some((x) => s.endsWith(x)),
  strip: (s, [c]) => strip(s, c, true, true),
  lstrip: (s, [c]) => strip(s, c, true, false),
  rstrip: (s, [c]) => strip(s, c, false, true),
  lower: (s) => s.toLowerCase(),
  upper: (s) => s.toUpperCase(),
  title: (s) => titleCase(s),
  capitalize: (s) => (s ? s[0]!.toUpperCase() + s.slice(1).toLowerCase() : s),
  split: (s, [sep, max]) => splitString(s, sep, max),
  rsplit: (s, [sep, max]) => {
    if (max === undefined || max === null || (max as number) < 0) return splitString(s, sep, undefined);
    const rev = (x: string) => [...x].reverse().join('');
    return splitString(rev(s), sep === undefined || sep === null ? sep : rev(toStr(sep)), max).map(rev).reverse();
  },
  splitlines: (s) => s.split(/\r\n|\r|\n/).filter((l, i, all) => i < all.length - 1 || l !== ''),
  replace: (s, [a, b, n]) => {
    if (n === undefined) return s.split(toStr(a)).join(toStr(b));
    return replaceFirst(s, toStr(a), toStr(b), n as number);
  },
  find: (s, [x]) => s.indexOf(toStr(x)),
  rfind: (s, [x]) => s.lastIndexOf(toStr(x)),
  count: (s, [x]) => (toStr(x) ? s.split(toStr(x)).length - 1 : s.length + 1),
  join: (s, [items]) => seqItems(items).map(toStr).join(s),
  isdigit: (s) => /^\d+$/.test(s),
  isalpha: (s) => /^[A-Za-z]+$/.test(s),
  isalnum: (s) => /^[A-Za-z0-9]+$/.test(s),
  isspace: (s) => /^\s+$/.test(s),
  islower: (s) => /[a-z]/.test(s) && s === s.toLowerCase(),
  isupper: (s) => /[A-Z]/.test(s) && s === s.toUpperCase(),
  zfill: (s, [w]) => s.padStart(w as number, '0'),
  format: (s, a) => {
    let i = 0;
    return s.replace(/\{(\d*)\}/g, (_m, n: string) => toStr(a[n === '' ? i++ : Number(n)]));
  },
};

const MAP: Record<string, (m: Map<unknown, unknown>, a: unknown[]) => unknown> = {
  items: (m) => [...m].map(([k, v]) => [k, v]),
  keys: (m) => [...m.keys()],
  values: (m) => [...m.values()],
  get: (m, [k, d]) => (m.has(normKey(k)) ? m.get(normKey(k)) : d === undefined ? null : d),
};

const LIST: Record<string, (l: unknown[], a: unknown[]) => unknown> = {
  index: (l, [x]) => {
    const i = l.findIndex((y) => valuesEqual(x, y));
    if (i < 0) throw new EvalError('invalid operation: value is not in list');
    return i;
  },
  count: (l, [x]) => l.filter((y) => valuesEqual(x, y)).length,
  append: (l, [x]) => {
    l.push(x);
    return null;
  },
  extend: (l, [x]) => {
    l.push(...seqItems(x));
    return null;
  },
  pop: (l, [i]) => (i === undefined ? l.pop() : l.splice(i as number, 1)[0]),
  insert: (l, [i, x]) => {
    l.splice(i as number, 0, x);
    return null;
  },
  sort: (l) => {
    const sorted = sortValues(l, compareValues);
    for (let i = 0; i < sorted.length; i++) l[i] = sorted[i];
    return null;
  },
  reverse: (l) => {
    l.reverse();
    return null;
  },
};

// Calls `obj.name(args)`; an unknown method is an error naming the value's type.
export function callMethod(obj: unknown, name: string, call: CallArgs): unknown {
  const a = [...call.args, ...call.kwargs.values()];
  const k = kindOf(obj);
  let table: Record<string, Method> | undefined;
  let self: unknown = obj;
  if (k === 'string') table = STRING as Record<string, Method>;
  else if (k === 'map') table = MAP as Record<string, Method>;
  else if (k === 'seq') table = LIST as Record<string, Method>;
  else if (k === 'iterator') {
    table = LIST as Record<string, Method>;
    self = (obj as JIterator).items;
  } else if (obj instanceof Namespace) {
    table = MAP as Record<string, Method>;
    self = obj.vars;
  }
  const m = table && Object.hasOwn(table, name) ? table[name] : undefined;
  if (!m) throw new EvalError(`unknown method: ${typeName(obj)} has no method named ${name}`);
  const r = m(self as never, a);
  return typeof r === 'boolean' ? isTrue(r) : r;
}
