// Python methods on values (`s.startswith('x')`, `d.items()`, `d.get('k')`), as Python's Jinja2
// allows. minijinja-cli without --py-compat rejects them; bkci accepts them as a superset.
import { EvalError } from './errors.js';
import { repeatString, sized } from './limits.js';
import { codePoints, justify, replaceFirst, splitString, titleCase } from './filters.js';
import { strFormat } from './pyformat.js';
import { type CallArgs, compareValues, isTrue, JIterator, kindOf, Namespace, normKey, seqItems, sortValues, toStr, typeName, valuesEqual } from './values.js';

type Method = (self: never, a: unknown[], call: CallArgs) => unknown;

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

// The part of s that Python's s[start:end] takes for find/index/count (negative from the end,
// clamped), and where it starts. Positions count characters (code points), as Python's do and as
// bkci's indexing and slicing do.
// Undefined when the start lies past the end or past the string: then nothing is found, not even
// "" (Python's rule).
function window(s: string, start: unknown, end: unknown): { part: string; from: number } | undefined {
  const chars = [...s];
  const at = (v: unknown, d: number) => {
    if (v === undefined || v === null) return d;
    const n = Number(v);
    return n < 0 ? Math.max(0, chars.length + n) : n;
  };
  const from = at(start, 0);
  const to = Math.min(chars.length, at(end, chars.length));
  return from > chars.length || to < from ? undefined : { part: chars.slice(from, to).join(''), from };
}

function findIn(s: string, sub: unknown, start: unknown, end: unknown, last: boolean): number {
  const w = window(s, start, end);
  if (!w) return -1;
  const { part, from } = w;
  const x = toStr(sub);
  const i = last ? part.lastIndexOf(x) : part.indexOf(x);
  return i < 0 ? -1 : from + [...part.slice(0, i)].length;
}

function mustFind(s: string, sub: unknown, start: unknown, end: unknown, last: boolean): number {
  const i = findIn(s, sub, start, end, last);
  if (i < 0) throw new EvalError('invalid operation: substring not found');
  return i;
}

const cased = (ch: string) => ch.toLowerCase() !== ch.toUpperCase();
const isUpperCh = (ch: string) => cased(ch) && ch === ch.toUpperCase() && ch !== ch.toLowerCase();
const isLowerCh = (ch: string) => cased(ch) && ch === ch.toLowerCase() && ch !== ch.toUpperCase();

function partition(s: string, sep: unknown, last: boolean): string[] {
  const x = toStr(sep);
  if (x === '') throw new EvalError('invalid argument: empty separator');
  const i = last ? s.lastIndexOf(x) : s.indexOf(x);
  if (i < 0) return last ? ['', '', s] : [s, '', ''];
  return [s.slice(0, i), x, s.slice(i + x.length)];
}

const STRING: Record<string, (s: string, a: unknown[], call: CallArgs) => unknown> = {
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
    return splitString(rev(s), sep === undefined || sep === null ? sep : rev(toStr(sep)), max)
      .map(rev)
      .reverse();
  },
  splitlines: (s) => s.split(/\r\n|\r|\n/).filter((l, i, all) => i < all.length - 1 || l !== ''),
  replace: (s, [a, b, n]) => {
    if (n === undefined) return s.split(toStr(a)).join(toStr(b));
    return replaceFirst(s, toStr(a), toStr(b), n as number);
  },
  find: (s, [x, b, e]) => findIn(s, x, b, e, false),
  rfind: (s, [x, b, e]) => findIn(s, x, b, e, true),
  index: (s, [x, b, e]) => mustFind(s, x, b, e, false),
  rindex: (s, [x, b, e]) => mustFind(s, x, b, e, true),
  count: (s, [x, b, e]) => {
    const w = window(s, b, e);
    if (!w) return 0;
    const part = w.part;
    const sub = toStr(x);
    return sub ? part.split(sub).length - 1 : [...part].length + 1;
  },
  join: (s, [items]) => seqItems(items).map(toStr).join(s),
  // Unicode classes, as Python's (isdigit also takes the superscript digits).
  isdigit: (s) => /^[\p{Nd}\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089]+$/u.test(s),
  isdecimal: (s) => /^\p{Nd}+$/u.test(s),
  isnumeric: (s) => /^\p{N}+$/u.test(s),
  isalpha: (s) => /^\p{L}+$/u.test(s),
  isalnum: (s) => /^[\p{L}\p{N}]+$/u.test(s),
  isascii: (s) => /^[\x00-\x7f]*$/.test(s),
  isidentifier: (s) => /^[\p{XID_Start}_]\p{XID_Continue}*$/u.test(s),
  isprintable: (s) => /^(?:[^\p{C}\p{Z}]| )*$/u.test(s),
  isspace: (s) => /^\s+$/.test(s),
  // At least one cased character, and every cased one lower (upper) case.
  islower: (s) => [...s].some(cased) && ![...s].some(isUpperCh),
  isupper: (s) => [...s].some(cased) && ![...s].some(isLowerCh),
  istitle: (s) => {
    let prevCased = false;
    let any = false;
    for (const ch of s) {
      if (isUpperCh(ch)) {
        if (prevCased) return false;
        prevCased = any = true;
      } else if (isLowerCh(ch)) {
        if (!prevCased) return false;
        prevCased = any = true;
      } else prevCased = false;
    }
    return any;
  },
  swapcase: (s) => [...s].map((ch) => (isUpperCh(ch) ? ch.toLowerCase() : isLowerCh(ch) ? ch.toUpperCase() : ch)).join(''),
  // Full case folding, approximated by upper then lower case (ß -> ss, ligatures split).
  casefold: (s) => s.toUpperCase().toLowerCase(),
  center: (s, [w, c]) => justify(s, Number(w), c, '^'),
  ljust: (s, [w, c]) => justify(s, Number(w), c, '<'),
  rjust: (s, [w, c]) => justify(s, Number(w), c, '>'),
  partition: (s, [sep]) => partition(s, sep, false),
  rpartition: (s, [sep]) => partition(s, sep, true),
  removeprefix: (s, [p]) => (s.startsWith(toStr(p)) ? s.slice(toStr(p).length) : s),
  removesuffix: (s, [p]) => (toStr(p) && s.endsWith(toStr(p)) ? s.slice(0, s.length - toStr(p).length) : s),
  expandtabs: (s, [size]) => {
    const t = size === undefined || size === null ? 8 : Number(size);
    let col = 0;
    let out = '';
    for (const ch of s) {
      if (ch === '\t') {
        const n = t > 0 ? t - (col % t) : 0;
        sized(out.length + n);
        out += repeatString(' ', n);
        col += n;
      } else {
        out += ch;
        col = ch === '\n' || ch === '\r' ? 0 : col + 1;
      }
    }
    return out;
  },
  // Python's zfill: zeros after a leading sign.
  zfill: (s, [w]) => {
    const marg = Number(w) - codePoints(s);
    if (marg <= 0) return s;
    const sign = s[0] === '-' || s[0] === '+' ? s[0] : '';
    return sign + repeatString('0', marg) + s.slice(sign.length);
  },
  format: (s, _a, call) => strFormat(s, call.args, call.kwargs),
};

const MAP: Record<string, (m: Map<unknown, unknown>, a: unknown[], call: CallArgs) => unknown> = {
  items: (m) => [...m].map(([k, v]) => [k, v]),
  keys: (m) => [...m.keys()],
  values: (m) => [...m.values()],
  get: (m, [k, d]) => (m.has(normKey(k)) ? m.get(normKey(k)) : d === undefined ? null : d),
  copy: (m) => new Map(m),
  // The mutating ones, as Python's dict has them (`{% set _ = d.update({'k': v}) %}`).
  pop: (m, [k, d], call) => {
    const key = normKey(k);
    if (m.has(key)) {
      const v = m.get(key);
      m.delete(key);
      return v;
    }
    if (call.args.length + call.kwargs.size < 2) throw new EvalError(`invalid operation: key ${toStr(k)} is not in the map`);
    return d;
  },
  setdefault: (m, [k, d]) => {
    const key = normKey(k);
    if (!m.has(key)) m.set(key, d === undefined ? null : d);
    return m.get(key);
  },
  update: (m, _a, call) => {
    const [other] = call.args;
    if (call.args.length > 1) throw new EvalError('too many arguments: update takes at most one positional argument');
    if (other instanceof Map) for (const [k, v] of other) m.set(k, v);
    else if (other !== undefined && other !== null) {
      for (const pair of seqItems(other)) {
        const kv = seqItems(pair);
        if (kv.length !== 2) throw new EvalError('invalid operation: update needs a map or a sequence of pairs');
        m.set(normKey(kv[0]), kv[1]);
      }
    }
    for (const [k, v] of call.kwargs) m.set(k, v);
    return null;
  },
  clear: (m) => {
    m.clear();
    return null;
  },
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
  const r = m(self as never, a, call);
  return typeof r === 'boolean' ? isTrue(r) : r;
}
