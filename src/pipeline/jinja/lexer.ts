// Nunjucks' lexer, with its character-at-a-time scanning loops replaced by slices. The originals
// grow each data token one character at a time and advance the position one call at a time; on a
// 28 KB template in a cold process that was a third of the template's compile time and much of its
// garbage. The replacements return the same tokens and leave the lexer at the same index, line and
// column (a test runs both over every template the suite knows and over random input); the token
// grammar itself stays Nunjucks'. String literals are read by jinjaParseString below.
import lexerModule from 'nunjucks/src/lexer.js';

// Nunjucks is CommonJS: its token constants and lex() are only on the default export.
export const lexer = lexerModule as unknown as typeof import('nunjucks/src/lexer.js');

interface TokenizerState {
  str: string;
  index: number;
  len: number;
  lineno: number;
  colno: number;
  forward(): void;
}

type Method = (this: TokenizerState, ...args: never[]) => unknown;

// The first newline at or after a position: remembered, so the many short moves along one long
// line do not each search to its end.
let nlText: string | undefined;
let nlFrom = 0;
let nlAt = -1;
function newlineFrom(s: string, k: number): number {
  if (s === nlText && k >= nlFrom && (nlAt === -1 || k <= nlAt)) return nlAt;
  nlText = s;
  nlFrom = k;
  nlAt = s.indexOf('\n', k);
  return nlAt;
}

// Moves from `index` to `to` exactly as calling forward() once per character would.
function advanceTo(t: TokenizerState, to: number): void {
  const s = t.str;
  let k = t.index;
  let nl = newlineFrom(s, k);
  if (nl === -1 || nl >= to) t.colno += to - k;
  else {
    let line = t.lineno;
    while (nl !== -1 && nl < to) {
      line++;
      k = nl + 1;
      nl = newlineFrom(s, k);
    }
    t.lineno = line;
    t.colno = to - k;
  }
  t.index = to;
}

// A sticky regular expression for a run of characters in (or, breakOnMatch, not in) a set.
const runsOutside = new Map<string, RegExp>();
const runsInside = new Map<string, RegExp>();
function runOf(breakOnMatch: boolean, chars: string): RegExp {
  const cache = breakOnMatch ? runsOutside : runsInside;
  let re = cache.get(chars);
  if (!re) {
    const set = chars.replace(/[\\\]^-]/g, '\\$&');
    re = new RegExp(breakOnMatch ? `[^${set}]*` : `[${set}]*`, 'y');
    cache.set(chars, re);
  }
  return re;
}

const fast: Record<string, Method> = {
  forwardN(this: TokenizerState, n: number) {
    if (n > 0) advanceTo(this, this.index + n);
  },
  _matches(this: TokenizerState, s: string) {
    if (this.index + s.length > this.len) return null;
    return this.str.startsWith(s, this.index);
  },
  // Characters while each is (breakOnMatch: is not) in charString; null at the end.
  _extractMatching(this: TokenizerState, breakOnMatch: boolean, charString: string) {
    const { str, len } = this;
    const start = this.index;
    if (start >= len) return null;
    const re = runOf(breakOnMatch, charString);
    re.lastIndex = start;
    re.test(str);
    const j = Math.min(re.lastIndex, len);
    if (j === start) return '';
    advanceTo(this, j);
    return str.slice(start, j);
  },
};

const proto = Object.getPrototypeOf(lexer.lex('', {})) as Record<string, Method>;
// The methods as Nunjucks wrote them, for the test that compares the two.
export const originalTokenizerMethods: Record<string, Method> = {};
for (const [name, fn] of Object.entries(fast)) {
  if (typeof proto[name] !== 'function') throw new Error(`nunjucks' lexer has no ${name}(): update src/pipeline/jinja/lexer.ts`);
  originalTokenizerMethods[name] = proto[name];
  proto[name] = fn;
}

// ---------------------------------------------------------------------------------------------
// Where Jinja's lexical grammar differs from Nunjucks' (minijinja and Jinja2 agree on these), the
// tokenizer a template is parsed with gets its own nextToken and _parseString:
// - number literals: `1_000`, `1e-3`, `2.5E+2`, `0x1F`, `0o17`, `0b101` (Nunjucks splits them);
// - string escapes as minijinja reads them: \" \' \\ \/ \b \f \n \r \t, \xHH, \uXXXX (surrogate
//   pairs joined), octal \0-\377; any other escape is a syntax error (Nunjucks drops the backslash);
// - `}` inside `{...}` literals closes the literal, not the tag (`{% set d = {'a': {'b': 1}} %}`);
// - `{%+` and `+%}` / `+}}` are accepted; the token's value keeps the `+`, which turns lstrip_blocks /
//   trim_blocks off for that tag (both are off unless --lstrip-blocks / --trim-blocks).

interface JinjaTokenizer extends TokenizerState {
  in_code: boolean;
  braces: number;
  isFinished(): boolean;
}

interface Tok {
  type: string;
  value: string;
  lineno: number;
  colno: number;
}

class LexError extends Error {
  constructor(
    message: string,
    readonly lineno: number,
    readonly colno: number,
  ) {
    super(message);
  }
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function lexNumber(t: JinjaTokenizer): Tok {
  const { str, len } = t;
  const start = t.index;
  const lineno = t.lineno;
  const colno = t.colno;
  const fail = (): never => {
    throw new LexError(`invalid number '${str.slice(start, j)}'`, lineno + 1, colno + 1);
  };
  let j = start;
  const radix = str.charCodeAt(j) === 48 ? ({ x: 16, X: 16, o: 8, O: 8, b: 2, B: 2 } as Record<string, number>)[str.charAt(j + 1)] : undefined;
  if (radix) {
    j += 2;
    const digitRe = radix === 16 ? /[0-9a-fA-F_]/ : radix === 8 ? /[0-7_]/ : /[01_]/;
    while (j < len && digitRe.test(str.charAt(j))) j++;
    const digits = str.slice(start + 2, j).replace(/_/g, '');
    if (!digits || str.charAt(j - 1) === '_' || /[0-9a-zA-Z_]/.test(str.charAt(j))) {
      while (j < len && /[0-9a-zA-Z_]/.test(str.charAt(j))) j++;
      fail();
    }
    advanceTo(t, j);
    return { type: lexer.TOKEN_INT, value: String(parseInt(digits, radix)), lineno, colno };
  }
  // minijinja's states: integer digits, then `.` (fraction), then e/E (exponent), then a sign.
  let state: 'int' | 'frac' | 'exp' | 'sign' = 'int';
  while (j < len) {
    const ch = str.charAt(j);
    const c = str.charCodeAt(j);
    if (isDigit(c) || ch === '_') {
      if (state === 'exp') state = 'sign';
    } else if (ch === '.' && state === 'int') state = 'frac';
    else if ((ch === 'e' || ch === 'E') && (state === 'int' || state === 'frac')) state = 'exp';
    else if ((ch === '+' || ch === '-') && state === 'exp') state = 'sign';
    else break;
    j++;
  }
  const raw = str.slice(start, j);
  const text = raw.replace(/_/g, '');
  if (raw.endsWith('_') || /_[.eE]|[.eE][-+]?_/.test(raw) || (state !== 'int' && Number.isNaN(Number(text.endsWith('.') ? text + '0' : text)))) fail();
  advanceTo(t, j);
  return { type: state === 'int' ? lexer.TOKEN_INT : lexer.TOKEN_FLOAT, value: text, lineno, colno };
}

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function jinjaParseString(this: JinjaTokenizer, delimiter: string): string {
  const { str, len } = this;
  const lineno = this.lineno;
  const colno = this.colno;
  const bad = (): never => {
    throw new LexError('bad string escape', lineno + 1, colno + 1);
  };
  const q = delimiter.charCodeAt(0);
  let out = '';
  let seg = this.index + 1;
  let j = seg;
  while (j < len) {
    const c = str.charCodeAt(j);
    if (c === q) break;
    if (c !== 92) {
      j++;
      continue;
    }
    out += str.slice(seg, j);
    const e = str.charAt(j + 1);
    if (e in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[e];
      j += 2;
    } else if (e === 'x') {
      const hex = str.slice(j + 2, j + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) bad();
      out += String.fromCharCode(parseInt(hex, 16));
      j += 4;
    } else if (e === 'u') {
      const unit = (at: number) => {
        const hex = str.slice(at, at + 4);
        return /^[0-9a-fA-F]{4}$/.test(hex) ? parseInt(hex, 16) : bad();
      };
      const hi = unit(j + 2);
      j += 6;
      if (hi >= 0xdc00 && hi <= 0xdfff) bad();
      if (hi >= 0xd800 && hi <= 0xdbff) {
        if (str.slice(j, j + 2) !== '\\u') bad();
        const lo = unit(j + 2);
        if (lo < 0xdc00 || lo > 0xdfff) bad();
        j += 6;
        out += String.fromCharCode(hi, lo);
      } else out += String.fromCharCode(hi);
    } else if (e >= '0' && e <= '7') {
      const oct = /^[0-7]{1,3}/.exec(str.slice(j + 1, j + 4))![0];
      const v = parseInt(oct, 8);
      if (v > 0xff) bad();
      out += String.fromCharCode(v);
      j += 1 + oct.length;
    } else bad();
    seg = j;
  }
  if (j >= len) throw new LexError('unexpected end of string', lineno + 1, colno + 1);
  out += str.slice(seg, j);
  advanceTo(this, j + 1);
  return out;
}

function jinjaNextToken(this: JinjaTokenizer, next: () => Tok | null): Tok | null {
  if (this.in_code && this.index < this.len) {
    const c = this.str.charCodeAt(this.index);
    if (isDigit(c)) return lexNumber(this);
    if (c === 125 && this.braces > 0) {
      // `}` closing a map literal, even where `}}` follows.
      const tok = { type: lexer.TOKEN_RIGHT_CURLY, value: '}', lineno: this.lineno, colno: this.colno };
      this.forward();
      this.braces--;
      return tok;
    }
    if (c === 43 && this.braces === 0 && (this.str.startsWith('%}', this.index + 1) || this.str.startsWith('}}', this.index + 1))) {
      // `+%}` / `+}}`: the token's value keeps the `+` (it turns trim_blocks off for this tag).
      this.forward();
      const tok = next();
      if (tok) tok.value = '+' + tok.value;
      return tok;
    }
  }
  const tok = next();
  if (!tok) return tok;
  // Nunjucks reads anything up to whitespace or a delimiter as a name (`$X`, `a@b`, `é`); minijinja
  // names are ASCII `[A-Za-z_][A-Za-z0-9_]*` and any other character is `unexpected character`
  // (Jinja2 agrees, but for Unicode letters), so `{% if $BRANCH == "main" %}` is an error, not false.
  if (tok.type === lexer.TOKEN_SYMBOL && !NAME.test(tok.value)) {
    const bad = /^[0-9]*[A-Za-z0-9_]*/.exec(tok.value)![0].length;
    throw new LexError(
      `unexpected character '${String.fromCodePoint(tok.value.codePointAt(bad)!)}' (a name is letters, digits and _)`,
      tok.lineno + 1,
      tok.colno + bad + 1,
    );
  }
  if (tok.type === lexer.TOKEN_LEFT_CURLY) this.braces++;
  else if (tok.type === lexer.TOKEN_BLOCK_START || tok.type === lexer.TOKEN_VARIABLE_START) {
    this.braces = 0;
    // `{%+`: the value keeps the `+` too (it turns lstrip_blocks off for this tag).
    if (tok.type === lexer.TOKEN_BLOCK_START && this.str.charCodeAt(this.index) === 43 && !tok.value.endsWith('-')) {
      this.forward();
      tok.value += '+';
    }
  }
  return tok;
}

// A tokenizer for Jinja templates: Nunjucks' lexer with the differences above.
export function lexJinja(source: string): ReturnType<typeof lexer.lex> {
  const t = lexer.lex(source, {}) as unknown as JinjaTokenizer & Record<string, unknown>;
  const next = (proto.nextToken as () => Tok | null).bind(t);
  t.braces = 0;
  t.nextToken = function (this: JinjaTokenizer) {
    return jinjaNextToken.call(this, next);
  };
  t._parseString = jinjaParseString;
  return t as unknown as ReturnType<typeof lexer.lex>;
}
