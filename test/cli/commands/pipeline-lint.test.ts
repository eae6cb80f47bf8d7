// Flag parsing of `bkci pipeline lint` through the runF seam. Nothing is read.
import { describe, expect, it } from 'vitest';
import { lintCommand } from '../../../src/cli/pipeline/lint.js';
import { parse } from './harness.js';

describe('pipeline lint', () => {
  it('defaults', async () => {
    const r = await parse('pipeline', lintCommand, ['lint', '--mirrors']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ mirrors: true, config: '.buildkite/ci_config.yaml', profile: 'vllm', json: false });
  });

  it('every flag reaches the input', async () => {
    const r = await parse('pipeline', lintCommand, [
      'lint',
      '--mirrors',
      '--config',
      'ci.yaml',
      '--profile',
      './p.yaml',
      '--against',
      'amd.yaml',
      '--vendor',
      'amd',
      '--file-order',
      'sorted',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ mirrors: true, config: 'ci.yaml', profile: './p.yaml', against: 'amd.yaml', vendor: 'amd', fileOrder: 'sorted', json: true });
  });

  it('no check named, empty values, a bad choice: exit 2 naming the flag', async () => {
    let r = await parse('pipeline', lintCommand, ['lint']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--mirrors is required');
    r = await parse('pipeline', lintCommand, ['lint', '--mirrors', '--against', '']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--against');
    r = await parse('pipeline', lintCommand, ['lint', '--mirrors', '--file-order', 'random']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--file-order');
    expect(r.input).toBeUndefined();
  });
});
