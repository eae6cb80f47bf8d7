// The bundled template is portable Jinja: given bkci's selection, minijinja-js renders it byte for
// byte as bkci does; and it turns other teams' test lists (here vLLM's: labels without keys, labels
// with parentheses and `+`, per-node command lists) into pipelines that validate.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { runBkci } from '../helpers/io.js';

const require = createRequire(import.meta.url);
const { Environment } = require('minijinja-js') as { Environment: new () => { renderStr(t: string, ctx: unknown): string } };
const ROOT = join(import.meta.dirname, '../..');
const TEMPLATE = join(ROOT, 'templates/default.j2');
const LISTS = { example: join(ROOT, 'examples/test-pipeline.yaml'), vllm: join(ROOT, 'test/fixtures/vllm/test-pipeline.yaml') };

describe('templates/default.j2', () => {
  const changed = join(mkdtempSync(join(tmpdir(), 'bkci-default-')), 'changed.txt');
  writeFileSync(changed, 'vllm/entrypoints/openai/serving_chat.py\ncsrc/moe/topk.cu\nsrc/kernels/a.cu\n');
  const cases: [string, keyof typeof LISTS, string[]][] = [
    ['example, a change', 'example', ['--changed-files', changed]],
    ['example, nightly', 'example', ['--nightly']],
    ['vllm, a change', 'vllm', ['--changed-files', changed]],
    ['vllm, run all', 'vllm', ['--run-all']],
    ['vllm, nightly', 'vllm', ['--nightly']],
  ];
  it.each(cases)('%s: valid, and minijinja renders the same', async (_n, list, flags) => {
    const r = await runBkci(['pipeline', 'render', TEMPLATE, LISTS[list], ...flags, '--explain', '--json']);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    // --explain --json: one pretty-printed JSON document on stderr (after any log lines).
    const explained = JSON.parse(r.stderr.slice(r.stderr.indexOf('{\n'))) as { steps: { id: string; run: boolean; blocked: boolean; reasons: string[] }[] };
    expect(explained.steps.some((s) => s.run)).toBe(true);
    const selection = Object.fromEntries(explained.steps.map((s) => [s.id, { run: s.run, blocked: s.blocked, reasons: s.reasons }]));
    const data = YAML.parse(readFileSync(LISTS[list], 'utf8')) as Record<string, unknown>;
    const mj = new Environment().renderStr(readFileSync(TEMPLATE, 'utf8'), { ...data, selection }) + '\n';
    expect(r.stdout).toBe(mj);
  });
});
