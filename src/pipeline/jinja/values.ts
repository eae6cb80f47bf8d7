// The value model of bkci's Jinja engine, following minijinja 2.3.1: undefined (JS undefined),
// none (null), bool, int (JS integer number), float (JFloat, so `1.0` keeps its fraction), string,
// sequences (arrays), maps (JS Map, keys kept sorted as minijinja 2.3.1's BTreeMap does) and a few
// objects (namespace, loop, macro, iterator).
import { EvalError } from './errors.js';

export class JFloat {
  constructor(readonly v: number) {}
}

// A lazily produced sequence (`split` result, `reverse` on a string...): prints as `<iterator>`.
export class JIterator {
  constructor(readonly items: unknown[]) {}
}

// One group of the `groupby` filter: the 2-tuple (grouper, list) as both engines give it, so it
// unpacks (`for key, items in ...`), indexes and prints as a pair, with `.grouper` and `.list`.
export class GroupTuple extends Array<unknown> {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }
  static of2(grouper: unknown, list: unknown[]): GroupTuple {
    const g = new GroupTuple();
    g.push(grouper, list);
    return g;
  }
}

// A context variable computed on first use (bkci's `selection`, which a template that never reads
// it should not pay for). Only the root context holds one; name lookup resolves it.
export class Lazy {
  constructor(readonly compute: () => unknown) {}
}

// A string marked safe from autoescaping .
export class SafeStr {
  constructor(readonly s: string) {}
  toJinja(): string {
    return this.s;
  }
}

// A plain string for a safe one (operators, tests and most filters see the text).
export const unsafe = (v: unknown): unknown => (v instanceof SafeStr ? v.s : v);

export class Namespace {
  readonly vars = new Map<string, unknown>();
}

export interface CallArgs {
  args: unknown[];
  kwargs: ReadonlyMap<string, unknown>;
}

// Anything callable from a template: macros, `range`, `caller`, loop.cycle...
export class JCallable {
  constructor(
    readonly name: string,
    readonly fn: (a: CallArgs) => unknown,
    readonly kind: 'macro' | 'function' = 'function',
    // What `m.name`, `m.arguments`, `m.caller` read on a macro.
    readonly attrs?: ReadonlyMap<string, unknown>,
  ) {}
}

export type Kind = 'undefined' | 'none' | 'bool' | 'number' | 'string' | 'seq' | 'map' | 'iterator' | 'object';

export function kindOf(v: unknown): Kind {
  if (v === undefined) return 'undefined';
  if (v === null) return 'none';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number' || v instanceof JFloat) return 'number';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'seq';
  if (v instanceof Map) return 'map';
  if (v instanceof JIterator) return 'iterator';
  return 'object';
}

// The type name minijinja uses in its messages.
export function typeName(v: unknown): string {
  const k = kindOf(v);
  if (k === 'object') return v instanceof JCallable ? 'function' : v instanceof Namespace ? 'map' : 'object';
  return k === 'seq' ? 'sequence' : k;
}

export const isFloat = (v: unknown): v is JFloat => v instanceof JFloat;
export const isNumber = (v: unknown): boolean => typeof v === 'number' || v instanceof JFloat;
export const isInt = (v: unknown): v is number => typeof v === 'number';

// The numeric value of a number or bool (bools count as 0/1 in arithmetic and ordering).
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v instanceof JFloat) return v.v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}

export function mkFloat(n: number): JFloat {
  return new JFloat(n);
}

// Builds a map whose keys iterate in sorted order.
export function sortedMap(entries: Iterable<[unknown, unknown]>): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  let allStrings = true;
  for (const [k, v] of entries) {
    if (typeof k !== 'string') allStrings = false;
    m.set(normKey(k), v);
  }
  const list = [...m];
  // String keys (nearly every map) compare as compareValues compares two strings.
  list.sort(allStrings ? compareStringKeys : (a, b) => compareValues(a[0], b[0]));
  return new Map(list);
}

function compareStringKeys(a: [unknown, unknown], b: [unknown, unknown]): number {
  return compareStrings(a[0] as string, b[0] as string);
}

// Strings in code point order, as Rust (minijinja) compares them. JavaScript's `<` compares UTF-16
// units, which puts characters past U+FFFF (stored as surrogates, 0xD800-0xDFFF) before those of
// U+E000-U+FFFF; at the first differing unit the two ranges are swapped back.
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

// Map keys: floats with an integral value address the same entry as the int.
export function normKey(k: unknown): unknown {
  if (k instanceof JFloat) return Number.isInteger(k.v) ? k.v : `\u0000f${k.v}`;
  return k;
}

export function isTrue(v: unknown): boolean {
  switch (kindOf(v)) {
    case 'undefined':
    case 'none':
      return false;
    case 'bool':
      return v as boolean;
    case 'number':
      return num(v) !== 0;
    case 'string':
      return (v as string).length > 0;
    case 'seq':
      return (v as unknown[]).length > 0;
    case 'map':
      return (v as Map<unknown, unknown>).size > 0;
    case 'iterator':
      return true;
    default:
      if (v instanceof Namespace) return v.vars.size > 0;
      // A safe string is as true as its text.
      if (v instanceof SafeStr) return v.s.length > 0;
      return true;
  }
}

// Rust's `f64` Display: shortest round-trip digits, never exponent notation; minijinja adds `.0`.
// An integer as minijinja prints it: all its digits, also past 2^53 (where JavaScript would switch
// to exponent notation; the digits are those of the nearest double, see docs/pipeline.md).
export function formatInt(n: number): string {
  return Number.isSafeInteger(n) || !Number.isFinite(n) ? String(n) : BigInt(n).toString();
}

export function formatFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  let s = String(n);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (m) {
    const [, sign, d0, rest = '', expS] = m;
    const exp = Number(expS);
    const digits = d0! + rest;
    if (exp >= 0) {
      s = sign! + (digits.length <= exp + 1 ? digits + '0'.repeat(exp + 1 - digits.length) : digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1));
    } else {
      s = sign + '0.' + '0'.repeat(-exp - 1) + digits;
    }
  }
  if (Object.is(n, -0)) s = '-0';
  return s.includes('.') ? s : s + '.0';
}

// How a value prints in `{{ }}`, with `~` and the `string` filter.
export function toStr(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return repr(v, false);
}

// Characters Rust's Debug escapes as \u{...}: the unprintable (control, format, private-use,
// unassigned, separators other than the space) and combining ones. Built on first use.
let NOT_PRINTED: RegExp | undefined;

// The quoted form of a string inside a printed list or map (Rust's Debug escaping).
export function quoteStr(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c === 0) out += '\\0';
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else if (c < 0x80) out += ch;
    else if (c >= 0xd800 && c <= 0xdfff)
      out += '\ufffd'; // a lone surrogate, as Rust receives it
    else if ((NOT_PRINTED ??= /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{Grapheme_Extend}]/u).test(ch)) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

function repr(v: unknown, nested: boolean): string {
  switch (kindOf(v)) {
    case 'undefined':
      return nested ? 'undefined' : '';
    case 'none':
      return 'none';
    case 'bool':
      return v ? 'true' : 'false';
    case 'number':
      return v instanceof JFloat ? formatFloat(v.v) : formatInt(v as number);
    case 'string':
      return nested ? quoteStr(v as string) : (v as string);
    case 'seq':
      return '[' + (v as unknown[]).map((x) => repr(x, true)).join(', ') + ']';
    case 'map':
      return '{' + [...(v as Map<unknown, unknown>)].map(([k, x]) => `${repr(k, true)}: ${repr(x, true)}`).join(', ') + '}';
    case 'iterator':
      return '<iterator>';
    default:
      if (v instanceof Namespace) return repr(sortedMap(v.vars), nested);
      if (v instanceof JCallable) return v.kind === 'macro' ? `<macro ${v.name}>` : `<function ${v.name}>`;
      if (typeof v === 'object' && v && 'rawRepr' in v) return (v as { rawRepr(): string }).rawRepr();
      if (typeof v === 'object' && v && 'toJinja' in v) return repr((v as { toJinja(): unknown }).toJinja(), nested);
      return String(v);
  }
}

// A value as minijinja's debug() prints it: Rust's pretty Debug form (`{:#?}`), one item per line
// in lists and maps, indented by four spaces per level.
export function debugRepr(v: unknown, indent = ''): string {
  const inner = indent + '    ';
  if (v instanceof Namespace) return debugRepr(sortedMap(v.vars), indent);
  switch (kindOf(v)) {
    case 'seq':
    case 'iterator': {
      const items = seqItems(v);
      return items.length ? '[\n' + items.map((x) => `${inner}${debugRepr(x, inner)},\n`).join('') + indent + ']' : '[]';
    }
    case 'map': {
      const m = v as Map<unknown, unknown>;
      return m.size ? '{\n' + [...m].map(([k, x]) => `${inner}${debugRepr(k, inner)}: ${debugRepr(x, inner)},\n`).join('') + indent + '}' : '{}';
    }
    default:
      return repr(v, true);
  }
}

const RANK: Record<Kind, number> = { undefined: 0, none: 1, bool: 2, number: 3, string: 4, seq: 5, iterator: 5, map: 6, object: 7 };

// The lists range() made. minijinja's range is an iterable object, not a sequence: `range(3) is
// sequence` is false there and it orders after maps (by kind), while it prints, iterates, indexes
// and equals like the list.
export const RANGES = new WeakSet<unknown[]>();
const RANGE_RANK = 6.5;

// A stable sort of Jinja values. Array.prototype.sort moves undefined elements to the end without
// asking the comparator, where Jinja orders undefined before everything: sorted by index instead.
export function sortValues<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const idx = items.map((_, i) => i);
  idx.sort((i, j) => cmp(items[i] as T, items[j] as T));
  return idx.map((i) => items[i] as T);
}

// Total order used by `<`, `sort`, `max`...: undefined < none < bools < numbers < strings < seqs <
// maps, as minijinja orders values (`false < -2` holds there; `true == 1` still does too).
export function compareValues(a: unknown, b: unknown): number {
  return compareWith(a, b, false);
}

// `equality`: a range equals the list of its numbers (only its order among kinds is its own).
function compareWith(a: unknown, b: unknown, equality: boolean): number {
  const ka = kindOf(a);
  const kb = kindOf(b);
  const ra = !equality && ka === 'seq' && RANGES.has(a as unknown[]) ? RANGE_RANK : RANK[ka];
  const rb = !equality && kb === 'seq' && RANGES.has(b as unknown[]) ? RANGE_RANK : RANK[kb];
  if (ra !== rb) return ra - rb;
  switch (ka) {
    case 'bool':
    case 'number': {
      const x = num(a);
      const y = num(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'string':
      return compareStrings(a as string, b as string);
    case 'seq':
    case 'iterator': {
      const x = seqItems(a);
      const y = seqItems(b);
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareWith(x[i], y[i], equality);
        if (c) return c;
      }
      return x.length - y.length;
    }
    case 'map': {
      const x = [...(a as Map<unknown, unknown>)];
      const y = [...(b as Map<unknown, unknown>)];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareWith(x[i]![0], y[i]![0], equality) || compareWith(x[i]![1], y[i]![1], equality);
        if (c) return c;
      }
      return x.length - y.length;
    }
    default:
      return 0;
  }
}

export function valuesEqual(a: unknown, b: unknown): boolean {
  a = unsafe(a);
  b = unsafe(b);
  const ka = kindOf(a);
  const kb = kindOf(b);
  if ((ka === 'number' || ka === 'bool') && (kb === 'number' || kb === 'bool')) return num(a) === num(b);
  if (ka === 'object' || kb === 'object') return a === b;
  if (RANK[ka] !== RANK[kb]) return false;
  if (ka !== kb && !(ka === 'seq' || ka === 'iterator')) return false;
  return compareWith(a, b, true) === 0;
}

// The items of anything iterable in a for loop; undefined iterates as empty.
export function iterate(v: unknown): unknown[] {
  switch (kindOf(v)) {
    case 'undefined':
    case 'none':
      return [];
    case 'seq':
      return v as unknown[];
    case 'iterator':
      return (v as JIterator).items;
    case 'map':
      return [...(v as Map<unknown, unknown>).keys()];
    case 'string':
      return [...(v as string)];
    default:
      if (v instanceof Namespace) return [...sortedMap(v.vars).keys()];
      throw new EvalError(`cannot iterate over ${typeName(v)}`);
  }
}

export function seqItems(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof JIterator) return v.items;
  return iterate(v);
}

// Converts plain data (parsed YAML/JSON, environment) into template values: maps sorted.
export function fromData(v: unknown): unknown {
  if (v === undefined || v === null) return v === undefined ? undefined : null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return Number.isInteger(v) ? v : new JFloat(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof JFloat) return v;
  if (Array.isArray(v)) return v.map(fromData);
  if (v instanceof Map) return sortedMap([...v].map(([k, x]) => [fromData(k), fromData(x)]));
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return sortedMap(Object.entries(v).map(([k, x]) => [k, fromData(x)]));
  return String(v);
}

// Converts a value to plain JSON-able data (for tojson and --format json).
export function toPlain(v: unknown): unknown {
  switch (kindOf(v)) {
    case 'undefined':
    case 'none':
      return null;
    case 'number':
      return num(v);
    case 'seq':
    case 'iterator':
      return seqItems(v).map(toPlain);
    case 'map': {
      const o: Record<string, unknown> = {};
      for (const [k, x] of v as Map<unknown, unknown>) o[toStr(k)] = toPlain(x);
      return o;
    }
    default:
      if (v instanceof Namespace) return toPlain(sortedMap(v.vars));
      return v as unknown;
  }
}
