// Nunjucks' lexer, with its character-at-a-time scanning loops replaced by slices. The originals
// grow each data token and string literal one character at a time and advance the position one
// call at a time; on a 28 KB template in a cold process that was a third of the template's
// compile time and much of its garbage. The replacements return the same tokens and leave the
// lexer at the same index, line and column (a test runs both over every template the suite knows
// and over random input); the token grammar itself stays Nunjucks'.
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

// Moves from `index` to `to` exactly as calling forward() once per character would.
function advanceTo(t: TokenizerState, to: number): void {
  const s = t.str;
  let line = t.lineno;
  let col = t.colno;
  for (let k = t.index; k < to; k++) {
    if (s.charCodeAt(k) === 10) {
      line++;
      col = 0;
    } else col++;
  }
  t.index = to;
  t.lineno = line;
  t.colno = col;
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
    let j = start;
    while (j < len && (charString.indexOf(str.charAt(j)) === -1) === breakOnMatch) j++;
    if (j === start) return '';
    advanceTo(this, j);
    return str.slice(start, j);
  },
  // A quoted literal starting at the current quote; \n, \t, \r are escapes, `\x` is x.
  _parseString(this: TokenizerState, delimiter: string) {
    const { str, len } = this;
    const q = delimiter.charCodeAt(0);
    let out = '';
    let seg = this.index + 1;
    let j = seg;
    while (j < len) {
      const c = str.charCodeAt(j);
      if (c === q) break;
      if (c === 92) {
        out += str.slice(seg, j);
        const e = str.charAt(j + 1);
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        j += 2;
        seg = j;
      } else j++;
    }
    if (seg < len) out += str.slice(seg, Math.min(j, len));
    // The closing quote (or, unterminated, one past the end) is consumed too.
    advanceTo(this, j + 1);
    return out;
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
