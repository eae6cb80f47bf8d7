// DATA numbers as minijinja-cli 2.3.1 reads them: its YAML reader (serde_yml, serde_yaml's rules)
// differs from the YAML 1.2 core schema on a few plain scalars. Both of bkci's YAML paths (the fast
// parser, and npm `yaml` for documents with anchors or tags) apply the same rules.
import { describe, expect, it } from 'vitest';
import { parseYamlValue } from '../../src/pipeline/data.js';
import { JFloat } from '../../src/pipeline/jinja/index.js';

// What each scalar becomes: ['int', n], ['float', x] or ['str', s].
const CASES: [string, ['int' | 'float' | 'str', number | string]][] = [
  ['010', ['str', '010']],
  ['-007', ['str', '-007']],
  ['00', ['str', '00']],
  ['0', ['int', 0]],
  ['-0', ['int', 0]],
  ['+5', ['int', 5]],
  ['42', ['int', 42]],
  ['0x1F', ['int', 31]],
  ['+0x1F', ['int', 31]],
  ['-0x1F', ['int', -31]],
  ['0o17', ['int', 15]],
  ['+0o7', ['int', 7]],
  ['-0o7', ['int', -7]],
  ['0b101', ['int', 5]],
  ['-0b1', ['int', -1]],
  ['0X1F', ['str', '0X1F']],
  ['0x', ['str', '0x']],
  ['1_000', ['str', '1_000']],
  ['1e3', ['float', 1000]],
  ['5.', ['float', 5]],
  ['+.5', ['float', 0.5]],
  ['00.5', ['float', 0.5]],
  ['.inf', ['float', Infinity]],
  ['inf', ['str', 'inf']],
  ['yes', ['str', 'yes']],
];

const kind = (v: unknown): ['int' | 'float' | 'str', number | string] =>
  v instanceof JFloat ? ['float', v.v] : typeof v === 'number' ? ['int', v + 0] : ['str', v as string];

describe('DATA numbers, as minijinja-cli reads them', () => {
  const text = CASES.map(([s], i) => `k${i}: ${s}`).join('\n') + '\n';
  it.each([
    ['the fast parser', text],
    ['npm yaml (a document with an anchor)', `${text}anchor: &a 1\nalias: *a\n`],
  ])('%s', (_name, yaml) => {
    const m = parseYamlValue(yaml, 'd.yaml') as Map<string, unknown>;
    const got = CASES.map(([s], i) => [s, kind(m.get(`k${i}`))]);
    expect(got).toEqual(CASES);
  });

  it('a tagged scalar keeps its tag', () => {
    const m = parseYamlValue('a: !!str 010\nb: !!int 010\nc: &x 0b11\nd: *x\n', 'd.yaml') as Map<string, unknown>;
    expect([m.get('a'), m.get('b'), m.get('c'), m.get('d')]).toEqual(['010', 10, 3, 3]);
  });
});
