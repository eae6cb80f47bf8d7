// Jinja tests (`x is defined`, `x is divisibleby(3)`) as minijinja defines them: strings and maps
// are not sequences, numbers include bools only for `number`-agnostic comparisons.
import { EvalError } from './errors.js';
import { hasFilter } from './filters.js';
import { contains } from './ops.js';
import { type CallArgs, compareValues, isTrue, JCallable, JFloat, kindOf, num, RANGES, SafeStr, valuesEqual } from './values.js';

type Test = (v: unknown, args: unknown[]) => boolean;

const cmp =
  (f: (c: number) => boolean): Test =>
  (v, [o]) =>
    f(compareValues(v, o));
const numeric = (v: unknown) => typeof v === 'number' || typeof v === 'boolean' || v instanceof JFloat;
const integral = (v: unknown): number | undefined => (numeric(v) && Number.isInteger(num(v)) ? num(v) : undefined);
// Unicode case classes, built on first use.
const CASED: { lower?: RegExp; upper?: RegExp } = {};
function requireString(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof SafeStr) return v.s;
  throw new EvalError('invalid operation: value is not a string');
}
const isStr = (v: unknown): v is string => typeof v === 'string';

const TESTS: Record<string, Test> = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  true: (v) => v === true,
  false: (v) => v === false,
  boolean: (v) => typeof v === 'boolean',
  number: (v) => kindOf(v) === 'number',
  integer: (v) => typeof v === 'number',
  // Whether a filter or test of that name exists (bkci's own, the superset included).
  filter: (v) => hasFilter(requireString(v)),
  test: (v) => hasTest(requireString(v)),
  float: (v) => v instanceof JFloat,
  string: (v) => isStr(v) || v instanceof SafeStr,
  sequence: (v) => kindOf(v) === 'seq' && !RANGES.has(v as unknown[]),
  mapping: (v) => kindOf(v) === 'map',
  // Undefined and none iterate as nothing, so they are iterable (as minijinja says).
  iterable: (v) => ['seq', 'map', 'string', 'iterator', 'undefined', 'none'].includes(kindOf(v)),
  callable: (v) => v instanceof JCallable,
  // Integers, bools as 0/1 and floats with an integral value, as minijinja reads them.
  odd: (v) => {
    const n = integral(v);
    return n !== undefined && Math.abs(n % 2) === 1;
  },
  even: (v) => integral(v) !== undefined && integral(v)! % 2 === 0,
  divisibleby: (v, [d]) => {
    if (!numeric(v) || !numeric(d) || num(d) === 0) return false;
    return num(v) % num(d) === 0;
  },
  eq: (v, [o]) => valuesEqual(v, o),
  ne: (v, [o]) => !valuesEqual(v, o),
  lt: cmp((c) => c < 0),
  le: cmp((c) => c <= 0),
  gt: cmp((c) => c > 0),
  ge: cmp((c) => c >= 0),
  in: (v, [seq]) => contains(seq, v),
  sameas: (v, [o]) => v === o || (v instanceof JFloat && o instanceof JFloat && v.v === o.v),
  // Every character lower (upper) case, as minijinja checks it: "a1" is not lower, "" is.
  lower: (v) => (CASED.lower ??= /^\p{Lowercase}*$/u).test(requireString(v)),
  upper: (v) => (CASED.upper ??= /^\p{Uppercase}*$/u).test(requireString(v)),
  startingwith: (v, [p]) => isStr(v) && isStr(p) && v.startsWith(p),
  endingwith: (v, [p]) => isStr(v) && isStr(p) && v.endsWith(p),
  containing: (v, [p]) => contains(v, p),
  safe: (v) => v instanceof SafeStr,
};
const ALIASES: Record<string, string> = {
  int: 'integer',
  equalto: 'eq',
  '==': 'eq',
  '!=': 'ne',
  lessthan: 'lt',
  '<': 'lt',
  '<=': 'le',
  greaterthan: 'gt',
  '>': 'gt',
  '>=': 'ge',
  escaped: 'safe',
};

// The tests that take an argument (`x is divisibleby 3`, `x is in list`); the rest take none.
const ONE_ARGUMENT = new Set(['divisibleby', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'in', 'sameas', 'startingwith', 'endingwith', 'containing']);

export function testNames(): string[] {
  return [...Object.keys(TESTS), ...Object.keys(ALIASES)];
}

export function hasTest(name: string): boolean {
  return Object.hasOwn(TESTS, name) || Object.hasOwn(ALIASES, name);
}

export function applyTest(name: string, v: unknown, call: CallArgs): boolean {
  const key = Object.hasOwn(TESTS, name) ? name : ALIASES[name];
  const t = key ? TESTS[key] : undefined;
  if (!t) throw new EvalError(`unknown test: test ${name} is unknown`);
  const args = [...call.args, ...call.kwargs.values()];
  // More arguments than the test takes is an error, as in minijinja and Jinja2.
  if (args.length > (ONE_ARGUMENT.has(key!) ? 1 : 0))
    throw new EvalError(`too many arguments: test ${name} takes ${ONE_ARGUMENT.has(key!) ? 'one argument' : 'no arguments'}`);
  return isTrue(t(v, args));
}
