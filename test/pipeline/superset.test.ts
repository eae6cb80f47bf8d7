// bkci's superset: filters and Python methods minijinja-js (the MiniJinja oracle) is built without,
// checked against Python's Jinja2 instead (printed values that the two engines print differently,
// True/None and quoted lists, are left out).
import { describe, expect, it } from 'vitest';
import { compileTemplate } from '../../src/pipeline/jinja/index.js';
import { renderWithJinja2 } from '../helpers/oracles.js';

const DATA = {
  s: '  Hello wORLD, foo-bar  ',
  u: 'ünïcode Straße wörds_2 ٣٤',
  n: 1234567,
  p: '<b>bold</b> &amp; "q"',
  w: 'the quick brown fox jumps over the lazy dog',
};
const TEXTS = [
  'a  b   c',
  '  lead  two  spaces and more words here',
  'foo-bar-baz quux-quuux',
  'averyveryverylongwordindeed short',
  'x\n\n  y z',
  'end with space  ',
  '--dash --opts here-there',
];

function templates(): string[] {
  const out: string[] = [];
  for (const t of TEXTS) for (const w of [5, 8, 12]) for (const bl of ['true', 'false']) out.push(`{{ ${JSON.stringify(t)} | wordwrap(${w}, ${bl}) }}`);
  out.push('{{ w | wordwrap(20, wrapstring="<br>") }}', '{{ w | wordwrap(width=10, break_on_hyphens=false) }}');
  for (const x of ['s', 'u', 'p', 'w', '""', '"a_b c-d 12"']) {
    out.push(
      `{{ ${x} | wordcount }}`,
      `{{ ${x} | truncate(10) }}`,
      `{{ ${x} | truncate(12, true, "~", 0) }}`,
      `{{ ${x} | center(30) }}|{{ ${x} | center(31) }}|{{ ${x} | center(5) }}|`,
      `{{ ${x} | striptags }}`,
      `{{ ${x} | capitalize }}`,
      `{{ ${x}.title() }}`,
    );
  }
  out.push(
    '{{ n | filesizeformat }} {{ n | filesizeformat(true) }} {{ "1234567" | filesizeformat }} {{ "2.5e6" | filesizeformat(true) }} {{ 1 | filesizeformat }} {{ 999 | filesizeformat }}',
  );
  out.push('{{ "abc" | filesizeformat }}', '{{ "%s-%d" | format("a", 3) }}', '{{ "{}:{}".format("a", 1) }}');
  // Python's str methods (predicates printed through an if: Jinja2 prints True/False).
  const yn = (e: string) => `{{ "y" if ${e} else "n" }}`;
  const subjects = [
    's',
    'u',
    'p',
    'w',
    '""',
    '"a_b c-d 12"',
    '"Hello World"',
    '"Hello world"',
    '"😀ab"',
    '"-42"',
    '"+7"',
    '"Straße ﬁx"',
    '"a\tbc\tdef\n\tg"',
    '"٣٤"',
    '"x²"',
    '"²³"',
    '"_id9"',
    '"9id"',
    '"ÉTÉ"',
    '"été"',
    '"Ǆemal"',
    '" "',
    '"a\u0007"',
  ];
  for (const x of subjects) {
    out.push(
      `{{ ${x}.find("o") }} {{ ${x}.find("o", 5) }} {{ ${x}.rfind("o", 0, -3) }} {{ ${x}.find("l", -4) }} {{ ${x}.count("o", 2) }} {{ ${x}.count("") }} {{ ${x}.count("l", 1, -1) }}`,
      `{{ ${x}.index("e") }}`,
      `{{ ${x}.rindex("e", 2) }}`,
      `{{ ${x}.center(21, "*") }}|{{ ${x}.center(20) }}|{{ ${x}.ljust(15, ".") }}|{{ ${x}.rjust(15) }}|{{ ${x}.center(2) }}|`,
      `{{ ${x}.partition(" ") | join("|") }} {{ ${x}.rpartition(" ") | join("|") }} {{ ${x}.partition("zz") | join("|") }} {{ ${x}.rpartition("zz") | join("|") }}`,
      `{{ ${x}.swapcase() }} {{ ${x}.casefold() }} {{ ${x}.zfill(8) }} {{ ${x}.removeprefix("  ") }}|{{ ${x}.removesuffix("  ") }}|{{ ${x}.expandtabs(4) }}|{{ ${x}.expandtabs() }}`,
      ['isdigit', 'isdecimal', 'isnumeric', 'isalpha', 'isalnum', 'isascii', 'isidentifier', 'isprintable', 'islower', 'isupper', 'istitle']
        .map((m) => yn(`${x}.${m}()`))
        .join(''),
    );
  }
  out.push(
    '{{ "abc".count("", 2, 1) }} {{ "abc".find("", 2, 1) }} {{ "abc".find("", 3) }} {{ "abc".find("", 5) }} {{ "abc".count("", 5) }} {{ "😀abc".rfind("", 1) }}',
    '{{ "a".partition("") }}',
    '{{ "a".center(5, "ab") }}',
    '{{ "abc".index("z") }}',
  );
  // Python's two formatting languages: the format filter (`%`) and str.format.
  const values = [
    '0',
    '7',
    '-7',
    '42',
    '1234567',
    '3.14159',
    '-0.5',
    '2.0',
    '1e20',
    '1.5e16',
    '123456789012345.0',
    '0.000012345',
    '0.0001',
    '-0.0',
    '"ab"',
    '"Straße"',
    '""',
  ];
  const percent = [
    '%s',
    '%r',
    '%5s|',
    '%-5s|',
    '%.2s',
    '%d',
    '%5d',
    '%-5d|',
    '%05d',
    '%+d',
    '% d',
    '%x',
    '%X',
    '%#x',
    '%o',
    '%#o',
    '%f',
    '%.2f',
    '%8.3f',
    '%-8.1f|',
    '%+.1f',
    '%08.2f',
    '%e',
    '%.3E',
    '%g',
    '%.3g',
    '%G',
    '%#g',
    '%i',
    '%u',
    '%%d %d',
  ];
  for (const v of values) for (const f of percent) out.push(`{{ ${JSON.stringify(f)} | format(${v}) }}`);
  const specs = [
    '',
    ':',
    ':>8',
    ':<8',
    ':^9',
    ':*^9',
    ':=+8',
    ':08',
    ':+',
    ': ',
    ':,',
    ':_',
    ':,.2f',
    ':.3',
    ':.3f',
    ':.2e',
    ':.4g',
    ':g',
    ':%',
    ':.1%',
    ':x',
    ':#x',
    ':X',
    ':#b',
    ':o',
    ':#o',
    ':d',
    ':10.4f',
    ':<10.2f|',
    ':s',
    ':.2s',
    ':>5s',
    '!r',
    '!s:>6',
  ];
  for (const v of values) for (const f of specs) out.push(`{{ "{${f}}".format(${v}) }}`);
  out.push(
    '{{ "%(a)s-%(b)05.1f" | format(a="x", b=2.25) }}',
    '{{ "%s and %s" | format("a") }}',
    '{{ "%s" | format("a", "b") }}',
    '{{ "%d" | format("a") }}',
    '{{ "%(a)s" | format("a") }}',
    '{{ "%*d|%-*d|%.*f" | format(5, 42, 4, 7, 2, 3.14159) }}',
    '{{ "%c%c" | format(65, "z") }}',
    '{{ "%s" | format([1, 2]) }}',
    '{{ "abc" | format() }}',
    '{{ "%q" | format(1) }}',
    '{{ "%" | format() }}',
    '{{ "{} {}".format(1, 2) }}',
    '{{ "{1}{0}{1}".format("a", "b") }}',
    '{{ "{name}-{n:03d}".format(name="x", n=7) }}',
    '{{ "{{}} {{x}} {}".format(1) }}',
    '{{ "{0[1]} {0[0]}".format(["a", "b"]) }}',
    '{{ "{d[k]} {d.k}".format(d={"k": 5}) }}',
    '{{ "{:{w}.{p}f}".format(3.14159, w=9, p=2) }}',
    '{{ "{} {0}".format(1) }}',
    '{{ "{} {}".format(1) }}',
    '{{ "{x}".format(1) }}',
    '{{ "{".format(1) }}',
    '{{ "}".format(1) }}',
    '{{ "{:d}".format("a") }}',
    '{{ "{:d}".format(2.5) }}',
    '{{ "{:z}".format(1) }}',
  );
  // Python's dict methods, the mutating ones included.
  const show = '{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}';
  out.push(
    `{% set d = {"a": 1} %}{% set _ = d.update({"b": 2}, c=3) %}${show}`,
    `{% set d = {"a": 1} %}{% set _ = d.update([["x", 9], ["a", 0]]) %}${show}`,
    `{% set d = {"a": 1, "b": 2} %}{{ d.pop("a") }} {{ d.pop("zz", "def") }} ${show}`,
    '{% set d = {"a": 1} %}{{ d.pop("zz") }}',
    `{% set d = {"a": 1} %}{{ d.setdefault("a", 5) }} {{ d.setdefault("e", 5) }} ${show}`,
    `{% set d = {"a": 1} %}{% set c = d.copy() %}{% set _ = c.update(z=1) %}{{ d | length }} {{ c | length }}{% set _ = d.clear() %} {{ d | length }}`,
  );
  return out;
}

describe('the superset, against Jinja2', () => {
  it('renders as Jinja2 does', () => {
    const ts = templates();
    const want = renderWithJinja2(ts.map((template) => ({ template, data: DATA })));
    let rendered = 0;
    // Every case that differs, listed at once.
    const differ: { template: string; jinja2: string | undefined; bkci: string }[] = [];
    ts.forEach((t, i) => {
      let got: string;
      try {
        got = compileTemplate(t, 't.j2').render(new Map(Object.entries(DATA)));
      } catch {
        got = 'ERROR';
      }
      const expected = want[i]!.error !== undefined ? 'ERROR' : want[i]!.out;
      if (got !== expected) differ.push({ template: t, jinja2: expected, bkci: got });
      if (want[i]!.error === undefined) rendered++;
    });
    expect(differ).toEqual([]);
    expect(rendered).toBeGreaterThan(800);
  });
});
