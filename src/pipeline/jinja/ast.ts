// The Jinja syntax tree bkci evaluates. Positions are 1-based template line and column.
export interface Pos {
  line: number;
  col: number;
}

export type Expr = Pos &
  (
    | { t: 'const'; v: unknown }
    | { t: 'name'; name: string }
    | { t: 'list'; items: Expr[] }
    | { t: 'tuple'; items: Expr[] }
    | { t: 'dict'; pairs: [Expr, Expr][] }
    | { t: 'getattr'; obj: Expr; name: string }
    | { t: 'getitem'; obj: Expr; key: Expr }
    | { t: 'slice'; obj: Expr; start: Expr | null; stop: Expr | null; step: Expr | null }
    | { t: 'call'; fn: Expr; args: Expr[]; kwargs: [string, Expr][] }
    | { t: 'filter'; name: string; input: Expr | null; args: Expr[]; kwargs: [string, Expr][] }
    | { t: 'test'; name: string; input: Expr; args: Expr[]; kwargs: [string, Expr][]; negate: boolean }
    | { t: 'bin'; op: BinOp; l: Expr; r: Expr }
    | { t: 'and' | 'or'; l: Expr; r: Expr }
    | { t: 'not' | 'neg' | 'pos'; e: Expr }
    | { t: 'cond'; test: Expr; then: Expr; else: Expr | null }
    // `*xs` in a call's arguments (Jinja2's splatting); `**m` is a keyword argument named '**'.
    | { t: 'splat'; e: Expr }
  );

export type BinOp = '+' | '-' | '*' | '/' | '//' | '%' | '**' | '~' | '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in' | 'not in';

export type Target = Pos & ({ t: 'name'; name: string } | { t: 'tuple'; items: Target[] } | { t: 'nsattr'; ns: string; attr: string });

export type Stmt = Pos &
  (
    | { t: 'data'; text: string }
    | { t: 'emit'; e: Expr }
    | { t: 'if'; cond: Expr; body: Stmt[]; else: Stmt[] }
    | { t: 'for'; target: Target; iter: Expr; filter: Expr | null; recursive: boolean; body: Stmt[]; else: Stmt[] }
    | { t: 'set'; target: Target; value: Expr }
    | { t: 'setblock'; target: Target; body: Stmt[]; filter: Expr | null }
    | { t: 'macro'; name: string; params: Param[]; body: Stmt[] }
    | { t: 'callblock'; call: Expr; params: Param[]; body: Stmt[] }
    | { t: 'filterblock'; filter: Expr; body: Stmt[] }
    | { t: 'with'; assigns: [Target, Expr][]; body: Stmt[] }
    | { t: 'autoescape'; value: Expr; body: Stmt[] }
    | { t: 'break' | 'continue' }
    | { t: 'include'; template: Expr; ignoreMissing: boolean }
    | { t: 'import'; template: Expr; alias: string }
    | { t: 'fromimport'; template: Expr; names: [string, string][] }
    | { t: 'extends'; template: Expr }
    | { t: 'block'; name: string; body: Stmt[] }
  );

export interface Param {
  name: string;
  default: Expr | null;
}
