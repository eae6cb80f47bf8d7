// bkci replaces three of Nunjucks' lexer methods with slice-based ones (src/pipeline/jinja/lexer.ts).
// Both versions tokenise the same input here and must give the same tokens, positions and errors:
// every template the suite can reach, the templates the differential tests use, and random input
// built from the fragments that exercise the edge cases (escapes at the end, unterminated strings
// and comments, CRLF, whitespace control, lone braces).
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lexer, originalTokenizerMethods } from '../../src/pipeline/jinja/lexer.js';
import { randomInts } from '../helpers/random.js';

const root = join(import.meta.dirname, '../..');

function tokens(src: string, original: boolean): unknown[] {
  const t = lexer.lex(src, {}) as unknown as Record<string, unknown> & { nextToken(): unknown };
  // Own properties shadow the patched prototype: this tokenizer runs Nunjucks' own methods.
  if (original) Object.assign(t, originalTokenizerMethods);
  const out: unknown[] = [];
  try {
    for (let tok = t.nextToken(); tok; tok = t.nextToken()) out.push(tok);
  } catch (err) {
    out.push({ error: (err as Error).message });
  }
  out.push({ end: [t.index, t.lineno, t.colno] });
  return out;
}

function templatesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.j2') || f.endsWith('.jinja'))
    .map((f) => join(dir, f));
}

describe('the fast lexer methods', () => {
  const files = [...templatesUnder(join(root, 'templates')), ...templatesUnder(join(root, 'test'))];

  it('finds the real templates it compares', () => {
    expect(files.some((f) => f.endsWith('test-template-ci.j2'))).toBe(true);
    expect(files.some((f) => f.endsWith('default.j2'))).toBe(true);
  });

  it.each(files.map((f) => [f.slice(root.length - 4)]))('tokenises %s as Nunjucks does', (rel) => {
    const src = readFileSync(
      files.find((f) => f.endsWith(rel.slice(4)))!,
      'utf8',
    );
    const fast = tokens(src, false);
    // A template with no tag (two real ones, steps/intel.j2 and steps/tpu.j2) is one data token and the end.
    expect(fast.length).toBeGreaterThan(src.includes('{') ? 10 : 1);
    expect(fast).toEqual(tokens(src, true));
  });

  it('tokenises random input as Nunjucks does', () => {
    const frags = [
      '{{ ',
      ' }}',
      '{%- ',
      ' -%}',
      '{% ',
      ' %}',
      '{#',
      '#}',
      '{',
      '}',
      '#',
      '%',
      '-',
      '"',
      "'",
      '\\',
      '\\n',
      '\\t',
      '\\"',
      '\n',
      '\r\n',
      ' ',
      '\t',
      'abc',
      'x.y',
      '12',
      '3.5',
      '(',
      ')',
      '[',
      ']',
      ',',
      ':',
      '|',
      '~',
      '==',
      '<=',
      '**',
      '//',
      'r/a+/g',
      'true',
      'none',
      'é',
      '😀',
      '- key: "v"\n',
    ];
    const rnd = randomInts(7);
    let compared = 0;
    for (let i = 0; i < 3000; i++) {
      let src = '';
      const n = 1 + rnd(30);
      for (let k = 0; k < n; k++) src += frags[rnd(frags.length)];
      expect(tokens(src, false), JSON.stringify(src)).toEqual(tokens(src, true));
      compared++;
    }
    expect(compared).toBe(3000);
  });
});
