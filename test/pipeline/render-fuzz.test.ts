// Render fuzzing (issue 15): mutated templates and -D values, a fixed seed, run in-process through
// the CLI entry (runCli with a test Io) and a sample through the real bin. Every outcome must be
// output with exit 0, or an error with exit 1 or 2 that names its place (file:line:col for a
// template error); never "internal error", a stack trace, position 0:0, or a hang (a small --fuel
// bounds each case). BKCI_FUZZ_CASES=N runs N cases instead of the default.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { randomInts } from '../helpers/random.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'dist/bundle/bin.js');
const CASES = Number(process.env.BKCI_FUZZ_CASES ?? 1500);
const SAMPLE = 8;

const SEEDS = [
  '{% for s in steps %}{% if s.run %}- label: "{{ s.label | upper }}"\n  command: {{ s.cmd | tojson }}\n{% endif %}{% endfor %}',
  '{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}',
  '{% macro m(a, b=2) %}{{ a ~ b }}{{ caller() if caller else "" }}{% endmacro %}{{ m(1) }}{% call m(3) %}x{% endcall %}',
  '{{ "%-8s|%05.1f" | format(name, 3.14159) }} {{ "{:>10}|{:^7}".format(name, 42) }}',
  '{% filter upper %}{{ items | join(", ") }}{% endfilter %}{{ items | map("upper") | list }}',
  '{% with x = 1 %}{{ x }}{% endwith %}{% raw %}{{ raw }}{% endraw %}{# comment #}',
  '{{ d | dictsort | first }}{{ d.items() | list | length }}{{ d | tojson(indent=2) }}',
  '{{ name[1:3] }}{{ name.split("a") }}{{ name | replace("a", "b") | center(11) }}{{ name.ljust(6, "*") }}',
  '{% for k, v in d.items() recursive %}{{ loop.index }}:{{ k }}={{ v }}{% else %}none{% endfor %}',
  '{% if x is defined and x > 3 %}big{% elif x is none %}none{% else %}{{ x | default("d") }}{% endif %}',
  '{{ range(3) | batch(2) | list }}{{ items | slice(2) | list }}{{ [1, 2, 3] | sum }}{{ lipsum(1) | wordcount }}',
  '{% autoescape true %}{{ "<a>" }}{{ "<b>" | safe }}{% endautoescape %}{{ 7 // 2 }}{{ 2 ** 10 }}{{ -3 % 5 }}',
  '{% set t %}block {{ name }}{% endset %}{{ t | trim | title }}{{ t | indent(2, true) }}{{ t | truncate(5) }}',
  '{% block b %}base {{ self.b2() if self.b2 is defined else "" }}{% endblock %}{{ debug(items) }}{{ items | pprint }}',
];
const VLLM = readFileSync(join(ROOT, 'test/fixtures/vllm/test-template-ci.j2'), 'utf8');

// Pieces a mutation inserts: tag and expression syntax, and the values that once broke the engine.
const PIECES = [
  '{%',
  '%}',
  '{{',
  '}}',
  '{#',
  '#}',
  '{%-',
  '-%}',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  '|',
  '"',
  "'",
  ',',
  ':',
  '.',
  '~',
  '*',
  '**',
  ' if ',
  ' else ',
  ' endif ',
  ' for x in ',
  ' endfor ',
  ' in ',
  ' not ',
  ' and ',
  'loop.index',
  'caller()',
  'self',
  'super()',
  ' | upper',
  ' | center(10**9)',
  ' * 10**9',
  '10**9',
  '1e300',
  'range(100000)',
  ' | length',
  ' | tojson(indent=-1)',
  '"%.1000000000f" | format(1.5)',
  '"{:.200f}".format(1.5)',
  '{% extends "x.j2" %}',
  '{% include "nope.j2" %}',
  '{% if 1 %}',
  '{% endif %}',
  '{% for i in range(3) %}',
  '{% endfor %}',
  '{% macro q() %}',
  '{% endmacro %}',
  '{% set z = [z] %}',
  '\n',
  '\t',
  '\u{1F600}',
  '\\',
  '0x1F',
  '1_000',
  'none',
  'undefined_name.attr',
];

function mutate(src: string, r: (k: number) => number): string {
  let s = src;
  const n = 1 + r(4);
  for (let m = 0; m < n; m++) {
    const at = r(s.length + 1);
    switch (r(5)) {
      case 0: // delete a span
        s = s.slice(0, at) + s.slice(Math.min(s.length, at + 1 + r(12)));
        break;
      case 1: // duplicate a span
        s = s.slice(0, at) + s.slice(at, at + 1 + r(30)) + s.slice(at);
        break;
      case 2: // swap two characters
        if (s.length > 1) s = s.slice(0, at) + s.charAt(at + 1) + s.charAt(at) + s.slice(at + 2);
        break;
      default: // insert a piece
        s = s.slice(0, at) + PIECES[r(PIECES.length)] + s.slice(at);
    }
  }
  return s;
}

const DATA = [
  '{"a": 1, "b": [2, 3], "c": {"d": "e"}}',
  '[1, "two", 3.5, null, true, {"k": [1, [2, [3]]]}]',
  '{a: 1, b: [x, y], c: {d: e}}',
  '&x [1, *x]',
  '"a string with \\u00e9 and \\n"',
  '{"big": 1e300, "neg": -0.0, "hex": 0x1F, "oct": 0o17}',
];

const VALUES = ['abc', 'a b c', '', '42', '1e300', 'x'.repeat(50), '\u{1F600}', '{{ x }}', 'a\nb'];

function makeCase(i: number): { argv: string[]; stdin: string } {
  const r = randomInts(0x5eed + i * 7919);
  const base = r(20) === 0 ? VLLM : SEEDS[r(SEEDS.length)]!;
  const stdin = r(10) === 0 ? base : mutate(base, r);
  const argv = ['pipeline', 'render', '-', '--fuel', String(200_000)];
  if (r(4) !== 0) argv.push('--no-validate');
  for (const k of ['name', 'x', 'items', 'branch', 'run_all']) if (r(2)) argv.push('-D', `${k}=${VALUES[r(VALUES.length)]}`);
  if (r(3) === 0) argv.push('-D', 'items:=[1, "two", 3.5]', '-D', 'd:={"a": 1, "b": [2, 3]}', '-D', 'steps:=[{"label": "t", "run": true, "cmd": "x"}]');
  // Data: a YAML/JSON value for -D key:=..., mutated like the templates.
  if (r(4) === 0) argv.push('-D', `d:=${mutate(DATA[r(DATA.length)]!, r)}`);
  if (r(8) === 0) argv.push('--strict-undefined');
  if (r(8) === 0) argv.push('--trim-blocks', '--lstrip-blocks');
  return { argv, stdin };
}

// What every outcome must satisfy.
function checkOutcome(c: { argv: string[]; stdin: string }, code: number | null, stdout: string, stderr: string): void {
  const what = JSON.stringify({ argv: c.argv, stdin: c.stdin.length > 400 ? c.stdin.slice(0, 400) + '...' : c.stdin, stderr: stderr.slice(0, 600) });
  expect([0, 1, 2], what).toContain(code);
  expect(stderr, what).not.toMatch(
    /internal error|\n\s+at .*:\d+:\d+\)?\n|Maximum call stack|Invalid (string|array) length|is not a function|is not iterable|Cannot read prop/,
  );
  if (code === 0) return;
  expect(stdout, what).toBe('');
  if (code === 1) {
    // The rendered pipeline is invalid: findings placed in it, then the verdict.
    expect(stderr, what).toMatch(/<rendered pipeline>:\d+:\d+: /);
    expect(stderr, what).toMatch(/(^|\n)bkci: the rendered pipeline is invalid/);
    return;
  }
  expect(stderr, what).toMatch(/(^|\n)bkci: /);
  // A template error is placed: <stdin>:line:col with a real line and column; other exit-2 errors
  // name the flag or value.
  const loc = /<stdin>:(\d+):(\d+): /.exec(stderr);
  if (loc) {
    expect(Number(loc[1]), what).toBeGreaterThan(0);
    expect(Number(loc[2]), what).toBeGreaterThan(0);
  } else {
    expect(stderr, what).toMatch(/-D |--\w|template/);
  }
}

describe('render fuzzing', () => {
  it(`${CASES} mutated templates through the CLI entry: output or a located error, exit 0/1/2`, async () => {
    const outcomes = { 0: 0, 1: 0, 2: 0 } as Record<number, number>;
    for (let i = 0; i < CASES; i++) {
      const c = makeCase(i);
      const r = await runBkci(c.argv, { stdin: c.stdin, cwd: ROOT });
      checkOutcome(c, r.code, r.stdout, r.stderr);
      outcomes[r.code] = (outcomes[r.code] ?? 0) + 1;
    }
    // The mutations reach both sides: some render, some fail.
    expect(outcomes[0]).toBeGreaterThan(CASES / 20);
    expect(outcomes[2]).toBeGreaterThan(CASES / 20);
  }, 600_000);

  it(`a sample of ${SAMPLE} through the real bin`, () => {
    for (let i = 0; i < SAMPLE; i++) {
      const c = makeCase(100_000 + i);
      const r = spawnSync(process.execPath, [BIN, ...c.argv], { input: c.stdin, encoding: 'utf8', cwd: ROOT, timeout: 60_000, maxBuffer: 256 << 20 });
      expect(r.signal, JSON.stringify(c)).toBeNull();
      checkOutcome(c, r.status, r.stdout, r.stderr);
    }
  }, 600_000);
});
