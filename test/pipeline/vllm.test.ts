// vLLM's real CI template and test list render byte-identically to what minijinja-cli printed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { parseWithPyYaml } from '../helpers/oracles.js';
import { loadPipelineYaml } from '../../src/pipeline/yaml-load.js';
import { validatePipelineText } from '../../src/pipeline/validate.js';

const VLLM = join(import.meta.dirname, '../fixtures/vllm');
const sets = (JSON.parse(readFileSync(join(VLLM, 'variable-sets.json'), 'utf8')) as { sets: { name: string; defines: [string, string][] }[] }).sets;
const defines = (s: (typeof sets)[number]) => s.defines.flatMap(([k, v]) => ['-D', `${k}=${v}`]);

describe('vLLM test-template-ci.j2', () => {
  it.each(sets.map((s) => [s.name, s] as const))('renders %s exactly as minijinja-cli', async (_name, set) => {
    const r = await runBkci(['pipeline', 'render', join(VLLM, 'test-template-ci.j2'), join(VLLM, 'test-pipeline.yaml'), ...defines(set)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(VLLM, `expected/${set.name}.minijinja.yaml`), 'utf8'));
  });

  it.each(sets.map((s) => [s.name, s] as const))('renders %s with --strip-blank-lines exactly as bootstrap.sh uploaded it', async (_name, set) => {
    const r = await runBkci([
      'pipeline',
      'render',
      join(VLLM, 'test-template-ci.j2'),
      join(VLLM, 'test-pipeline.yaml'),
      '--strip-blank-lines',
      ...defines(set),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(VLLM, `expected/${set.name}.pipeline.yaml`), 'utf8'));
  });

  it('fails without list_file_diff, as minijinja does (split on undefined), printing nothing', async () => {
    const r = await runBkci(['pipeline', 'render', join(VLLM, 'test-template-ci.j2'), join(VLLM, 'test-pipeline.yaml'), '-D', 'branch=main']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/test-template-ci\.j2:\d+:\d+: invalid operation: value is not a string/);
  });

  const files = sets.flatMap((s) => [`${s.name}.minijinja.yaml`, `${s.name}.pipeline.yaml`]).map((f) => join(VLLM, 'expected', f));

  it('validates every expected render', async () => {
    for (const f of files) {
      const v = await validatePipelineText(readFileSync(f, 'utf8'));
      expect(
        v.findings.filter((x) => x.severity === 'error'),
        f,
      ).toEqual([]);
      expect(v.valid).toBe(true);
      expect(v.jobs).toBeGreaterThan(100);
    }
  });

  it('parses every expected render to the same object as PyYAML', () => {
    const py = parseWithPyYaml(files);
    files.forEach((f, i) => {
      const ours = loadPipelineYaml(readFileSync(f, 'utf8'));
      expect(ours.errors, f).toEqual([]);
      expect(ours.docs.map((d) => d.value)).toEqual(py[i]);
    });
  });
});
