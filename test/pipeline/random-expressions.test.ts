// Random expressions (values of every kind through filters, operators, tests and conditionals, in
// {{ }}, if and for) and random statement structures (set, for/else, if/elif/else, namespace,
// macros, call, filter and set blocks, nested, with whitespace control) rendered by bkci and by
// minijinja-js: the same output, or an error from both. Filters minijinja-js lacks (bkci's
// documented superset) are left out of the grammar.
import { describe, expect, it } from 'vitest';
import { Environment } from 'minijinja-js';
import { compileTemplate } from '../../src/pipeline/jinja/index.js';
import { parseYamlValue } from '../../src/pipeline/data.js';
import { randomInts } from '../helpers/random.js';

const DATA = {
  n: 3,
  f: 2.5,
  z: 0,
  neg: -2,
  s: 'Ab c',
  e: '',
  t: true,
  no: false,
  nil: null,
  l: [3, 1, 2],
  sl: ['b', 'a', 'C'],
  el: [],
  m: { b: 2, a: 1 },
  em: {},
  ps: [
    { k: 'x', v: 1 },
    { k: 'y', v: 2 },
    { k: 'x', v: 3 },
  ],
};
const ATOMS = [
  'n',
  'f',
  'z',
  'neg',
  's',
  'e',
  't',
  'no',
  'nil',
  'l',
  'sl',
  'el',
  'm',
  'em',
  'ps',
  'missing',
  '1',
  '2.0',
  '"x"',
  "'Ab'",
  '[1, 2]',
  '{"a": 1}',
  'none',
  'true',
  '(1, 2)',
  'l[0]',
  'm.a',
  'ps[1].v',
  's[1:]',
  'l[-1]',
];
const FILTERS = [
  'length',
  'first',
  'last',
  'upper',
  'lower',
  'string',
  'list',
  'sort',
  'reverse',
  'unique',
  'join',
  'join(",")',
  'default(0)',
  'int',
  'float',
  'abs',
  'round',
  'tojson',
  'trim',
  'title',
  'capitalize',
  'sum',
  'max',
  'min',
  'items',
  'dictsort',
  'batch(2)',
  'map("string")',
  'select',
  'reject',
  'selectattr("v")',
  'map(attribute="k")',
  'replace("a", "b")',
  'indent(2)',
  'split',
  'count',
  'bool',
  'escape',
  'safe',
  'groupby("k")',
];
const OPS = ['+', '-', '*', '/', '//', '%', '**', '~', '==', '!=', '<', '>', '<=', '>=', 'in', 'not in', 'and', 'or'];
const TESTS = [
  'defined',
  'undefined',
  'none',
  'number',
  'string',
  'sequence',
  'mapping',
  'iterable',
  'odd',
  'even',
  'divisibleby(2)',
  'true',
  'false',
  'lower',
  'upper',
  'in([1, 2, 3])',
  'eq(3)',
  'gt(1)',
];

// What minijinja-js and bkci make of a template: the output, or 'ERROR'.
function bothEngines(src: string, data: Record<string, unknown>): [want: string, got: string] {
  let want: string;
  try {
    want = new Environment().renderStr(src, data);
  } catch {
    want = 'ERROR';
  }
  let got: string;
  try {
    got = compileTemplate(src, 't.j2').render(parseYamlValue(JSON.stringify(data), 'd.json') as Map<string, unknown>);
  } catch {
    got = 'ERROR';
  }
  return [want, got];
}

function generator(seed: number): () => string {
  const rnd = randomInts(seed);
  const pick = <T>(a: T[]): T => a[rnd(a.length)]!;
  const expr = (d: number): string => {
    switch (rnd(d > 2 ? 2 : 6)) {
      case 0:
      case 1:
        return pick(ATOMS);
      case 2:
        return `${expr(d + 1)} | ${pick(FILTERS)}`;
      case 3:
        return `(${expr(d + 1)} ${pick(OPS)} ${expr(d + 1)})`;
      case 4:
        return `(${expr(d + 1)} is ${rnd(3) ? '' : 'not '}${pick(TESTS)})`;
      default:
        return `(${expr(d + 1)} if ${expr(d + 1)} else ${expr(d + 1)})`;
    }
  };
  return () => {
    const r = rnd(4);
    if (r === 0) return `{% for x in ${expr(1)} %}[{{ x }}]{% else %}E{% endfor %}`;
    if (r === 1) return `{% if ${expr(1)} %}Y{% else %}N{% endif %}`;
    return `{{ ${expr(0)} }}`;
  };
}

describe('random expressions', () => {
  it('render as minijinja renders them, or fail in both', () => {
    const next = generator(11);
    let rendered = 0;
    for (let i = 0; i < 3000; i++) {
      const src = next();
      const [want, got] = bothEngines(src, DATA);
      expect(got, src).toBe(want);
      if (want !== 'ERROR') rendered++;
    }
    expect(rendered).toBeGreaterThan(800); // the rest fail in both engines (undefined arithmetic, bad operand types...)
  });

  it('render random statement structures as minijinja does', () => {
    const rnd = randomInts(1);
    const pick = <T>(a: T[]): T => a[rnd(a.length)]!;
    const tag = (b: string) => `{%${pick(['', '', '-'])} ${b} ${pick(['', '', '-'])}%}`;
    const vals = [
      'x',
      'y',
      'l',
      'm',
      's',
      'ps',
      'n + 1',
      'x ~ "!"',
      'loop.index',
      'loop.first',
      'ns.c',
      'l | length',
      'caller()',
      'm.a',
      'p.v',
      'k',
      'w',
      'q',
      'r',
      'ns2.v',
    ];
    const body = (d: number): string => {
      let out = '';
      for (let i = rnd(4); i > 0; i--) {
        const r = rnd(d > 2 ? 3 : 16);
        if (r === 0) out += pick(['\n', ' ', 'a', '-', '\n  ']);
        else if (r === 1) out += `{{${pick(['', '', '-'])} ${pick(vals)} ${pick(['', '', '-'])}}}`;
        else if (r === 2) out += tag(`set x = ${pick(vals)}`);
        else if (r === 3) out += tag('for y in l') + body(d + 1) + (rnd(3) ? '' : tag('else') + body(d + 1)) + tag('endfor');
        else if (r === 4)
          out +=
            tag(`if ${pick(vals)}`) +
            body(d + 1) +
            (rnd(2) ? '' : tag(`elif ${pick(vals)}`) + body(d + 1)) +
            (rnd(2) ? '' : tag('else') + body(d + 1)) +
            tag('endif');
        else if (r === 5)
          out += tag('set ns = namespace(c=0)') + tag('for p in ps') + tag('set ns.c = ns.c + p.v') + body(d + 1) + tag('endfor') + '{{ ns.c }}';
        else if (r === 6) out += tag('macro mm(a, b=2)') + body(d + 1) + '{{ a }}{{ b }}' + tag('endmacro') + '{{ mm(1) }}{{ mm(3, b=4) }}';
        else if (r === 7) out += tag('macro cc()') + '[{{ caller() }}]' + tag('endmacro') + tag('call cc()') + body(d + 1) + tag('endcall');
        else if (r === 8) out += tag('filter upper') + body(d + 1) + tag('endfilter');
        else if (r === 9) out += tag('set z') + body(d + 1) + tag('endset') + '{{ z }}';
        else if (r === 10) out += tag('for k, v in m | items') + body(d + 1) + '{{ k }}={{ v }}' + tag('endfor');
        else if (r === 11) out += tag(`with w = ${pick(vals)}`) + body(d + 1) + '{{ w }}' + tag('endwith');
        else if (r === 12)
          out += tag('macro ee(q)') + '<{{ caller(q) }}>' + tag('endmacro') + tag('call(r) ee(' + pick(vals) + ')') + '{{ r }}' + body(d + 1) + tag('endcall');
        else if (r === 13) out += tag('macro rr(n2)') + body(d + 1) + '{% if n2 > 0 %}{{ rr(n2 - 1) }}{% endif %}{{ n2 }}' + tag('endmacro') + '{{ rr(2) }}';
        else if (r === 14)
          out +=
            tag('set ns2 = namespace(v=[])') +
            tag('macro add(i)') +
            tag('set ns2.v = ns2.v + [i]') +
            body(d + 1) +
            tag('endmacro') +
            '{{ add(1) }}{{ add(x) }}{{ ns2.v }}';
        else out += tag('for q in l recursive') + body(d + 1) + '{{ loop.depth }}{{ q }}' + tag('endfor');
      }
      return out;
    };
    const data = {
      l: [3, 1, 2],
      m: { b: 2, a: 1 },
      s: 'Ab',
      ps: [
        { k: 'x', v: 1 },
        { k: 'y', v: 2 },
      ],
      t: true,
      n: 0,
    };
    let rendered = 0;
    for (let i = 0; i < 1500; i++) {
      const src = body(0);
      const [want, got] = bothEngines(src, data);
      expect(got, src).toBe(want);
      if (want !== 'ERROR' && want !== '') rendered++;
    }
    // The rest fail in both (caller() outside a call block, loop outside a loop...) or print nothing.
    expect(rendered).toBeGreaterThan(400);
  });
});
