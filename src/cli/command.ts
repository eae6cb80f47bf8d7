// The shape every command under src/cli/<group>/<command>.ts follows, and the helpers it shares:
//   flags (commander parses values with the argParsers below, refuses conflicts)
//   -> checked input (a zod schema; a bad value is exit 2 naming its flag)
//   -> run(input, io): one domain call and one output writer (src/util/output.ts).
// Each command factory takes an optional `run`, as gh's `runF`: a test passes its own to see the
// checked input without running the domain.
import type { Argument, Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ZodType, core } from 'zod';
import type { Zod } from './zod.js';

type ZodIssue = core.$ZodIssue;
import { UsageError } from '../util/errors.js';
import type { Io } from '../util/io.js';

export type RunF<I> = (input: I, io: Io) => Promise<void>;

// A schema built on demand: zod loads only when a command runs, not when the tree is defined.
export type Schema<T> = (z: Zod) => ZodType<T>;

// Checks the input a command assembled from its flags and arguments. The first problem is a
// UsageError naming the flag (or argument) and what is expected; never zod's own text.
export async function checkInput<T>(cmd: Command, schema: Schema<T>, raw: Record<string, unknown>): Promise<T> {
  const { z } = await import('./zod.js');
  // One parse per process: zod's JIT (a parser compiled with new Function for each object schema)
  // costs more than it saves there: the parse in a render took ~7.6 ms with it, ~1.2 ms without.
  const r = schema(z).safeParse(raw, { jitless: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  // A value inside a group of the input (render's `request.template`) is named by its own flag or
  // argument, and is its own value.
  const nested = issue.path.length > 1 && typeof issue.path[0] === 'string' && !names(cmd, issue.path[0]);
  const key = nested ? [...issue.path].reverse().find((k) => typeof k === 'string' && names(cmd, k)) : issue.path[0];
  const name = typeof key === 'string' ? flagName(cmd, key) : 'input';
  const value = nested ? shown(issue.path, raw) : typeof key === 'string' ? raw[key] : undefined;
  if (value === undefined || value === '') throw new UsageError(`${name} is required${customText(issue) ? `: ${customText(issue)}` : ''}`);
  throw new UsageError(`${name} ${JSON.stringify(shown(issue.path, raw))}: ${customText(issue) ?? 'not a valid value'}`);
}

// The message a schema gave for the issue (`{ error: '...' }`, refine), if any: zod's own default
// messages ("Invalid input: expected string...") are library text and are never shown.
function customText(issue: ZodIssue): string | undefined {
  return /^(?:Invalid|Too (?:big|small)|Expected|Unrecognized)/.test(issue.message) ? undefined : issue.message;
}

function shown(path: PropertyKey[], raw: Record<string, unknown>): unknown {
  let v: unknown = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') break;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return typeof v === 'object' && v !== null ? String(path.at(-1)) : v;
}

// Whether an input key is an option's or an argument's.
const names = (cmd: Command, key: string): boolean =>
  cmd.options.some((o) => o.attributeName() === key) || (cmd.registeredArguments as readonly Argument[]).some((a) => a.name() === key);

// `--gpus-per-agent` for the input key gpusPerAgent; `<build>` for an argument.
export function flagName(cmd: Command, key: string): string {
  const opt = cmd.options.find((o) => o.attributeName() === key);
  if (opt) return opt.long ?? opt.short ?? key;
  const arg = (cmd.registeredArguments as readonly Argument[]).find((a) => a.name() === key);
  return arg ? `<${arg.name()}>` : key;
}

// --- value parsers for commander's argParser: each throws InvalidArgumentError, which commander
// reports naming the flag (exit 2).

function invalid(message: string): never {
  throw new InvalidArgumentError(message);
}

// A whole number of at least `min` (digits only: no 1e3, 0x10, 1.0 or -1).
export const wholeNumber =
  (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max)
      invalid(`expected a whole number${min > 0 ? ` of at least ${min}` : ''}${max < Number.MAX_SAFE_INTEGER ? ` and at most ${max}` : ''}`);
    return n;
  };

// Wraps a domain parser that throws a UsageError (parseBytes, parseDuration) for argParser.
export const viaUsage =
  <T>(parse: (v: string) => T) =>
  (v: string): T => {
    try {
      return parse(v);
    } catch (err) {
      if (err instanceof UsageError) invalid(err.message.replace(/^\S+ "[^"]*": /, '') + (err.hint ? `\nhint: ${err.hint}` : ''));
      throw err;
    }
  };

// For a repeatable option: each use appends its value.
export const collect = (v: string, prev: string[]): string[] => [...prev, v];

// A comma-separated list, items trimmed, empty items dropped.
export const list = (v: string | undefined): string[] | undefined =>
  v
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

// For a repeatable KEY=VALUE option.
export const collectPair = (v: string, prev: [string, string][] = []): [string, string][] => {
  const i = v.indexOf('=');
  if (i <= 0) invalid('expected KEY=VALUE');
  return [...prev, [v.slice(0, i), v.slice(i + 1)]];
};

// "1 job", "2 jobs".
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

// An environment variable's value, treating empty as unset (as Buildkite's own tools do).
export const envValue = (io: Pick<Io, 'env'>, name: string): string | undefined => {
  const v = io.env[name];
  return v === undefined || v === '' ? undefined : v;
};
