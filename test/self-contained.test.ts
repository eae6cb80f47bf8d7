// The repository is self-contained: the code, the tests, the bench and the scripts read nothing
// outside the checkout (no shared folder beside it, no absolute paths of this machine), and every fixture folder
// copied from elsewhere is named in test/fixtures/README.md with its source and licence.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(p).isDirectory()) filesUnder(p, out);
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
