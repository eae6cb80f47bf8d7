// src/cli/zod.ts: classic zod's API over zod/mini, for the commands' input checks. It must accept and
// refuse what classic zod does, with the same issues, and have every method src/cli chains on a schema.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as classic from 'zod';
import { CHAINED_METHODS, z, type Zod } from '../../src/cli/zod.js';

// The methods chained on z.<kind>(...) in a source text: each call's balanced parentheses skipped.
function chainedMethods(src: string): Set<string> {
  const found = new Set<string>();
  const skipParens = (i: number): number => {
    let depth = 0;
    for (; i < src.length; i++) {
      const c = src[i];
      if (c === '(') depth++;
      else if (c === ')' && --depth === 0) return i + 1;
      else if (c === "'" || c === '"' || c === '`') {
        for (i++; i < src.length && src[i] !== c; i++) if (src[i] === '\\') i++;
      }
    }
    return i;
  };
  for (const m of src.matchAll(/\bz\.(?:array|boolean|enum|number|object|record|string|tuple)\(/g)) {
    let i = skipParens(m.index + m[0].length - 1);
    for (;;) {
      const next = /^\s*\.(\w+)\(/.exec(src.slice(i, i + 80));
      if (!next) break;
      found.add(next[1]!);
      i = skipParens(i + next[0].length - 1);
    }
  }
  return found;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the commands’ zod', () => {
  it('has every method src/cli chains on a schema', () => {
    const used = new Set<string>();
    for (const f of sources(join(import.meta.dirname, '../../src/cli'))) for (const m of chainedMethods(readFileSync(f, 'utf8'))) used.add(m);
    expect(used.size).toBeGreaterThan(3);
    expect([...used].filter((m) => !CHAINED_METHODS.includes(m))).toEqual([]);
  });

  // The same schema built with classic zod and with src/cli/zod.ts, fed the same inputs.
  const cases: [string, (z: Zod) => classic.ZodType, unknown[]][] = [
    ['string min/optional', (z) => z.object({ a: z.string().min(1, { error: 'a file' }).optional() }), [{}, { a: '' }, { a: 'x' }, { a: 3 }]],
    [
      'string max, regex',
      (z) =>
        z
          .string()
          .max(3)
          .regex(/^[a-z]+$/, 'letters'),
      ['abc', 'abcd', 'ab1', ''],
    ],
    ['trim then min', (z) => z.string().trim().min(1, 'not blank'), ['  ', ' a ', 'b']],
    ['number int positive', (z) => z.number().int().positive(), [1, 0, -2, 1.5, 2 ** 60, '3', Number.NaN]],
    ['number min max', (z) => z.number().min(2, { error: 'two or more' }).max(5), [1, 2, 5, 6]],
    ['array min', (z) => z.array(z.string()).min(1, { error: 'at least one' }), [[], ['a'], [1], 'a']],
    ['enum, boolean', (z) => z.object({ f: z.enum(['yaml', 'json']), b: z.boolean() }), [{ f: 'yaml', b: true }, { f: 'xml', b: true }, { f: 'json' }]],
    [
      'record, tuple',
      (z) => z.object({ r: z.record(z.string(), z.number()), t: z.tuple([z.string(), z.number()]) }),
      [
        { r: { a: 1 }, t: ['a', 1] },
        { r: { a: 'x' }, t: ['a'] },
      ],
    ],
    ['refine', (z) => z.string().refine((v) => v.includes('='), { error: 'key=value' }), ['a=b', 'ab']],
    ['unknown keys dropped', (z) => z.object({ a: z.string() }), [{ a: 'x', b: 1 }]],
  ];
  for (const [name, schema, inputs] of cases) {
    it(`accepts and refuses as classic zod does: ${name}`, () => {
      for (const input of inputs) {
        const want = schema(classic as unknown as Zod).safeParse(input, { jitless: true });
        const got = schema(z).safeParse(input, { jitless: true });
        expect(got.success, JSON.stringify(input)).toBe(want.success);
        if (want.success) expect(got.data).toEqual(want.data);
        else expect(got.error!.issues.map((i) => [i.code, i.path, i.message])).toEqual(want.error.issues.map((i) => [i.code, i.path, i.message]));
      }
    });
  }
});
