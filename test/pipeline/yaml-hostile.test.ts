// YAML that real pipelines and attackers send (issue 15 §1-§3, §6): every case is a located
// finding or error in bkci's words, merge keys merge as the Buildkite agent merges them, and
// alias/merge/nesting bombs are refused before they cost memory.
import { describe, expect, it } from 'vitest';
import { validatePipelineText, type Finding } from '../../src/pipeline/validate.js';
import { parseDataFile, parseYamlValue } from '../../src/pipeline/data.js';
import { loadPipelineYaml } from '../../src/pipeline/yaml-load.js';
import { composeYaml, describeYamlError, PIPELINE_MAX_DEPTH } from '../../src/pipeline/yaml-compose.js';
import { fastParseYaml } from '../../src/util/fast-yaml.js';
import { InputError } from '../../src/util/errors.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBkci } from '../helpers/io.js';

const errorsOf = (findings: Finding[]) => findings.filter((f) => f.severity === 'error');

async function yamlError(text: string): Promise<Finding> {
  const v = await validatePipelineText(text);
  expect(v.valid, text).toBe(false);
  const e = errorsOf(v.findings);
  expect(e.length, text).toBeGreaterThan(0);
  expect(e[0]!.path).toBe('(yaml)');
  return e[0]!;
}

// Words npm `yaml` uses in its messages and warnings; none may reach a user.
const LIBRARY_TEXT =
  /parseAllDocuments|mapAsMap|Implicit map keys|Nested mappings|Missing closing|Map keys must be unique|Tabs are not allowed|Alias cannot|Unresolved alias|resource exhaustion|Symbol\(|This should not happen|Plain value cannot start|Unexpected (?:flow|scalar|end|block|,)/i;

function dataError(text: string, source = 'data.yaml'): string {
  try {
    parseDataFile(text, source);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${text.slice(0, 80)}`);
}

// A billion laughs: `levels` anchors, each a list of `width` aliases of the one before.
function aliasBomb(levels: number, width: number, tail = 'steps: [wait]\n'): string {
  let s = 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
  for (let i = 1; i <= levels; i++)
    s += `a${i}: &a${i} [${Array(width)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  return s + tail;
}

describe('pipeline validate: YAML that is not a pipeline is a located finding', () => {
  it('an undefined alias and an alias before its anchor', async () => {
    const undef = await yamlError('steps:\n  - command: *nope\n');
    expect(undef).toMatchObject({ line: 2, col: 14 });
    expect(undef.message).toMatch(/`\*nope` refers to no anchor/);
    const before = await yamlError('steps:\n  - command: *a\n  - command: &a echo\n');
    expect(before).toMatchObject({ line: 2, col: 14 });
    expect(before.message).toMatch(/comes before its anchor `&a`/);
  });

  it('a merge of a scalar, null, a list of scalars, an undefined alias; a top-level merge of a scalar', async () => {
    const cases: [string, number, number, RegExp][] = [
      ['steps:\n  - <<: 1\n    command: x\n', 2, 9, /not a scalar/],
      ['steps:\n  - <<: ~\n    command: x\n', 2, 9, /not null/],
      ['steps:\n  - <<:\n    command: x\n', 2, 8, /not null/],
      ['steps:\n  - <<: [a, b]\n    command: x\n', 2, 10, /not a scalar/],
      ['steps:\n  - <<: [*x]\n    command: x\n', 2, 10, /refers to no anchor/],
      ['steps:\n  - <<: *zz\n    command: x\n', 2, 9, /`\*zz` refers to no anchor/],
      ['<<: 1\nsteps: [wait]\n', 1, 5, /not a scalar/],
      ['d: &d text\nsteps:\n  - <<: *d\n    command: x\n', 3, 9, /not a scalar/],
    ];
    for (const [text, line, col, msg] of cases) {
      const f = await yamlError(text);
      expect(f, text).toMatchObject({ line, col });
      expect(f.message, text).toMatch(msg);
    }
  });

  it('a mapping that merges itself, or a mapping around it (a stack overflow before)', async () => {
    const self = await yamlError('steps:\n  - &s\n    command: x\n    <<: *s\n');
    expect(self).toMatchObject({ line: 4, col: 9 });
    expect(self.message).toMatch(/merges a mapping into itself/);
    const outer = await yamlError('steps:\n  - &s\n    command: x\n    env:\n      <<: [*s]\n');
    expect(outer.message).toMatch(/merges a mapping into itself|contains it/);
    const alias = await yamlError('a: &a\n  b: *a\nsteps: [wait]\n');
    expect(alias).toMatchObject({ line: 2, col: 6 });
    expect(alias.message).toMatch(/infinite recursion/);
  });

  it('"\\UFFFFFFFF" and escaped surrogates are not characters (go-yaml refuses them)', async () => {
    const big = await yamlError('steps:\n  - command: "\\UFFFFFFFF"\n');
    expect(big).toMatchObject({ line: 2, col: 15 });
    expect(big.message).toMatch(/not a Unicode character/);
    const sur = await yamlError('steps:\n  - command: "a \\uD800"\n');
    expect(sur.message).toMatch(/\\uD800/);
    expect(fastParseYaml('a: "\\UFFFFFFFF"\n')).toBeUndefined();
    expect(fastParseYaml('a: "\\U0001F600"\n')!.docs).toEqual([{ a: '😀' }]);
  });

  it('a complex key `? [a]` and a null key (the agent refuses both)', async () => {
    const complex = await yamlError('steps:\n  - command: x\n    ? [a]\n    : b\n');
    expect(complex).toMatchObject({ line: 3, col: 7 });
    expect(complex.message).toMatch(/list or mapping as a mapping key/);
    const nul = await yamlError('steps:\n  - command: x\n    ~: b\n');
    expect(nul.message).toMatch(/null mapping key/);
  });

  it('keys are named as the agent names them: true, decimal ints, go-formatted floats', () => {
    const r = loadPipelineYaml('{true: a, 0x10: b, 1.5: c, "x": d, 010: e}\n');
    expect(r.errors).toEqual([]);
    expect(r.docs[0]!.value).toEqual({ true: 'a', '16': 'b', '1.500000e+00': 'c', x: 'd', '10': 'e' });
  });

  it('an alias bomb is refused at the alias where expansion passes go-yaml’s ratio, with memory bounded', async () => {
    const before = process.memoryUsage().heapUsed;
    const f = await yamlError(aliasBomb(9, 10));
    expect(f.message).toMatch(/excessive aliasing: `\*a\d` /);
    expect(f.line).toBeGreaterThan(1);
    expect(f.line).toBeLessThan(10);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(200 * 2 ** 20);
  });

  it('merge bombs are refused, nested merges of one anchor are built once', async () => {
    let s = 'a0: &a0 {command: x}\n';
    for (let i = 1; i <= 24; i++) s += `a${i}: &a${i} {<<: [*a${i - 1}, *a${i - 1}]}\n`;
    const f = await yamlError(s + 'steps: [wait]\n');
    expect(f.message).toMatch(/excessive aliasing/);
    // A few levels are fine: the merged mapping holds each key once.
    let ok = 'a0: &a0 {command: x, label: l}\n';
    for (let i = 1; i <= 5; i++) ok += `a${i}: &a${i} {<<: [*a${i - 1}, *a${i - 1}], k${i}: v}\n`;
    const r = loadPipelineYaml(ok + 'steps: [{<<: *a5}]\n');
    expect(r.errors).toEqual([]);
    expect((r.docs[0]!.value as { steps: unknown[] }).steps[0]).toEqual({ command: 'x', label: 'l', k1: 'v', k2: 'v', k3: 'v', k4: 'v', k5: 'v' });
  });

  it('40,000 aliases of one anchor are accepted and share one value (linear, not a copy each)', async () => {
    const n = 40_000;
    const text = `x: &a {A: "1"}\nsteps:\n  - command: x\n    env:\n${Array.from({ length: n }, (_v, i) => `      K${i}: *a\n`).join('')}`;
    const r = loadPipelineYaml(text);
    expect(r.errors).toEqual([]);
    const env = (r.docs[0]!.value as { steps: { env: Record<string, unknown> }[] }).steps[0]!.env;
    expect(Object.keys(env)).toHaveLength(n);
    expect(env.K0).toBe(env[`K${n - 1}`]);
  });

  it('5,000-deep flow or block nesting is a located error, not a stack overflow', async () => {
    const flow = await yamlError(`steps: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    // The top-level mapping is the first level.
    expect(flow).toMatchObject({ line: 1, col: 7 + PIPELINE_MAX_DEPTH });
    expect(flow.message).toMatch(/nested more than 1000 levels/);
    const block = await yamlError(`steps:\n${'- '.repeat(5000)}x\n`);
    expect(block.line).toBe(2);
    expect(block.message).toMatch(/nested more than 1000 levels/);
    let map = 'steps:\n';
    for (let i = 0; i < 5000; i++) map += `${' '.repeat(i)}k:\n`;
    expect((await yamlError(map)).message).toMatch(/nested more than 1000 levels/);
    const unclosed = await yamlError(`steps: ${'{a: '.repeat(100_000)}\n`);
    expect(unclosed.message).toMatch(/nested more than 1000 levels/);
    // 1,000 levels are fine, read by the fast parser and by npm yaml alike.
    const deep = (n: number) => `steps: [{command: x, plugins: [{p: ${'['.repeat(n)}${']'.repeat(n)}}]}]\n`;
    expect(fastParseYaml(deep(995))).toBeDefined();
    expect(loadPipelineYaml(deep(995)).errors).toEqual([]);
    expect(fastParseYaml(deep(996))).toBeUndefined();
    expect(loadPipelineYaml(deep(996)).errors[0]!.message).toMatch(/nested more than 1000 levels/);
  });
});

describe('merge keys as the agent merges them', () => {
  it('several `<<:` in one mapping merge silently: explicit keys win, then the earlier merge', async () => {
    const text = 'd: &d {command: x, label: l}\nsteps:\n  - <<: *d\n    <<: {key: k, label: m}\n    label: own\n    <<: [{env: {A: b}}, *d]\n';
    const v = await validatePipelineText(text);
    expect(v.findings).toEqual([]);
    expect(v.valid).toBe(true);
    const step = (v.documents[0] as { steps: Record<string, unknown>[] }).steps[0]!;
    expect(step).toEqual({ command: 'x', label: 'own', key: 'k', env: { A: 'b' } });
    // Merged keys stand where their `<<` stands.
    expect(Object.keys(step)).toEqual(['command', 'key', 'label', 'env']);
  });

  it('a quoted "<<" is an ordinary key; a list inside a merge list and an alias of a list merge', () => {
    const r = loadPipelineYaml('a: &a {x: 1}\nb: &b [*a]\nc: {"<<": 1}\nd: {<<: [[*a]]}\ne: {<<: *b}\n');
    expect(r.errors).toEqual([]);
    expect(r.docs[0]!.value).toMatchObject({ c: { '<<': 1 }, d: { x: 1 }, e: { x: 1 } });
  });

  it('a repeated ordinary key warns in bkci’s words (no internal name)', async () => {
    const v = await validatePipelineText('steps:\n  - command: a\n    command: b\n    <<: {label: x}\n    <<: {key: y}\n    label: &l z\n    key: *l\n');
    expect(v.findings.map((f) => f.message)).toEqual(['repeated key `command`: the agent keeps the last value']);
  });
});

describe('DATA for pipeline render', () => {
  it('a 1 KB alias bomb (never read by the template) is a located error, exit 2, in bounded memory', () => {
    const before = process.memoryUsage().heapUsed;
    const msg = dataError(aliasBomb(9, 10, 'name: x\n'));
    expect(msg).toMatch(/^data\.yaml:\d+:\d+: cannot parse: excessive aliasing/);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(200 * 2 ** 20);
    // Aliases within serde_yaml's budget are read, each sharing its anchor's value.
    const ok = parseDataFile('a: &a [1, 2]\nb: *a\nc: *a\n', 'data.yaml');
    expect(ok.get('b')).toBe(ok.get('c'));
  });

  it('nesting past 128 levels (serde_yaml’s and serde_json’s limit) is a clear error, JSON, JSON5 and YAML alike', () => {
    for (const depth of [129, 5000, 10_000]) {
      expect(dataError(`{"a": ${'['.repeat(depth)}${']'.repeat(depth)}}`, 'd.json')).toMatch(
        /^d\.json:1:\d+: cannot parse: lists and mappings nested more than 128/,
      );
      expect(dataError(`{a: ${'{b: '.repeat(depth)}1${'}'.repeat(depth)}, // json5\n}`, 'd.json5')).toMatch(/nested more than 128/);
      expect(dataError(`a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`)).toMatch(/^data\.yaml:1:\d+: cannot parse: lists and mappings nested more than 128/);
    }
    expect(parseDataFile(`a: ${'['.repeat(127)}${']'.repeat(127)}\n`, 'data.yaml').get('a')).toBeDefined();
    // An alias cannot smuggle depth past the limit.
    expect(dataError(`x: &x ${'['.repeat(100)}${']'.repeat(100)}\ny: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n`)).toMatch(
      /^data\.yaml:2:\d+: .*nested more than 128/,
    );
  });

  it('serde_yaml’s rules: one document, no repeated keys (JSON keeps the last), merges', () => {
    expect(dataError('a: 1\n---\na: 2\n')).toMatch(/^data\.yaml:3:1: a second YAML document/);
    expect(dataError('a: 1\nb: 2\na: 3\n')).toMatch(/^data\.yaml:3:1: cannot parse: a repeated key `a`/);
    expect(parseDataFile('{"a": 1, "a": 2}', 'd.json').get('a')).toBe(2);
    const m = parseDataFile('d: &d {x: 1, y: 2}\ne: {<<: *d, y: 3}\nf: {<<: [{x: 5}, *d]}\n', 'data.yaml');
    expect([...(m.get('e') as Map<string, unknown>)]).toEqual([
      ['x', 1],
      ['y', 3],
    ]);
    expect((m.get('f') as Map<string, unknown>).get('x')).toBe(5);
    expect(dataError('a: {<<: 1}\n')).toMatch(/^data\.yaml:1:9: cannot parse: a merge key `<<` needs a mapping/);
    expect(dataError('a: &a {x: 1}\nb: {<<: [[*a]]}\n')).toMatch(/merges only mappings/);
  });

  it('through the CLI: exit 2 naming the place, before the template runs; validate exit 1', async () => {
    const d = mkdtempSync(join(tmpdir(), 'bkci-yaml-'));
    writeFileSync(join(d, 't.j2'), 'steps: [{command: "echo {{ name }}"}]\n');
    writeFileSync(join(d, 'bomb.yaml'), aliasBomb(9, 10, 'name: x\n'));
    writeFileSync(join(d, 'deep.json'), `{"name": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
    writeFileSync(join(d, 'p.yml'), aliasBomb(9, 10));
    for (const data of ['bomb.yaml', 'deep.json']) {
      const r = await runBkci(['pipeline', 'render', 't.j2', data], { cwd: d });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^bkci: ${data.replace('.', '\\.')}:\\d+:\\d+: cannot parse: `));
      expect(r.stdout).toBe('');
    }
    const v = await runBkci(['pipeline', 'validate', 'p.yml'], { cwd: d });
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/^p\.yml:\d+:\d+: error: \(yaml\): excessive aliasing/);
  });

  it('-D name:=value reads YAML with the same limits', () => {
    expect(() => parseYamlValue(`${'['.repeat(200)}${']'.repeat(200)}`, '-D x')).toThrow(/^-D x:1:129: cannot parse: lists and mappings nested/);
  });
});

describe('messages are bkci’s own, located', () => {
  const broken = [
    'a: 1\n---\nb: 2\n',
    'a: b: c\n',
    'a:\n  - x\n - y\n',
    'a: "unclosed\n',
    'a: [1, 2\n',
    'a: {b: 1, b: 2}\n',
    'a:\n\t- x\n',
    'a: @x\n',
    '? [a]\n: b\n',
    'a: *\n',
    'a: !!int x\n',
    '%FOO bar\n---\na: 1\n',
    'a: |x\n  y\n',
    'a: b\n c: d\n',
    '[a, b]: c\n',
    'a: &x &y 1\n',
    '- a\nb: c\n',
    "a: 'x\n---\n",
    'a: "\\q"\n',
    '{a: 1}}\n',
  ];
  it('npm yaml’s texts and warnings never reach a message (pipeline and DATA)', async () => {
    const warned: unknown[] = [];
    const onWarning = (w: unknown) => warned.push(w);
    process.on('warning', onWarning);
    const origWarn = console.warn;
    console.warn = (...a: unknown[]) => warned.push(a);
    try {
      for (const text of broken) {
        const v = await validatePipelineText(text);
        for (const f of v.findings) {
          expect(f.message, text).not.toMatch(LIBRARY_TEXT);
          expect(f.line, text).toBeGreaterThan(0);
        }
        let msg = '';
        try {
          parseDataFile(text, 'd.yaml');
        } catch (err) {
          msg = (err as Error).message;
          expect(err, text).toBeInstanceOf(InputError);
          expect(msg, text).toMatch(/^d\.yaml:\d+:\d+: /);
        }
        expect(msg, text).not.toMatch(LIBRARY_TEXT);
      }
      // DATA with a collection as a key: a map key, no mapAsMap warning.
      expect(parseDataFile('? [a, b]\n: 1\n', 'd.yaml').size).toBe(1);
    } finally {
      process.off('warning', onWarning);
      console.warn = origWarn;
    }
    expect(warned).toEqual([]);
  });

  it('every npm yaml error code has bkci wording', () => {
    const codes = ['ALIAS_PROPS', 'BAD_ALIAS', 'BAD_DIRECTIVE', 'BAD_DQ_ESCAPE', 'BAD_INDENT', 'BAD_PROP_ORDER', 'BAD_SCALAR_START', 'BLOCK_AS_IMPLICIT_KEY'];
    const more = [
      'BLOCK_IN_FLOW',
      'DUPLICATE_KEY',
      'IMPOSSIBLE',
      'KEY_OVER_1024_CHARS',
      'MISSING_CHAR',
      'MULTILINE_IMPLICIT_KEY',
      'MULTIPLE_ANCHORS',
      'MULTIPLE_DOCS',
    ];
    const rest = ['MULTIPLE_TAGS', 'NON_STRING_KEY', 'RESOURCE_EXHAUSTION', 'TAB_AS_INDENT', 'TAG_RESOLVE_FAILED', 'UNEXPECTED_TOKEN', 'BAD_COLLECTION_TYPE'];
    for (const code of [...codes, ...more, ...rest]) {
      const m = describeYamlError(code, 'Implicit map keys need to be followed by map values', 'x');
      expect(m).not.toMatch(LIBRARY_TEXT);
      expect(m.length).toBeGreaterThan(5);
    }
  });

  it('the composer itself never throws on a malformed document', () => {
    for (const text of broken) expect(() => composeYaml(text, { mode: 'pipeline', maxDepth: 1000 })).not.toThrow();
  });
});
