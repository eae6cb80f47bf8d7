// Real-world-style templates other than vLLM's, rendered by the CLI and by the MiniJinja oracle
// (test/fixtures/vllm/render-oracle.mjs: minijinja-js with minijinja-cli's defaults), byte-compared,
// and the renders validated. gpu-matrix: a hardware matrix, path filters in a macro, namespaces,
// dictsort/tojson/trim, nested map literals, block steps for optional suites, a Buildkite matrix.
// kernel-bench: groupby into groups, loop filters with for-else, shards from range, block scalars
// with line continuations, a captured set block, min/sum/map, a top-level env from `items`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';

const ROOT = join(import.meta.dirname, '../..');
const ORACLE = join(ROOT, 'test/fixtures/vllm/render-oracle.mjs');

const CASES: [string, string, string, string[]][] = [
  ['gpu-matrix', 'tests.yaml', 'a change to src/ and csrc/', ['changed_files=src/a.py,csrc/k.cu', 'run_all=0', 'nightly=0']],
  ['gpu-matrix', 'tests.yaml', 'run_all', ['run_all=1', 'nightly=0']],
  ['gpu-matrix', 'tests.yaml', 'nightly', ['nightly=1', 'run_all=0']],
  ['gpu-matrix', 'tests.yaml', 'a docs-only change', ['changed_files=docs/index.md']],
  ['kernel-bench', 'data.yaml', 'a branch', ['branch=feat/x']],
  ['kernel-bench', 'data.yaml', 'no variables', []],
];

describe('real-world-style templates', () => {
  it.each(CASES)('%s (%s, %s): bkci prints what minijinja prints, and it validates', async (name, data, _set, defines) => {
    const dir = join(ROOT, 'test/fixtures/templates', name);
    const defs = defines.flatMap((d) => ['-D', d]);
    const expected = execFileSync(process.execPath, [ORACLE, 'render', 'pipeline.j2', data, ...defs], {
      cwd: dir,
      env: { ...process.env, MINIJINJA_JS_DIR: ROOT },
      encoding: 'utf8',
    });
    expect(expected).toMatch(/(^|\n)steps:\n/);
    const r = await runBkci(['pipeline', 'render', 'pipeline.j2', data, ...defs], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected);
  });
});
