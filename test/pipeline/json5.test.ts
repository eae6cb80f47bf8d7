// DATA files ending in .json are JSON5 (as minijinja-cli reads them): converted to JSON, then read
// as YAML so `1.0` stays a float. A JSON5 comment used to be taken for part of a YAML key.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { json5ToJson } from '../../src/pipeline/json5.js';
import { runBkci } from '../helpers/io.js';
import { randomInts } from '../helpers/random.js';

const parse = (t: string) => YAML.parse(json5ToJson(t, 'd.json')) as unknown;

describe('JSON5 data', () => {
  it('reads every JSON5 feature', () => {
    const text = `// comments
{
  unquoted: 'and you can quote me on that',
  singleQuotes: 'I can use "double quotes" here',
  lineBreaks: "Look, Mom! \\
No \\\\n's!",
  hexadecimal: 0xdecaf, negHex: -0x10,
  leadingDecimalPoint: .8675309, andTrailing: 8675309., exp: 1e3,
  positiveSign: +1, inf: -Infinity, Infinity: 1,
  /* a block
     comment */ trailingComma: 'in objects', andIn: ['arrays',],
  "backwardsCompatible": "with JSON", key /* between */ : "x", $id_1: null, escapes: '\\x41\\u00e9\\t\\'', nul: "a\\0b",
}`;
    expect(parse(text)).toEqual({
      unquoted: 'and you can quote me on that',
      singleQuotes: 'I can use "double quotes" here',
      lineBreaks: "Look, Mom! No \\n's!",
      hexadecimal: 0xdecaf,
      negHex: -16,
      leadingDecimalPoint: 0.8675309,
      andTrailing: 8675309,
      exp: 1000,
      positiveSign: 1,
      inf: -Infinity,
      Infinity: 1,
      trailingComma: 'in objects',
      andIn: ['arrays'],
      backwardsCompatible: 'with JSON',
      key: 'x',
      $id_1: null,
      escapes: "A\u00e9\t'",
      nul: 'a\0b',
    });
  });

  it('keeps the lines of the text, so YAML errors still point at the right line', () => {
    const out = json5ToJson('{\n  // c\n  /* a\n b */ a: "x\\\n y",\n  b: 1,\n}\n', 'd.json');
    expect(out.split('\n')).toHaveLength(8);
  });

  it('leaves plain JSON as it was (1,000 random documents)', () => {
    const rnd = randomInts(11);
    const value = (depth: number): unknown => {
      const t = rnd(depth > 3 ? 5 : 7);
      if (t === 0) return null;
      if (t === 1) return rnd(2) === 0;
      if (t === 2) return rnd(100000) - 50000;
      if (t === 3) return (rnd(100000) - 50000) / 64;
      if (t === 4) return ['', 'a b', 'quote " and \\\\', 'é😀', '// not a comment', "it's", 'line\nbreak', '/* x */'][rnd(8)];
      if (t === 5) return Array.from({ length: rnd(4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: rnd(4) }, (_v, i) => [`k${i}${['', ' x', '-y', ':z'][rnd(4)]}`, value(depth + 1)]));
    };
    for (let k = 0; k < 1000; k++) {
      const v = { root: value(0) };
      expect(parse(JSON.stringify(v, null, rnd(2) * 2))).toEqual(v);
    }
  });

  it('an error names the line and column', () => {
    expect(() => json5ToJson('{\n  a: "open\n}', 'd.json')).toThrow(/d\.json:2:11: not JSON5: a line break inside a string/);
    expect(() => json5ToJson('{a: 1,,}', 'd.json')).toThrow(/d\.json:1:7: not JSON5: two commas/);
    expect(() => json5ToJson('{a: undefined}', 'd.json')).toThrow(/unexpected `undefined`/);
    expect(() => json5ToJson('{a: 12px}', 'd.json')).toThrow(/a bad number 12p/);
  });

  it('through the CLI: comments work, floats stay floats, errors exit 2', async () => {
    const d = mkdtempSync(join(tmpdir(), 'bkci-json5-'));
    writeFileSync(join(d, 't.j2'), '{{ name }} {{ f }} {{ i }} {{ list }}');
    writeFileSync(join(d, 'd.json'), '{\n  // generated\n  name: "x", f: 1.0, i: 1,\n  list: [1, 2,],\n}\n');
    let r = await runBkci(['pipeline', 'render', 't.j2', 'd.json', '--no-validate'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('x 1.0 1 [1, 2]\n');
    writeFileSync(join(d, 'bad.json'), '{\n  name: @x\n}\n');
    r = await runBkci(['pipeline', 'render', 't.j2', 'bad.json', '--no-validate'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.json:2:9: not JSON5: unexpected `@`/);
    expect(r.stdout).toBe('');
  });
});
