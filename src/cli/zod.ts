// The zod the commands' input schemas are written with: zod's classic API (z.string().min(1).optional()),
// built on zod/mini. Every command checks its input with one of these (src/cli/command.ts), once per
// process, so what counts is loading zod and building the schema, not parsing: classic zod gives each
// schema instance some fifty methods and loads its whole API, which was ~25M instructions of a
// `pipeline render` (loading 10M, building the render's schema 13M); zod/mini with the few methods
// below is ~2M (docs/performance.md). Same checks, same issues (codes, paths, the messages a schema
// gives), and the same types: to TypeScript this is classic zod's API, so a method classic zod has and
// this does not is a TypeError when the command runs (test/cli/zod.test.ts lists what src/cli uses).
import type { array, boolean, enum as zenum, number, object, record, string, tuple } from 'zod';
import * as m from 'zod/mini';

export interface Zod {
  array: typeof array;
  boolean: typeof boolean;
  enum: typeof zenum;
  number: typeof number;
  object: typeof object;
  record: typeof record;
  string: typeof string;
  tuple: typeof tuple;
}

type Mini = m.ZodMiniType;
// What the commands give a check: its message.
type Params = string | { error?: string; message?: string };

const isNumber = (s: Mini) => s._zod.def.type === 'number';

// The chained methods of classic zod that src/cli uses, each as classic zod defines it (a check added
// to a copy of the schema, or the schema wrapped).
const METHODS = {
  optional(this: Mini) {
    return chain(m.optional(this));
  },
  min(this: Mini, n: number, params?: Params) {
    return chain(this.check(isNumber(this) ? m.gte(n, params) : m.minLength(n, params)));
  },
  max(this: Mini, n: number, params?: Params) {
    return chain(this.check(isNumber(this) ? m.lte(n, params) : m.maxLength(n, params)));
  },
  positive(this: Mini, params?: Params) {
    return chain(this.check(m.gt(0, params)));
  },
  int(this: Mini, params?: Params) {
    return chain(this.check(m.int(params)));
  },
  regex(this: Mini, re: RegExp, params?: Params) {
    return chain(this.check(m.regex(re, params)));
  },
  trim(this: Mini) {
    return chain(this.check(m.trim()));
  },
  refine(this: Mini, fn: (v: unknown) => unknown, params?: Params) {
    return chain(this.check(m.refine(fn, params)));
  },
};

export const CHAINED_METHODS: readonly string[] = Object.keys(METHODS);

function chain<S extends Mini>(s: S): S {
  return Object.assign(s, METHODS);
}

const wrap =
  <A extends unknown[]>(make: (...a: A) => Mini) =>
  (...a: A) =>
    chain(make(...a));

export const z = {
  array: wrap(m.array as (...a: unknown[]) => Mini),
  boolean: wrap(m.boolean as (...a: unknown[]) => Mini),
  enum: wrap(m.enum as (...a: unknown[]) => Mini),
  number: wrap(m.number as (...a: unknown[]) => Mini),
  object: wrap(m.object as (...a: unknown[]) => Mini),
  record: wrap(m.record as (...a: unknown[]) => Mini),
  string: wrap(m.string as (...a: unknown[]) => Mini),
  tuple: wrap(m.tuple as (...a: unknown[]) => Mini),
} as unknown as Zod;
