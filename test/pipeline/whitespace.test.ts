// minijinja-cli's --trim-blocks and --lstrip-blocks, byte-compared with minijinja-js over templates
// generated from every kind of tag (blocks, comments, expressions, raw, set blocks), each tag with
// and without `-` and `+`, nested, with LF and CRLF line ends, in all four combinations.
import { describe, expect, it } from 'vitest';
import { Environment } from 'minijinja-js';
import { compileTemplate } from '../../src/pipeline/jinja/index.js';
import { randomInts } from '../helpers/random.js';

const DATA = { lst: ['x', 'y'], t: true };

function minijinja(src: string, trimBlocks: boolean, lstripBlocks: boolean): string {
  const env = new Environment();
  env.trimBlocks = trimBlocks;
  env.lstripBlocks = lstripBlocks;
  try {
    return env.renderStr(src, DATA);
  } catch {
    return 'ERROR';
  }
}

function bkci(src: string, trimBlocks: boolean, lstripBlocks: boolean): string {
  try {
    return compileTemplate(src, 't.j2', { trimBlocks, lstripBlocks }).render(new Map(Object.entries(DATA)));
  } catch {
    return 'ERROR';
  }
}

function generator(seed: number): () => string {
  const rnd = randomInts(seed);
  const pick = <T>(a: T[]): T => a[rnd(a.length)]!;
  const marks = ['', '', '', '-', '+'];
  const texts = ['\n', '\n', '\r\n', '  ', '\t', ' ', 'a', 'b ', ' c\n', '\n  ', '  \n', '\n\n', 'x\n  '];
  const tag = (body: string) => `{%${pick(marks)} ${body} ${pick(marks)}%}`;
  const unit = (depth: number): string => {
    switch (rnd(depth > 2 ? 5 : 9)) {
      case 0:
      case 1:
        return pick(texts) + (rnd(2) ? pick(texts) : '');
      case 2:
        return `{{${pick(['', '-'])} x ${pick(['', '-'])}}}`;
      case 3:
        return `{#${pick(marks)} c ${pick(marks)}#}`;
      case 4:
        return tag('set z = 1');
      case 5:
        return tag('if t') + seq(depth + 1) + (rnd(3) ? '' : tag('else') + seq(depth + 1)) + tag('endif');
      case 6:
        return tag('for x in lst') + seq(depth + 1) + tag('endfor');
      case 7:
        return tag('raw') + pick(texts) + '{{ y }}' + pick(texts) + tag('endraw');
      default:
        return tag('set z') + seq(depth + 1) + tag('endset') + '{{ z }}';
    }
  };
  const seq = (depth: number): string => {
    let s = '';
    for (let n = rnd(5); n > 0; n--) s += unit(depth);
    return s;
  };
  return () => pick(texts) + seq(0) + pick(['', '\n', '  ']);
}

const MODES = [
  [true, false],
  [false, true],
  [true, true],
  [false, false],
] as const;

describe('--trim-blocks and --lstrip-blocks', () => {
  it('do what minijinja does, on hand-written templates', () => {
    const src = 'steps:\n  {% for x in lst %}\n  - {{ x }}\n  {% endfor %}\n{# end #}\ndone';
    expect(bkci(src, true, true)).toBe('steps:\n  - x\n  - y\ndone');
    expect(bkci(src, true, false)).toBe('steps:\n    - x\n    - y\n  done');
    expect(bkci(src, false, false)).toBe('steps:\n  \n  - x\n  \n  - y\n  \n\ndone');
    for (const [tb, lb] of MODES) expect(bkci(src, tb, lb)).toBe(minijinja(src, tb, lb));
    // `+` keeps what the flags would remove.
    const plus = '  {%+ if t +%}\nA\n  {%+ endif %}\n';
    for (const [tb, lb] of MODES) expect(bkci(plus, tb, lb)).toBe(minijinja(plus, tb, lb));
  });

  it('do what minijinja does, on 2,000 generated templates in all four combinations', () => {
    const next = generator(11);
    let compared = 0;
    for (let i = 0; i < 2000; i++) {
      const src = next();
      for (const [tb, lb] of MODES) {
        const want = minijinja(src, tb, lb);
        expect(bkci(src, tb, lb), `${JSON.stringify(src)} trim=${tb} lstrip=${lb}`).toBe(want);
        if (want !== 'ERROR') compared++;
      }
    }
    expect(compared).toBeGreaterThan(7000);
  });
});
