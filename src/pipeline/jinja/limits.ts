// The engine's limits on one render, as minijinja has them (size limits on values, a recursion
// limit, and optional fuel): a template may not make a value, or an output, that would exhaust
// memory, nor work without end. One mechanism for all of them: the render in progress holds a
// Budget, and every place that builds something whose size a template chooses (a repeat, a padding,
// a width, a list) asks `sized`/`items` first, while statements, expressions, loop iterations and
// items made spend fuel. An exhausted limit is an EvalError, which the renderer places at the
// template position being evaluated.
import { EvalError } from './errors.js';

// The longest string (in UTF-16 code units) a value, or the whole output, may be: 100 million
// characters, 100-200 MB. Real pipelines are a few hundred KB.
export const MAX_STRING = 100_000_000;
// The most items a list made by the template may have (list repetition, range, slice...).
export const MAX_ITEMS = 10_000_000;
// The fuel a render has unless --fuel says otherwise. One unit is a statement, an expression, a
// loop iteration or an item made; vLLM's template spends under 100,000 over its whole test list,
// so this is 500 times that, and about 2-3 seconds of CPU on a small machine before the error.
export const DEFAULT_FUEL = 50_000_000;

export class Budget {
  // Characters emitted so far (output and captures).
  output = 0;
  constructor(public fuel: number = DEFAULT_FUEL) {}
}

let active: Budget | undefined;

// Runs a render with its budget; renders do not interleave (they are synchronous).
export function withBudget<T>(budget: Budget, run: () => T): T {
  const saved = active;
  active = budget;
  try {
    return run();
  } finally {
    active = saved;
  }
}

// Spends `n` units of fuel. Once the fuel is gone, every later charge fails too, so an error
// swallowed on the way (a filter that turns errors into undefined) cannot let the render continue.
export function charge(n = 1): void {
  if (active !== undefined && (active.fuel -= n) < 0) throw outOfFuel();
}

export const outOfFuel = () =>
  new EvalError('out of fuel: the template did more work than the render allows (an endless or very long loop?); --fuel N raises the limit');

// The budget of the render in progress (the renderer keeps it, and spends its fuel inline on its
// hot path: a decrement and a compare per node, no call); outside a render, one without end.
export const activeBudget = (): Budget => active ?? new Budget(Infinity);

const formatCount = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));

// Checks that a string of `length` characters may be made; returns the length.
export function sized(length: number, what = 'a string'): number {
  if (!(length <= MAX_STRING))
    throw new EvalError(`invalid operation: ${what} of ${formatCount(length)} characters would exceed the size limit (${formatCount(MAX_STRING)} characters)`);
  return length;
}

// Checks that a list of `n` items may be made, and spends fuel for making them.
export function items(n: number, what = 'a list'): number {
  if (!(n <= MAX_ITEMS))
    throw new EvalError(`invalid operation: ${what} of ${formatCount(n)} items would exceed the size limit (${formatCount(MAX_ITEMS)} items)`);
  charge(n);
  return n;
}

// `s` repeated `n` times, refused when too long.
export function repeatString(s: string, n: number): string {
  if (s.length === 0 || n <= 0) return '';
  sized(s.length * n);
  charge(Math.ceil((s.length * n) / 1024));
  return s.repeat(n);
}

// Counts emitted output; refuses output past the size limit.
export function emitted(length: number): void {
  if (active === undefined) return;
  active.output += length;
  if (active.output > MAX_STRING) sized(active.output, 'the output');
}

// What a JavaScript engine error means to a template author: V8's own limits reached anyway (a
// string or array past its maximum, a stack overflow on very deep data) become located errors.
export function engineLimitError(err: unknown): EvalError | undefined {
  if (!(err instanceof RangeError)) return undefined;
  if (/Invalid (string|array|typed array) length|Array buffer allocation failed/i.test(err.message))
    return new EvalError(`invalid operation: the value would exceed the size limit (${formatCount(MAX_STRING)} characters)`);
  if (/call stack/i.test(err.message)) return new EvalError('invalid operation: the value is nested too deeply (or the template recurses too deeply)');
  return undefined;
}
