// More of vLLM's real test-area files (test/fixtures/vllm-test-areas-more, each at the commit its
// README names), added to the nine of the differential tests: `pipeline generate --profile vllm`
// must accept each one, or refuse it with exit 2 naming file:line when the file needs something the
// profile (vLLM's generator at ci-infra 3e4cfe4) does not have. There is no recorded generator output
// for these inputs, so the checks are acceptance and sanity: every step and mirror emitted once,
// under its key, in its group, and nothing else.
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateStepKey } from '../../src/pipeline/generate/build.js';
import { runBkci } from '../helpers/io.js';

const BASE = join(import.meta.dirname, '../fixtures/vllm-test-areas');
const MORE = join(import.meta.dirname, '../fixtures/vllm-test-areas-more/.buildkite/test_areas');

// Files that use a device the generator at the pinned commit does not know: vLLM's newer generator
// has it; bkci refuses them as the pinned generator (a pydantic enum) would, naming the place.
const REFUSED: Record<string, RegExp> = {
  'disaggregated_ec.yaml': /^bkci: \.buildkite\/test_areas\/disaggregated_ec\.yaml:5: step ':nvidia: \(L4\) Scale-out EC Connector E2E': unknown device 'l4'$/m,
  'disaggregated_mooncake.yaml':
    /^bkci: \.buildkite\/test_areas\/disaggregated_mooncake\.yaml:23: step ':nvidia: \(L4\) Mooncake EC TCP E2E': unknown device 'l4'$/m,
  'engine.yaml': /^bkci: \.buildkite\/test_areas\/engine\.yaml:39: step ':nvidia: \(L4\) V1 Engine': unknown device 'l4'$/m,
  'models_distributed.yaml':
    /^bkci: \.buildkite\/test_areas\/models_distributed\.yaml:5: step ':nvidia: \(L4\) Distributed Models Shard %N': unknown device 'l4'$/m,
  'rl.yaml':
    /^bkci: \.buildkite\/test_areas\/rl\.yaml:18: step ':nvidia: \(H200 MIG 35GB\) RL Entrypoints': mirror\.amd\.device 'mi355_dpx' is not one of the profile's amd devices$/m,
};
const files = readdirSync(MORE).filter((f) => f.endsWith('.yaml'));
const accepted = files.filter((f) => !REFUSED[f]);

function repo(extra: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-more-'));
  cpSync(join(BASE, '.buildkite'), join(dir, '.buildkite'), { recursive: true });
  for (const f of extra) cpSync(join(MORE, f), join(dir, '.buildkite/test_areas', f));
  writeFileSync(join(dir, 'changed.txt'), 'vllm/envs.py\n');
  return dir;
}

const generate = (dir: string, env: Record<string, string>) =>
  runBkci(['pipeline', 'generate', '--profile', 'vllm', '--no-probe', '--changed-files', 'changed.txt', '--file-order', 'sorted', '--format', 'json'], {
    cwd: dir,
    env: { BUILDKITE_BRANCH: 'main', ...env },
  });

interface Step {
  label?: string;
  key?: string;
  block?: string;
  depends_on?: string[];
}

describe('more of vLLM test areas', () => {
  it('holds real files beyond the nine, each listed in the README', () => {
    expect(files.length).toBeGreaterThanOrEqual(15);
    const readme = readFileSync(join(MORE, '../../README.md'), 'utf8');
    for (const f of files) expect(readme, f).toContain(`| .buildkite/test_areas/${f} |`);
  });

  it.each(Object.keys(REFUSED))('%s is refused with exit 2 naming file:line (a device the pinned generator lacks)', async (f) => {
    const r = await generate(repo([f]), { RUN_ALL: '1' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(REFUSED[f]!);
  });

  it('the others are accepted together: every step and mirror once, under its key and group', async () => {
    const dir = repo(accepted);
    const r = await generate(dir, { RUN_ALL: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/^bkci:/m);
    const out = JSON.parse(r.stdout) as { steps: { group: string; steps: Step[] }[] };
    const emitted = out.steps.flatMap((g) => g.steps.map((s) => ({ ...s, group: g.group })));
    const keys = emitted.map((s) => s.key);
    expect(new Set(keys).size).toBe(keys.length);
    // RUN_ALL: nothing is held behind a block, except optional steps.
    let expected = 0;
    const areaFiles = ['test_areas', 'image_build'].flatMap((d) =>
      readdirSync(join(dir, '.buildkite', d))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(d, f)),
    );
    for (const f of areaFiles) {
      const area = parse(readFileSync(join(dir, '.buildkite', f), 'utf8')) as {
        group?: string;
        steps: { label: string; key?: string; device?: string; mirror?: { amd?: object } }[];
      };
      for (const s of area.steps) {
        const key = s.key || generateStepKey(s.label);
        const native = s.device?.startsWith('mi');
        const got = emitted.find((e) => e.key === key && e.label !== undefined);
        expect(got, `${f}: ${key}`).toBeDefined();
        if (area.group) expect(got!.group, `${f}: ${key}`).toBe(native ? 'Hardware-AMD Tests' : area.group);
        expected++;
        if (s.mirror?.amd) {
          const m = emitted.find((e) => e.key === `amd-${key}`);
          expect(m, `${f}: amd-${key}`).toBeDefined();
          expect(m!.group).toBe('Hardware-AMD Tests');
          expect(m!.depends_on?.[0]).toBe('image-build-amd');
          expected++;
        }
      }
    }
    expect(emitted.filter((s) => s.label !== undefined)).toHaveLength(expected);
    expect(expected).toBeGreaterThan(50);
  });

  it('a PR touching one of them runs its steps and holds the rest behind blocks', async () => {
    const dir = repo(accepted);
    writeFileSync(join(dir, 'changed.txt'), 'tests/jit_monitor/test_no_runtime_jit.py\n');
    const r = await generate(dir, { BUILDKITE_BRANCH: 'feature', BUILDKITE_PULL_REQUEST: '123', BUILDKITE_COMMIT: 'abc' });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { steps: { group: string; steps: Step[] }[] };
    const all = out.steps.flatMap((g) => g.steps);
    const jit = all.find((s) => s.key === 'jit-monitor-no-runtime-jit')!;
    expect(jit.depends_on).toEqual(['image-build', 'pre-commit']);
    const amd = all.find((s) => s.key === 'amd-jit-monitor-v2-sampler-mi355')!;
    expect(amd.depends_on).not.toContain('block-amd-amd-jit-monitor-v2-sampler-mi355');
    const cuda = all.find((s) => s.key === 'platform-tests-cuda')!;
    expect(cuda.depends_on).toContain('block-platform-tests-cuda');
    expect(all.some((s) => s.key === 'block-platform-tests-cuda' && s.block === 'Run Platform Tests (CUDA)')).toBe(true);
  });
});
