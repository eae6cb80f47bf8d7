// Jinja filters as minijinja 2.x implements them (builtins and contrib), plus the Jinja2 filters
// minijinja lacks (`format`, `center`...) so templates written for Python's Jinja2 also render.
import { formatDate } from './datetime.js';
import { EvalError } from './errors.js';
import { getAttr, getItem } from './access.js';
import { items as itemsMade, repeatString, sized } from './limits.js';
import { percentFormat } from './pyformat.js';
import { applyTest } from './tests.js';
import {
  type CallArgs,
  compareValues,
  formatFloat,
  formatInt,
  GroupTuple,
  isFloat,
  isNumber,
  isTrue,
  JFloat,
  JIterator,
  kindOf,
  mkFloat,
  Namespace,
  num,
  quoteStr,
  seqItems,
  sortedMap,
  sortValues,
  toStr,
  typeName,
  valuesEqual,
} from './values.js';
import { SafeStr } from './values.js';

export { SafeStr };

export interface FilterEnv {
  autoescape: 'none' | 'html' | 'json';
  call(fn: unknown, args: CallArgs): unknown;
}

type Filter = (v: unknown, a: Args, env: FilterEnv) => unknown;

// Positional and keyword arguments of one filter call, read by position or name.
export class Args {
  constructor(
    readonly name: string,
    private readonly call: CallArgs,
    private readonly sig: FilterSignature = VARIADIC,
  ) {}
  get(i: number, kw: string): unknown {
    if (!this.sig.variadic && this.sig.params[i] !== kw)
      throw new Error(`filter ${this.name} reads parameter ${i} as ${kw}; its signature says ${this.sig.params[i]}`);
    if (i < this.call.args.length) {
      if (this.call.kwargs.has(kw)) throw new EvalError(`${this.name}: duplicate argument ${kw}`);
      return this.call.args[i];
    }
    return this.call.kwargs.get(kw);
  }
  rest(from: number): unknown[] {
    return this.call.args.slice(from);
  }
  kw(name: string): unknown {
    if (!this.sig.variadic && !this.sig.params.includes(name) && !this.sig.keywordOnly.includes(name))
      throw new Error(`filter ${this.name} reads keyword ${name}, which its signature does not declare`);
    return this.call.kwargs.get(name);
  }
  kwargs(): ReadonlyMap<string, unknown> {
    return this.call.kwargs;
  }
  get positional(): number {
    return this.call.args.length;
  }
  checkArity(max: number): void {
    if (this.call.args.length > max) throw new EvalError(`too many arguments: filter ${this.name} takes at most ${max}`);
  }
}

const str = (v: unknown): string => (v instanceof SafeStr ? v.s : toStr(v));
const int = (v: unknown, what: string): number => {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new EvalError(`invalid argument: ${what} must be an integer, got ${typeName(v)}`);
};

function requireString(v: unknown, filter: string): string {
  if (typeof v === 'string') return v;
  if (v instanceof SafeStr) return v.s;
  throw new EvalError(`invalid operation: value is not a string (filter ${filter})`);
}

// String filters applied to undefined give an empty string; other values print first.
const strOrEmpty = (v: unknown): string => (v === undefined ? '' : str(v));

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'/]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '/': '&#x2f;' })[c]!);
}

function jsonValue(v: unknown, allowUndefined: boolean): unknown {
  if (v === undefined && !allowUndefined) throw new EvalError('invalid operation: cannot serialize undefined to JSON');
  return v;
}

// Serialises like serde_json: compact, or pretty with `indent` spaces; keys sorted (maps are).
export function toJson(v: unknown, indent: number | undefined, htmlSafe: boolean): string {
  const ser = (x: unknown, depth: number): string => {
    const pad = indent === undefined ? '' : '\n' + repeatString(' ', indent * (depth + 1));
    const end = indent === undefined ? '' : '\n' + repeatString(' ', indent * depth);
    const sep = indent === undefined ? ':' : ': ';
    switch (kindOf(x)) {
      case 'undefined':
        jsonValue(x, true);
        return 'null';
      case 'none':
        return 'null';
      case 'bool':
        return x ? 'true' : 'false';
      case 'number':
        if (x instanceof JFloat) return Number.isFinite(x.v) ? formatFloat(x.v) : 'null';
        return formatInt(x as number);
      case 'string':
        return jsonString(x as string);
      case 'seq':
      case 'iterator': {
        const items = seqItems(x);
        if (!items.length) return '[]';
        return '[' + items.map((i) => pad + ser(i, depth + 1)).join(',') + end + ']';
      }
      case 'map': {
        const m = x as Map<unknown, unknown>;
        if (!m.size) return '{}';
        return '{' + [...m].map(([k, i]) => pad + jsonString(toStr(k)) + sep + ser(i, depth + 1)).join(',') + end + '}';
      }
      default:
        if (x instanceof Namespace) return ser(sortedMap(x.vars), depth);
        if (x instanceof SafeStr) return jsonString(x.s);
        throw new EvalError(`invalid operation: cannot serialize ${typeName(x)} to JSON`);
    }
  };
  const out = ser(v, 0);
  return htmlSafe ? out.replace(/[<>&']/g, (c) => '\\u00' + c.charCodeAt(0).toString(16).padStart(2, '0')) : out;
}

// minijinja's pprint: Rust's pretty `{:#?}` of the value (4-space indents, trailing commas).
function pprint(v: unknown, depth: number): string {
  const pad = '    '.repeat(depth + 1);
  const end = '    '.repeat(depth);
  if (v instanceof SafeStr) return quoteStr(v.s);
  if (typeof v === 'string') return quoteStr(v);
  if (v instanceof Namespace) return pprint(sortedMap(v.vars), depth);
  switch (kindOf(v)) {
    case 'seq':
    case 'iterator': {
      const items = seqItems(v);
      return items.length ? '[\n' + items.map((i) => `${pad}${pprint(i, depth + 1)},\n`).join('') + end + ']' : '[]';
    }
    case 'map': {
      const m = v as Map<unknown, unknown>;
      return m.size ? '{\n' + [...m].map(([k, i]) => `${pad}${pprint(k, depth + 1)}: ${pprint(i, depth + 1)},\n`).join('') + end + '}' : '{}';
    }
    case 'undefined':
      return 'undefined';
    default:
      return toStr(v);
  }
}

function jsonString(s: string): string {
  return JSON.stringify(s);
}

function splitWhitespace(s: string, max?: number): string[] {
  const out: string[] = [];
  let rest = s.replace(/^\s+/, '');
  while (rest) {
    if (max !== undefined && out.length === max) {
      out.push(rest);
      break;
    }
    const m = /\s+/.exec(rest);
    if (!m) {
      out.push(rest);
      break;
    }
    out.push(rest.slice(0, m.index));
    rest = rest.slice(m.index + m[0].length);
  }
  return out;
}

// `emptySeparator`: what an empty separator does. Python's str.split refuses it; minijinja's split
// filter splits as Rust's str::split("") does: at every character boundary, both ends included.
export function splitString(s: string, sep: unknown, maxsplit: unknown, emptySeparator: 'error' | 'rust' = 'error'): string[] {
  const max = maxsplit === undefined || maxsplit === null ? undefined : int(maxsplit, 'maxsplit');
  const m = max !== undefined && max < 0 ? undefined : max;
  if (sep === undefined || sep === null) return splitWhitespace(s, m);
  const d = str(sep);
  if (!d) {
    if (emptySeparator === 'error') throw new EvalError('invalid operation: empty separator');
    const chars = [...s];
    const pieces = ['', ...chars, ''];
    // splitn: the first m pieces, then the rest of the string in one.
    if (m === undefined || m + 1 >= pieces.length) return pieces;
    if (m === 0) return [s];
    return [...pieces.slice(0, m), chars.slice(m - 1).join('')];
  }
  const parts = s.split(d);
  if (m === undefined || parts.length <= m + 1) return parts;
  return [...parts.slice(0, m), parts.slice(m).join(d)];
}

// Python's str.center / ljust / rjust (Jinja2's center filter is str.center): widths in
// characters; centred, the odd fill character goes left when the width is odd.
export function justify(s: string, width: number, fillChar: unknown, align: '<' | '>' | '^'): string {
  const f = fillChar === undefined || fillChar === null ? ' ' : toStr(fillChar);
  if ([...f].length !== 1) throw new EvalError('invalid argument: the fill character must be exactly one character long');
  const marg = width - codePoints(s);
  if (marg <= 0) return s;
  sized(s.length + marg);
  const left = align === '<' ? 0 : align === '>' ? marg : Math.floor(marg / 2) + (marg & width & 1);
  return repeatString(f, left) + s + repeatString(f, marg - left);
}

// Replaces the first `count` occurrences of `from` (Python's str.replace with a count).
export function replaceFirst(s: string, from: string, to: string, count: number): string {
  let out = '';
  let rest = s;
  for (let n = count; n > 0; n--) {
    const i = rest.indexOf(from);
    if (i < 0) break;
    out += rest.slice(0, i) + to;
    rest = rest.slice(i + from.length);
  }
  return out + rest;
}

function indent(v: unknown, a: Args): string {
  let s = str(v);
  const w = a.get(0, 'width');
  const prefix = typeof w === 'string' ? w : repeatString(' ', w === undefined ? 4 : int(w, 'width'));
  const first = isTrue(a.get(1, 'first'));
  const blank = isTrue(a.get(2, 'blank'));
  // One trailing newline, then one trailing carriage return, go (before and after indenting).
  if (s.endsWith('\n')) s = s.slice(0, -1);
  if (s.endsWith('\r')) s = s.slice(0, -1);
  const lines = s.split('\n');
  sized(s.length + lines.length * prefix.length);
  // Lines joined once (not a string grown line by line, which V8 must flatten again later).
  for (let i = first ? 0 : 1; i < lines.length; i++) {
    const line = lines[i]!;
    lines[i] = line === '' ? (blank ? prefix : '') : prefix + line;
  }
  const out = lines.join('\n');
  return out.endsWith('\r') ? out.slice(0, -1) : out;
}

function lowerIfStr(v: unknown, caseSensitive: boolean): unknown {
  return !caseSensitive && typeof v === 'string' ? v.toLowerCase() : v;
}

// `attribute` arguments may be dotted paths ("a.b") or integer indexes ("0").
// `x.a.b` for filters' attribute= arguments. As in an expression, an attribute of an undefined
// value is an error (of none: undefined), which map, selectattr, sum, min and max raise; sort,
// groupby and unique take a path they cannot follow as minijinja does (attrPathOrUndefined, NO_KEY).
export function attrPath(v: unknown, path: unknown): unknown {
  if (typeof path === 'number') return getItem(v, path);
  let cur = v;
  for (const part of str(path).split('.')) {
    if (cur === undefined) throw new EvalError(`undefined value: cannot read attribute '${part}' of an undefined value`);
    if (cur === null) return undefined;
    cur = /^\d+$/.test(part) ? getItem(cur, Number(part)) : getAttr(cur, part);
  }
  return cur;
}

// attrPath for the filters that, in minijinja, take a path they cannot follow as undefined
// (groupby, unique) rather than an error.
function attrPathOrUndefined(v: unknown, path: unknown): unknown {
  try {
    return attrPath(v, path);
  } catch (err) {
    if (err instanceof EvalError) return undefined;
    throw err;
  }
}

// A sort key that could not be read: as minijinja, such an item compares equal to any other.
const NO_KEY = Symbol('no key');

function sortItems(items: unknown[], a: Args, keyOf: (x: unknown) => unknown): unknown[] {
  const reverse = isTrue(a.get(0, 'reverse'));
  const cs = isTrue(a.get(1, 'case_sensitive'));
  const attr = a.get(2, 'attribute');
  const key = (x: unknown): unknown => {
    if (attr === undefined) return lowerIfStr(keyOf(x), cs);
    try {
      return lowerIfStr(attrPath(keyOf(x), attr), cs);
    } catch (err) {
      if (err instanceof EvalError) return NO_KEY;
      throw err;
    }
  };
  const out = sortValues(items, (x, y) => {
    const kx = key(x);
    const ky = key(y);
    return kx === NO_KEY || ky === NO_KEY ? 0 : compareValues(kx, ky);
  });
  return reverse ? out.reverse() : out;
}

function listOf(v: unknown, filter: string): unknown[] {
  const k = kindOf(v);
  if (k === 'undefined' || k === 'none') return [];
  if (k === 'seq' || k === 'iterator') return seqItems(v);
  if (k === 'string') return [...(v as string)];
  if (k === 'map') return [...(v as Map<unknown, unknown>).keys()];
  throw new EvalError(`invalid operation: cannot convert ${typeName(v)} to a list (filter ${filter})`);
}

function selectItems(v: unknown, a: Args, env: FilterEnv, byAttr: boolean, keep: boolean): unknown[] {
  const items = listOf(v, byAttr ? 'selectattr' : 'select');
  const attr = byAttr ? a.get(0, 'attribute') : undefined;
  const from = byAttr ? 1 : 0;
  const test = a.positional > from ? str(a.get(from, 'test')) : undefined;
  const extra = a.rest(from + 1);
  return items.filter((item) => {
    const subject = byAttr ? attrPath(item, attr) : item;
    const ok = test === undefined ? isTrue(subject) : applyTest(test, subject, { args: extra, kwargs: new Map() });
    return ok === keep;
  });
}

// minijinja's round: (10^digits * x).round() / 10^digits, Rust's round going half away from zero.
// The product is the double it is: 1.005 * 100 is 100.49999999999999, so 1.005 rounds to 1.0.
function roundHalfAway(x: number, digits: number): number {
  const f = 10 ** digits;
  const y = f * x;
  return (Math.sign(y) * Math.round(Math.abs(y))) / f;
}

function toInt(v: unknown, a: Args): unknown {
  const base = a.get(1, 'base');
  if (typeof v === 'number') return v;
  // As Rust casts a float to minijinja's i128: saturating at the ends (infinities), NaN is 0.
  if (v instanceof JFloat) return Number.isNaN(v.v) ? 0 : Number.isFinite(v.v) ? Math.trunc(v.v) : Math.sign(v.v) * 2 ** 127;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined || v === null) return a.get(0, 'default') ?? 0;
  if (typeof v === 'string') {
    const s = v.trim().replace(/_/g, '');
    const b = base === undefined ? 10 : int(base, 'base');
    if (b === 10 && /^[-+]?\d+$/.test(s)) return Number(s);
    if (b !== 10) {
      const body = s.replace(/^([-+]?)0[xob]/i, '$1');
      const n = parseInt(body, b);
      if (!Number.isNaN(n)) return n;
    } else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) {
      return Math.trunc(Number(s));
    }
    const d = a.get(0, 'default');
    if (d !== undefined) return d;
    throw new EvalError('invalid operation: invalid float literal');
  }
  if (v === null) return 0;
  throw new EvalError(`invalid operation: cannot convert ${typeName(v)} to integer`);
}

function toFloat(v: unknown, a: Args): unknown {
  if (isNumber(v) || typeof v === 'boolean') return mkFloat(num(v));
  if (v === undefined || v === null) return a.get(0, 'default') ?? mkFloat(0);
  if (typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|nan)\s*$/i.test(v)) {
    return mkFloat(/inf/i.test(v) ? (v.includes('-') ? -Infinity : Infinity) : /nan/i.test(v) ? NaN : Number(v));
  }
  const d = a.get(0, 'default');
  if (d !== undefined) return d;
  throw new EvalError('invalid operation: invalid float literal');
}

// Characters (code points) of a string, counted without making an array of them.
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

function length(v: unknown): number {
  switch (kindOf(v)) {
    case 'string':
      return codePoints(v as string);
    case 'seq':
      return (v as unknown[]).length;
    case 'map':
      return (v as Map<unknown, unknown>).size;
    default:
      if (v instanceof Namespace) return v.vars.size;
      throw new EvalError(`invalid operation: cannot calculate length of value of type ${typeName(v)}`);
  }
}

// Python's %-formatting for the `format` filter (Jinja2).
// Python's textwrap as Jinja2 and minijinja use it: per line, a paragraph's leading white space
// and the white space between words are kept; lines break between words (and after a hyphen inside
// a word), long words are cut when breakLong; a white-space-only text gives "".
function wordwrap(s: string, width: number, breakLong: boolean, wrapstring: string, breakOnHyphens: boolean): string {
  if (s.trim() === '') return '';
  return s
    .split(/\r\n|\r|\n/)
    .map((p) => (p.trim() === '' ? '' : wrapParagraph(p, Math.max(1, width), breakLong, breakOnHyphens).join(wrapstring)))
    .join(wrapstring);
}

function wrapParagraph(p: string, width: number, breakLong: boolean, breakOnHyphens: boolean): string[] {
  const chunks: string[] = [];
  for (const c of p.match(/\s+|\S+/g) ?? []) {
    if (breakOnHyphens && /\S/.test(c)) chunks.push(...c.split(/(?<=[A-Za-z]-)(?=[A-Za-z])/));
    else chunks.push(c);
  }
  chunks.reverse();
  const lines: string[] = [];
  while (chunks.length) {
    const cur: string[] = [];
    let len = 0;
    // White space at the start of every line but the first goes.
    if (lines.length && chunks[chunks.length - 1]!.trim() === '') chunks.pop();
    while (chunks.length && len + chunks[chunks.length - 1]!.length <= width) {
      const c = chunks.pop()!;
      cur.push(c);
      len += c.length;
    }
    if (chunks.length && chunks[chunks.length - 1]!.length > width) {
      const word = chunks[chunks.length - 1]!;
      if (breakLong) {
        // As textwrap computes it (0 when the line is full: the word then starts the next line).
        const room = width - len;
        cur.push(word.slice(0, room));
        chunks[chunks.length - 1] = word.slice(room);
      } else if (!cur.length) cur.push(chunks.pop()!);
    }
    if (cur.length && cur[cur.length - 1]!.trim() === '') cur.pop();
    if (cur.length) lines.push(cur.join(''));
  }
  return lines;
}

// minijinja's title: a character after ASCII punctuation or white space (or first) upper case,
// every other lower case.
export function titleCase(s: string): string {
  let out = '';
  let cap = true;
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if ((c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e) || /\s/.test(ch)) {
      out += ch;
      cap = true;
    } else {
      out += cap ? ch.toUpperCase() : ch.toLowerCase();
      cap = false;
    }
  }
  return out;
}

function filesizeformat(v: unknown, binary: boolean): string {
  // A number, or a string that reads as one (as Jinja2 converts it).
  const bytes = typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v) ? Number(v) : num(v);
  if (Number.isNaN(bytes)) throw new EvalError(`invalid operation: filesizeformat needs a number, got ${typeName(v)}`);
  const base = binary ? 1024 : 1000;
  const prefixes = binary ? ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'] : ['kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  if (bytes === 1) return '1 Byte';
  if (bytes < base) return `${Math.trunc(bytes)} Bytes`;
  let unit = base;
  let i = 0;
  for (; i < prefixes.length - 1 && bytes >= unit * base; i++) unit *= base;
  return `${(bytes / unit).toFixed(1)} ${prefixes[i]}`;
}

const FILTERS: Record<string, Filter> = {
  safe: (v) => (v instanceof SafeStr ? v : new SafeStr(strOrEmpty(v))),
  // Escapes for the template's own format (JSON for .json/.yaml templates), else for HTML.
  // The result is safe: escaping twice (`x | e | e`) escapes once.
  escape: (v, _a, env) => {
    if (v instanceof SafeStr) return v;
    if (env.autoescape === 'json') return new SafeStr(toJson(v, undefined, false));
    return new SafeStr(escapeHtml(strOrEmpty(v)));
  },
  forceescape: (v) => new SafeStr(escapeHtml(str(v))),
  lower: (v) => strOrEmpty(v).toLowerCase(),
  upper: (v) => strOrEmpty(v).toUpperCase(),
  title: (v) => titleCase(strOrEmpty(v)),
  capitalize: (v) => {
    const s = strOrEmpty(v);
    return s ? s[0]!.toUpperCase() + s.slice(1).toLowerCase() : s;
  },
  trim: (v, a) => {
    const s = strOrEmpty(v);
    const chars = a.get(0, 'chars');
    if (chars === undefined || chars === null) return s.trim();
    const set = new Set(str(chars));
    let i = 0;
    let j = s.length;
    while (i < j && set.has(s[i]!)) i++;
    while (j > i && set.has(s[j - 1]!)) j--;
    return s.slice(i, j);
  },
  replace: (v, a) => {
    const s = strOrEmpty(v);
    const from = str(a.get(0, 'old'));
    const to = str(a.get(1, 'new'));
    const count = a.get(2, 'count');
    if (count === undefined || count === null) return from === '' ? s.split('').join(to).replace(/^/, to) + (s ? to : '') : s.split(from).join(to);
    return replaceFirst(s, from, to, int(count, 'count'));
  },
  length: (v) => length(v),
  count: (v) => length(v),
  // Runs of letters, digits and `_`, in any script (Python's \\w; minijinja counts the same way).
  wordcount: (v) => (strOrEmpty(v).match(/[\p{L}\p{N}_]+/gu) ?? []).length,
  first: (v) => {
    const k = kindOf(v);
    if (k === 'string') return [...(v as string)][0];
    if (k === 'seq' || k === 'iterator') return seqItems(v)[0];
    if (k === 'map') return [...(v as Map<unknown, unknown>).keys()][0];
    throw new EvalError('invalid operation: cannot get first item from value');
  },
  last: (v) => {
    const k = kindOf(v);
    if (k === 'string') return [...(v as string)].pop();
    if (k === 'seq' || k === 'iterator') return seqItems(v).at(-1);
    throw new EvalError('invalid operation: cannot get last item from value');
  },
  join: (v, a) => {
    if (v === undefined || v === null) return '';
    const sep = a.get(0, 'd') ?? a.kw('sep');
    const attr = a.get(1, 'attribute');
    const items = typeof v === 'string' ? [...v] : listOf(v, 'join');
    return items.map((x) => str(attr !== undefined ? attrPath(x, attr) : x)).join(sep === undefined ? '' : str(sep));
  },
  split: (v, a) => new JIterator(splitString(requireString(v, 'split'), a.get(0, 'split'), a.get(1, 'maxsplits'), 'rust')),
  lines: (v) =>
    requireString(v, 'lines')
      .split(/\r?\n/)
      .filter((l, i, all) => i < all.length - 1 || l !== ''),
  default: (v, a) => {
    const d = a.get(0, 'default_value');
    const bool = isTrue(a.get(1, 'boolean'));
    // minijinja reads a `none` argument as "no default given": the default is then "".
    if (v === undefined || (bool && !isTrue(v))) return d === undefined || d === null ? '' : d;
    return v;
  },
  indent: (v, a) => indent(v, a),
  items: (v) => {
    if (v instanceof Map) return [...v].map(([k, x]) => [k, x]);
    if (v instanceof Namespace) return [...sortedMap(v.vars)].map(([k, x]) => [k, x]);
    throw new EvalError('invalid operation: cannot convert value into pairs');
  },
  dictsort: (v, a) => {
    if (!(v instanceof Map)) throw new EvalError('invalid operation: cannot convert value into pairs');
    const cs = isTrue(a.get(0, 'case_sensitive'));
    const by = a.get(1, 'by') ?? 'key';
    const reverse = isTrue(a.get(2, 'reverse'));
    const idx = by === 'value' ? 1 : 0;
    if (by !== 'key' && by !== 'value') throw new EvalError("invalid argument: by must be 'key' or 'value'");
    const out = [...v].map(([k, x]) => [k, x]).sort((x, y) => compareValues(lowerIfStr(x[idx], cs), lowerIfStr(y[idx], cs)));
    return reverse ? out.reverse() : out;
  },
  list: (v) => [...listOf(v, 'list')],
  // As minijinja: undefined and none stay as they are; a map gives its keys in their (sorted)
  // order, not reversed.
  reverse: (v) => {
    if (typeof v === 'string') return [...v].reverse().join('');
    if (v === undefined || v === null) return v;
    if (v instanceof Map) return [...v.keys()];
    return [...listOf(v, 'reverse')].reverse();
  },
  sort: (v, a) => sortItems(listOf(v, 'sort'), a, (x) => x),
  unique: (v, a) => {
    const cs = isTrue(a.get(0, 'case_sensitive'));
    const attr = a.get(1, 'attribute');
    const seen: unknown[] = [];
    const out: unknown[] = [];
    for (const x of listOf(v, 'unique')) {
      const key = lowerIfStr(attr !== undefined ? attrPathOrUndefined(x, attr) : x, cs);
      if (!seen.some((s) => valuesEqual(s, key))) {
        seen.push(key);
        out.push(x);
      }
    }
    return out;
  },
  min: (v, a) => extreme(v, a, -1),
  max: (v, a) => extreme(v, a, 1),
  sum: (v, a) => {
    const attr = a.get(0, 'attribute');
    let acc: unknown = a.get(1, 'start') ?? 0;
    for (const x of listOf(v, 'sum')) {
      const n = attr !== undefined ? attrPath(x, attr) : x;
      // As minijinja: undefined adds nothing; anything but a number (a bool too) is an error.
      if (n === undefined) continue;
      if (!isNumber(n)) throw new EvalError(`invalid operation: can only sum numbers, got ${typeName(n)}`);
      acc = isFloat(acc) || isFloat(n) ? mkFloat(num(acc) + num(n)) : num(acc) + num(n);
    }
    return acc;
  },
  abs: (v) => {
    if (typeof v === 'number') return Math.abs(v);
    if (v instanceof JFloat) return mkFloat(Math.abs(v.v));
    throw new EvalError('invalid operation: cannot get absolute value');
  },
  round: (v, a) => {
    const p = a.get(0, 'precision');
    const digits = p === undefined ? 0 : int(p, 'precision');
    const method = a.get(1, 'method') ?? 'common';
    if (typeof v === 'number') return v;
    if (!(v instanceof JFloat)) throw new EvalError('invalid operation: cannot round value');
    const f = 10 ** digits;
    if (method === 'floor') return mkFloat(Math.floor(v.v * f) / f);
    if (method === 'ceil') return mkFloat(Math.ceil(v.v * f) / f);
    return mkFloat(roundHalfAway(v.v, digits));
  },
  int: (v, a) => toInt(v, a),
  float: (v, a) => toFloat(v, a),
  bool: (v) => isTrue(v),
  string: (v) => (v === undefined ? '' : v instanceof SafeStr ? v : str(v)),
  attr: (v, a) => getAttr(v, str(a.get(0, 'name'))),
  // Safe: its output is already valid JSON, YAML and HTML.
  tojson: (v, a) => {
    // indent: a number of spaces, true for 2, false or none for compact (as minijinja reads it).
    const ind = a.get(0, 'indent');
    const spaces = ind === undefined || ind === null || ind === false ? undefined : ind === true ? 2 : int(ind, 'indent');
    if (spaces !== undefined && (spaces < 0 || !Number.isInteger(spaces)))
      throw new EvalError('invalid argument: indent must be a whole number of spaces, 0 or more');
    return new SafeStr(toJson(v, spaces, true));
  },
  pprint: (v) => pprint(v, 0),
  batch: (v, a) => {
    const n = int(a.get(0, 'linecount'), 'count');
    if (n <= 0) throw new EvalError('invalid argument: count must be positive');
    const fill = a.get(1, 'fill_with');
    const items = listOf(v, 'batch');
    const out: unknown[][] = [];
    for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
    const lastRow = out.at(-1);
    if (fill !== undefined && lastRow) {
      itemsMade(n - lastRow.length, 'batch: a row');
      while (lastRow.length < n) lastRow.push(fill);
    }
    return out;
  },
  slice: (v, a) => {
    const n = int(a.get(0, 'slices'), 'count');
    if (n <= 0) throw new EvalError('invalid argument: count must be positive');
    itemsMade(n, 'slice: a list');
    const fill = a.get(1, 'fill_with');
    const items = listOf(v, 'slice');
    const per = Math.floor(items.length / n);
    const extra = items.length % n;
    const out: unknown[][] = [];
    let off = 0;
    for (let i = 0; i < n; i++) {
      const size = per + (i < extra ? 1 : 0);
      const part = items.slice(off, off + size);
      off += size;
      if (fill !== undefined && i >= extra && extra > 0) part.push(fill);
      out.push(part);
    }
    return out;
  },
  map: (v, a, env) => {
    const items = listOf(v, 'map');
    const attr = a.kw('attribute');
    if (attr !== undefined) {
      const d = a.kw('default');
      return items.map((x) => {
        let r: unknown;
        try {
          r = attrPath(x, attr);
        } catch (err) {
          // With a default, a path through an undefined value gives the default (as minijinja).
          if (d === undefined) throw err;
        }
        return r === undefined ? d : r;
      });
    }
    const name = str(a.get(0, 'filter'));
    const extra = a.rest(1);
    return items.map((x) => applyFilter(name, x, { args: extra, kwargs: new Map() }, env));
  },
  select: (v, a, env) => selectItems(v, a, env, false, true),
  reject: (v, a, env) => selectItems(v, a, env, false, false),
  selectattr: (v, a, env) => selectItems(v, a, env, true, true),
  rejectattr: (v, a, env) => selectItems(v, a, env, true, false),
  groupby: (v, a) => {
    const attr = a.get(0, 'attribute');
    const d = a.get(1, 'default');
    const cs = isTrue(a.get(2, 'case_sensitive'));
    const groups: [unknown, unknown[]][] = [];
    const keyOf = (x: unknown) => {
      const r = attrPathOrUndefined(x, attr);
      return r === undefined ? d : r;
    };
    const sorted = sortValues(listOf(v, 'groupby'), (x, y) => compareValues(lowerIfStr(keyOf(x), cs), lowerIfStr(keyOf(y), cs)));
    for (const x of sorted) {
      const k = keyOf(x);
      const g = groups.at(-1);
      if (g && valuesEqual(lowerIfStr(g[0], cs), lowerIfStr(k, cs))) g[1].push(x);
      else groups.push([k, [x]]);
    }
    return groups.map(([grouper, list]) => GroupTuple.of2(grouper, list));
  },
  urlencode: (v) => {
    if (v instanceof Map)
      return [...v]
        .filter(([, x]) => x !== undefined && x !== null)
        .map(([k, x]) => `${encodeURIComponent(str(k))}=${encodeURIComponent(str(x))}`)
        .join('&');
    return encodeURIComponent(strOrEmpty(v)).replace(/%2F/g, '/');
  },
  // Jinja2's: `value % args`, or `value % kwargs` (a mapping for `%(name)s`), never both.
  format: (v, a) => {
    const kw = a.kwargs();
    if (kw.size && a.positional) throw new EvalError("invalid operation: format can't handle positional and keyword arguments at the same time");
    return percentFormat(strOrEmpty(v), a.rest(0), kw.size ? kw : undefined);
  },
  center: (v, a) => justify(strOrEmpty(v), int(a.get(0, 'width') ?? 80, 'width'), ' ', '^'),
  truncate: (v, a) => {
    const s = strOrEmpty(v);
    const len = int(a.get(0, 'length') ?? 255, 'length');
    const kill = isTrue(a.get(1, 'killwords'));
    const end = str(a.get(2, 'end') ?? '...');
    const leeway = int(a.get(3, 'leeway') ?? 5, 'leeway');
    if ([...s].length <= len + leeway) return s;
    const cut = [...s].slice(0, Math.max(0, len - end.length)).join('');
    if (kill) return cut + end;
    const sp = cut.lastIndexOf(' ');
    return (sp > 0 ? cut.slice(0, sp) : cut) + end;
  },
  // Jinja2's fourth argument, break_on_hyphens, is accepted; lines break at white space only.
  wordwrap: (v, a) => {
    const flag = (x: unknown) => (x === undefined ? true : isTrue(x));
    return wordwrap(
      strOrEmpty(v),
      int(a.get(0, 'width') ?? 79, 'width'),
      flag(a.get(1, 'break_long_words')),
      str(a.get(2, 'wrapstring') ?? '\n'),
      flag(a.get(3, 'break_on_hyphens')),
    );
  },
  filesizeformat: (v, a) => filesizeformat(v, isTrue(a.get(0, 'binary'))),
  pluralize: (v, a) => {
    const n = typeof v === 'number' || v instanceof JFloat ? num(v) : length(v);
    const singular = a.get(0, 'singular') ?? '';
    const plural = a.get(1, 'plural') ?? 's';
    return str(n === 1 ? singular : plural);
  },
  xmlattr: (v, a) => {
    if (!(v instanceof Map)) throw new EvalError('invalid operation: xmlattr needs a map');
    const attrs = [...v]
      .filter(([, x]) => x !== undefined && x !== null)
      .map(([k, x]) => `${str(k)}="${escapeHtml(str(x))}"`)
      .join(' ');
    const autospace = a.get(0, 'autospace');
    return attrs && (autospace === undefined || isTrue(autospace)) ? ' ' + attrs : attrs;
  },
  // Tags and comments removed, white space collapsed, then character references unescaped (the
  // common named ones and numeric ones, as Jinja2 and minijinja do).
  striptags: (v) =>
    strOrEmpty(v)
      .replace(/<!--[\s\S]*?-->|<[^>]*>/g, '')
      .replace(/\s+/g, ' ')
      .trim()
      .replace(/&(amp|lt|gt|quot|apos|nbsp|#\d+|#[xX][0-9a-fA-F]+);/g, (m, e: string) => {
        if (e[0] === '#') {
          const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1));
          return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
        }
        return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' } as Record<string, string>)[e] ?? m;
      }),
  // minijinja-contrib's random choice (a sequence's item, a string's character).
  random: (v) => {
    const items = typeof v === 'string' ? [...v] : listOf(v, 'random');
    return items.length ? items[Math.floor(Math.random() * items.length)] : undefined;
  },
  // minijinja-contrib's date filters (keyword arguments only: format=, tz=).
  datetimeformat: (v, a) => formatDate('datetime', v, a.kw('format'), a.kw('tz')),
  dateformat: (v, a) => formatDate('date', v, a.kw('format'), a.kw('tz')),
  timeformat: (v, a) => formatDate('time', v, a.kw('format'), a.kw('tz')),
};
FILTERS.d = FILTERS.default!;
FILTERS.e = FILTERS.escape!;

// min/max compare strings case-sensitively, as minijinja does (Jinja2's default is the other
// way; its case_sensitive argument is taken).
function extreme(v: unknown, a: Args, dir: 1 | -1): unknown {
  const given = a.get(0, 'case_sensitive');
  const cs = given === undefined ? true : isTrue(given);
  const attr = a.get(1, 'attribute');
  const items = listOf(v, dir > 0 ? 'max' : 'min');
  let best: unknown = undefined;
  let bestKey: unknown = undefined;
  let first = true;
  for (const x of items) {
    const key = lowerIfStr(attr !== undefined ? attrPath(x, attr) : x, cs);
    if (first || compareValues(key, bestKey) * dir > 0) {
      best = x;
      bestKey = key;
      first = false;
    }
  }
  return best;
}

export function filterNames(): string[] {
  return Object.keys(FILTERS);
}

export function hasFilter(name: string): boolean {
  return Object.hasOwn(FILTERS, name);
}

// What each filter takes, declared as data (a minifier renames a function's parameters, so the
// source of a filter says nothing reliable about them): its positional parameters in order (each
// may also be given by name) and its keyword-only parameters; `variadic` filters take any
// positional and keyword arguments and check them themselves. More positional arguments, or a
// keyword the filter does not know, are an error, as in minijinja and Jinja2. Where Jinja2 and
// minijinja differ, the signature is Jinja2's (minijinja takes fewer positionally). Args.get and
// Args.kw check every read against it, so a filter and its signature cannot drift apart unnoticed.
export interface FilterSignature {
  readonly params: readonly string[];
  readonly keywordOnly: readonly string[];
  readonly variadic: boolean;
}
const sig = (params = '', keywordOnly = ''): FilterSignature => ({
  params: params ? params.split(',') : [],
  keywordOnly: keywordOnly ? keywordOnly.split(',') : [],
  variadic: false,
});
const VARIADIC: FilterSignature = { params: [], keywordOnly: [], variadic: true };
const SIGNATURES: Record<string, FilterSignature> = {
  safe: sig(),
  escape: sig(),
  e: sig(),
  forceescape: sig(),
  lower: sig(),
  upper: sig(),
  title: sig(),
  capitalize: sig(),
  trim: sig('chars'),
  replace: sig('old,new,count'),
  length: sig(),
  count: sig(),
  wordcount: sig(),
  first: sig(),
  last: sig(),
  join: sig('d,attribute', 'sep'),
  split: sig('split,maxsplits'),
  lines: sig(),
  default: sig('default_value,boolean'),
  d: sig('default_value,boolean'),
  indent: sig('width,first,blank'),
  items: sig(),
  dictsort: sig('case_sensitive,by,reverse'),
  list: sig(),
  reverse: sig(),
  sort: sig('reverse,case_sensitive,attribute'),
  unique: sig('case_sensitive,attribute'),
  min: sig('case_sensitive,attribute'),
  max: sig('case_sensitive,attribute'),
  sum: sig('attribute,start'),
  abs: sig(),
  round: sig('precision,method'),
  int: sig('default,base'),
  float: sig('default'),
  bool: sig(),
  string: sig(),
  attr: sig('name'),
  tojson: sig('indent'),
  pprint: sig(),
  batch: sig('linecount,fill_with'),
  slice: sig('slices,fill_with'),
  map: VARIADIC,
  select: VARIADIC,
  reject: VARIADIC,
  selectattr: VARIADIC,
  rejectattr: VARIADIC,
  groupby: sig('attribute,default,case_sensitive'),
  urlencode: sig(),
  format: VARIADIC,
  center: sig('width'),
  truncate: sig('length,killwords,end,leeway'),
  wordwrap: sig('width,break_long_words,wrapstring,break_on_hyphens'),
  filesizeformat: sig('binary'),
  pluralize: sig('singular,plural'),
  xmlattr: sig('autospace'),
  striptags: sig(),
  random: sig(),
  datetimeformat: sig('', 'format,tz'),
  dateformat: sig('', 'format,tz'),
  timeformat: sig('', 'format,tz'),
};

export function filterSignature(name: string): FilterSignature | undefined {
  return Object.hasOwn(SIGNATURES, name) ? SIGNATURES[name] : undefined;
}

export function applyFilter(name: string, v: unknown, call: CallArgs, env: FilterEnv): unknown {
  const f = FILTERS[name];
  if (!f || !Object.hasOwn(FILTERS, name)) throw new EvalError(`unknown filter: filter ${name} is unknown`);
  const sig = SIGNATURES[name]!;
  const args = new Args(name, call, sig);
  if (!sig.variadic && (call.args.length > 0 || call.kwargs.size > 0)) {
    args.checkArity(sig.params.length);
    for (const k of call.kwargs.keys())
      if (!sig.params.includes(k) && !sig.keywordOnly.includes(k)) throw new EvalError(`too many arguments: filter ${name} has no argument named ${k}`);
  }
  return f(v, args, env);
}
