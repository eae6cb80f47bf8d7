// Operators with minijinja's semantics: numeric tower int/float (bools count as numbers), string
// and sequence concatenation, containment, and errors for undefined operands.
import { EvalError } from './errors.js';
import { compareValues, isFloat, isNumber, JFloat, kindOf, mkFloat, num, seqItems, toStr, typeName, valuesEqual } from './values.js';
import type { BinOp } from './ast.js';
import { items, repeatString, sized } from './limits.js';

const isNumLike = (v: unknown) => isNumber(v) || typeof v === 'boolean';

function unsupported(op: string, a: unknown, b: unknown): never {
  throw new EvalError(`invalid operation: tried to use ${op} operator on unsupported types ${typeName(a)} and ${typeName(b)}`);
}

function arith(op: string, a: unknown, b: unknown, ints: (x: number, y: number) => number, floats: (x: number, y: number) => number): unknown {
  if (!isNumLike(a) || !isNumLike(b)) unsupported(op, a, b);
  const x = num(a);
  const y = num(b);
  if (isFloat(a) || isFloat(b)) return mkFloat(floats(x, y));
  const r = ints(x, y);
  // minijinja's integers are 128-bit: past that, an error.
  if (Math.abs(r) >= 2 ** 127) throw new EvalError(`invalid operation: unable to calculate ${toStr(a)} ${op} ${toStr(b)}`);
  // Past 2^53 an int is no longer exact in JavaScript (minijinja widens to i128): it stays an
  // integer, printed with all its digits, those of the nearest double.
  return Number.isInteger(r) ? r : mkFloat(r);
}

export function binaryOp(op: BinOp, a: unknown, b: unknown): unknown {
  switch (op) {
    case '+':
      if (typeof a === 'string' && typeof b === 'string') {
        sized(a.length + b.length);
        return a + b;
      }
      if (kindOf(a) === 'seq' && kindOf(b) === 'seq') {
        const [x, y] = [seqItems(a), seqItems(b)];
        items(x.length + y.length);
        return [...x, ...y];
      }
      return arith(
        '+',
        a,
        b,
        (x, y) => x + y,
        (x, y) => x + y,
      );
    case '-':
      return arith(
        '-',
        a,
        b,
        (x, y) => x - y,
        (x, y) => x - y,
      );
    case '*':
      // A string or sequence repeated (either way round) a whole, non-negative number of times.
      for (const [x, c] of [
        [a, b],
        [b, a],
      ]) {
        const str = typeof x === 'string';
        if (!str && kindOf(x) !== 'seq') continue;
        const n = typeof c === 'boolean' ? Number(c) : typeof c === 'number' ? c : c instanceof JFloat ? c.v : undefined;
        if (n === undefined) continue;
        if (!Number.isInteger(n) || n < 0)
          throw new EvalError(`invalid operation: ${str ? 'strings' : 'sequences and iterables'} can only be multiplied with integers`);
        if (str) return repeatString(x as string, n);
        const xs = seqItems(x);
        items(xs.length * n);
        return Array.from({ length: xs.length ? n : 0 }, () => xs).flat();
      }
      return arith(
        '*',
        a,
        b,
        (x, y) => x * y,
        (x, y) => x * y,
      );
    case '/':
      if (!isNumLike(a) || !isNumLike(b)) unsupported('/', a, b);
      return mkFloat(num(a) / num(b));
    case '//':
      if (!isNumLike(a) || !isNumLike(b)) unsupported('//', a, b);
      if (!isFloat(a) && !isFloat(b) && num(b) === 0) throw new EvalError(`invalid operation: unable to calculate ${toStr(a)} // ${toStr(b)}`);
      return arith('//', a, b, divEuclid, divEuclid);
    case '%':
      if (!isNumLike(a) || !isNumLike(b)) unsupported('%', a, b);
      if (!isFloat(a) && !isFloat(b) && num(b) === 0) throw new EvalError(`invalid operation: unable to calculate ${toStr(a)} % ${toStr(b)}`);
      return arith('%', a, b, remEuclid, (x, y) => x % y);
    case '**':
      if (!isNumLike(a) || !isNumLike(b)) unsupported('**', a, b);
      if (!isFloat(a) && !isFloat(b)) {
        // Integers: a negative exponent is an error in minijinja (Jinja2 gives a float).
        if (num(b) < 0) throw new EvalError(`invalid operation: unable to calculate ${toStr(a)} ** ${toStr(b)}`);
        return arith(
          '**',
          a,
          b,
          (x, y) => x ** y,
          (x, y) => x ** y,
        );
      }
      return mkFloat(num(a) ** num(b));
    case '~': {
      const [x, y] = [toStr(a), toStr(b)];
      sized(x.length + y.length);
      return x + y;
    }
    case '==':
      return valuesEqual(a, b);
    case '!=':
      return !valuesEqual(a, b);
    case '<':
      return compareValues(a, b) < 0;
    case '>':
      return compareValues(a, b) > 0;
    case '<=':
      return compareValues(a, b) <= 0;
    case '>=':
      return compareValues(a, b) >= 0;
    case 'in':
      return contains(b, a);
    case 'not in':
      return !contains(b, a);
  }
}

// minijinja's arithmetic (Rust's): `//` is Euclidean division for ints and floats, `%` is the
// Euclidean remainder for ints (never negative) and the truncated remainder for floats. Python
// floors instead; the two differ only for a negative divisor (and negative float dividends).
function remEuclid(x: number, y: number): number {
  const r = x % y;
  return r < 0 ? r + Math.abs(y) : r;
}

function divEuclid(x: number, y: number): number {
  const q = Math.trunc(x / y);
  return x % y < 0 ? (y > 0 ? q - 1 : q + 1) : q;
}

export function contains(container: unknown, item: unknown): boolean {
  switch (kindOf(container)) {
    case 'undefined':
      return false;
    case 'string':
      return (container as string).includes(toStr(item));
    case 'seq':
    case 'iterator':
      return seqItems(container).some((x) => valuesEqual(x, item));
    case 'map':
      return [...(container as Map<unknown, unknown>).keys()].some((k) => valuesEqual(k, item));
    default:
      throw new EvalError('invalid operation: cannot perform a containment check on this value');
  }
}

export function negate(v: unknown): unknown {
  if (typeof v === 'number') return -v;
  if (v instanceof JFloat) return mkFloat(-v.v);
  if (typeof v === 'boolean') return v ? -1 : 0;
  throw new EvalError('invalid operation');
}
