// The engine's limits (issue 15 §3): values that would exhaust memory, work without end, deep
// nesting and recursion are errors at their template position, never an internal error, a V8
// abort or a hang. Each case states the error it expects.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileTemplate, TemplateError } from '../../src/pipeline/jinja/index.js';
import { runBkci } from '../helpers/io.js';

function render(src: string, opts: { fuel?: number; baseDir?: string; name?: string } = {}): string {
  return compileTemplate(src, opts.name ?? 't.j2', { baseDir: opts.baseDir ?? '/nonexistent', fuel: opts.fuel }).render(new Map());
}

function failure(src: string, opts: { fuel?: number; baseDir?: string; name?: string } = {}): TemplateError {
  let err: unknown;
  try {
    render(src, opts);
  } catch (e) {
    err = e;
  }
  expect(err, src).toBeInstanceOf(TemplateError);
  return err as TemplateError;
}

describe('size limits', () => {
  it.each([
    ['{{ "x" * 10**9 }}', 1, 4],
    ['{{ "x" | center(10**9) }}', 1, 4],
    ['{{ "x" | indent(10**9) }}', 1, 4],
    ['{{ "a\\nb" | indent(10**8, true) }}', 1, 4],
    ['{{ "x".ljust(10**9) }}', 1, 4],
    ['{{ "x".rjust(10**9) }}', 1, 4],
    ['{{ "x".center(10**9) }}', 1, 4],
    ['{{ "1".zfill(10**9) }}', 1, 4],
    ['{{ "\\t".expandtabs(10**9) }}', 1, 4],
    ['{{ "{:>1000000000}".format(1) }}', 1, 4],
    ['{{ "%1000000000d" | format(1) }}', 1, 4],
    ['{{ "%.1000000000f" | format(1.5) }}', 1, 4],
    ['{{ [1] | tojson(indent=10**9) }}', 1, 4],
    ['{{ [1] * 10**9 }}', 1, 4],
    ['{{ [1, 2] * 10**8 }}', 1, 4],
    ['{% set s = namespace(v="x") %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor %}', 1, 1],
    ['{% set s = namespace(v="x") %}{% for i in range(40) %}{% set s.v = s.v + s.v %}{% endfor %}', 1, 1],
    ['{% set s = namespace(v=[1]) %}{% for i in range(40) %}{% set s.v = s.v + s.v %}{% endfor %}', 1, 1],
    ['{{ lipsum(10**9) }}', 1, 4],
    ['{{ [1, 2, 3] | slice(10**9) }}', 1, 4],
    ['{{ [1] | batch(10**9, 0) }}', 1, 4],
  ])('%s is a size error at its position', (src, line, col) => {
    const err = failure(src);
    expect(err.message).toMatch(/size limit/);
    expect(err.line).toBeGreaterThanOrEqual(line);
    expect(err.col).toBeGreaterThanOrEqual(col);
    expect(err.line).toBeGreaterThan(0);
  });

  it('("x" * 10**8) | length counts without an array of characters (would take gigabytes)', () => {
    expect(render('{{ ("x" * 10**8) | length }}')).toBe('100000000');
    expect(render('{{ "a\u{1F600}b" | length }}')).toBe('3');
  });

  it('the output as a whole is limited too', () => {
    expect(failure('{% for i in range(100000) %}{{ "x" * 2000 }}{% endfor %}').message).toMatch(/the output of .* characters would exceed the size limit/);
  });
});

describe('formatting that was an internal error', () => {
  it('formats any float precision as Python does', () => {
    expect(render('{{ "{:.200f}".format(1.5) }}')).toBe('1.' + '5' + '0'.repeat(199));
    expect(render('{{ "%.120f" | format(0.1) }}')).toBe('0.1000000000000000055511151231257827021181583404541015625' + '0'.repeat(120 - 55));
    expect(render('{{ "%.80f" | format(2.5) }}')).toBe('2.5' + '0'.repeat(79));
    expect(render('{{ "{:.101f}".format(1e22) }}')).toBe('10000000000000000000000.' + '0'.repeat(101));
    expect(render('{{ "{:.3f}".format(2.0625) }}')).toBe('2.062');
  });

  it('is an error, located, where a precision or indent makes no sense', () => {
    expect(failure('{{ [1] | tojson(indent=-1) }}').message).toMatch(/t\.j2:1:\d+: invalid argument: indent/);
    expect(failure('{{ "{:.200e}".format(1.5) }}').message).toMatch(/precision of 200 digits/);
    expect(failure('{{ 1e300 | datetimeformat }}').message).toMatch(/date out of range/);
    expect(failure('{{ -1e300 | dateformat }}').message).toMatch(/date out of range/);
  });
});

describe('deep data and deep templates', () => {
  const deep = '{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}';
  it.each(['{{ ns.x | pprint }}', '{{ ns.x == ns.x }}', '{{ ns.x | string }}', '{{ debug(ns.x) }}', '{{ ns.x | tojson }}', '{{ ns.x }}'])(
    '%s of 5,000-deep data renders or is a located error',
    (tail) => {
      let out: string | undefined;
      try {
        out = render(deep + tail);
      } catch (e) {
        expect(e).toBeInstanceOf(TemplateError);
        expect((e as TemplateError).line).toBe(1);
        expect((e as TemplateError).message).toMatch(/nested too deeply|size limit|recurs/);
        return;
      }
      expect(out.length).toBeGreaterThan(0);
    },
  );

  it.each(['if 1', 'for i in [1]', 'with', 'filter upper', 'block b', 'macro m()', 'call m()', 'autoescape true', 'set x'])(
    '10,000-deep nesting of {%% %s %%} is a located recursion error (was a syntax error at 0:0)',
    (tag) => {
      const name = tag.split(' ')[0];
      const src = `{% ${tag} %}`.repeat(10_000) + 'x' + `{% end${name} %}`.repeat(10_000);
      const err = failure(src);
      expect(err.message).toMatch(/template exceeds maximum recursion limits/);
      expect(err.line).toBe(1);
      expect(err.col).toBeGreaterThan(1);
    },
  );

  it('nesting minijinja accepts still parses', () => {
    expect(render('{% if 1 %}'.repeat(140) + 'x' + '{% endif %}'.repeat(140))).toBe('x');
    expect(render('{{ ' + '('.repeat(100) + '1' + ')'.repeat(100) + ' }}')).toBe('1');
    expect(failure('{{ ' + '('.repeat(10_000) + '1' + ')'.repeat(10_000) + ' }}').message).toMatch(/maximum recursion limits/);
    expect(failure('{{ ' + 'not '.repeat(10_000) + '1 }}').message).toMatch(/maximum recursion limits/);
    expect(failure('{{ ' + '-'.repeat(10_000) + '1 }}').message).toMatch(/maximum recursion limits/);
  });

  it('a long flat expression (1 + 1 + ... 20,000 times) renders or is located', () => {
    try {
      expect(render('{{ ' + Array(20_000).fill('1').join(' + ') + ' }}')).toBe('20000');
    } catch (e) {
      expect(e).toBeInstanceOf(TemplateError);
      expect((e as TemplateError).line).toBe(1);
    }
  });
});

describe('recursion between templates', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-limits-'));
  writeFileSync(join(dir, 'self.j2'), '{% extends "self.j2" %}');
  writeFileSync(join(dir, 'a.j2'), '{% extends "b.j2" %}');
  writeFileSync(join(dir, 'b.j2'), '{% extends "a.j2" %}');
  writeFileSync(join(dir, 'inc.j2'), 'x{% include "inc.j2" %}');
  writeFileSync(join(dir, 'imp.j2'), '{% import "imp.j2" as m %}');

  it('a template extending itself is a cycle error, as minijinja says (it rendered empty)', () => {
    const err = failure('{% extends "self.j2" %}', { baseDir: dir, name: join(dir, 'self.j2') });
    expect(err.detail).toMatch(/^invalid operation: cycle in template inheritance\. ".*self\.j2" was referenced more than once$/);
    expect(failure('{% extends "b.j2" %}', { baseDir: dir, name: join(dir, 'a.j2') }).detail).toMatch(/cycle in template inheritance/);
  });

  it('include and import cycles are recursion errors', () => {
    expect(failure('{% include "inc.j2" %}', { baseDir: dir, name: join(dir, 'main.j2') }).message).toMatch(/recursion limit exceeded/);
    expect(failure('{% import "imp.j2" as m %}', { baseDir: dir, name: join(dir, 'main.j2') }).message).toMatch(/recursion limit exceeded/);
  });
});

describe('fuel', () => {
  it('stops work without end at its position', () => {
    const err = failure('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', { fuel: 1_000_000 });
    expect(err.message).toMatch(/out of fuel/);
    expect(err.line).toBe(1);
    expect(failure('{% for i in range(100000) %}{{ i }}{% endfor %}', { fuel: 1000 }).message).toMatch(/out of fuel/);
  });

  it('the default lets the same template render when it is small', () => {
    expect(render('{% for i in range(3) %}{{ i }}{% endfor %}')).toBe('012');
    expect(render('{% for i in range(10) %}{{ i }}{% endfor %}', { fuel: 100 })).toBe('0123456789');
  });

  it('--fuel N through the CLI: too little is exit 2 naming the template position; a bad value is exit 2', async () => {
    const r = await runBkci(['pipeline', 'render', '-', '--no-validate', '--fuel', '50'], { stdin: '{% for i in range(1000) %}{{ i }}{% endfor %}' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/<stdin>:1:\d+: out of fuel/);
    const ok = await runBkci(['pipeline', 'render', '-', '--no-validate', '--fuel', '100000'], { stdin: '{% for i in range(1000) %}{% endfor %}ok' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('ok\n');
    for (const bad of ['0', '-1', 'abc', '1.5']) {
      const b = await runBkci(['pipeline', 'render', '-', '--no-validate', '--fuel', bad], { stdin: 'x' });
      expect(b.code, bad).toBe(2);
      expect(b.stderr).toMatch(/--fuel/);
    }
  });
});

describe('unexpected end of template', () => {
  it.each([
    ['{% for i in range(3) %}{{ i }}', 1, 31, /the 'for' block opened at 1:1 is not closed/],
    ['a\n{% if x %}\nb', 3, 2, /the 'if' block opened at 2:1 is not closed/],
    ['{% if x %}{% for y in z %}{% endfor %}', 1, 39, /'if' block opened at 1:1/],
    ['{% macro m() %}\n  {% if 1 %}x{% endif %}\n', 2, 25, /'macro' block opened at 1:1/],
    ['{{ x ', 1, 6, /end of template/],
    ['{# abc', 1, 7, /the template ends here/],
    ['{% if', 1, 6, /end of template/],
    ['{{ [1, 2', 1, 9, /end of template/],
  ])('%j names where the template ends (%i:%i), not 0:0', (src, line, col, msg) => {
    const err = failure(src);
    expect([err.line, err.col]).toEqual([line, col]);
    expect(err.message).toMatch(msg);
  });
});

describe('values under the limits are untouched', () => {
  it('concatenation and repetition of empty values', () => {
    expect(render('{{ ("" + "") is string }}|{{ "" ~ "" }}|{{ "" * 3 }}|{{ [] * 3 }}|{{ [] + [] }}|{{ "ab" * 2 }}|{{ [1] * 2 }}')).toBe(
      'true|||[]|[]|abab|[1, 1]',
    );
  });
});
