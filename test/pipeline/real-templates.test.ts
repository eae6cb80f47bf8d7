// Real-world-style templates other than vLLM's, rendered by the CLI and by the MiniJinja oracle
// (test/fixtures/vllm/render-oracle.mjs: minijinja-js with minijinja-cli's defaults), byte-compared,
// and the renders validated. gpu-matrix: a hardware matrix, path filters in a macro, namespaces,
// dictsort/tojson/trim, nested map literals, block steps for optional suites, a Buildkite matrix.
// kernel-bench: groupby into groups, loop filters with for-else, shards from range, block scalars
// with line continuations, a captured set block, min/sum/map, a top-level env from `items`.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Environment } from 'minijinja-js';
import YAML from 'yaml';
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

// Templates other projects render with minijinja-cli in CI (test/fixtures/real-templates, sources
// in its README): vLLM's ci-infra templates across two years of history (an include/import layout
// among them) and vllm-omni's, each rendered by the CLI and by minijinja-js in-process for a pull
// request, a post-merge run-all build and a nightly; identical bytes, or the same failure placed at
// the line MiniJinja names.
const REAL = join(ROOT, 'test/fixtures/real-templates');
const VLLM_DATA = join(ROOT, 'test/fixtures/vllm/test-pipeline.yaml');
const SETS: [string, string[]][] = [
  [
    'a pull request',
    [
      'branch=alice/fix',
      'run_all=0',
      'nightly=0',
      'list_file_diff=vllm/entrypoints/llm.py|csrc/attention.cu',
      'mirror_hw=amdexperimental',
      'fail_fast=true',
      'vllm_use_precompiled=1',
      'cov_enabled=0',
    ],
  ],
  [
    'a post-merge run-all build',
    [
      'branch=feat/main-like',
      'run_all=1',
      'nightly=0',
      'list_file_diff=csrc/moe/topk.cu',
      'mirror_hw=amdproduction',
      'fail_fast=false',
      'vllm_use_precompiled=0',
      'cov_enabled=0',
    ],
  ],
  [
    'a nightly',
    [
      'branch=nightly-run',
      'run_all=0',
      'nightly=1',
      'list_file_diff=',
      'mirror_hw=amdproduction',
      'fail_fast=false',
      'vllm_use_precompiled=0',
      'cov_enabled=1',
    ],
  ],
];

function templatesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.j2') && statSync(join(dir, f)).isFile())
    .sort();
}

interface RealCase {
  dir: string;
  main: string;
  data: string;
}

function realCases(): RealCase[] {
  const out: RealCase[] = [];
  for (const project of ['vllm-project/ci-infra', 'vllm-project/vllm-omni']) {
    const root = join(REAL, project);
    for (const d of readdirSync(root).sort()) {
      const dir = join(root, d);
      if (!statSync(dir).isDirectory()) continue;
      const files = templatesIn(dir);
      out.push({ dir, main: files.includes('pipeline.j2') ? 'pipeline.j2' : files[0]!, data: VLLM_DATA });
    }
  }
  out.push({ dir: join(REAL, 'vllm-project/vllm-omni'), main: 'test-template-amd-omni.j2', data: join(REAL, 'vllm-project/vllm-omni/test-amd.yaml') });
  return out;
}

// minijinja-cli's defaults (test/fixtures/vllm/render-oracle.mjs), with every template of the folder
// loadable by its relative name, as minijinja-cli's loader finds them beside the main one.
function minijinja(c: RealCase, defines: string[]): { out?: string; line?: number; error?: string } {
  const env = new Environment();
  env.debug = true;
  const ctx = {
    ...(YAML.parse(readFileSync(c.data, 'utf8')) as object),
    ...Object.fromEntries(defines.map((d) => [d.slice(0, d.indexOf('=')), d.slice(d.indexOf('=') + 1)])),
  };
  try {
    // A template with a syntax error fails here, as minijinja-cli fails when it loads it.
    for (const f of templatesIn(c.dir)) env.addTemplate(f, readFileSync(join(c.dir, f), 'utf8'));
    return { out: env.renderTemplate(c.main, ctx) + '\n' };
  } catch (e) {
    const error = String((e as Error).message ?? e);
    return { error, line: Number(/:(\d+)\)/.exec(error)?.[1]) };
  }
}

describe('templates from other projects', () => {
  const cases = realCases();

  it('holds vLLM ci-infra templates from 2024 to 2026 and vllm-omni’s, with their licences', () => {
    expect(cases.length).toBeGreaterThanOrEqual(14);
    const readme = readFileSync(join(REAL, 'README.md'), 'utf8');
    for (const c of cases) expect(readme, relative(REAL, c.dir)).toContain(`\`${relative(REAL, c.dir)}/`);
    for (const p of ['vllm-project/ci-infra', 'vllm-project/vllm-omni']) expect(statSync(join(REAL, p, 'LICENSE')).isFile()).toBe(true);
  });

  it.each(cases.flatMap((c) => SETS.map(([set, defs]) => [relative(REAL, c.dir), c.main, set, c, defs] as const)))(
    '%s/%s (%s): bkci prints what MiniJinja prints, or fails where it fails',
    async (_dir, main, _set, c, defines) => {
      const expected = minijinja(c, defines);
      const r = await runBkci(['pipeline', 'render', main, c.data, '--no-validate', ...defines.flatMap((d) => ['-D', d])], { cwd: c.dir });
      if (expected.error !== undefined) {
        expect(r.code, expected.error).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(new RegExp(`^bkci: ${main.replace(/[.]/g, '\\.')}:${expected.line}:\\d+: `, 'm'));
      } else {
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(expected.out);
      }
    },
  );

  it('the one that wrote $BUILDKITE_BRANCH inside a tag fails as MiniJinja does, at the character', async () => {
    const c = cases.find((x) => x.dir.endsWith('scripts_test-template-aws@4722f130b4b3'))!;
    expect(minijinja(c, SETS[0]![1]).error).toMatch(/unexpected character/);
    const r = await runBkci(['pipeline', 'render', c.main, c.data], { cwd: c.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("test-template-aws.j2:11:13: syntax error: unexpected character '$'");
  });

  it('vllm-omni’s test list is template DATA, not a pipeline: validate names each field it does not know, file:line:col', async () => {
    const dir = join(REAL, 'vllm-project/vllm-omni');
    const r = await runBkci(['pipeline', 'validate', 'test-amd.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('test-amd.yaml:5:3: error: steps[0].agent_pool: `agent_pool` is not a valid property on the `command` step');
    expect(r.stderr).toMatch(/^test-amd\.yaml:\d+:\d+: error: steps\[\d+\]\.mirror_hardwares: /m);
  });
});
