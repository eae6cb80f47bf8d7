// Global functions every template sees: range, dict, namespace, debug, lipsum, cycler, joiner, now,
// randrange.
import { now } from './datetime.js';
import { EvalError } from './errors.js';
import { charge, sized } from './limits.js';
import { type CallArgs, debugRepr, JCallable, Namespace, num, RANGES, sortedMap, toStr } from './values.js';

// The arguments of `fn` as integers (plain numbers are ints in the value model; floats are JFloat).
function intArgs(args: unknown[], fn: string): number[] {
  return args.map((a) => {
    if (typeof a !== 'number') throw new EvalError(`invalid argument: ${fn} expects integers`);
    return a;
  });
}

function range({ args, kwargs }: CallArgs): number[] {
  if (args.length < 1 || args.length > 3 || kwargs.size) throw new EvalError('invalid argument: range takes one to three integers');
  const n = intArgs(args, 'range');
  const [start, stop, step] = n.length === 1 ? [0, n[0]!, 1] : [n[0] ?? 0, n[1] ?? 0, n[2] ?? 1];
  if (step === 0) throw new EvalError('invalid argument: range step must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) {
    out.push(i);
    if (out.length > 100_000) throw new EvalError('invalid operation: range has too many elements');
  }
  charge(out.length);
  RANGES.add(out);
  return out;
}

const LOREM = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');

function lipsum({ args }: CallArgs): string {
  if (args.length > 4) throw new EvalError('too many arguments: lipsum takes at most 4');
  const n = args[0] === undefined ? 5 : num(args[0]);
  // Paragraphs of 20 to 59 words: at least ~100 characters each.
  sized(n * 100, 'lipsum text');
  charge(n);
  const paras: string[] = [];
  for (let p = 0; p < n; p++) {
    const words = Array.from({ length: 20 + ((p * 7) % 40) }, (_x, i) => LOREM[(i + p) % LOREM.length]!);
    const text = words.join(' ');
    paras.push(text[0]!.toUpperCase() + text.slice(1) + '.');
  }
  return paras.join('\n\n');
}

function cycler({ args }: CallArgs): Map<unknown, unknown> {
  if (!args.length) throw new EvalError('invalid argument: cycler needs at least one item');
  let i = 0;
  return sortedMap([
    ['next', new JCallable('next', () => args[i++ % args.length])],
    ['reset', new JCallable('reset', () => ((i = 0), null))],
  ]);
}

// The optional positional argument of dict() and namespace(): one map.
function mapArgument(args: unknown[], fn: string): Map<unknown, unknown> {
  if (args.length > 1 || (args.length === 1 && !(args[0] instanceof Map))) throw new EvalError(`invalid argument: ${fn} takes one map and keyword arguments`);
  return (args[0] as Map<unknown, unknown> | undefined) ?? new Map();
}

function joiner({ args }: CallArgs): JCallable {
  let used = false;
  const sep = args[0] === undefined ? ', ' : toStr(args[0]);
  return new JCallable('joiner', () => (used ? sep : ((used = true), '')));
}

// debug(x): the value in Rust's pretty Debug form; several values: the list of them. Without
// arguments the renderer answers with its state (interpreter.ts), so this one is never called so.
export const DEBUG = new JCallable('debug', ({ args, kwargs }) => {
  const all = [...args, ...kwargs.values()];
  return debugRepr(all.length === 1 ? all[0] : all);
});

export const builtinGlobals = new Map<string, unknown>([
  ['range', new JCallable('range', range)],
  ['debug', DEBUG],
  ['dict', new JCallable('dict', ({ args, kwargs }) => sortedMap([...mapArgument(args, 'dict'), ...kwargs]))],
  [
    'namespace',
    new JCallable('namespace', ({ args, kwargs }) => {
      const ns = new Namespace();
      for (const [k, v] of mapArgument(args, 'namespace')) ns.vars.set(toStr(k), v);
      for (const [k, v] of kwargs) ns.vars.set(k, v);
      return ns;
    }),
  ],
  ['lipsum', new JCallable('lipsum', lipsum)],
  ['cycler', new JCallable('cycler', cycler)],
  ['joiner', new JCallable('joiner', joiner)],
  [
    'randrange',
    new JCallable('randrange', ({ args }) => {
      const n = intArgs(args, 'randrange');
      if (n.length < 1 || n.length > 2) throw new EvalError('invalid argument: randrange takes one or two integers');
      const [lo, hi] = n.length === 1 ? [0, n[0]!] : [n[0]!, n[1]!];
      return hi <= lo ? lo : lo + Math.floor(Math.random() * (hi - lo));
    }),
  ],
  [
    'now',
    new JCallable('now', ({ args, kwargs }) => {
      if (args.length || kwargs.size) throw new EvalError('too many arguments: now() takes none');
      return now();
    }),
  ],
]);
