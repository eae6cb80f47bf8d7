// Jinja grammar on top of Nunjucks' lexer. Nunjucks tokenises the template (with bkci's layer for
// Jinja's lexical rules, lexer.ts); whitespace control (`{%-`, `-%}`), raw blocks and the expression
// and statement grammar follow Jinja2/minijinja (operator precedence, `~` binding tighter than `+`,
// filters and tests on unary expressions, slices, `set ns.attr`, loop filters, break).
import type { Token, Tokenizer } from 'nunjucks/src/lexer.js';
import type { BinOp, Expr, Param, Pos, Stmt, Target } from './ast.js';
import { TemplateError } from './errors.js';
import { lexer, lexJinja } from './lexer.js';

const COMPARE_OPS = new Set(['==', '!=', '<', '>', '<=', '>=']);
// Names a template cannot assign to (minijinja's list: the constants, `loop` and `self`).
const RESERVED = new Set(['true', 'false', 'none', 'True', 'False', 'None', 'loop', 'self']);

// minijinja-cli's --trim-blocks and --lstrip-blocks (both off by default, as there).
export interface WhitespaceOptions {
  // The first newline after a block tag or comment (`%}`, `#}` without `-` or `+`) is removed.
  trimBlocks?: boolean;
  // Spaces and tabs before a block tag or comment (`{%`, `{#` without `-` or `+`) that starts a
  // line are removed.
  lstripBlocks?: boolean;
}

// Parses template source into statements; throws TemplateError with the 1-based position.
export function parseTemplate(source: string, name: string, ws: WhitespaceOptions = {}): Stmt[] {
  try {
    return new JinjaParser(new TokenStream(lexJinja(source), ws.trimBlocks === true), name, ws.lstripBlocks === true, endOf(source)).parseAll();
  } catch (err) {
    throw toTemplateError(err, name, endOf(source));
  }
}

// Where the template ends: the line and column just past its last character (1-based).
function endOf(source: string): Pos {
  const nl = source.lastIndexOf('\n');
  let line = 1;
  for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) line++;
  return { line, col: source.length - nl };
}

// How deeply blocks, and expressions, may nest: minijinja's parser stops at 150 levels
// ("template exceeds maximum recursion limits"), far beyond what a real template uses.
const MAX_NESTING = 150;

// The tokens the grammar reads: Nunjucks' tokens without white space, with unbounded push-back
// (Jinja's grammar needs more look-ahead than one token: `not in`, keyword arguments), and the flag
// a `-%}` or `-}}` sets to trim the data that follows.
class TokenStream {
  dropLeadingWhitespace = false;
  // trim_blocks: the data that follows starts with the newline to remove.
  dropNewline = false;
  private readonly buf: Token[] = [];
  constructor(
    readonly tokens: Tokenizer,
    readonly trimBlocks: boolean,
  ) {}

  private read(): Token | null {
    let tok = this.tokens.nextToken();
    while (tok && tok.type === lexer.TOKEN_WHITESPACE) tok = this.tokens.nextToken();
    return tok;
  }

  nextToken(): Token | null {
    return this.buf.shift() ?? this.read();
  }

  peekToken(): Token | null {
    if (!this.buf.length) {
      const t = this.read();
      if (!t) return null;
      this.buf.push(t);
    }
    return this.buf[0]!;
  }

  pushToken(t: Token | null): void {
    if (t) this.buf.unshift(t);
  }

  // Past the `%}` that ends a tag (the caller has checked it is next).
  advanceAfterBlockEnd(): Token {
    const tok = this.nextToken()!;
    this.dropLeadingWhitespace = tok.value.charAt(0) === '-';
    this.dropNewline = this.trimBlocks && tok.value === this.tokens.tags.BLOCK_END;
    return tok;
  }

  // Past the `}}` that ends an expression (the caller has checked it is next).
  advanceAfterVariableEnd(): void {
    const tok = this.nextToken()!;
    this.dropLeadingWhitespace = tok.value.charAt(tok.value.length - this.tokens.tags.VARIABLE_END.length - 1) === '-';
  }
}

function toTemplateError(err: unknown, name: string, end: Pos): TemplateError {
  if (err instanceof TemplateError) return err;
  const e = err as { message?: string; lineno?: number; colno?: number };
  if (err instanceof RangeError && /call stack/i.test(String(e.message)))
    return new TemplateError('syntax error: template exceeds maximum recursion limits', name, 1, 1);
  // Nunjucks' lexer throws plain errors ("expected end of comment") without a position: they are
  // about something left open when the template ends.
  const msg = String(e.message ?? err).replace(/^\(unknown path\)\s*(\[Line \d+, Column \d+\])?\s*/, '');
  if (e.lineno === undefined) return new TemplateError(`syntax error: ${msg} (the template ends here)`, name, end.line, end.col);
  return new TemplateError('syntax error: ' + msg, name, e.lineno, e.colno ?? 0);
}

class JinjaParser {
  private breakOn: string[] = [];
  private loopDepth = 0;
  // The block tags open around the current position, innermost last (for "not closed" errors).
  private readonly open: { tag: string; at: Pos }[] = [];
  private exprDepth = 0;
  constructor(
    private readonly p: TokenStream,
    private readonly name: string,
    private readonly lstripBlocks: boolean,
    private readonly end: Pos,
  ) {}

  // A syntax error ends the whole parse (nothing catches one to try another way), so the depth
  // counts need no try/finally: they are only read while parsing goes on.
  private deeper<T>(t: Token | null, parse: () => T): T {
    if (++this.exprDepth > MAX_NESTING) this.fail('template exceeds maximum recursion limits', t);
    const r = parse();
    this.exprDepth--;
    return r;
  }

  parseAll(): Stmt[] {
    const body = this.parseNodes();
    const tok = this.p.peekToken();
    if (tok) this.fail(`unexpected '${tok.value}'`, tok);
    return body;
  }

  private fail(msg: string, tok?: Token | null): never {
    const t = tok ?? this.p.peekToken();
    if (!t) {
      // The template ended: say so where it ends, and name the block still open.
      const inner = this.open.at(-1);
      const why = inner ? `; the '${inner.tag}' block opened at ${inner.at.line}:${inner.at.col} is not closed` : '';
      throw new TemplateError(`syntax error: ${msg}${why}`, this.name, this.end.line, this.end.col);
    }
    throw new TemplateError('syntax error: ' + msg, this.name, t.lineno + 1, t.colno + 1);
  }

  private pos(t: Token): Pos {
    return { line: t.lineno + 1, col: t.colno + 1 };
  }

  private next(): Token {
    const t = this.p.nextToken();
    if (!t) this.fail('unexpected end of template');
    return t;
  }

  private peek(): Token {
    const t = this.p.peekToken();
    if (!t) this.fail('unexpected end of template');
    return t;
  }

  private isSym(t: Token | null, v?: string): boolean {
    return !!t && t.type === lexer.TOKEN_SYMBOL && (v === undefined || t.value === v);
  }

  private skipSym(v: string): boolean {
    if (this.isSym(this.p.peekToken(), v)) {
      this.p.nextToken();
      return true;
    }
    return false;
  }

  private skipType(type: string, value?: string): boolean {
    const t = this.p.peekToken();
    if (t && t.type === type && (value === undefined || t.value === value)) {
      this.p.nextToken();
      return true;
    }
    return false;
  }

  private expectType(type: string, what: string): Token {
    const t = this.next();
    if (t.type !== type) this.fail(`expected ${what}, got '${t.value}'`, t);
    return t;
  }

  private expectName(): Token {
    const t = this.next();
    if (t.type !== lexer.TOKEN_SYMBOL) this.fail(`expected identifier, got '${t.value}'`, t);
    return t;
  }

  private blockEnd(tag: string): void {
    const t = this.p.peekToken();
    if (!t || t.type !== lexer.TOKEN_BLOCK_END) this.fail(`expected end of block in '${tag}', got '${t?.value ?? 'end of template'}'`, t);
    this.p.advanceAfterBlockEnd();
  }

  // --- template level -----------------------------------------------------------------------

  private parseUntil(...names: string[]): Stmt[] {
    const prev = this.breakOn;
    this.breakOn = names;
    const body = this.parseNodes();
    this.breakOn = prev;
    const t = this.p.peekToken();
    if (!t || !this.isSym(t) || !names.includes(t.value)) this.fail(`unexpected end of template, expected ${names.map((n) => `'${n}'`).join(' or ')}`, t);
    return body;
  }

  private parseNodes(): Stmt[] {
    const p = this.p;
    const out: Stmt[] = [];
    const tags = p.tokens.tags as unknown as Record<string, string>;
    for (let tok = p.nextToken(); tok; tok = p.nextToken()) {
      if (tok.type === 'data') {
        let data = tok.value;
        const nt = p.peekToken();
        const nv = nt?.value ?? '';
        if (p.dropLeadingWhitespace) {
          data = data.replace(/^\s*/, '');
          p.dropLeadingWhitespace = false;
        }
        if (p.dropNewline) {
          data = data.replace(/^\r?\n?/, '');
          p.dropNewline = false;
        }
        if (this.lstripBlocks && nt && ((nt.type === lexer.TOKEN_BLOCK_START && nv === tags.BLOCK_START) || (nt.type === 'comment' && !/^.{2}[-+]/.test(nv)))) {
          // Only where the tag starts its line: white space back to a newline or the start.
          const line = tok.value.slice(tok.value.lastIndexOf('\n') + 1);
          if (/^[^\S\r\n]*$/.test(line) && (tok.value.includes('\n') || (tok.lineno === 0 && tok.colno === 0))) data = data.replace(/[^\S\r\n]+$/, '');
        }
        if (
          nt &&
          ((nt.type === lexer.TOKEN_BLOCK_START && nv.endsWith('-')) ||
            (nt.type === lexer.TOKEN_VARIABLE_START && nv.charAt(2) === '-') ||
            (nt.type === 'comment' && nv.charAt(2) === '-'))
        ) {
          data = data.replace(/\s*$/, '');
        }
        if (data) out.push({ t: 'data', text: data, ...this.pos(tok) });
      } else if (tok.type === lexer.TOKEN_BLOCK_START) {
        p.dropLeadingWhitespace = false;
        p.dropNewline = false;
        const head = this.peek();
        if (this.isSym(head) && this.breakOn.includes(head.value)) {
          return out;
        }
        const s = this.parseStatement(tok);
        if (s) out.push(s);
      } else if (tok.type === lexer.TOKEN_VARIABLE_START) {
        p.dropNewline = false;
        const e = this.parseExpression();
        p.dropLeadingWhitespace = false;
        const end = p.peekToken();
        if (!end || end.type !== lexer.TOKEN_VARIABLE_END) this.fail(`unexpected '${end?.value ?? 'end of template'}', expected end of variable block`, end);
        p.advanceAfterVariableEnd();
        out.push({ t: 'emit', e, ...this.pos(tok) });
      } else if (tok.type === 'comment') {
        const before = tok.value.charAt(tok.value.length - (tags.COMMENT_END ?? '#}').length - 1);
        p.dropLeadingWhitespace = before === '-';
        p.dropNewline = p.trimBlocks && before !== '-' && before !== '+';
      } else {
        this.fail(`unexpected '${tok.value}'`, tok);
      }
    }
    return out;
  }

  private parseStatement(start: Token): Stmt | null {
    const tok = this.peek();
    if (tok.type !== lexer.TOKEN_SYMBOL) this.fail(`expected statement, got '${tok.value}'`, tok);
    const at = this.pos(start);
    if (this.open.length >= MAX_NESTING) this.fail('template exceeds maximum recursion limits', tok);
    this.open.push({ tag: tok.value, at });
    const stmt = this.parseStatementAt(tok, at);
    this.open.pop();
    return stmt;
  }

  private parseStatementAt(tok: Token, at: Pos): Stmt | null {
    switch (tok.value) {
      case 'if':
        return this.parseIf(at);
      case 'for':
        return this.parseFor(at);
      case 'set':
        return this.parseSet(at);
      case 'macro':
        return this.parseMacro(at);
      case 'call':
        return this.parseCallBlock(at);
      case 'filter':
        return this.parseFilterBlock(at);
      case 'with':
        return this.parseWith(at);
      case 'autoescape': {
        this.next();
        const value = this.parseExpression();
        this.blockEnd('autoescape');
        const body = this.parseUntil('endautoescape');
        this.next();
        this.blockEnd('endautoescape');
        return { t: 'autoescape', value, body, ...at };
      }
      case 'raw':
        return this.parseRaw(tok, at);
      case 'break':
      case 'continue': {
        this.next();
        if (this.loopDepth === 0) this.fail(`'${tok.value}' must be placed inside a loop`, tok);
        this.blockEnd(tok.value);
        return { t: tok.value, ...at };
      }
      case 'include':
        return this.parseInclude(at);
      case 'import':
        return this.parseImport(at);
      case 'from':
        return this.parseFromImport(at);
      case 'extends': {
        this.next();
        const template = this.parseExpression();
        this.blockEnd('extends');
        return { t: 'extends', template, ...at };
      }
      case 'block': {
        this.next();
        const name = this.expectName().value;
        this.blockEnd('block');
        const body = this.parseUntil('endblock');
        this.next();
        if (this.isSym(this.p.peekToken())) this.next();
        this.blockEnd('endblock');
        return { t: 'block', name, body, ...at };
      }
      default:
        return this.fail(`unknown statement '${tok.value}'`, tok);
    }
  }

  private parseIf(at: Pos): Stmt {
    this.next();
    const cond = this.parseExpression();
    this.blockEnd('if');
    const body = this.parseUntil('elif', 'else', 'endif');
    const t = this.next();
    let els: Stmt[] = [];
    if (t.value === 'elif') {
      els = [this.parseIfTail(this.pos(t))];
    } else if (t.value === 'else') {
      this.blockEnd('else');
      els = this.parseUntil('endif');
      this.next();
      this.blockEnd('endif');
    } else {
      this.blockEnd('endif');
    }
    return { t: 'if', cond, body, else: els, ...at };
  }

  private parseIfTail(at: Pos): Stmt {
    // `elif` behaves as a nested `if` that shares the outer `endif`.
    this.p.pushToken({ type: lexer.TOKEN_SYMBOL, value: 'if', lineno: at.line - 1, colno: at.col - 1 });
    return this.parseIf(at);
  }

  private parseAssignTarget(allowNs: boolean): Target {
    const items: Target[] = [];
    const first = this.peek();
    const paren = this.skipType(lexer.TOKEN_LEFT_PAREN);
    for (;;) {
      const t = this.expectName();
      if (RESERVED.has(t.value)) this.fail(`cannot assign to '${t.value}'`, t);
      if (allowNs && this.skipType(lexer.TOKEN_OPERATOR, '.')) {
        const attr = this.expectName();
        items.push({ t: 'nsattr', ns: t.value, attr: attr.value, ...this.pos(t) });
      } else {
        items.push({ t: 'name', name: t.value, ...this.pos(t) });
      }
      if (!this.skipType(lexer.TOKEN_COMMA)) break;
      const n = this.peek();
      if (n.type !== lexer.TOKEN_SYMBOL || n.value === 'in') break;
    }
    if (paren) this.expectType(lexer.TOKEN_RIGHT_PAREN, "')'");
    if (items.length === 1 && !paren) return items[0]!;
    if (items.length === 1 && paren) return items[0]!;
    return { t: 'tuple', items, ...this.pos(first) };
  }

  private parseFor(at: Pos): Stmt {
    this.next();
    const target = this.parseAssignTarget(false);
    if (!this.skipSym('in')) this.fail("expected 'in' in for loop");
    const iter = this.parseExprNoIf();
    let filter: Expr | null = null;
    if (this.skipSym('if')) filter = this.parseExpression();
    const recursive = this.skipSym('recursive');
    this.blockEnd('for');
    this.loopDepth++;
    const body = this.parseUntil('else', 'endfor');
    this.loopDepth--;
    let els: Stmt[] = [];
    if (this.next().value === 'else') {
      this.blockEnd('else');
      els = this.parseUntil('endfor');
      this.next();
    }
    this.blockEnd('endfor');
    return { t: 'for', target, iter, filter, recursive, body, else: els, ...at };
  }

  private parseSet(at: Pos): Stmt {
    this.next();
    const target = this.parseAssignTarget(true);
    if (this.skipType(lexer.TOKEN_OPERATOR, '=')) {
      const value = this.parseExpression();
      this.blockEnd('set');
      return { t: 'set', target, value, ...at };
    }
    let filter: Expr | null = null;
    if (this.p.peekToken()?.type === lexer.TOKEN_PIPE) filter = this.parseFilterChain(null);
    this.blockEnd('set');
    const body = this.parseUntil('endset');
    this.next();
    this.blockEnd('endset');
    return { t: 'setblock', target, body, filter, ...at };
  }

  private parseParams(): Param[] {
    this.expectType(lexer.TOKEN_LEFT_PAREN, "'('");
    const params: Param[] = [];
    while (!this.skipType(lexer.TOKEN_RIGHT_PAREN)) {
      if (params.length) this.expectType(lexer.TOKEN_COMMA, "','");
      if (this.skipType(lexer.TOKEN_RIGHT_PAREN)) break;
      const n = this.expectName();
      if (RESERVED.has(n.value)) this.fail(`cannot assign to '${n.value}'`, n);
      const def = this.skipType(lexer.TOKEN_OPERATOR, '=') ? this.parseExpression() : null;
      params.push({ name: n.value, default: def });
    }
    return params;
  }

  private parseMacro(at: Pos): Stmt {
    this.next();
    const name = this.expectName().value;
    const params = this.parseParams();
    this.blockEnd('macro');
    const depth = this.loopDepth;
    this.loopDepth = 0;
    const body = this.parseUntil('endmacro');
    this.loopDepth = depth;
    this.next();
    this.blockEnd('endmacro');
    return { t: 'macro', name, params, body, ...at };
  }

  private parseCallBlock(at: Pos): Stmt {
    const tok = this.next();
    const params = this.p.peekToken()?.type === lexer.TOKEN_LEFT_PAREN ? this.parseParams() : [];
    const call = this.parseExpression();
    if (call.t !== 'call') this.fail('expected a macro call in call block', tok);
    this.blockEnd('call');
    const body = this.parseUntil('endcall');
    this.next();
    this.blockEnd('endcall');
    return { t: 'callblock', call, params, body, ...at };
  }

  private parseFilterBlock(at: Pos): Stmt {
    this.next();
    this.p.pushToken({ type: lexer.TOKEN_PIPE, value: '|', lineno: at.line - 1, colno: at.col - 1 });
    const filter = this.parseFilterChain(null);
    this.blockEnd('filter');
    const body = this.parseUntil('endfilter');
    this.next();
    this.blockEnd('endfilter');
    return { t: 'filterblock', filter, body, ...at };
  }

  private parseWith(at: Pos): Stmt {
    this.next();
    const assigns: [Target, Expr][] = [];
    while (this.p.peekToken()?.type !== lexer.TOKEN_BLOCK_END) {
      if (assigns.length) this.expectType(lexer.TOKEN_COMMA, "','");
      const target = this.parseAssignTarget(false);
      this.expectType(lexer.TOKEN_OPERATOR, "'='");
      assigns.push([target, this.parseExpression()]);
    }
    this.blockEnd('with');
    const body = this.parseUntil('endwith');
    this.next();
    this.blockEnd('endwith');
    return { t: 'with', assigns, body, ...at };
  }

  private parseInclude(at: Pos): Stmt {
    this.next();
    const template = this.parseExpression();
    let ignoreMissing = false;
    if (this.skipSym('ignore')) {
      if (!this.skipSym('missing')) this.fail("expected 'missing' after 'ignore'");
      ignoreMissing = true;
    }
    this.skipContextMarker();
    this.blockEnd('include');
    return { t: 'include', template, ignoreMissing, ...at };
  }

  // `{% raw %}...{% endraw %}`, as Jinja2 and minijinja read it: the text up to the first endraw
  // tag (raw blocks do not nest), with `-` on either tag trimming the white space on that side.
  private parseRaw(tok: Token, at: Pos): Stmt | null {
    this.next();
    const open = this.p.peekToken();
    this.blockEnd('raw');
    this.p.dropLeadingWhitespace = false;
    const t = this.p.tokens as unknown as { str: string; index: number; forwardN(n: number): void };
    const end = /\{%([-+]?)\s*endraw\s*([-+]?)%\}/g;
    end.lastIndex = t.index;
    const m = end.exec(t.str);
    if (!m) this.fail('unexpected end of raw block', tok);
    let text = t.str.slice(t.index, m!.index);
    if (open!.value.startsWith('-')) text = text.replace(/^\s+/, '');
    else if (this.p.dropNewline) text = text.replace(/^\r?\n?/, '');
    if (m![1] === '-') text = text.replace(/\s+$/, '');
    else if (m![1] === '' && this.lstripBlocks) {
      // As minijinja: the white space before `{% endraw` goes when nothing but a newline precedes it.
      const stripped = text.replace(/[^\S\r\n]+$/, '');
      if (stripped === '' || stripped.endsWith('\n')) text = stripped;
    }
    t.forwardN(m!.index + m![0].length - t.index);
    this.p.dropLeadingWhitespace = m![2] === '-';
    this.p.dropNewline = this.p.trimBlocks && m![2] === '';
    return text ? { t: 'data', text, ...at } : null;
  }

  private skipContextMarker(): void {
    if (this.skipSym('with') || this.skipSym('without')) {
      if (!this.skipSym('context')) this.fail("expected 'context'");
    }
  }

  private parseImport(at: Pos): Stmt {
    this.next();
    const template = this.parseExpression();
    if (!this.skipSym('as')) this.fail("expected 'as' in import");
    const alias = this.expectName().value;
    this.skipContextMarker();
    this.blockEnd('import');
    return { t: 'import', template, alias, ...at };
  }

  private parseFromImport(at: Pos): Stmt {
    this.next();
    const template = this.parseExpression();
    if (!this.skipSym('import')) this.fail("expected 'import'");
    const names: [string, string][] = [];
    while (this.p.peekToken()?.type !== lexer.TOKEN_BLOCK_END) {
      if (this.isSym(this.p.peekToken(), 'with') || this.isSym(this.p.peekToken(), 'without')) break;
      if (names.length) this.expectType(lexer.TOKEN_COMMA, "','");
      const n = this.expectName().value;
      names.push([n, this.skipSym('as') ? this.expectName().value : n]);
    }
    this.skipContextMarker();
    this.blockEnd('from');
    return { t: 'fromimport', template, names, ...at };
  }

  // --- expressions --------------------------------------------------------------------------

  parseExpression(): Expr {
    const e = this.parseOr();
    if (this.isSym(this.p.peekToken(), 'if')) {
      const t = this.next();
      const test = this.parseOr();
      const els = this.skipSym('else') ? this.parseExpression() : null;
      return { t: 'cond', test, then: e, else: els, ...this.pos(t) };
    }
    return e;
  }

  // The iterable of a for loop: `if` there starts the loop filter, not an inline if.
  private parseExprNoIf(): Expr {
    return this.parseOr();
  }

  private parseOr(): Expr {
    if (++this.exprDepth > MAX_NESTING) this.fail('template exceeds maximum recursion limits', this.p.peekToken());
    const e = this.parseOrAt();
    this.exprDepth--;
    return e;
  }

  private parseOrAt(): Expr {
    let l = this.parseAnd();
    while (this.isSym(this.p.peekToken(), 'or')) {
      const t = this.next();
      l = { t: 'or', l, r: this.parseAnd(), ...this.pos(t) };
    }
    return l;
  }

  private parseAnd(): Expr {
    let l = this.parseNot();
    while (this.isSym(this.p.peekToken(), 'and')) {
      const t = this.next();
      l = { t: 'and', l, r: this.parseNot(), ...this.pos(t) };
    }
    return l;
  }

  private parseNot(): Expr {
    const t = this.peek();
    if (this.isSym(t, 'not')) {
      this.next();
      return { t: 'not', e: this.deeper(t, () => this.parseNot()), ...this.pos(t) };
    }
    return this.parseCompare();
  }

  private parseCompare(): Expr {
    let l = this.parseMath1();
    for (;;) {
      const t = this.p.peekToken();
      if (!t) break;
      let op: BinOp | null = null;
      if (t.type === lexer.TOKEN_OPERATOR && COMPARE_OPS.has(t.value)) {
        this.next();
        op = t.value as BinOp;
      } else if (this.isSym(t, 'in')) {
        this.next();
        op = 'in';
      } else if (this.isSym(t, 'not')) {
        this.next();
        if (this.skipSym('in')) op = 'not in';
        else {
          this.p.pushToken(t);
          break;
        }
      } else break;
      l = { t: 'bin', op, l, r: this.parseMath1(), ...this.pos(t) };
    }
    return l;
  }

  private parseBinary(ops: string[], type: string, next: () => Expr): Expr {
    let l = next();
    for (;;) {
      const t = this.p.peekToken();
      if (!t || t.type !== type || !ops.includes(t.value)) break;
      this.next();
      l = { t: 'bin', op: t.value as BinOp, l, r: next(), ...this.pos(t) };
    }
    return l;
  }

  private parseMath1(): Expr {
    return this.parseBinary(['+', '-'], lexer.TOKEN_OPERATOR, () => this.parseConcat());
  }

  private parseConcat(): Expr {
    return this.parseBinary(['~'], lexer.TOKEN_TILDE, () => this.parseMath2());
  }

  private parseMath2(): Expr {
    return this.parseBinary(['*', '/', '//', '%'], lexer.TOKEN_OPERATOR, () => this.parsePow());
  }

  private parsePow(): Expr {
    return this.parseBinary(['**'], lexer.TOKEN_OPERATOR, () => this.parseUnary());
  }

  private parseUnary(): Expr {
    const t = this.peek();
    let e: Expr;
    if (t.type === lexer.TOKEN_OPERATOR && (t.value === '-' || t.value === '+')) {
      this.next();
      e = { t: t.value === '-' ? 'neg' : 'pos', e: this.parseUnaryNoFilter(), ...this.pos(t) };
    } else {
      e = this.parsePostfix(this.parsePrimary());
    }
    return this.parseFilterChain(e);
  }

  private parseUnaryNoFilter(): Expr {
    const t = this.peek();
    if (t.type === lexer.TOKEN_OPERATOR && (t.value === '-' || t.value === '+')) {
      this.next();
      return { t: t.value === '-' ? 'neg' : 'pos', e: this.deeper(t, () => this.parseUnaryNoFilter()), ...this.pos(t) };
    }
    return this.parsePostfix(this.parsePrimary());
  }

  private parsePrimary(): Expr {
    const t = this.next();
    const at = this.pos(t);
    switch (t.type) {
      case lexer.TOKEN_STRING: {
        let v = t.value;
        while (this.p.peekToken()?.type === lexer.TOKEN_STRING) v += this.next().value;
        return { t: 'const', v, ...at };
      }
      case lexer.TOKEN_INT:
        return { t: 'const', v: parseInt(t.value, 10), ...at };
      case lexer.TOKEN_FLOAT:
        return { t: 'const', v: { float: parseFloat(t.value) }, ...at };
      case lexer.TOKEN_BOOLEAN:
        return { t: 'const', v: t.value === 'true', ...at };
      case lexer.TOKEN_NONE:
        if (t.value === 'null') return { t: 'name', name: 'null', ...at };
        return { t: 'const', v: null, ...at };
      case lexer.TOKEN_SYMBOL:
        if (t.value === 'True' || t.value === 'False') return { t: 'const', v: t.value === 'True', ...at };
        if (t.value === 'None') return { t: 'const', v: null, ...at };
        if (/^\d/.test(t.value)) this.fail(`invalid number '${t.value}'`, t);
        return { t: 'name', name: t.value, ...at };
      case lexer.TOKEN_LEFT_PAREN:
        return this.parseParenthesized(t);
      case lexer.TOKEN_LEFT_BRACKET: {
        const items = this.parseList(lexer.TOKEN_RIGHT_BRACKET, "']'");
        return { t: 'list', items, ...at };
      }
      case lexer.TOKEN_LEFT_CURLY: {
        const pairs: [Expr, Expr][] = [];
        while (!this.skipType(lexer.TOKEN_RIGHT_CURLY)) {
          if (pairs.length) {
            this.expectType(lexer.TOKEN_COMMA, "','");
            if (this.skipType(lexer.TOKEN_RIGHT_CURLY)) break;
          }
          const k = this.parseExpression();
          this.expectType(lexer.TOKEN_COLON, "':'");
          pairs.push([k, this.parseExpression()]);
        }
        return { t: 'dict', pairs, ...at };
      }
      default:
        return this.fail(`unexpected '${t.value}'`, t);
    }
  }

  private parseParenthesized(open: Token): Expr {
    const at = this.pos(open);
    if (this.skipType(lexer.TOKEN_RIGHT_PAREN)) return { t: 'tuple', items: [], ...at };
    const first = this.parseExpression();
    if (this.skipType(lexer.TOKEN_RIGHT_PAREN)) return first;
    this.expectType(lexer.TOKEN_COMMA, "')' or ','");
    const items = [first, ...this.parseList(lexer.TOKEN_RIGHT_PAREN, "')'")];
    return { t: 'tuple', items, ...at };
  }

  private parseList(close: string, what: string): Expr[] {
    const items: Expr[] = [];
    while (!this.skipType(close)) {
      if (items.length) {
        this.expectType(lexer.TOKEN_COMMA, `',' or ${what}`);
        if (this.skipType(close)) break;
      }
      items.push(this.parseExpression());
    }
    return items;
  }

  private parsePostfix(e: Expr): Expr {
    for (;;) {
      const t = this.p.peekToken();
      if (!t) return e;
      if (t.type === lexer.TOKEN_OPERATOR && t.value === '.') {
        this.next();
        const n = this.next();
        if (n.type !== lexer.TOKEN_SYMBOL) this.fail(`expected identifier after '.', got '${n.value}'`, n);
        e = { t: 'getattr', obj: e, name: n.value, ...this.pos(t) };
      } else if (t.type === lexer.TOKEN_LEFT_BRACKET) {
        this.next();
        e = this.parseSubscript(e, t);
      } else if (t.type === lexer.TOKEN_LEFT_PAREN) {
        this.next();
        const { args, kwargs } = this.parseArgs();
        e = { t: 'call', fn: e, args, kwargs, ...this.pos(t) };
      } else return e;
    }
  }

  private parseSubscript(obj: Expr, open: Token): Expr {
    const at = this.pos(open);
    const parts: (Expr | null)[] = [];
    let colons = 0;
    let cur: Expr | null = null;
    for (;;) {
      const t = this.peek();
      if (t.type === lexer.TOKEN_RIGHT_BRACKET) {
        this.next();
        parts.push(cur);
        break;
      }
      if (t.type === lexer.TOKEN_COLON) {
        this.next();
        parts.push(cur);
        cur = null;
        if (++colons > 2) this.fail("unexpected ':'", t);
        continue;
      }
      if (cur) this.fail(`unexpected '${t.value}', expected ']'`, t);
      cur = this.parseExpression();
    }
    if (colons === 0) {
      if (!parts[0]) this.fail('expected an index', open);
      return { t: 'getitem', obj, key: parts[0], ...at };
    }
    return { t: 'slice', obj, start: parts[0] ?? null, stop: parts[1] ?? null, step: parts[2] ?? null, ...at };
  }

  // A call's arguments: positional ones, then keyword ones; `*xs` among the positional ones and
  // `**m` among the keyword ones spread a sequence and a map into them (as minijinja takes them;
  // Jinja2 allows one of each, `*` after the positional ones and `**` last).
  private parseArgs(): { args: Expr[]; kwargs: [string, Expr][] } {
    const args: Expr[] = [];
    const kwargs: [string, Expr][] = [];
    let first = true;
    while (!this.skipType(lexer.TOKEN_RIGHT_PAREN)) {
      if (!first) {
        this.expectType(lexer.TOKEN_COMMA, "',' or ')'");
        if (this.skipType(lexer.TOKEN_RIGHT_PAREN)) break;
      }
      first = false;
      const t = this.peek();
      if (t.type === lexer.TOKEN_OPERATOR && (t.value === '*' || t.value === '**')) {
        this.next();
        if (t.value === '**') kwargs.push(['**', this.parseExpression()]);
        else if (kwargs.length) this.fail('positional argument after keyword argument', t);
        else args.push({ t: 'splat', e: this.parseExpression(), ...this.pos(t) });
        continue;
      }
      if (t.type === lexer.TOKEN_SYMBOL) {
        this.next();
        const eq = this.p.peekToken();
        if (eq && eq.type === lexer.TOKEN_OPERATOR && eq.value === '=') {
          this.next();
          kwargs.push([t.value, this.parseExpression()]);
          continue;
        }
        this.p.pushToken(t);
      }
      if (kwargs.length) this.fail('positional argument after keyword argument', t);
      args.push(this.parseExpression());
    }
    return { args, kwargs };
  }

  // `x is divisibleby 3`, `s is startingwith "a"`: one argument without parentheses, as Jinja2 and
  // minijinja read it (a name that continues the expression, like `and`/`or`/`else`, is not one).
  private startsTestArgument(t: Token | null | undefined): boolean {
    if (!t) return false;
    if (t.type === lexer.TOKEN_SYMBOL) return !['and', 'or', 'else', 'if', 'is', 'in', 'not'].includes(t.value);
    return [
      lexer.TOKEN_STRING,
      lexer.TOKEN_INT,
      lexer.TOKEN_FLOAT,
      lexer.TOKEN_LEFT_BRACKET,
      lexer.TOKEN_LEFT_CURLY,
      lexer.TOKEN_BOOLEAN,
      lexer.TOKEN_NONE,
    ].includes(t.type);
  }

  private parseFilterChain(input: Expr | null): Expr {
    let e = input;
    for (;;) {
      const t = this.p.peekToken();
      if (t?.type === lexer.TOKEN_PIPE) {
        this.next();
        const n = this.expectName();
        let args: Expr[] = [];
        let kwargs: [string, Expr][] = [];
        if (this.skipType(lexer.TOKEN_LEFT_PAREN)) ({ args, kwargs } = this.parseArgs());
        e = { t: 'filter', name: n.value, input: e, args, kwargs, ...this.pos(n) };
      } else if (e && this.isSym(t, 'is')) {
        this.next();
        const negate = this.skipSym('not');
        const n = this.next();
        if (n.type !== lexer.TOKEN_SYMBOL && n.type !== lexer.TOKEN_NONE && n.type !== lexer.TOKEN_BOOLEAN) {
          this.fail(`expected test name, got '${n.value}'`, n);
        }
        let args: Expr[] = [];
        let kwargs: [string, Expr][] = [];
        if (this.skipType(lexer.TOKEN_LEFT_PAREN)) ({ args, kwargs } = this.parseArgs());
        else if (this.startsTestArgument(this.p.peekToken())) args = [this.parsePostfix(this.parsePrimary())];
        e = { t: 'test', name: n.value, input: e, args, kwargs, negate, ...this.pos(n) };
      } else {
        if (!e) this.fail('expected a filter');
        return e;
      }
    }
  }
}
