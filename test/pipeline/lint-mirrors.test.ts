// `bkci pipeline lint --mirrors` on vLLM's real test areas (test/fixtures/vllm-test-areas) against
// real hand-written AMD steps (its .buildkite/test-amd.yaml, steps copied from vLLM's file), and on
// small written-here cases for the matching rules and the exit codes.
import { cpSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lintMirrors, type MirrorReport } from '../../src/pipeline/lint-mirrors.js';
import { runBkci } from '../helpers/io.js';

const AREAS = join(import.meta.dirname, '../fixtures/vllm-test-areas');

const byStep = (r: MirrorReport, file: string) => r.findings.find((f) => f.mirror.file === file)!;

describe('lint --mirrors on vLLM files', () => {
  it('finds every mirror, matches it by label or test name, and lists what differs with both places', async () => {
    const r = await lintMirrors({ config: '.buildkite/ci_config.yaml', profile: 'vllm' }, AREAS);
    expect(r.handwrittenFile).toBe('.buildkite/test-amd.yaml');
    expect(r.mirrors).toBe(4);
    expect(r.disagreeing).toBe(3);
    expect(r.unmatched).toBe(1);

    // The mirror declares MI300 with the NVIDIA step's parallelism; the hand-written step runs on MI355 DPX.
    const bc = byStep(r, '.buildkite/test_areas/basic_correctness.yaml');
    expect(bc.mirror.line).toBe(17);
    expect(bc.mirror.key).toBe('amd-basic-correctness');
    expect(bc.handwritten).toEqual({ file: '.buildkite/test-amd.yaml', line: 48, label: ':amd: (MI355 DPX) Basic Correctness', matchedBy: 'name' });
    const fields = Object.fromEntries(bc.differences.map((d) => [d.field, d]));
    expect(Object.keys(fields)).toEqual(['device', 'optional', 'parallelism', 'source_file_dependencies', 'commands']);
    expect(fields.device).toMatchObject({ mirror: 'mi300_1', handwritten: 'mi355_dpx' });
    expect(fields.parallelism).toMatchObject({ mirror: 2, handwritten: 1 });
    expect(fields.source_file_dependencies!.onlyMirror).toEqual(['!vllm/distributed/kv_transfer/', 'tests/basic_correctness/']);
    expect(fields.commands!.onlyHandwritten).toContain('pytest -v -s basic_correctness/test_mem.py');

    // Same label on both sides: matched by label; the parent's dependencies widen the mirror's selection.
    const ft = byStep(r, '.buildkite/test_areas/fault_tolerance.yaml');
    expect(ft.handwritten).toMatchObject({ line: 96, label: ':amd: (MI355) MoRI EP Healthy Baseline', matchedBy: 'label' });
    expect(ft.differences.map((d) => d.field)).toEqual(['optional', 'source_file_dependencies']);
    expect(ft.differences[1]!.onlyHandwritten).toEqual([]);

    // A mirror without its own label whose test name is not in the file: no counterpart, the nearest named.
    const sm = byStep(r, '.buildkite/test_areas/samplers.yaml');
    expect(sm.handwritten).toBeUndefined();
    expect(sm.mirror.label).toBe('AMD: Samplers Test (mi325_1)');
    expect(sm.nearest).toBe(':amd: (MI300) Samplers');
  });

  it('prints one block per mirror with file:line of both sides, and exit 1; --json is the report', async () => {
    const r = await runBkci(['pipeline', 'lint', '--mirrors'], { cwd: AREAS });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      ".buildkite/test_areas/basic_correctness.yaml:17: mirror.amd of ':nvidia: (H200 MIG 18GB) Basic Correctness Models %N' differs from .buildkite/test-amd.yaml:48: ':amd: (MI355 DPX) Basic Correctness' (matched by name)\n  device: mi355_dpx -> mi300_1\n",
    );
    expect(r.stdout).toContain('    - pytest -v -s basic_correctness/test_mem.py\n');
    expect(r.stdout).toContain('    + pytest -v -s basic_correctness/memory\n');
    expect(r.stdout).toMatch(/no hand-written step in \.buildkite\/test-amd\.yaml \(nearest: ':amd: \(MI300\) Samplers'\)/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(
      '3 of 4 amd mirrors differ from the hand-written steps of .buildkite/test-amd.yaml; 1 without one (- hand-written, + mirror)',
    );
    const j = await runBkci(['pipeline', 'lint', '--mirrors', '--json'], { cwd: AREAS });
    expect(j.code).toBe(1);
    const report = JSON.parse(j.stdout) as MirrorReport;
    expect(report.disagreeing).toBe(3);
    expect(report.findings).toHaveLength(4);
  });
});

describe('lint --mirrors on more of vLLM test areas', () => {
  // The nine files and test/fixtures/vllm-test-areas-more together, against the same excerpt of
  // test-amd.yaml (mirrors whose hand-written step the excerpt leaves out are reported without one).
  it('compares every mirror, including those of files generate refuses for another reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-lint-more-'));
    cpSync(join(AREAS, '.buildkite'), join(dir, '.buildkite'), { recursive: true });
    cpSync(join(AREAS, '../vllm-test-areas-more/.buildkite/test_areas'), join(dir, '.buildkite/test_areas'), { recursive: true });
    const r = await lintMirrors({ config: '.buildkite/ci_config.yaml', profile: 'vllm', fileOrder: 'sorted' }, dir);
    expect(r.mirrors).toBe(18);
    expect(r.disagreeing).toBe(13);
    expect(r.unmatched).toBe(5);
    expect(r.warnings).toEqual([
      ".buildkite/test_areas/rl.yaml:18: step ':nvidia: (H200 MIG 35GB) RL Entrypoints': mirror.amd.device 'mi355_dpx' is not one of the profile's amd devices (compared as written; generate refuses it)",
    ]);
    const hybrid = r.findings.find((f) => f.mirror.key === 'amd-v1-e2e-hybrid-chunked-prefill-b200')!;
    expect(hybrid.handwritten).toMatchObject({ label: ':amd: (MI300) V1 E2E Hybrid Chunked Prefill', matchedBy: 'label' });
    expect(hybrid.differences).toEqual([
      { field: 'device', mirror: 'mi300_1', handwritten: 'mi300_4' },
      { field: 'gpus', mirror: 1, handwritten: 4 },
    ]);
    // A mirror's working_dir without its own commands is ignored by the generator: the emitted step has none.
    const cargo = r.findings.find((f) => f.mirror.key === 'amd-rust-frontend-cargo-tests')!;
    expect(cargo.differences.map((d) => d.field)).toEqual(['optional', 'working_dir']);
    expect(cargo.differences[1]).toEqual({ field: 'working_dir', mirror: undefined, handwritten: '/vllm-workspace' });
  });
});

// A repository with one test area and a hand-written file, written here.
function repo(area: string, hand: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-lint-'));
  mkdirSync(join(dir, '.buildkite/test_areas'), { recursive: true });
  mkdirSync(join(dir, '.buildkite/image_build'), { recursive: true });
  cpSync(join(AREAS, '.buildkite/ci_config.yaml'), join(dir, '.buildkite/ci_config.yaml'));
  writeFileSync(join(dir, '.buildkite/test_areas/a.yaml'), area);
  writeFileSync(join(dir, '.buildkite/test-amd.yaml'), hand);
  return dir;
}

const AREA = `group: Kernels
steps:
- label: ":nvidia: (H100) MoE"
  key: kernels-moe
  device: h100
  source_file_dependencies: [csrc/moe/]
  commands: [pytest -v -s kernels/moe]
  mirror:
    amd:
      device: mi325_1
      dind: false
      working_dir: /vllm-workspace/tests
      commands: [pytest -v -s kernels/moe -k rocm]
`;
const HAND = `steps:
- label: "mi325 MoE"
  key: amd-kernels-moe
  agent_pool: mi325_1
  dind: false
  source_file_dependencies: [csrc/moe/]
  commands: [pytest -v -s kernels/moe -k rocm]
`;

describe('lint --mirrors rules', () => {
  it('a hand-written step with the mirror key is its counterpart; equal steps: exit 0', async () => {
    const dir = repo(AREA, HAND);
    const r = await lintMirrors({ config: '.buildkite/ci_config.yaml', profile: 'vllm' }, dir);
    expect(r).toMatchObject({ mirrors: 1, disagreeing: 0, unmatched: 0, findings: [] });
    const cli = await runBkci(['pipeline', 'lint', '--mirrors'], { cwd: dir });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toBe('0 of 1 amd mirror differ from the hand-written steps of .buildkite/test-amd.yaml (- hand-written, + mirror)\n');
  });

  it('timeouts are compared after the vendor cap, GPUs from the device, env merged over the step', async () => {
    const area = AREA.replace('      dind: false', '      dind: false\n      timeout_in_minutes: 500\n      env: {A: "1"}');
    const hand = HAND.replace('  dind: false', '  dind: false\n  timeout_in_minutes: 240\n  num_gpus: 2\n  env: {A: "2"}');
    const r = await lintMirrors({ config: '.buildkite/ci_config.yaml', profile: 'vllm', against: '.buildkite/test-amd.yaml' }, repo(area, hand));
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]!.handwritten!.matchedBy).toBe('key');
    expect(r.findings[0]!.differences).toEqual([
      { field: 'gpus', mirror: 1, handwritten: 2 },
      { field: 'env', mirror: { A: '1' }, handwritten: { A: '2' }, onlyMirror: ['A=1'], onlyHandwritten: ['A=2'] },
    ]);
  });

  it('bad input is exit 2 naming the file or flag', async () => {
    const dir = repo(AREA, 'steps: [unclosed\n');
    let r = await runBkci(['pipeline', 'lint', '--mirrors'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\.buildkite\/test-amd\.yaml:\d+:\d+: YAML error/);
    r = await runBkci(['pipeline', 'lint', '--mirrors', '--against', 'missing.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.yaml: cannot read the hand-written steps');
    r = await runBkci(['pipeline', 'lint'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--mirrors is required');
    r = await runBkci(['pipeline', 'lint', '--mirrors', '--vendor', 'nv'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--vendor nv: the profile has no mirror of that name');
    r = await runBkci(['pipeline', 'lint', '--mirrors'], { cwd: repo(AREA.replace('      device: mi325_1\n', ''), HAND) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a\.yaml:8: step ':nvidia: \(H100\) MoE': mirror\.amd\.device is required/);
  });

  it('a mirror device the profile lacks is compared as written, with a warning (generate refuses it)', async () => {
    const r = await runBkci(['pipeline', 'lint', '--mirrors'], { cwd: repo(AREA.replace('mi325_1', 'mi355_dpx'), HAND) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/a\.yaml:8: step ':nvidia: \(H100\) MoE': mirror\.amd\.device 'mi355_dpx' is not one of the profile's amd devices/);
    expect(r.stdout).toContain('  device: mi325_1 -> mi355_dpx\n');
  });
});
