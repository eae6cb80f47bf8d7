// Evaluates a parsed template with minijinja-cli's defaults: lenient undefined, no trim_blocks or
// lstrip_blocks, autoescape chosen by file name. Errors carry the template position of the node.
import type { Expr, Param, Stmt, Target } from './ast.js';
import { EvalError, TemplateError } from './errors.js';
import { macroClosure } from './closure.js';
import { applyFilter, escapeHtml, filterNames, SafeStr, toJson } from './filters.js';
import { callMethod } from './methods.js';
import { binaryOp, negate } from './ops.js';
import { applyTest, testNames } from './tests.js';
import { builtinGlobals, DEBUG } from './globals.js';
import { getAttr, getItem, LoopState, slice } from './access.js';
import { activeBudget, Budget, emitted, engineLimitError, MAX_STRING, outOfFuel, withBudget } from './limits.js';
import {
  type CallArgs,
  debugRepr,
  iterate,
  isTrue,
  JCallable,
  JFloat,
  kindOf,
  Lazy,
  Namespace,
  num,
  quoteStr,
  sortedMap,
  toStr,
  typeName,
  unsafe,
  valuesEqual,
} from './values.js';

export type AutoEscape = 'none' | 'html' | 'json';

export interface TemplateLoader {
  // Returns the parsed template and its display name, or undefined when it does not exist.
  load(name: string, from: string): { name: string; body: Stmt[] } | undefined;
}

const MISSING = Symbol('missing');
const NO_KWARGS: ReadonlyMap<string, unknown> = new Map();

class Frame {
  readonly vars = new Map<string, unknown>();
  // On a macro call's frame: the names the macro takes from where it was defined (closure.ts);
  // any other name it does not hold itself comes from the render context only.
  captures?: ReadonlySet<string>;
  constructor(readonly parent: Frame | null) {}
  lookup(name: string): unknown {
    const v = this.find(name);
    return v === MISSING ? undefined : v;
  }
  // The variable's value, or MISSING when no frame defines it.
  find(name: string): unknown {
    for (let f: Frame | null = this; f; f = f.parent) {
      let v = f.vars.get(name);
      if (v === undefined && !f.vars.has(name)) {
        if (f.captures && !f.captures.has(name) && f.parent) f = rootOf(f);
        else continue;
        v = f.vars.get(name);
        if (v === undefined && !f.vars.has(name)) return MISSING;
      }
      if (v instanceof Lazy) f.vars.set(name, (v = v.compute()));
      return v;
    }
    return MISSING;
  }
}

// The loop whose body `frame` is in. As minijinja looks for it among the frames of its own
// context, a macro's body does not see a loop around the macro's definition, even one it captured.
function currentLoopOf(frame: Frame): LoopState | undefined {
  for (let f: Frame | null = frame; f; f = f.parent) {
    const v = f.vars.get('loop');
    if (v instanceof LoopState) return v;
    if (f.captures) return undefined;
  }
  return undefined;
}

class BreakSignal {}
class ContinueSignal {}

export interface RenderOptions {
  name: string;
  autoescape: AutoEscape;
  // The mode of an included or imported template, from its name (as minijinja chooses it).
  autoescapeFor?: (name: string) => AutoEscape;
  loader?: TemplateLoader;
  // minijinja's strict undefined: using an undefined value is an error, except in `is defined`,
  // `is undefined` and `default`.
  strictUndefined?: boolean;
  // minijinja's fuel: how much work the render may do (limits.ts; DEFAULT_FUEL when absent).
  fuel?: number;
}

const LENIENT_TESTS = new Set(['defined', 'undefined', 'none']);
const LENIENT_FILTERS = new Set(['default', 'd']);
// Filters that look at whether a string is safe (marked by `safe`, `escape`, `tojson`, a macro's
// output under autoescaping); every other filter, test and operator sees a safe string as the
// plain string it is, as in minijinja.
const SAFE_AWARE_FILTERS = new Set(['safe', 'escape', 'e', 'forceescape', 'string', 'default', 'd', 'tojson', 'pprint']);
const plain = unsafe;

class Renderer {
  private out: string[] = [];
  // Each block's bodies from the most derived template to the base (for `super()`).
  private blocks = new Map<string, Stmt[][]>();
  // The template being rendered (the base one when templates extend): its blocks are what `self`
  // offers, collected when a template first reads `self` (a walk of the whole tree).
  private ownBody: Stmt[] = [];
  private ownBlocksFound: Map<string, Stmt[]> | undefined;
  private get ownBlocks(): Map<string, Stmt[]> {
    if (!this.ownBlocksFound) collectBlocks(this.ownBody, (this.ownBlocksFound = new Map()));
    return this.ownBlocksFound;
  }
  private lenient = 0;
  // The render's budget (limits.ts): each statement, expression and loop iteration spends one unit
  // of its fuel here, inline.
  private readonly budget: Budget = activeBudget();
  // The statement being run: where an error that no expression placed is reported.
  private at: { line: number; col: number } = { line: 1, col: 1 };
  // The block being rendered, for debug().
  private currentBlock: string | undefined;
  // The autoescape mode in force: the template's, or an `{% autoescape %}` block's.
  private mode: AutoEscape;
  constructor(
    private readonly opts: RenderOptions,
    private name: string,
    // How deep macro calls (1 each) and includes and imports (10 each) are nested, shared by the
    // renderers of every template involved: past 500 is an error, as minijinja counts.
    private readonly recursion = { depth: 0 },
  ) {
    this.mode = opts.autoescape;
  }

  private nested<T>(cost: number, fn: () => T): T {
    this.recursion.depth += cost;
    try {
      if (this.recursion.depth > 500) throw new EvalError('recursion limit exceeded');
      return fn();
    } finally {
      this.recursion.depth -= cost;
    }
  }

  // A renderer for another template (include, import), in that template's own autoescape mode.
  private renderer(name: string): Renderer {
    const mode = this.opts.autoescapeFor?.(name) ?? this.opts.autoescape;
    return new Renderer(mode === this.opts.autoescape ? this.opts : { ...this.opts, autoescape: mode }, name, this.recursion);
  }

  fail(err: unknown, at: { line: number; col: number }): never {
    if (err instanceof TemplateError) throw err;
    if (err instanceof EvalError) throw new TemplateError(err.message, this.name, at.line, at.col);
    const limit = engineLimitError(err);
    if (limit) throw new TemplateError(limit.message, this.name, at.line, at.col);
    throw err;
  }

  render(body: Stmt[], frame: Frame): string {
    try {
      const parent = this.findExtends(body);
      if (parent) return this.renderExtends(body, parent, frame);
      this.ownBody = body;
      this.exec(body, frame);
      return this.out.join('');
    } catch (err) {
      // Anything not placed yet (a limit reached between two nodes) is placed at the statement
      // being run.
      return this.fail(err, this.at);
    }
  }

  private findExtends(body: Stmt[]): Extract<Stmt, { t: 'extends' }> | undefined {
    return body.find((s): s is Extract<Stmt, { t: 'extends' }> => s.t === 'extends');
  }

  private renderExtends(body: Stmt[], ext: Extract<Stmt, { t: 'extends' }>, frame: Frame): string {
    let current = body;
    let node: Extract<Stmt, { t: 'extends' }> | undefined = ext;
    // As minijinja: a template met twice on the way up is a cycle (a template extending itself).
    const seen = new Set<string>();
    while (node) {
      for (const s of current) if (s.t === 'block') this.blocks.set(s.name, [...(this.blocks.get(s.name) ?? []), s.body]);
      for (const s of current) if (s.t === 'set' || s.t === 'macro' || s.t === 'import' || s.t === 'fromimport') this.exec([s], frame);
      const loaded = this.loadTemplate(this.eval(node.template, frame), node);
      if (seen.has(loaded.name))
        this.fail(new EvalError(`invalid operation: cycle in template inheritance. "${loaded.name}" was referenced more than once`), node);
      seen.add(loaded.name);
      this.name = loaded.name;
      current = loaded.body;
      node = this.findExtends(current);
    }
    this.ownBody = current;
    this.exec(current, frame);
    return this.out.join('');
  }

  private loadTemplate(nameVal: unknown, at: { line: number; col: number }): { name: string; body: Stmt[] } {
    const name = toStr(nameVal);
    const loaded = this.load(name, at);
    if (!loaded) this.fail(new EvalError(`template not found: ${name}`), at);
    return loaded;
  }

  // The loader's answer; its refusals (--safe-path) are errors at the statement's position.
  private load(name: string, at: { line: number; col: number }): { name: string; body: Stmt[] } | undefined {
    try {
      return this.opts.loader?.load(name, this.name);
    } catch (err) {
      return this.fail(err, at);
    }
  }

  // --- statements ------------------------------------------------------------------------------

  exec(body: Stmt[], frame: Frame): void {
    for (let i = 0; i < body.length; i++) this.execOne(body[i]!, frame);
  }

  // Output, counted against the size limit (limits.ts) when the count passes it.
  private emit(text: string, at: Stmt): void {
    if ((this.budget.output += text.length) > MAX_STRING) {
      this.budget.output -= text.length;
      try {
        emitted(text.length);
      } catch (err) {
        this.fail(err, at);
      }
    }
    this.out.push(text);
  }

  private execOne(s: Stmt, frame: Frame): void {
    this.at = s;
    if (--this.budget.fuel < 0) this.fail(outOfFuel(), s);
    switch (s.t) {
      case 'data':
        this.emit(s.text, s);
        return;
      case 'emit': {
        this.emit(this.format(this.eval(s.e, frame), s), s);
        return;
      }
      case 'if':
        this.exec(isTrue(this.eval(s.cond, frame)) ? s.body : s.else, frame);
        return;
      case 'for': {
        // As minijinja counts loop.depth: a loop directly inside a recursive loop is one deeper.
        const outer = currentLoopOf(frame);
        this.execFor(s, frame, this.eval(s.iter, frame), outer instanceof LoopState && outer.recurse ? outer.depth + 1 : 1);
        return;
      }
      case 'set':
        this.assign(s.target, this.eval(s.value, frame), frame);
        return;
      case 'setblock': {
        // As minijinja, the body's own `set`s stay visible after the block (Jinja2 scopes them).
        let v: unknown = this.capture(s.body, frame);
        if (s.filter) v = this.applyFilterChain(s.filter, v, frame);
        this.assign(s.target, v, frame);
        return;
      }
      case 'macro':
        frame.vars.set(s.name, this.makeMacro(s.name, s.params, s.body, frame));
        return;
      case 'callblock': {
        const caller = this.makeMacro('caller', s.params, s.body, frame);
        const call = s.call as Extract<Expr, { t: 'call' }>;
        const fn = this.eval(call.fn, frame);
        const evaluated = this.evalArgs(call.args, call.kwargs, frame);
        const args = { args: evaluated.args, kwargs: new Map(evaluated.kwargs).set('caller', caller) };
        this.out.push(this.format(this.callValue(fn, args, call), s));
        return;
      }
      case 'filterblock': {
        const text = this.capture(s.body, frame);
        this.out.push(this.format(this.applyFilterChain(s.filter, text, frame), s));
        return;
      }
      case 'autoescape': {
        // minijinja's rule: "html", "json", "none"; true is the template's own mode (HTML where
        // it has none); anything else not a string is none.
        const v = this.eval(s.value, frame);
        let mode: AutoEscape;
        if (typeof v === 'string') {
          if (v !== 'html' && v !== 'json' && v !== 'none') this.fail(new EvalError('invalid operation: invalid value to autoescape tag'), s);
          mode = v;
        } else mode = valuesEqual(v, true) ? (this.opts.autoescape === 'none' ? 'html' : this.opts.autoescape) : 'none';
        const saved = this.mode;
        this.mode = mode;
        try {
          this.exec(s.body, frame);
        } finally {
          this.mode = saved;
        }
        return;
      }
      case 'with': {
        const inner = new Frame(frame);
        for (const [t, e] of s.assigns) this.assign(t, this.eval(e, frame), inner);
        this.exec(s.body, inner);
        return;
      }
      case 'break':
        throw new BreakSignal();
      case 'continue':
        throw new ContinueSignal();
      case 'include': {
        const tv = this.eval(s.template, frame);
        const names = Array.isArray(tv) ? tv : [tv];
        for (const n of names) {
          const loaded = this.load(toStr(n), s);
          if (loaded) {
            const sub = this.renderer(loaded.name);
            try {
              this.out.push(this.nested(10, () => sub.render(loaded.body, new Frame(frame))));
            } catch (err) {
              this.fail(err, s);
            }
            return;
          }
        }
        if (!s.ignoreMissing) this.fail(new EvalError(`template not found: ${names.map(toStr).join(', ')}`), s);
        return;
      }
      case 'import':
        frame.vars.set(s.alias, this.importModule(s.template, frame, s));
        return;
      case 'fromimport': {
        const mod = this.importModule(s.template, frame, s);
        for (const [n, alias] of s.names) frame.vars.set(alias, mod.get(n));
        return;
      }
      case 'extends':
        return;
      case 'block':
        this.execBlock(s.name, [...(this.blocks.get(s.name) ?? []), s.body], frame);
        return;
    }
  }

  // `self`: the template's blocks, each callable to render it again (`{{ self.title() }}`).
  private selfObject(frame: Frame): Map<unknown, unknown> {
    return sortedMap(
      [...this.ownBlocks].map(([name, body]) => [
        name,
        new JCallable(name, () => this.captureOutput(() => this.execBlock(name, [...(this.blocks.get(name) ?? []), body], frame))),
      ]),
    );
  }

  // Renders the first body of a block's chain; `super()` in it renders the next one.
  private execBlock(name: string, chain: Stmt[][], frame: Frame): void {
    const inner = new Frame(frame);
    if (chain.length > 1) {
      inner.vars.set('super', new JCallable('super', () => this.captureOutput(() => this.execBlock(name, chain.slice(1), frame))));
    }
    const outer = this.currentBlock;
    this.currentBlock = name;
    try {
      this.exec(chain[0]!, inner);
    } finally {
      this.currentBlock = outer;
    }
  }

  // `debug()` without arguments: the render's state as minijinja prints it (Rust's Debug form),
  // with bkci's own globals, tests and filters.
  private debugState(frame: Frame): string {
    const chain: Frame[] = [];
    for (let f: Frame | null = frame; f; f = f.parent) chain.unshift(f);
    const ctx = new Map<unknown, unknown>();
    for (const f of chain) for (const k of f.vars.keys()) ctx.set(k, f.lookup(k));
    const list = (names: string[]) =>
      names.length
        ? '[\n' +
          [...names]
            .sort()
            .map((n) => `            ${quoteStr(n)},\n`)
            .join('') +
          '        ]'
        : '[]';
    const mode = this.mode === 'none' ? 'None' : this.mode === 'html' ? 'Html' : 'Json';
    return [
      'State {',
      `    name: ${quoteStr(this.name)},`,
      `    current_block: ${this.currentBlock === undefined ? 'None' : `Some(${quoteStr(this.currentBlock)})`},`,
      `    auto_escape: ${mode},`,
      `    ctx: ${debugRepr(sortedMap(ctx), '    ')},`,
      '    env: Environment {',
      '        globals: {',
      ...[...builtinGlobals.keys()].sort().map((g) => `            ${quoteStr(g)}: ${g},`),
      '        },',
      `        tests: ${list(testNames())},`,
      `        filters: ${list(filterNames())},`,
      '        templates: [],',
      '    },',
      '}',
    ].join('\n');
  }

  private importModule(template: Expr, frame: Frame, at: { line: number; col: number }): Map<unknown, unknown> {
    const loaded = this.loadTemplate(this.eval(template, frame), at);
    const sub = this.renderer(loaded.name);
    const root = new Frame(frame.parent ? rootOf(frame) : frame);
    try {
      this.nested(10, () => sub.exec(loaded.body, root));
    } catch (err) {
      this.fail(err, at);
    }
    return sortedMap(root.vars);
  }

  // Rendered output (macro bodies, captures) is safe from further escaping when autoescape is on.
  private markSafe(text: string): unknown {
    return this.mode === 'none' ? text : new SafeStr(text);
  }

  private capture(body: Stmt[], frame: Frame): unknown {
    return this.captureOutput(() => this.exec(body, frame));
  }

  // What `run` outputs, as a value (safe under autoescaping), instead of into the template's output.
  private captureOutput(run: () => void): unknown {
    const saved = this.out;
    this.out = [];
    try {
      run();
      return this.markSafe(this.out.join(''));
    } finally {
      this.out = saved;
    }
  }

  private execFor(s: Extract<Stmt, { t: 'for' }>, frame: Frame, iterable: unknown, depth: number): void {
    let items: unknown[];
    try {
      items = [...iterate(plain(iterable))];
    } catch (e) {
      this.fail(e, s.iter);
    }
    if (s.filter) {
      const filter = s.filter;
      items = items.filter((item) => {
        const f = new Frame(frame);
        this.assign(s.target, item, f);
        return isTrue(this.eval(filter, f));
      });
    }
    if (items.length === 0) {
      this.exec(s.else, frame);
      return;
    }
    const recurse = s.recursive
      ? (sub: unknown) => {
          const saved = this.out;
          this.out = [];
          try {
            this.execFor(s, frame, sub, depth + 1);
            return this.out.join('');
          } finally {
            this.out = saved;
          }
        }
      : null;
    const loop = new LoopState(items, depth, recurse);
    const inner = new Frame(frame);
    for (let i = 0; i < items.length; i++) {
      if (--this.budget.fuel < 0) this.fail(outOfFuel(), s);
      loop.index0 = i;
      inner.vars.set('loop', loop);
      this.assign(s.target, items[i], inner);
      try {
        this.exec(s.body, inner);
      } catch (e) {
        if (e instanceof BreakSignal) break;
        if (e instanceof ContinueSignal) continue;
        throw e;
      }
    }
  }

  private assign(target: Target, value: unknown, frame: Frame): void {
    switch (target.t) {
      case 'name':
        frame.vars.set(target.name, value);
        return;
      case 'nsattr': {
        const ns = frame.lookup(target.ns);
        if (!(ns instanceof Namespace))
          this.fail(new EvalError(`invalid operation: can only assign to attributes of namespaces, '${target.ns}' is ${typeName(ns)}`), target);
        ns.vars.set(target.attr, value);
        return;
      }
      case 'tuple': {
        let items: unknown[];
        try {
          items = iterate(value);
        } catch (e) {
          this.fail(e, target);
        }
        if (items.length !== target.items.length) this.fail(new EvalError(`cannot unpack ${items.length} values into ${target.items.length} names`), target);
        target.items.forEach((t, i) => this.assign(t, items[i], frame));
        return;
      }
    }
  }

  private makeMacro(name: string, params: Param[], body: Stmt[], closure: Frame): JCallable {
    const self = this;
    const captures = macroClosure(params, body);
    const macro: JCallable = new JCallable(
      name,
      ({ args, kwargs }) => {
        if (args.length > params.length) throw new EvalError(`too many arguments to macro ${name}`);
        const f = new Frame(closure);
        f.captures = captures;
        const rest = new Map(kwargs);
        const caller = rest.get('caller');
        rest.delete('caller');
        params.forEach((p, i) => {
          if (i < args.length) {
            if (rest.has(p.name)) throw new EvalError(`duplicate argument ${p.name} to macro ${name}`);
            f.vars.set(p.name, args[i]);
          } else if (rest.has(p.name)) {
            f.vars.set(p.name, rest.get(p.name));
            rest.delete(p.name);
          } else {
            // As minijinja: a default sees the macro's surroundings, not its other arguments.
            f.vars.set(p.name, p.default ? self.eval(p.default, closure) : undefined);
          }
        });
        if (rest.size) throw new EvalError(`unknown keyword argument ${[...rest.keys()][0]} to macro ${name}`);
        if (caller !== undefined) f.vars.set('caller', caller);
        f.vars.set(name, macro);
        return self.nested(1, () => self.capture(body, f));
      },
      'macro',
      new Map<string, unknown>([
        ['name', name],
        ['arguments', params.map((p) => p.name)],
        // Whether the body reads `caller` (as minijinja and Jinja2 report it).
        ['caller', JSON.stringify(body).includes('{"t":"name","name":"caller"')],
      ]),
    );
    return macro;
  }

  // How `{{ value }}` prints under the template's autoescape mode.
  private format(v: unknown, at: { line: number; col: number }): string {
    if (v instanceof SafeStr) return v.s;
    if (this.mode === 'html') return escapeHtml(toStr(v));
    if (this.mode === 'json') {
      try {
        return toJson(v, undefined, false);
      } catch (e) {
        this.fail(e, at);
      }
    }
    return toStr(v);
  }

  // --- expressions -----------------------------------------------------------------------------

  // Evaluates an expression; an error is placed at the expression. Under --strict-undefined a
  // name, attribute or item that is undefined is an error (except where lenient: `is defined`...).
  private undefinedValue(e: Expr): undefined {
    if (this.opts.strictUndefined && this.lenient === 0) {
      const what = e.t === 'name' ? `'${e.name}'` : e.t === 'getattr' ? `attribute '${e.name}'` : 'item';
      throw new EvalError(`undefined value: ${what} is undefined (--strict-undefined)`);
    }
    return undefined;
  }

  private evalLenient(e: Expr, frame: Frame, lenient: boolean): unknown {
    if (!lenient) return this.eval(e, frame);
    this.lenient++;
    try {
      return this.eval(e, frame);
    } finally {
      this.lenient--;
    }
  }

  eval(e: Expr, frame: Frame): unknown {
    try {
      if (--this.budget.fuel < 0) throw outOfFuel();
      switch (e.t) {
        case 'const':
          return e.v !== null && typeof e.v === 'object' ? new JFloat((e.v as { float: number }).float) : e.v;
        case 'name': {
          let v = frame.find(e.name);
          if (v === MISSING) v = e.name === 'self' ? this.selfObject(frame) : builtinGlobals.get(e.name);
          return v === undefined ? this.undefinedValue(e) : v;
        }
        case 'getattr': {
          const obj = this.eval(e.obj, frame);
          if (obj === undefined) throw new EvalError(`undefined value: ${exprText(e.obj)} is undefined, so its attribute '${e.name}' cannot be read`);
          const v = getAttr(plain(obj), e.name);
          return v === undefined ? this.undefinedValue(e) : v;
        }
        case 'call':
          return this.evalCall(e, frame);
        case 'filter':
          return this.applyFilterChain(e, undefined, frame);
        case 'test': {
          const input = this.evalLenient(e.input, frame, LENIENT_TESTS.has(e.name));
          const evaluated = this.evalArgs(e.args, e.kwargs, frame);
          const args = { args: evaluated.args.map(plain), kwargs: evaluated.kwargs };
          const r = applyTest(e.name, e.name === 'string' || e.name === 'safe' ? input : plain(input), args);
          return e.negate ? !r : r;
        }
        case 'bin':
          return binaryOp(e.op, plain(this.eval(e.l, frame)), plain(this.eval(e.r, frame)));
        case 'getitem': {
          const obj = this.eval(e.obj, frame);
          if (obj === undefined) throw new EvalError(`undefined value: ${exprText(e.obj)} is undefined, so it cannot be indexed`);
          const v = getItem(plain(obj), plain(this.eval(e.key, frame)));
          return v === undefined ? this.undefinedValue(e) : v;
        }
        case 'slice':
          return slice(this.eval(e.obj, frame), e.start && this.eval(e.start, frame), e.stop && this.eval(e.stop, frame), e.step && this.eval(e.step, frame));
        case 'and': {
          const l = this.eval(e.l, frame);
          return isTrue(l) ? this.eval(e.r, frame) : l;
        }
        case 'or': {
          const l = this.eval(e.l, frame);
          return isTrue(l) ? l : this.eval(e.r, frame);
        }
        case 'not':
          return !isTrue(this.eval(e.e, frame));
        case 'splat':
          throw new EvalError("invalid operation: * only spreads a call's arguments");
        case 'list':
        case 'tuple':
          return e.items.map((x) => this.eval(x, frame));
        case 'dict':
          return sortedMap(e.pairs.map(([k, v]) => [this.eval(k, frame), this.eval(v, frame)]));
        case 'neg':
          return negate(this.eval(e.e, frame));
        case 'pos': {
          const v = this.eval(e.e, frame);
          if (kindOf(v) !== 'number' && typeof v !== 'boolean') throw new EvalError('invalid operation');
          return typeof v === 'boolean' ? num(v) : v;
        }
        case 'cond':
          if (isTrue(this.eval(e.test, frame))) return this.eval(e.then, frame);
          return e.else ? this.eval(e.else, frame) : undefined;
      }
    } catch (err) {
      return this.fail(err, e);
    }
  }

  private evalArgs(args: Expr[], kwargs: [string, Expr][], frame: Frame): CallArgs {
    const values: unknown[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a.t === 'splat') values.push(...this.splatItems(this.eval(a.e, frame), a));
      else values.push(this.eval(a, frame));
    }
    if (!kwargs.length) return { args: values, kwargs: NO_KWARGS };
    const named = new Map<string, unknown>();
    for (const [k, v] of kwargs) {
      if (k !== '**') {
        named.set(k, this.eval(v, frame));
        continue;
      }
      const m = plain(this.eval(v, frame));
      const entries =
        m instanceof Map
          ? [...m]
          : m instanceof Namespace
            ? [...m.vars]
            : m === undefined || m === null
              ? []
              : this.fail(new EvalError(`invalid operation: ** needs a map, got ${typeName(m)}`), v);
      for (const [key, x] of entries) {
        const name = toStr(key);
        if (named.has(name)) this.fail(new EvalError(`invalid operation: got multiple values for keyword argument ${name}`), v);
        named.set(name, x);
      }
    }
    return { args: values, kwargs: named };
  }

  private splatItems(v: unknown, at: Expr): unknown[] {
    const k = kindOf(plain(v));
    if (k === 'undefined' || k === 'none') return [];
    if (k !== 'seq' && k !== 'iterator' && k !== 'string') return this.fail(new EvalError(`invalid operation: * needs a sequence, got ${typeName(v)}`), at);
    return [...iterate(plain(v))];
  }

  private applyFilterChain(e: Expr, input: unknown, frame: Frame): unknown {
    if (e.t !== 'filter') return this.eval(e, frame);
    const v = e.input ? this.evalFilterInput(e.input, input, frame, LENIENT_FILTERS.has(e.name)) : input;
    try {
      return applyFilter(e.name, SAFE_AWARE_FILTERS.has(e.name) ? v : plain(v), this.evalArgs(e.args, e.kwargs, frame), {
        autoescape: this.mode,
        call: (fn, a) => this.callValue(fn, a, e),
      });
    } catch (err) {
      return this.fail(err, e);
    }
  }

  private evalFilterInput(e: Expr, input: unknown, frame: Frame, lenient: boolean): unknown {
    if (e.t === 'filter') return this.applyFilterChain(e, input, frame);
    return this.evalLenient(e, frame, lenient);
  }

  private evalCall(e: Extract<Expr, { t: 'call' }>, frame: Frame): unknown {
    const args = this.evalArgs(e.args, e.kwargs, frame);
    if (e.fn.t === 'getattr') {
      const obj = plain(this.eval(e.fn.obj, frame));
      if (obj instanceof Map && obj.has(e.fn.name)) return this.callValue(obj.get(e.fn.name), args, e);
      if (obj instanceof LoopState) return this.callValue(obj.get(e.fn.name), args, e);
      if (obj instanceof Namespace && obj.vars.has(e.fn.name)) return this.callValue(obj.vars.get(e.fn.name), args, e);
      if (obj === undefined) throw new EvalError(`undefined value: ${exprText(e.fn.obj)} is undefined, so it has no method '${e.fn.name}'`);
      return callMethod(obj, e.fn.name, args);
    }
    if (e.fn.t === 'name' && e.fn.name === 'loop') {
      const loop = frame.lookup('loop');
      if (loop instanceof LoopState && loop.recurse) {
        return this.markSafe(loop.recurse(args.args[0]));
      }
    }
    const fn = this.eval(e.fn, frame);
    if (fn === DEBUG && args.args.length === 0 && args.kwargs.size === 0) return this.debugState(frame);
    return this.callValue(fn, args, e);
  }

  callValue(fn: unknown, args: CallArgs, at: { line: number; col: number }): unknown {
    if (fn instanceof JCallable) {
      try {
        return fn.fn(args);
      } catch (err) {
        if (err instanceof TemplateError) throw err;
        return this.fail(err, at);
      }
    }
    return this.fail(new EvalError(`invalid operation: ${typeName(fn)} is not callable`), at);
  }
}

// Every `{% block %}` in a template body, nested ones too (the first of a name wins).
function collectBlocks(stmts: Stmt[], out: Map<string, Stmt[]>): void {
  for (const s of stmts) {
    if (s.t === 'block' && !out.has(s.name)) out.set(s.name, s.body);
    for (const v of Object.values(s))
      if (Array.isArray(v) && v.length && typeof v[0] === 'object' && v[0] !== null && 't' in v[0]) collectBlocks(v as Stmt[], out);
  }
}

// The render context: the outermost frame.
function rootOf(frame: Frame): Frame {
  let f = frame;
  while (f.parent) f = f.parent;
  return f;
}

// Renders a parsed template against a root context.
export function renderTemplate(body: Stmt[], context: Map<string, unknown>, opts: RenderOptions): string {
  const root = new Frame(null);
  for (const [k, v] of context) root.vars.set(k, v);
  return withBudget(new Budget(opts.fuel), () => new Renderer(opts, opts.name).render(body, new Frame(root)));
}

// How an expression reads in an error message: `step.env`, `x["k"]`, or `the value` for the rest.
function exprText(e: Expr): string {
  const path = (x: Expr): string | undefined => {
    if (x.t === 'name') return x.name;
    if (x.t === 'getattr') {
      const p = path(x.obj);
      return p && `${p}.${x.name}`;
    }
    if (x.t === 'getitem' && x.key.t === 'const' && (typeof x.key.v === 'string' || typeof x.key.v === 'number')) {
      const p = path(x.obj);
      return p && `${p}[${JSON.stringify(x.key.v)}]`;
    }
    return undefined;
  };
  const p = path(e);
  return p ? `'${p}'` : 'the value';
}
