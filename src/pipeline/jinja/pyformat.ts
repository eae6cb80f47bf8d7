// Python's two string formatting languages, as Jinja2 runs them: `"%-5s|%05.1f" | format(a, b)`
// (printf-style, `str % args`) and `"{:>8}{name}".format(x, name=y)` (str.format). Values print as
// bkci prints them (`{}` of a list is minijinja's list), numbers as Python formats them.
import { EvalError } from './errors.js';
import { repeatString, sized } from './limits.js';
import { getAttr, getItem } from './access.js';
import { isFloat, isNumber, num, toStr } from './values.js';

interface Spec {
  fill: string;
  align: string; // '<', '>', '^', '=' or '' (the type's default)
  sign: string; // '+', '-', ' '
  alt: boolean; // '#'
  zero: boolean;
  width: number;
  grouping: string; // ',' or '_' or ''
  precision: number | undefined;
  type: string;
}

function intOf(v: unknown, what: string): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (!isNumber(v)) throw new EvalError(`invalid operation: ${what} needs a number, got ${toStr(v)}`);
  return Math.trunc(num(v));
}

function group(digits: string, sep: string, every: number): string {
  if (!sep) return digits;
  let out = '';
  for (let i = digits.length; i > 0; i -= every) out = digits.slice(Math.max(0, i - every), i) + (out ? sep + out : '');
  return out;
}

// Fixed-point digits of a non-negative number, also past 1e21 (where toFixed switches to
// exponents; such doubles are integers, printed exactly as Python does).
function fixed(a: number, prec: number): string {
  sized(prec + 330, 'a formatted number');
  if (!Number.isFinite(a)) return a.toFixed(Math.min(prec, 100));
  if (a >= 1e21) return BigInt(a).toString() + (prec > 0 ? '.' + repeatString('0', prec) : '');
  if (prec > 75) return exactFixed(a, prec);
  // toFixed breaks an exact tie upwards (2.25 -> 2.3); Python rounds it to even (2.2). A tie
  // shows as the exact digits going on with 5 and then only zeros.
  if (prec <= 75) {
    const exact = a.toFixed(prec + 25);
    const cut = exact.length - 25;
    if (/^50*$/.test(exact.slice(cut))) {
      const kept = exact.slice(0, cut).replace(/\.$/, '');
      const last = Number(kept[kept.length - 1]);
      if (last % 2 === 0) return kept;
    }
  }
  return a.toFixed(prec);
}

// A finite non-negative double to `prec` decimals from its exact binary value (what Python prints
// for any precision; toFixed stops at 100): m * 2^e is (m * 5^-e) / 10^-e, rounded half to even.
function exactFixed(a: number, prec: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, a);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  const m = biased === 0 ? frac : frac | (1n << 52n);
  const e = (biased === 0 ? 1 : biased) - 1075;
  if (e >= 0) return (m << BigInt(e)).toString() + (prec > 0 ? '.' + repeatString('0', prec) : '');
  const f = -e; // exact decimals
  let scaled = m * 5n ** BigInt(f);
  let decimals = f;
  if (prec < f) {
    const div = 10n ** BigInt(f - prec);
    const q = scaled / div;
    const r = scaled % div;
    const twice = r * 2n;
    scaled = twice > div || (twice === div && q % 2n === 1n) ? q + 1n : q;
    decimals = prec;
  }
  let digits = scaled.toString().padStart(decimals + 1, '0');
  if (decimals < prec) digits += repeatString('0', prec - decimals);
  const cut = digits.length - prec;
  return prec > 0 ? `${digits.slice(0, cut)}.${digits.slice(cut)}` : digits;
}

// toExponential and toPrecision stop at 100 digits.
function maxPrecision(prec: number): number {
  if (prec > 100) throw new EvalError(`invalid argument: a precision of ${prec} digits is more than bkci formats in exponent notation (100)`);
  return prec;
}

// Python's repr() of a float: the shortest digits that read back, in exponent notation below
// 1e-4 and from 1e16 on (`1e+20`, `1.2345e-05`), else with at least one decimal (`2.0`).
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const e = Number(expText);
  if (e < -4 || e >= 16) return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const s = String(x);
  return s.includes('.') ? s : s + '.0';
}

// A value as Python's str()/repr() would give it in a formatted string: floats as Python prints
// them, everything else as bkci prints it.
function plain(v: unknown, repr: boolean): string {
  if (isFloat(v)) return pyFloatRepr(num(v));
  return repr && typeof v === 'string' ? `'${v}'` : toStr(v);
}

// Python's exponent notation: at least two exponent digits.
function expo(x: number, prec: number, upper: boolean): string {
  const s = x.toExponential(maxPrecision(prec)).replace(/e([+-])(\d)$/, 'e$10$2');
  return upper ? s.toUpperCase() : s;
}

// Python's 'g': exponent notation when the exponent is < -4 or >= the precision; trailing zeros
// dropped unless '#'.
function general(x: number, prec: number, alt: boolean, upper: boolean): string {
  const p = prec === 0 ? 1 : maxPrecision(prec);
  if (x === 0) return alt ? (0).toFixed(p - 1) : '0';
  const e = Number(x.toExponential(p - 1).split('e')[1]);
  let s = e < -4 || e >= p ? expo(x, p - 1, upper) : x.toFixed(Math.max(0, p - 1 - e));
  if (!alt) s = s.replace(/\.?0+(?=e|E|$)/, (m) => (m.startsWith('.') || s.includes('.') ? '' : m));
  return s;
}

// A number's digits (no sign) for a numeric presentation type; `float`: the value is a float.
function numberBody(x: number, spec: Spec, float: boolean): string {
  const a = Math.abs(x);
  const t = spec.type;
  const prec = spec.precision;
  switch (t) {
    case 'd':
    case 'n':
      return group(String(Math.trunc(a)), spec.grouping, 3);
    case 'b':
      return (spec.alt ? '0b' : '') + group(Math.trunc(a).toString(2), spec.grouping, 4);
    case 'o':
      return (spec.alt ? '0o' : '') + group(Math.trunc(a).toString(8), spec.grouping, 4);
    case 'x':
    case 'X': {
      const h = group(Math.trunc(a).toString(16), spec.grouping, 4);
      return t === 'X' ? (spec.alt ? '0X' : '') + h.toUpperCase() : (spec.alt ? '0x' : '') + h;
    }
    case 'c':
      return String.fromCodePoint(Math.trunc(x));
    case 'e':
    case 'E':
      return expo(a, prec ?? 6, t === 'E');
    case 'f':
    case 'F': {
      if (!Number.isFinite(a)) return t === 'F' ? (Number.isNaN(a) ? 'NAN' : 'INF') : Number.isNaN(a) ? 'nan' : 'inf';
      const [i, f] = fixed(a, prec ?? 6).split('.');
      return group(i!, spec.grouping, 3) + (f !== undefined ? '.' + f : spec.alt ? '.' : '');
    }
    case '%':
      return a === Infinity ? 'inf%' : fixed(a * 100, prec ?? 6) + '%';
    case 'g':
    case 'G':
      if (!Number.isFinite(a)) return Number.isNaN(a) ? 'nan' : 'inf';
      return general(a, prec ?? 6, spec.alt, t === 'G');
    default: {
      // No type: a float prints as bkci prints it (Python's str() for the usual ones), with a
      // precision like 'g' but keeping a fraction and switching to exponents one digit earlier;
      // an integer as 'd'.
      if (float) {
        if (prec === undefined) {
          const s = pyFloatRepr(a);
          return spec.grouping ? s.replace(/^\d+/, (d) => group(d, spec.grouping, 3)) : s;
        }
        if (!Number.isFinite(a)) return Number.isNaN(a) ? 'nan' : 'inf';
        const p = prec === 0 ? 1 : maxPrecision(prec);
        const e = a === 0 ? 0 : Number(a.toExponential(p - 1).split('e')[1]);
        const g = general(a, p, spec.alt, false);
        if (e < -4 || e >= p - 1 + (Number.isInteger(a) ? 0 : 1)) return g;
        return g.includes('.') || g.includes('e') ? g : g + '.0';
      }
      return group(String(a), spec.grouping, 3);
    }
  }
}

// The sign a number prints with: '-' when negative, else what the spec's sign option asks for.
function signOf(negative: boolean, sign: string): string {
  return negative ? '-' : sign === '+' || sign === ' ' ? sign : '';
}

function pad(body: string, spec: Spec, defaultAlign: string, signPart = ''): string {
  const len = [...signPart].length + [...body].length;
  if (len >= spec.width) return signPart + body;
  const n = sized(spec.width, 'a formatted value') - len;
  const align = spec.align || defaultAlign;
  const f = spec.fill;
  if (align === '<') return signPart + body + repeatString(f, n);
  if (align === '>') return repeatString(f, n) + signPart + body;
  if (align === '^') return repeatString(f, Math.floor(n / 2)) + signPart + body + repeatString(f, n - Math.floor(n / 2));
  return signPart + repeatString(f, n) + body; // '=': after the sign
}

// One value through a format spec (the part after ':' in str.format).
export function formatWithSpec(v: unknown, specText: string): string {
  const m = /^(?:(.)?([<>=^]))?([-+ ])?(z)?(#)?(0)?(\d+)?([,_])?(?:\.(\d+))?([bcdeEfFgGnosxX%])?$/su.exec(specText);
  if (!m) throw new EvalError(`invalid argument: invalid format specifier '${specText}'`);
  const spec: Spec = {
    fill: m[1] ?? (m[6] && !m[2] ? '0' : ' '),
    align: m[2] ?? '',
    sign: m[3] ?? '-',
    alt: m[5] !== undefined,
    zero: m[6] !== undefined,
    width: m[7] ? Number(m[7]) : 0,
    grouping: m[8] ?? '',
    precision: m[9] !== undefined ? Number(m[9]) : undefined,
    type: m[10] ?? '',
  };
  const numeric = typeof v === 'number' || isNumber(v) || typeof v === 'boolean';
  if (m[4] && !(numeric && isFloat(v))) throw new EvalError('invalid argument: negative zero coercion (z) is only allowed for floats');
  if (numeric && spec.type === 's') throw new EvalError("invalid argument: unknown format code 's' for a number");
  if (!numeric && (spec.type === 's' || spec.type === '')) {
    if (spec.sign !== '-' || spec.alt || spec.grouping) throw new EvalError(`invalid argument: format specifier '${specText}' is not allowed with a string`);
    let s = toStr(v);
    if (spec.precision !== undefined) s = [...s].slice(0, spec.precision).join('');
    return pad(s, spec, '<');
  }
  if (!numeric) throw new EvalError(`invalid argument: unknown format code '${spec.type}' for a ${typeof v === 'string' ? 'string' : 'value'}`);
  const x = typeof v === 'boolean' ? (v ? 1 : 0) : num(v);
  const integer = !isFloat(v) && Number.isInteger(x);
  if (integer && spec.precision !== undefined && 'dbcoxXn'.includes(spec.type))
    throw new EvalError('invalid argument: precision not allowed in an integer format specifier');
  if (spec.type !== '' && 'dbcoxXn'.includes(spec.type) && !integer) throw new EvalError(`invalid argument: unknown format code '${spec.type}' for a float`);
  const negative = x < 0 || Object.is(x, -0);
  const body = numberBody(x, spec, isFloat(v));
  // z: a value that rounds to zero loses its minus sign.
  const zeroed = m[4] !== undefined && !/[1-9]/.test(body);
  return pad(body, spec, spec.zero ? '=' : '>', signOf(negative && !zeroed, spec.sign));
}

// `fmt % args` (the format filter): %s %r %d %i %u %f %F %e %E %g %G %x %X %o %c %%, flags
// "-+ 0#", widths and precisions (or `*`), and `%(name)s` keys when given a map.
export function percentFormat(fmt: string, args: unknown[], named?: ReadonlyMap<unknown, unknown>): string {
  let i = 0;
  const next = () => {
    if (i >= args.length) throw new EvalError('invalid operation: not enough arguments for format string');
    return args[i++];
  };
  const out = fmt.replace(
    /%(?:\(([^)]*)\))?([-+ 0#]*)(\*|\d+)?(?:\.(\*|\d+))?([diouxXeEfFgGcrsa%])|%(.?)/gs,
    (_m, key?: string, flags = '', width?: string, prec?: string, conv?: string, bad?: string) => {
      if (conv === undefined) throw new EvalError(bad ? `invalid argument: unsupported format character '${bad}'` : 'invalid argument: incomplete format');
      if (conv === '%') return '%';
      const w = width === '*' ? intOf(next(), '*') : width ? Number(width) : 0;
      const p = prec === '*' ? intOf(next(), '*') : prec !== undefined ? Number(prec) : undefined;
      let v: unknown;
      if (key !== undefined) {
        if (!named) throw new EvalError('invalid operation: format requires a mapping');
        if (!named.has(key)) throw new EvalError(`invalid operation: format key ${key} is missing`);
        v = named.get(key);
      } else v = next();
      const spec: Spec = {
        fill: flags.includes('0') && !flags.includes('-') && !'sr'.includes(conv) ? '0' : ' ',
        align: flags.includes('-') ? '<' : flags.includes('0') && !'sr'.includes(conv) ? '=' : '>',
        sign: flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '-',
        alt: flags.includes('#'),
        zero: false,
        width: Math.abs(w),
        grouping: '',
        precision: p,
        type: '',
      };
      if (w < 0) spec.align = '<';
      if (conv === 's' || conv === 'r' || conv === 'a') {
        let s = plain(v, conv !== 's');
        if (p !== undefined) s = s.slice(0, p);
        return pad(s, { ...spec, fill: ' ' }, spec.align === '<' ? '<' : '>');
      }
      if (conv === 'c') {
        if (typeof v === 'string' ? [...v].length !== 1 : isFloat(v) || !Number.isInteger(num(v)))
          throw new EvalError('invalid operation: %c requires an integer or a one-character string');
        return pad(typeof v === 'string' ? v : String.fromCodePoint(intOf(v, '%c')), { ...spec, fill: ' ' }, '>');
      }
      if (typeof v !== 'number' && !isNumber(v) && typeof v !== 'boolean')
        throw new EvalError(`invalid operation: %${conv} format: a number is required, not ${typeof v === 'string' ? 'a string' : toStr(v)}`);
      const x = typeof v === 'boolean' ? (v ? 1 : 0) : num(v);
      if ('xXo'.includes(conv) && (isFloat(v) || !Number.isInteger(x)))
        throw new EvalError(`invalid operation: %${conv} format: an integer is required, not a float`);
      const type = conv === 'i' || conv === 'u' ? 'd' : conv;
      const n = 'doxX'.includes(type) ? Math.trunc(x) + 0 : x; // + 0: no -0 for an integer
      const body = numberBody(n, { ...spec, type, alt: spec.alt && type !== 'o', precision: 'doxX'.includes(type) ? undefined : (p ?? 6) }, isFloat(v));
      const prefixed = conv === 'o' && spec.alt ? '0o' + body : body;
      return pad(prefixed, spec, '>', signOf(n < 0 || Object.is(n, -0), spec.sign));
    },
  );
  if (!named && i < args.length) throw new EvalError('invalid operation: not all arguments converted during string formatting');
  return out;
}

// str.format: `{}`, `{0}`, `{name}`, `{0.attr}`, `{name[key]}`, `!s`/`!r` and a spec after ':'
// (nested `{}` in the spec included); `{{` and `}}` are braces.
export function strFormat(fmt: string, args: unknown[], kwargs: ReadonlyMap<string, unknown>): string {
  let auto = 0;
  let manual = false;
  let automatic = false;
  const field = (name: string): unknown => {
    const m = /^([^.[]*)(.*)$/s.exec(name)!;
    let v: unknown;
    if (m[1] === '') {
      if (manual) throw new EvalError('invalid argument: cannot switch from manual field numbering to automatic');
      automatic = true;
      v = args[auto];
      if (auto++ >= args.length) throw new EvalError(`invalid argument: format needs a positional argument ${auto - 1}`);
    } else if (/^\d+$/.test(m[1]!)) {
      if (automatic) throw new EvalError('invalid argument: cannot switch from automatic field numbering to manual');
      manual = true;
      const k = Number(m[1]);
      if (k >= args.length) throw new EvalError(`invalid argument: format needs a positional argument ${k}`);
      v = args[k];
    } else {
      if (!kwargs.has(m[1]!)) throw new EvalError(`invalid argument: format needs a keyword argument ${m[1]}`);
      v = kwargs.get(m[1]!);
    }
    for (const part of m[2]!.matchAll(/\.([^.[]+)|\[([^\]]+)\]/g)) {
      // `.name` is Python's getattr: a map's items are not its attributes.
      if (part[1] !== undefined && v instanceof Map) throw new EvalError(`invalid argument: a map has no attribute ${part[1]} (use [${part[1]}])`);
      v = part[1] !== undefined ? getAttr(v, part[1]) : getItem(v, /^\d+$/.test(part[2]!) ? Number(part[2]) : part[2]);
    }
    return v;
  };
  let out = '';
  let i = 0;
  while (i < fmt.length) {
    const c = fmt[i]!;
    if (c === '{' && fmt[i + 1] === '{') {
      out += '{';
      i += 2;
    } else if (c === '}' && fmt[i + 1] === '}') {
      out += '}';
      i += 2;
    } else if (c === '}') throw new EvalError("invalid argument: single '}' encountered in format string");
    else if (c === '{') {
      // The field runs to its matching '}' (a spec may hold one level of nested fields).
      let depth = 1;
      let j = i + 1;
      while (j < fmt.length && depth > 0) {
        if (fmt[j] === '{') depth++;
        else if (fmt[j] === '}') depth--;
        j++;
      }
      if (depth > 0) throw new EvalError("invalid argument: expected '}' before end of string");
      const body = fmt.slice(i + 1, j - 1);
      const m = /^([^!:]*)(?:!([rsa]))?(?::(.*))?$/s.exec(body);
      if (!m) throw new EvalError(`invalid argument: bad format field '{${body}}'`);
      let v = field(m[1]!);
      if (m[2] !== undefined) v = plain(v, m[2] !== 's');
      const spec = (m[3] ?? '').replace(/\{([^{}]*)\}/g, (_x, n: string) => toStr(field(n)));
      out += spec === '' ? plain(v, false) : formatWithSpec(v, spec);
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
