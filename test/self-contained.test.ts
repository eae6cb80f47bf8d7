// The repository is self-contained: the code, the tests, the bench and the scripts read nothing
// outside the checkout (no shared folder beside it, no absolute paths of this machine), and every fixture folder
// copied from elsewhere is named in test/fixtures/README.md with its source and licence.
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    // A link is checked by its own test below (its target may not even exist here).
    if (name === 'node_modules' || st.isSymbolicLink()) continue;
    if (st.isDirectory()) filesUnder(p, out);
    else out.push(p);
  }
  return out;
}

// Built from parts so that this file does not match itself.
const OUTSIDE = [new RegExp(['\\.\\.', 'shared'].join('/')), new RegExp(['', 'work', ''].join('/')), new RegExp(`['"]\\.\\.['"]\\s*,\\s*['"]${'shared'}['"]`)];

describe('the checkout is self-contained', () => {
  it('no file under src/, test/, bench/, scripts/ or .ci/ points outside the checkout', () => {
    const files = ['src', 'test', 'bench', 'scripts', '.ci'].flatMap((d) => filesUnder(join(ROOT, d)));
    expect(files.length).toBeGreaterThan(100);
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'latin1');
      text.split('\n').forEach((line, i) => {
        if (OUTSIDE.some((re) => re.test(line))) found.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });

  it('test/fixtures/README.md names every fixture folder and file copied from elsewhere, with its licence', () => {
    const readme = readFileSync(join(ROOT, 'test/fixtures/README.md'), 'utf8');
    for (const entry of readdirSync(join(ROOT, 'test/fixtures'))) {
      if (entry === 'README.md') continue;
      expect(readme, entry).toContain(`${entry}/`);
    }
    for (const dir of ['buildkite', 'vllm']) {
      for (const entry of readdirSync(join(ROOT, 'test/fixtures', dir))) expect(readme, `${dir}/${entry}`).toContain(entry);
    }
    expect(readme).toMatch(/MIT/);
    expect(readme).toMatch(/Apache/);
  });
});

// Tracked symbolic links (git mode 120000) whose target leaves the checkout: an absolute target, or
// a relative one that climbs out of ROOT (a worktree's `node_modules` link to another checkout's
// modules was committed once by mistake). `entries` are `git ls-files -s -z` records.
function linksOutside(entries: string[], readTarget: (path: string, blob: string) => string): string[] {
  const found: string[] = [];
  for (const entry of entries) {
    const m = /^(\d+) ([0-9a-f]+) \d+\t(.+)$/s.exec(entry);
    if (!m || m[1] !== '120000') continue;
    const target = readTarget(m[3]!, m[2]!);
    const inside = relative(ROOT, resolve(ROOT, dirname(m[3]!), target));
    if (isAbsolute(target) || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) found.push(`${m[3]} -> ${target}`);
  }
  return found;
}

describe('tracked symbolic links', () => {
  it('finds a link that leaves the checkout, relative or absolute, and keeps one that stays inside', () => {
    const targets: Record<string, string> = { a: '../../main/node_modules', b: '/usr/lib/node_modules', c: '../fixtures/x', d: '..', e: 'sub/../../..' };
    const entries = Object.keys(targets).map((k, i) => `120000 ${String(i).repeat(40)} 0\ttest/${k === 'a' ? 'node_modules' : k}`);
    entries.push(`100644 ${'f'.repeat(40)} 0\tREADME.md`);
    const found = linksOutside(entries, (_p, blob) => targets['abcde'[Number(blob[0])]!]!);
    expect(found).toEqual(['test/node_modules -> ../../main/node_modules', 'test/b -> /usr/lib/node_modules', 'test/e -> sub/../../..']);
  });

  it('no tracked file is a link pointing outside the checkout', () => {
    const entries = execFileSync('git', ['ls-files', '-s', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    expect(entries.length).toBeGreaterThan(100);
    const readTarget = (_path: string, blob: string) => execFileSync('git', ['cat-file', 'blob', blob], { cwd: ROOT, encoding: 'utf8' });
    expect(linksOutside(entries, readTarget)).toEqual([]);
  });
});
