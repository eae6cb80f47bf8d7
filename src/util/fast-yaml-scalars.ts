// Shared pieces of the fast YAML parser: giving up, plain-scalar resolution (YAML 1.2 core schema,
// as npm `yaml` resolves it) and double-quoted escapes.

export interface FastYamlOptions {
  // Maps as Map (keys resolved like values) instead of plain objects.
  mapAsMap?: boolean;
  // Integers as BigInt (to tell 1 from 1.0).
  intAsBigInt?: boolean;
  // Numbers as serde_yaml (minijinja-cli's YAML reader) reads them, not by the core schema:
  // digits with a leading zero (`010`, `-007`) are strings; `0x`/`0o`/`0b` integers take a sign;
  // `+5` is an integer. Needs intAsBigInt.
  serdeNumbers?: boolean;
  // Collections nested deeper than this make the parser give up (npm `yaml`'s path then reports
  // the place); 1000 when not given.
  maxDepth?: number;
}

export interface RepeatedKey {
  line: number;
  col: number;
  key: string;
}

export interface FastYamlResult {
  docs: unknown[];
  repeatedKeys: RepeatedKey[];
}

export class GiveUp extends Error {}
export const giveUp = (): never => {
  throw new GiveUp();
};

const NULL_RE = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL_RE = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_RE = /^[-+]?[0-9]+$/;
const OCT_RE = /^0o[0-7]+$/;
const HEX_RE = /^0x[0-9a-fA-F]+$/;
const NAN_INF_RE = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP_RE = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT_RE = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

// Plain scalar → value, YAML 1.2 core schema (npm `yaml`'s default).
const SERDE_RADIX_RE = /^([-+]?)0(?:x[0-9a-fA-F]+|o[0-7]+|b[01]+)$/;
const SERDE_LEADING_ZERO_RE = /^[-+]?0[0-9]+$/;

// A number as serde_yaml reads a plain scalar, where it differs from the core schema (a BigInt or
// the string), else undefined.
export function serdeNumber(s: string): unknown {
  const radix = SERDE_RADIX_RE.exec(s);
  if (radix) {
    const n = BigInt(s.slice(radix[1]!.length));
    return radix[1] === '-' ? -n : n;
  }
  if (SERDE_LEADING_ZERO_RE.test(s)) return s;
  if (s.charCodeAt(0) === 43 && INT_RE.test(s)) return BigInt(s.slice(1));
  return undefined;
}

export function resolvePlain(s: string, intAsBigInt: boolean, serde = false): unknown {
  if (s === '') return null;
  const c = s.charCodeAt(0);
  // By the first character: a null starts with ~ n N, a bool with t T f F, a number with a digit,
  // a sign or a dot. Anything else (most keys and words) is a string as written.
  if (c === 110 || c === 78 || c === 126) return NULL_RE.test(s) ? null : s;
  if (c === 116 || c === 84 || c === 102 || c === 70) return BOOL_RE.test(s) ? c === 116 || c === 84 : s;
  if (!((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return s;
  if (serde) {
    const v = serdeNumber(s);
    if (v !== undefined) return v;
  }
  if (OCT_RE.test(s)) return intAsBigInt ? BigInt(s) : parseInt(s.substring(2), 8);
  if (INT_RE.test(s)) {
    if (intAsBigInt && s[0] === '+') giveUp();
    return intAsBigInt ? BigInt(s) : parseInt(s, 10);
  }
  if (HEX_RE.test(s)) return intAsBigInt ? BigInt(s) : parseInt(s.substring(2), 16);
  if (NAN_INF_RE.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (FLOAT_EXP_RE.test(s) || FLOAT_RE.test(s)) return parseFloat(s);
  return s;
}

export const isWs = (c: string | undefined) => c === ' ' || c === '\t';

const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  '\t': '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
};

export function escapeAt(l: string, j: number): [string, number] {
  const ch = l[j + 1]!;
  if (ch in ESCAPES) return [ESCAPES[ch]!, 2];
  const len = ch === 'x' ? 2 : ch === 'u' ? 4 : ch === 'U' ? 8 : 0;
  if (!len) giveUp();
  const hex = l.slice(j + 2, j + 2 + len);
  if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) giveUp();
  const cp = parseInt(hex, 16);
  // Not a character (beyond U+10FFFF, or a surrogate): go-yaml and libyaml refuse it.
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) giveUp();
  return [String.fromCodePoint(cp), 2 + len];
}

export function unescapeDouble(s: string): string {
  let out = '';
  for (let j = 0; j < s.length; j++) {
    if (s[j] === '\\') {
      const [x, len] = escapeAt(s, j);
      out += x;
      j += len - 1;
    } else out += s[j];
  }
  return out;
}

// Where a quoted scalar closes on one line: the index of the closing `quote` at or after `from`
// (`\"` escapes in double quotes, `''` in single quotes), or -1 when it continues past the line.
export function closingQuote(line: string, from: number, quote: string): number {
  let k = from;
  let at = line.indexOf(quote, k);
  while (at >= 0) {
    if (quote === '"') {
      // An escape (`\"`, `\\`) before it: go on after the escape.
      const esc = line.indexOf('\\', k);
      if (esc >= 0 && esc < at) {
        k = esc + 2;
        if (k > at) at = line.indexOf(quote, k);
        continue;
      }
    } else if (line.charCodeAt(at + 1) === 39) {
      k = at + 2;
      at = line.indexOf(quote, k);
      continue;
    }
    return at;
  }
  return -1;
}
