import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobList, globMatch } from '../../src/util/glob.js';
import { firstMatchingFile } from '../../src/pipeline/changes.js';
import { randomInts } from '../helpers/random.js';

// A straightforward recursive reference (exponential in the worst case, fine for short inputs): the
// definition the automaton must agree with.
function reference(pattern: string, path: string): boolean {
  if (pattern === '') return false;
  if (!/[*?]/.test(pattern)) {
    const exact = pattern.endsWith('/') ? pattern.slice(0, -1) : pattern;
    return path === exact || path.startsWith(exact + '/');
  }
  const p = [...pattern];
  const s = [...path];
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === s.length;
    if (p[i] === '*' && p[i + 1] === '*') {
      let k = i;
      while (p[k] === '*') k++;
      if (p[k] === '/') {
        // zero segments, or any run ending in '/'
        if (go(k + 1, j)) return true;
        for (let m = j; m < s.length; m++) if (s[m] === '/' && go(k + 1, m + 1)) return true;
        return false;
      }
      for (let m = j; m <= s.length; m++) if (go(k, m)) return true;
      return false;
    }
    if (p[i] === '*') {
      for (let m = j; m <= s.length; m++) {
        if (go(i + 1, m)) return true;
        if (s[m] === '/') break;
      }
      return false;
    }
    if (j === s.length) return false;
    if (p[i] === '?') return s[j] !== '/' && go(i + 1, j + 1);
    return p[i] === s[j] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

describe('compileGlob', () => {
  const cases: [string, string, boolean][] = [
    ['*.py', 'setup.py', true],
    ['*.py', 'a/setup.py', false],
    ['**/*.py', 'setup.py', true],
    ['**/*.py', 'a/b/setup.py', true],
    ['**/x.py', 'ax.py', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/xb', false],
    ['results/**', 'results/a/b.json', true],
    ['results/**', 'results', false],
    ['csrc/**', 'csrc/x.cu', true],
    ['a**b', 'a/x/b', true],
    ['?.txt', 'a.txt', true],
    ['?.txt', '/.txt', false],
    ['?.txt', '\u{1F600}.txt', true],
    ['setup.py', 'setup.py', true],
    ['setup.py', 'setup.pyc', false],
    ['csrc', 'csrc/ops.cu', true],
    ['csrc/', 'csrc/ops.cu', true],
    ['csrc', 'csrcx/ops.cu', false],
    ['[ab].py', '[ab].py', true],
    ['[ab].py', 'a.py', false],
    ['', '', false],
    ['', 'x', false],
    ['***', 'a/b', true],
    ['a*', 'a', true],
    ['*', '', true],
  ];
  it.each(cases)('%s against %s is %s', (pattern, path, want) => {
    expect(globMatch(pattern, path)).toBe(want);
    expect(reference(pattern, path)).toBe(want);
  });

  it('answers the pathological pattern *a*a*a...*c (which doubled a backtracking regular expression per pair) by result', () => {
    const pairs = 40;
    const pattern = '*a'.repeat(pairs) + '*c';
    const path = 'a'.repeat(200);
    expect(compileGlob(pattern).test(path)).toBe(false);
    expect(compileGlob(pattern).test(path + 'c')).toBe(true);
    const deep = '**/a'.repeat(pairs) + '**/c';
    expect(compileGlob(deep).test('a/'.repeat(100) + 'b')).toBe(false);
    expect(compileGlob(deep).test('a/'.repeat(100) + 'c')).toBe(true);
    // A long path against a long pattern: bounded by their product, not exponential.
    expect(compileGlob('*?'.repeat(200) + 'z').test('y'.repeat(5000))).toBe(false);
  });

  it('agrees with the reference definition on random patterns and paths', () => {
    const next = randomInts(20261207);
    const r = { int: (lo: number, hi: number) => lo + next(hi - lo + 1), pick: <T>(xs: T[]) => xs[next(xs.length)]! };
    const alphabet = ['a', 'b', '/', '*', '?', '.'];
    const pathAlphabet = ['a', 'b', '/', '.'];
    for (let n = 0; n < 4000; n++) {
      const pattern = Array.from({ length: r.int(0, 8) }, () => r.pick(alphabet)).join('');
      const path = Array.from({ length: r.int(0, 9) }, () => r.pick(pathAlphabet)).join('');
      expect([pattern, path, globMatch(pattern, path)]).toEqual([pattern, path, reference(pattern, path)]);
    }
  });
});

describe('compileGlobList', () => {
  it('matches when any comma-separated glob does, blanks dropped', () => {
    const m = compileGlobList(' setup.py , csrc/**,, ');
    expect(m.pattern).toBe('setup.py,csrc/**');
    expect(m.test('setup.py')).toBe(true);
    expect(m.test('csrc/a/b.cu')).toBe(true);
    expect(m.test('docs/x.md')).toBe(false);
    expect(compileGlobList([]).test('x')).toBe(false);
  });

  it('selection: firstMatchingFile names the first changed file a --run-all-paths glob matches', () => {
    expect(firstMatchingFile(['docs/a.md', 'csrc/x.cu', 'setup.py'], ['setup.py', 'csrc/**'])).toBe('csrc/x.cu');
    expect(firstMatchingFile(['docs/a.md'], 'setup.py,csrc/**')).toBeUndefined();
    expect(firstMatchingFile(['a'.repeat(100)], '*a'.repeat(30) + '*c')).toBeUndefined();
  });
});
