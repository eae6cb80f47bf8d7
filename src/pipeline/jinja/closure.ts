// Which names a macro (or a call block's body) reads from where it was defined, worked out as
// minijinja's compiler does: walking the body in order, a name read before anything assigned it is
// taken from the surroundings; a name assigned first (`{% set x = x ~ '!' %}` assigns `x` before
// reading it) is the macro's own, and its reads never see the surroundings' `x`. Loops, if-branches
// and other blocks keep their own assignments to themselves while walking.
import type { Expr, Param, Stmt, Target } from './ast.js';

class Tracker {
  readonly out = new Set<string>();
  private readonly scopes: Set<string>[] = [new Set()];

  private assigned(name: string): boolean {
    return this.scopes.some((s) => s.has(name));
  }
  assign(name: string): void {
    this.scopes[this.scopes.length - 1]!.add(name);
  }
  scoped(fn: () => void): void {
    this.scopes.push(new Set());
    fn();
    this.scopes.pop();
  }

  target(t: Target): void {
    if (t.t === 'name') this.assign(t.name);
    else if (t.t === 'tuple') t.items.forEach((x) => this.target(x));
    // `ns.attr`: neither an assignment nor a read of `ns`.
  }

  expr(e: Expr | null): void {
    if (!e) return;
    switch (e.t) {
      case 'name':
        if (!this.assigned(e.name)) {
          this.out.add(e.name);
          this.assign(e.name);
        }
        return;
      case 'const':
        return;
      case 'list':
      case 'tuple':
        e.items.forEach((x) => this.expr(x));
        return;
      case 'dict':
        for (const [k, v] of e.pairs) {
          this.expr(k);
          this.expr(v);
        }
        return;
      case 'getattr':
        this.expr(e.obj);
        return;
      case 'getitem':
        this.expr(e.obj);
        this.expr(e.key);
        return;
      case 'slice':
        this.expr(e.obj);
        this.expr(e.start);
        this.expr(e.stop);
        this.expr(e.step);
        return;
      case 'call':
        this.expr(e.fn);
        this.args(e.args, e.kwargs);
        return;
      case 'filter':
      case 'test':
        this.expr(e.input);
        this.args(e.args, e.kwargs);
        return;
      case 'bin':
      case 'and':
      case 'or':
        this.expr(e.l);
        this.expr(e.r);
        return;
      case 'not':
      case 'neg':
      case 'pos':
      case 'splat':
        this.expr(e.e);
        return;
      case 'cond':
        this.expr(e.test);
        this.expr(e.then);
        this.expr(e.else);
        return;
    }
  }

  args(args: Expr[], kwargs: [string, Expr][]): void {
    args.forEach((x) => this.expr(x));
    kwargs.forEach(([, x]) => this.expr(x));
  }

  macro(params: Param[], body: Stmt[], declareCaller: boolean): void {
    if (declareCaller) this.assign('caller');
    params.forEach((p) => this.assign(p.name));
    params.forEach((p) => this.expr(p.default));
    this.walk(body);
  }

  walk(stmts: Stmt[]): void {
    for (const s of stmts) this.stmt(s);
  }

  stmt(s: Stmt): void {
    switch (s.t) {
      case 'emit':
        this.expr(s.e);
        return;
      case 'for':
        this.scoped(() => {
          this.assign('loop');
          this.expr(s.iter);
          this.target(s.target);
          this.expr(s.filter);
          this.walk(s.body);
        });
        this.scoped(() => this.walk(s.else));
        return;
      case 'if':
        this.expr(s.cond);
        this.scoped(() => this.walk(s.body));
        this.scoped(() => this.walk(s.else));
        return;
      case 'with':
        this.scoped(() => {
          for (const [t, e] of s.assigns) {
            this.target(t);
            this.expr(e);
          }
          this.walk(s.body);
        });
        return;
      case 'set':
        this.target(s.target);
        this.expr(s.value);
        return;
      case 'setblock':
        this.target(s.target);
        this.scoped(() => this.walk(s.body));
        return;
      case 'autoescape':
      case 'filterblock':
        this.scoped(() => this.walk(s.body));
        return;
      case 'block':
        this.scoped(() => {
          this.assign('super');
          this.walk(s.body);
        });
        return;
      case 'import':
        this.assign(s.alias);
        return;
      case 'fromimport':
        for (const [, alias] of s.names) this.assign(alias);
        return;
      case 'macro':
        this.assign(s.name);
        this.scoped(() => this.macro(s.params, s.body, true));
        return;
      case 'callblock': {
        this.expr(s.call);
        this.scoped(() => this.macro(s.params, s.body, true));
        return;
      }
      default:
        return; // data, include, extends, break, continue
    }
  }
}

const cache = new WeakMap<Stmt[], ReadonlySet<string>>();

// The names a macro with these parameters and body takes from its surroundings.
export function macroClosure(params: Param[], body: Stmt[]): ReadonlySet<string> {
  let names = cache.get(body);
  if (!names) {
    const t = new Tracker();
    t.macro(params, body, false);
    // `caller` is the macro's own when it is called with one, never its surroundings'.
    t.out.delete('caller');
    names = t.out;
    cache.set(body, names);
  }
  return names;
}
