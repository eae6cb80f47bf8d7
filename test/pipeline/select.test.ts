// Changed-file selection: the pure rules, and --diff-base against a real git repository.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChangedFiles } from '../../src/pipeline/changes.js';
import { deadPrefixes, selectSteps } from '../../src/pipeline/select.js';
import { runBkci } from '../helpers/io.js';

const steps = [
  { label: 'Build', key: 'build' },
  { label: 'Unit', key: 'unit', depends_on: 'build', source_file_dependencies: ['src/', 'tests/unit/', '!src/docs/'] },
  { label: 'Kernels', key: 'kernels', depends_on: [{ step: 'build' }], source_file_dependencies: ['csrc/'] },
  { label: 'E2E', key: 'e2e', depends_on: ['kernels'], source_file_dependencies: ['tests/e2e/'] },
  { label: 'Nightly perf', key: 'perf', optional: true, source_file_dependencies: ['csrc/'] },
];
const sel = (o: Partial<Parameters<typeof selectSteps>[0]>) =>
  selectSteps({ steps, changedFiles: undefined, runAll: false, nightly: false, onlySteps: undefined, ...o });
const running = (o: Partial<Parameters<typeof selectSteps>[0]>) =>
  sel(o)
    .filter((d) => d.run && !d.blocked)
    .map((d) => d.id);

describe('selectSteps', () => {
  it('runs a step whose prefix matches a changed file, not one whose change is excluded', () => {
    expect(running({ changedFiles: ['src/model.py'] })).toEqual(['build', 'unit']);
    expect(running({ changedFiles: ['src/docs/index.md'] })).toEqual(['build']);
    expect(running({ changedFiles: ['src/docs/index.md', 'src/a.py'] })).toEqual(['build', 'unit']);
  });

  it('keeps what a selected step depends on, transitively, and says why', () => {
    const d = sel({ changedFiles: ['tests/e2e/test_x.py'] });
    expect(d.filter((x) => x.run && !x.blocked).map((x) => x.id)).toEqual(['build', 'kernels', 'e2e']);
    expect(d.find((x) => x.id === 'kernels')!.reasons).toEqual(['no changed file matches csrc/', 'dependency of e2e']);
    expect(d.find((x) => x.id === 'e2e')!.reasons).toEqual(['tests/e2e/test_x.py matches tests/e2e/']);
  });

  it('optional steps wait behind a block unless nightly; run_all selects everything', () => {
    expect(sel({ changedFiles: [] }).find((x) => x.id === 'perf')).toMatchObject({ run: true, blocked: true });
    expect(sel({ changedFiles: ['csrc/a.cu'], nightly: true }).find((x) => x.id === 'perf')).toMatchObject({ run: true, blocked: false });
    expect(sel({ changedFiles: [], nightly: true }).find((x) => x.id === 'perf')).toMatchObject({ run: false });
    expect(running({ changedFiles: [], runAll: true })).toEqual(['build', 'unit', 'kernels', 'e2e']);
  });

  it('without change information every step runs; --only-steps runs just those and their dependencies', () => {
    expect(running({})).toEqual(['build', 'unit', 'kernels', 'e2e']);
    expect(running({ onlySteps: ['e2e'] })).toEqual(['build', 'kernels', 'e2e']);
  });

  it('finds prefixes that match no tracked file', () => {
    expect(deadPrefixes(steps, ['src/a.py', 'tests/unit/t.py', 'csrc/k.cu'])).toEqual([{ prefix: 'tests/e2e/', steps: ['e2e'] }]);
    // One verdict per prefix, naming every step that uses it; exclusions are not prefixes.
    const many = Array.from({ length: 7 }, (_v, i) => ({ key: `t${i}`, source_file_dependencies: [i % 2 ? 'docs/' : 'srcc/', '!src/x'] }));
    expect(deadPrefixes(many, ['src/a.py', 'docs/i.md'])).toEqual([{ prefix: 'srcc/', steps: ['t0', 't2', 't4', 't6'] }]);
  });

  it('reads a changed-files list with CRLF and blank lines', () => {
    expect(parseChangedFiles('a.py\r\n\r\n  b/c.py \n')).toEqual(['a.py', 'b/c.py']);
  });
});

describe('--diff-base in a git checkout', () => {
  function repo(): string {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-git-'));
    const git = (...a: string[]) =>
      execFileSync('git', a, {
        cwd: dir,
        env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' },
      });
    const put = (p: string, c: string) => {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), c);
    };
    git('init', '-q', '-b', 'main');
    put('src/a.py', 'a\n');
    put('csrc/k.cu', 'k\n');
    put('tests/e2e/t.py', 't\n');
    put(
      '.buildkite/test-pipeline.yaml',
      'steps:\n  - label: Unit\n    key: unit\n    source_file_dependencies: [src/]\n    commands: [pytest]\n  - label: Kernels\n    key: kernels\n    source_file_dependencies: [csrc/]\n    commands: [make]\n  - label: Typo\n    key: typo\n    source_file_dependencies: [srcc/]\n    commands: [x]\n',
    );
    git('add', '.');
    git('commit', '-q', '-m', 'base');
    git('checkout', '-q', '-b', 'feature');
    put('csrc/k.cu', 'changed\n');
    put('csrc/new file ü.cu', 'new\n');
    git('add', '.');
    git('commit', '-q', '-m', 'change');
    return dir;
  }

  it('selects from git diff against the merge base and warns about a prefix that matches nothing', async () => {
    const dir = repo();
    const r = await runBkci(['--log-format', 'json', 'pipeline', 'render', '--diff-base', 'main', '--explain', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('key: "kernels"');
    expect(r.stdout).not.toContain('key: "unit"');
    expect(r.stderr).toMatch(/"prefix":"srcc\/","steps":\["typo"\]/);
    expect(r.stderr).toContain('"csrc/k.cu matches csrc/"');
    // The default log lines (text) say the same for a person reading a job log.
    const text = await runBkci(['pipeline', 'render', '--diff-base', 'main', '--explain'], { cwd: dir });
    expect(text.stderr).toMatch(/^WARN .*srcc\/.*typo/m);
    // Paths come through exactly (git -z: no quoting of spaces or non-ASCII names).
    writeFileSync(join(dir, 'files.j2'), '{{ changed_files | join(",") }}|{{ list_file_diff }}');
    const f = await runBkci(['pipeline', 'render', 'files.j2', '--diff-base', 'main', '--no-validate'], { cwd: dir });
    expect(f.stdout).toBe('csrc/k.cu,csrc/new file ü.cu|csrc/k.cu|csrc/new file ü.cu\n');
  });

  it('without git on PATH, --diff-base says so (exit 2)', async () => {
    // A real process: git is looked up on the process's own PATH.
    const { spawnSync } = await import('node:child_process');
    const bin = join(import.meta.dirname, '../../dist/bundle/bin.js');
    const r = spawnSync(process.execPath, [bin, 'pipeline', 'render', '--diff-base', 'main'], { cwd: repo(), env: { PATH: '/nonexistent' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--diff-base main: git is not installed \(or not on PATH\)[\s\S]*--changed-files/);
  });

  it('an unknown base ref is exit 2 with a hint', async () => {
    const r = await runBkci(['pipeline', 'render', '--diff-base', 'origin/nope'], { cwd: repo() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--diff-base origin\/nope: git merge-base failed[\s\S]*hint: fetch the base branch/);
  });
});
