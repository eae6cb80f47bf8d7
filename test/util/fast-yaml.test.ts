// The fast YAML parser must give exactly what npm `yaml` gives, or give up. Compared on every YAML
// file the suite knows, on hand-written edge cases, and on thousands of random values written out
// by npm `yaml` in every scalar and collection style.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { reindentQuotedScalars } from '../../src/pipeline/yaml-load.js';
import { fastParseYaml } from '../../src/util/fast-yaml.js';
import { randomFloats } from '../helpers/random.js';

// npm `yaml` as bkci uses it: every document, merge keys, repeated keys allowed.
function reference(text: string, mapMode = false): unknown[] | undefined {
  const docs = YAML.parseAllDocuments(reindentQuotedScalars(text), {
    merge: true,
    uniqueKeys: false,
    strict: false,
    prettyErrors: false,
    intAsBigInt: mapMode,
  });
  const list = Array.isArray(docs) ? docs : [];
  if (list.some((d) => d.errors.length)) return undefined;
  return list.map((d) => d.toJS({ maxAliasCount: -1, mapAsMap: mapMode }));
}

// Either gives up, or agrees with the reference (and never accepts what the reference rejects).
function agrees(text: string, mapMode = false): 'same' | 'gave up' {
  const fast = fastParseYaml(text, mapMode ? { mapAsMap: true, intAsBigInt: true } : {});
  if (!fast) return 'gave up';
  const want = reference(text, mapMode);
  expect(want, `npm yaml rejects what the fast parser accepted:\n${text}`).toBeDefined();
  if (!isDeepStrictEqual(fast.docs, want)) expect(fast.docs, text).toEqual(want);
  return 'same';
}

function yamlFiles(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(f)) out.push(p);
  }
  return out;
}

describe('fastParseYaml', () => {
  it('agrees with npm yaml on every YAML file of the suite, and parses vLLM’s renders itself', () => {
    const files = [
      ...yamlFiles(join(import.meta.dirname, '../fixtures/buildkite')),
      ...yamlFiles(join(import.meta.dirname, '../fixtures/vllm')),
      ...yamlFiles(join(import.meta.dirname, '../../examples')),
    ];
    expect(files.length).toBeGreaterThan(15);
    const results = files.map((f) => [f, agrees(readFileSync(f, 'utf8'))] as const);
    for (const [f, r] of results) if (/vllm\//.test(f)) expect(r, f).toBe('same');
    expect(results.filter(([, r]) => r === 'same').length).toBeGreaterThan(files.length - 3);
    // The test list as template data (maps, ints as BigInt).
    expect(agrees(readFileSync(join(import.meta.dirname, '../fixtures/vllm/test-pipeline.yaml'), 'utf8'), true)).toBe('same');
  });

  const cases: string[] = [
    'a: 1\nb: 1.0\nc: 1e3\nd: 0x1F\ne: 0o17\nf: -0\ng: .inf\nh: -.Inf\ni: .nan\nj: ~\nk: null\nl: Null\nm:\nn: true\no: False\np: yes\nq: NO\nr: 012\ns: +5\nt: 1_000\nu: 1.\nv: .5\n',
    "key: value # comment\n# full comment\nother: \"quoted # not a comment\"\nthird: 'it''s'\n",
    'steps:\n- label: a\n  command: echo\n- wait\n- label: b\n  commands:\n  - one\n  - two\n',
    'steps:\n  - label: "x"\n    env:\n      A: "1"\n      B: 2\n    agents: {queue: gpu, "gpu": 1}\n    depends_on: [a, "b", c]\n',
    '- - a\n  - b\n- - c\n',
    '- a: 1\n  b: 2\n- c: [1, 2, [3, 4]]\n',
    'a: |\n  line 1\n  line 2\n\n  line 4\nb: >\n  folded\n  text\n\n  para\n    more\n    indented\n  back\nc: |-\n  strip\n\n\nd: |+\n  keep\n\n\ne: x\n',
    'a: >-\n  one\n  two\nb: |\n    deeper\n  shallow?\n',
    'a: |\n\n  leading empty\nb: end\n',
    'x: "multi\n  line\n\n  with empty"\ny: \'single\n   quoted\'\n',
    'x: "escapes \\n \\t \\" \\\\ \\u00e9 \\x41 \\/ trailing\\\n   continued"\n',
    'cmd: "one two\nthree"\n',
    'plain: this is\n  a multi line\n  plain scalar\nnext: 1\n',
    '---\na: 1\n---\nb: 2\n...\n',
    '---\n---\na: 1\n',
    '',
    '# only a comment\n',
    'a:\n  b:\n    c:\n      d: deep\n  e: up\n',
    'url: http://example.com:8080/x\ntime: 12:30\nratio: 1:2\n',
    'a: [ ]\nb: { }\nc: []\nd: {}\n',
    'a: "x" # c\nb: \'y\'   # c\n',
    'dup: 1\ndup: 2\n',
    'list:\n- a\n\n- b\n\n\n- c\n',
    "k: 'a''b'\n'quoted key': v\n\"dq key\": w\n",
    'a: -1\nb: - not a list\n',
    'a: b: c\n',
    'a: &anchor 1\nb: *anchor\n',
    'a: !!str 1\n',
    '? complex\n: key\n',
    'a:\n\tb: tab\n',
    'a: [1, 2\nb: 3\n',
    'a: "unterminated\n',
    'x:\n  - a\n - b\n',
    'flow: [a,\n  b,\n  "c\n  d"]\nafter: 1\n',
    'flow: {a: 1,\n  b: [x, y]}\n',
    'command: ["bash", "-c", "cd /x &&\n    run\n    "]\n',
    'a: "x"y\n',
    'a:    spaced value   \n',
    'nul: "\\0"\n',
    'emoji: "\\U0001F600"\n',
    'a: >\n\n  after empty\n',
    'a: |2\n    explicit\n',
    'a: |\n  text\n   \n  more\n',
    'a: >\n  a\n   \n  b\n',
    'k: v\n---\n- list doc\n',
    '- |\n  block in seq\n- >-\n  folded in seq\n- end\n',
    'a:\n- 1\n- 2\nb: 3\n',
    'e: ""\nf: \'\'\n',
    'k: [a, b, ]\n',
    'k: {a: 1, b: }\n',
    // Compact nested nodes at odd columns: a dash's content counts as indented to where it starts.
    '-   k: 1\n    j: 2\n-  - x\n   - y\n- - - deep\n    - er\n  - up\n',
    'a:\n- k: 1\n  l:\n  - m: |\n      block\n    n: >-\n      folded\n',
    '- k: 1\n\tj: 2\n',
    '- k: 1\n  \tj: 2\n',
    // Quoted scalars scanned in runs: escapes next to quotes and line ends, '' in single quotes.
    "a: \"ends in backslash \\\\\"\nb: \"\\\"starts\\\" and \\\\\\\" mid\"\nc: ''''\nd: 'x'''\n",
    "\"k \\\" q\": \"v \\\\\"\n'k '' q': 'v '''\n",
    '- "a\\tb\\\\c\\"d" # c\n- \'it\'\'s\' # c\n- "tail\\\n  next \\\\\n  last"\n',
    'f: ["a\\"b", \'c\'\'d\', "e\\\\", "multi \\\n   line", \'two\n\n  breaks\']\n',
    "m: {\"k\\\"\": \"\\\\\", 'x''': ''}\n",
    `long: "${'x\\\\y\\"z '.repeat(400)}"\n`,
    '"1": one\n2: two\ntrue: yes\n',
    'k: ["x\n\n  \\ \n  more\n  inde\\\n  nted\n\n  back"]\n',
    'k: {a: "tab\\t\n  next", b: "sp\\ \n  z"}\n',
  ];

  it.each(cases.map((c, i) => [i, c]))('edge case %i agrees or gives up', (_i, text) => {
    agrees(text as string);
    agrees(text as string, true);
  });

  it('parses what go-yaml accepts: quoted scalars continued at lower indentation', () => {
    const text = 'steps:\n  - label: x\n    command: "a &&\n  b"\n';
    const r = fastParseYaml(text)!;
    expect(r.docs[0]).toEqual({ steps: [{ label: 'x', command: 'a && b' }] });
  });

  it('reports repeated keys with their position', () => {
    expect(fastParseYaml('a: 1\nb:\n  c: 1\n  c: 2\n')!.repeatedKeys).toEqual([{ line: 4, col: 3, key: 'c' }]);
  });

  it('agrees on 10,000 random values written in every style', () => {
    const rnd = randomFloats(Number(process.env.FAST_YAML_SEED ?? 7));
    const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const strings = [
      'plain',
      'with space',
      'a: b',
      'x #y',
      '#lead',
      '- dash',
      'quote"s',
      "it's",
      'multi\nline',
      'trail ',
      ' lead',
      'tab\there',
      'true',
      '1.0',
      '0x10',
      'null',
      '',
      'ünïcödé',
      'back\\slash',
      'colon:',
      '{brace}',
      '[bracket]',
      'a,b',
      '*star',
      '&amp',
      '!bang',
      '%pct',
      '@at',
      '`tick',
      '|pipe',
      '>gt',
      'line1\n\nline3\n',
      'ends with newline\n',
      '  indented\nlines\n',
      'x\n  more indented\nback',
    ];
    const scalar = (): unknown =>
      pick<() => unknown>([
        () => pick(strings),
        () => Math.floor(rnd() * 1000) - 500,
        () => rnd() * 100,
        () => rnd() > 0.5,
        () => null,
        () => pick(strings) + pick(strings),
      ])();
    const value = (depth: number): unknown => {
      if (depth > 3 || rnd() < 0.35) return scalar();
      if (rnd() < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let k = Math.floor(rnd() * 4); k > 0; k--)
        o[pick(['key', 'label', 'a b', 'x:y', 'env', 'steps', 'k' + Math.floor(rnd() * 9), '1', 'true'])] = value(depth + 1);
      return o;
    };
    const styles: YAML.ToStringOptions[] = [
      {},
      { lineWidth: 20, minContentWidth: 5 },
      { defaultStringType: 'QUOTE_DOUBLE' },
      { defaultStringType: 'QUOTE_SINGLE' },
      { defaultStringType: 'BLOCK_LITERAL', defaultKeyType: 'PLAIN' },
      { defaultStringType: 'BLOCK_FOLDED', defaultKeyType: 'PLAIN', lineWidth: 15, minContentWidth: 3 },
      { collectionStyle: 'flow' },
      { collectionStyle: 'flow', lineWidth: 20, minContentWidth: 5 },
      { indentSeq: false, indent: 4 },
    ];
    let same = 0;
    let total = 0;
    for (let n = 0; n < Number(process.env.FAST_YAML_N ?? 10000); n++) {
      const v = { doc: value(0) };
      const text = YAML.stringify(v, pick(styles));
      total++;
      if (agrees(text) === 'same') same++;
      if (n % 3 === 0) agrees(text, true);
    }
    // Giving up is allowed, but the fast path must cover most of what real pipelines look like.
    if (process.env.FAST_YAML_N) console.log('fast path', same, 'of', total);
    expect(same / total).toBeGreaterThan(0.6);
  });
});

describe('fastParseYaml on what the validate fuzz suite found', () => {
  it('agrees with npm yaml or gives up', () => {
    const found = [
      // Keep-chomped block scalars at the end of the text (a line break after the last line is not a line).
      'a: |+\n',
      'a: |+\n\n',
      'a: |+\n  x\n\n',
      'a: >+\n  x\n',
      'a: |+\n  \n',
      'a: |+\n ',
      'a: |+\n  x\n  ',
      'a: >+\n  x\n\n ',
      // Flow mappings: a key that starts with `#`, `&`, `- `; a byte order mark or U+2028 inside.
      'a: {b: 1,# c: 2}\n',
      'a: {b: 1,&c: 2}\n',
      'a: {b: 1,-  c: 2}\n',
      'a: [- x]\n',
      'a: \ufeff[b]\n',
      'gpus\u2028: 1\n',
      'a:\n  - b:\n\r',
      'a: 1\rb: 2\n',
      'a: "x\u00a0"\n',
      // A block value starting with an indicator.
      'a:\n  }b: 1\n',
      'a: ]x\n',
      'a: ,x\n',
      // Merge keys, quoted or not, are left to the composer.
      '"<<": {a: 1}\n',
      'a: {<<: {b: 1}}\n',
    ];
    for (const t of found) agrees(t);
    for (const t of found.slice(5)) expect(fastParseYaml(t), JSON.stringify(t)).toBeUndefined();
  });
});
