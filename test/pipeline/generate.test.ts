// `bkci pipeline generate`: input checks (warnings with did-you-mean, errors at file:line), --explain,
// docs-only, profiles as data (a changed profile changes the output), run in-process.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runBkci } from '../helpers/io.js';
import { didYouMean, STEP_FIELDS } from '../../src/pipeline/generate/areas.js';
import { generateStepKey, replaceVariable, dependenciesMatch } from '../../src/pipeline/generate/build.js';
import { comparePy, fill } from '../../src/pipeline/generate/profile.js';

const ROOT = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const CONFIG = `name: example_ci
job_dirs: [".buildkite/test_areas"]
run_all_patterns: ["setup.py"]
run_all_exclude_patterns: []
registries: registry.example
repositories: {main: post, premerge: pre}
`;

function repo(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'bkci-generate-'));
  dirs.push(d);
  const all = { '.buildkite/ci_config.yaml': CONFIG, ...files };
  for (const [rel, text] of Object.entries(all)) {
    mkdirSync(dirname(join(d, rel)), { recursive: true });
    writeFileSync(join(d, rel), text);
  }
  return d;
}

const ENV = { BUILDKITE_BRANCH: 'feature', BUILDKITE_PULL_REQUEST: 'false', BUILDKITE_COMMIT: 'abc' };
const gen = (cwd: string, args: string[] = [], changed = 'vllm/a.py\n', env: Record<string, string> = {}) =>
  runBkci(['pipeline', 'generate', '--config', '.buildkite/ci_config.yaml', '--changed-files', '-', ...args], { cwd, stdin: changed, env: { ...ENV, ...env } });

const AREA = `group: Kernels
depends_on: [image-build]
steps:
- label: Kernel test
  key: kernel-test
  device: h100
  num_devices: 2
  source_file_dependencies: [vllm/]
  commands: ["pytest -k 'not slow'"]
- label: Other
  source_file_dependencies: [csrc/]
  commands: [echo other]
`;
const BUILD = `group: Abuild
steps:
- label: ":docker: Build image"
  key: image-build
  depends_on: []
  commands: [echo build]
`;

describe('pipeline generate: input checks', () => {
  it('refuses hostile YAML in a test area (an alias bomb, nesting past the stack) with exit 2 naming the file', async () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(', ')}]`),
      'group: G',
      'steps: []',
    ];
    const b = await gen(repo({ '.buildkite/test_areas/a.yaml': bomb.join('\n') + '\n' }));
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/\.buildkite\/test_areas\/a\.yaml: the YAML's aliases expand too far/);
    expect(b.stderr).not.toMatch(/internal error| {4}at /);
    const deep = await gen(repo({ '.buildkite/test_areas/a.yaml': 'group: G\nsteps: ' + '['.repeat(20000) + ']'.repeat(20000) + '\n' }));
    expect(deep.code).toBe(2);
    expect(deep.stderr).toMatch(/\.buildkite\/test_areas\/a\.yaml/);
    expect(deep.stderr).not.toMatch(/internal error|Maximum call stack| {4}at /);
  });

  it('reads plain scalars as PyYAML does: y/n, 08, 1e3, 1.0e3 and 0:30 are strings (npm yaml 1.1 typed them)', async () => {
    const area = BUILD + '- label: Scalars\n  commands: [y, n, 08, 1e3]\n  env: {A: y, B: 08, C: 1e3, D: 1.0e3, E: 0:30}\n';
    const r = await gen(repo({ '.buildkite/test_areas/a.yaml': area }), ['--format', 'json'], 'setup.py\n');
    expect(r.code, r.stderr).toBe(0);
    const steps = JSON.stringify(parse(r.stdout));
    for (const c of ['y', 'n', '08', '1e3']) expect(steps).toContain(`"${c}"`);
    expect(steps).toMatch(/"A":"y","B":"08","C":"1e3","D":"1.0e3","E":"0:30"/);
  });

  it('a tab, a control character or bytes that are not UTF-8 in a test area: exit 2 at file:line:col in bkci’s words', async () => {
    for (const [text, where, what] of [
      ['group: G\nsteps:\n  - label: a\n    commands:\n\t- x\n', ':5:1:', /a tab in the indentation/],
      ['group: G\nsteps:\n  - label: a\u0007\n    commands: [x]\n', ':3:13:', /the control character U\+0007 is not allowed/],
      [Buffer.from('group: G\nsteps:\n  - label: caf\xe9\n', 'latin1'), ':3:15:', /not UTF-8 text: byte 0xE9/],
    ] as const) {
      const d = repo({ '.buildkite/test_areas/a.yaml': '' });
      writeFileSync(join(d, '.buildkite/test_areas/a.yaml'), text);
      const r = await gen(d);
      expect(r.code, String(text)).toBe(2);
      expect(r.stderr).toContain(`.buildkite/test_areas/a.yaml${where}`);
      expect(r.stderr).toMatch(what);
      expect(r.stderr).not.toMatch(/Tabs are not allowed|internal error| {4}at /);
    }
  });

  it('warns about an unknown step key with a did-you-mean and still generates', async () => {
    const d = repo({
      '.buildkite/test_areas/a.yaml': AREA.replace('num_devices: 2', 'num_gpus: 2'),
      '.buildkite/build/b.yaml': BUILD,
      '.buildkite/ci_config.yaml': CONFIG.replace('[".buildkite/test_areas"]', '[".buildkite/test_areas", ".buildkite/build"]'),
    });
    const r = await gen(d);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('.buildkite/test_areas/a.yaml:7');
    expect(r.stderr).toContain("unknown key 'num_gpus'");
    expect(r.stderr).toContain("did you mean 'num_devices'?");
    const p = parse(r.stdout) as { steps: { group: string; steps: Record<string, unknown>[] }[] };
    const kernel = p.steps.find((g) => g.group === 'Kernels')!.steps.find((s) => s.key === 'kernel-test')!;
    // As vLLM's generator: the unknown key is dropped, so the pod asks for 1 GPU.
    expect(JSON.stringify(kernel.plugins)).toContain('"nvidia.com/gpu":1');
    expect(kernel.commands).toContain('pytest -k "not slow"');
  });

  const errors: [string, Record<string, string>, RegExp][] = [
    [
      'an unknown device',
      { '.buildkite/test_areas/a.yaml': AREA.replace('device: h100', 'device: h1000') },
      /a\.yaml:4: step 'Kernel test': unknown device 'h1000'/,
    ],
    [
      'depends_on on a key no step has',
      { '.buildkite/test_areas/a.yaml': AREA.replace('[image-build]', '[image-biuld]') },
      /a\.yaml:4: step 'Kernel test': depends_on 'image-biuld', a key no step has/,
    ],
    [
      'a duplicate key',
      { '.buildkite/test_areas/a.yaml': AREA + '- label: Again\n  key: kernel-test\n  commands: [x]\n', '.buildkite/test_areas/b.yaml': BUILD },
      /a\.yaml:13: duplicate step key 'kernel-test' \(also \.buildkite\/test_areas\/a\.yaml:4\)/,
    ],
    [
      'concurrency without concurrency_group',
      { '.buildkite/test_areas/a.yaml': AREA.replace('  key: kernel-test\n', '  key: kernel-test\n  concurrency: 2\n') },
      /a\.yaml:6: step 'Kernel test': concurrency and concurrency_group must be given together/,
    ],
    [
      'a string where a number goes',
      { '.buildkite/test_areas/a.yaml': AREA.replace('num_devices: 2', 'num_devices: two') },
      /a\.yaml:7: step 'Kernel test': num_devices must be an integer/,
    ],
    ['a YAML syntax error', { '.buildkite/test_areas/a.yaml': 'steps:\n  - label: [x\n' }, /a\.yaml:\d+:\d+: YAML error/],
    [
      'a mirror device of another vendor',
      { '.buildkite/test_areas/a.yaml': AREA + '  mirror:\n    amd:\n      device: h100\n', '.buildkite/test_areas/b.yaml': BUILD },
      /a\.yaml:\d+: step '[^']+': mirror\.amd\.device 'h100' is not one of the profile's amd devices/,
    ],
  ];
  for (const [what, files, want] of errors) {
    it(`refuses ${what} with exit 2 naming file:line`, async () => {
      const d = repo({ '.buildkite/test_areas/b.yaml': BUILD, ...files });
      const r = await gen(d);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }

  it('warns that a mirror parallelism is ignored', async () => {
    const d = repo({
      '.buildkite/test_areas/a.yaml': AREA + '  mirror:\n    amd:\n      device: mi300_1\n      parallelism: 2\n      num_gpu: 1\n',
      '.buildkite/test_areas/b.yaml': BUILD,
    });
    const r = await gen(d);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('mirror.amd.parallelism');
    expect(r.stderr).toContain("unknown key mirror.amd.num_gpu in step 'Other' is ignored; did you mean 'num_gpus'?");
  });

  it('VLLM_CI_ONLY_STEP_KEYS with an unknown key is exit 2', async () => {
    const d = repo({ '.buildkite/test_areas/a.yaml': AREA, '.buildkite/test_areas/b.yaml': BUILD });
    const r = await gen(d, [], 'x\n', { VLLM_CI_ONLY_STEP_KEYS: '["nope"]' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown CI step key(s): nope');
  });

  it('an unknown bundled profile is a usage error', async () => {
    const d = repo({ '.buildkite/test_areas/b.yaml': BUILD });
    const r = await gen(d, ['--profile', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--profile nosuch: no bundled profile');
  });
});

describe('pipeline generate: selection and output', () => {
  it('--explain says why each step runs or is blocked', async () => {
    const d = repo({ '.buildkite/test_areas/a.yaml': AREA, '.buildkite/test_areas/b.yaml': BUILD });
    const r = await gen(d, ['--explain']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('run   kernel-test: changed: vllm/a.py');
    expect(r.stderr).toContain('block other: no changed file matches source_file_dependencies');
    expect(r.stderr).toContain('run   image-build: always runs (key)');
    const p = parse(r.stdout) as { steps: { group: string; steps: Record<string, unknown>[] }[] };
    const kernels = p.steps.find((g) => g.group === 'Kernels')!.steps;
    expect(kernels.map((s) => s.key ?? s.block)).toEqual(['kernel-test', 'block-other', 'other']);
    expect(kernels[2]!.depends_on).toEqual(['block-other', 'image-build']);
  });

  it('a docs-only change prints nothing and writes the marker next to --output', async () => {
    const d = repo({ '.buildkite/test_areas/a.yaml': AREA, '.buildkite/test_areas/b.yaml': BUILD });
    const r = await gen(d, ['-o', '.buildkite/pipeline.yaml'], 'docs/a.md\nREADME.md\n', { PATH: '/nonexistent' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(existsSync(join(d, '.buildkite/pipeline.yaml'))).toBe(false);
    expect(readFileSync(join(d, '.buildkite/.docs_only'), 'utf8')).toBe('true');
    expect(r.stderr).toContain('docs-only annotation failed');
  });

  it('--format json prints the same pipeline as JSON', async () => {
    const d = repo({ '.buildkite/test_areas/a.yaml': AREA, '.buildkite/test_areas/b.yaml': BUILD });
    const y = await gen(d);
    const j = await gen(d, ['--format', 'json']);
    expect(JSON.parse(j.stdout)).toEqual(parse(y.stdout));
  });

  it('the profile is data: another queue, plugin image and visible-device translation change the output', async () => {
    const prof = parse(readFileSync(join(ROOT, 'profiles/vllm.yaml'), 'utf8'), { maxAliasCount: -1 }) as Record<string, any>;
    prof.queues = [{ when: { device: 'h100' }, queue: 'my-h100s' }, { queue: 'my-default' }];
    prof.plugin_rules = [{ plugin: 'docker-default' }];
    prof.image.template = 'my.registry/{{repository}}:$BUILDKITE_COMMIT';
    prof.mirrors.amd.visible_devices = { CUDA_VISIBLE_DEVICES: 'HIP_VISIBLE_DEVICES' };
    const area = AREA.replace(
      'commands: ["pytest -k \'not slow\'"]',
      'commands: ["CUDA_VISIBLE_DEVICES=0,1 pytest"]\n  env: {CUDA_VISIBLE_DEVICES: "0"}\n  mirror: {amd: {device: mi300_2}}',
    );
    const d = repo({ '.buildkite/test_areas/a.yaml': area, '.buildkite/test_areas/b.yaml': BUILD, 'my.yaml': stringify(prof) });
    const r = await gen(d, ['--profile', './my.yaml']);
    expect(r.code, r.stderr).toBe(0);
    const p = parse(r.stdout) as { steps: { group: string; steps: Record<string, any>[] }[] };
    const kernel = p.steps.find((g) => g.group === 'Kernels')!.steps.find((s) => s.key === 'kernel-test')!;
    expect(kernel.agents).toEqual({ queue: 'my-h100s' });
    expect(kernel.plugins[0]['docker#v5.2.0'].image).toBe('my.registry/pre:$BUILDKITE_COMMIT');
    expect(kernel.env).toEqual({ CUDA_VISIBLE_DEVICES: '0' });
    const amd = p.steps.find((g) => g.group === 'Hardware-AMD Tests')!.steps.find((s) => s.key === 'amd-kernel-test')!;
    expect(amd.env.HIP_VISIBLE_DEVICES).toBe('0');
    expect(amd.env.CUDA_VISIBLE_DEVICES).toBeUndefined();
    expect(amd.env.VLLM_TEST_COMMANDS).toContain('HIP_VISIBLE_DEVICES=0,1 pytest');
    expect(amd.agents).toEqual({ queue: 'amd_mi300_2' });
  });

  it('a profile without a needed section is exit 2 naming it', async () => {
    const d = repo({ '.buildkite/test_areas/b.yaml': BUILD, 'bad.yaml': 'profile: x\nconfig: {}\n' });
    const r = await gen(d, ['--profile', './bad.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("profile field 'env' is missing");
  });
});

describe('pipeline generate: the generator rules', () => {
  it('makes keys from labels as vLLM does', () => {
    expect(generateStepKey(':nvidia: (H100) Foo, Bar 1.5/x %N')).toBe('-nvidia--h100-foo--bar-1-5-x-n');
  });
  it("replaces $NAME as Python's re.sub with \\b (Unicode word characters)", () => {
    expect(replaceVariable('a $REPO b $REPO_X $REPOé $$REPO', '$REPO', 'r')).toBe('a r b $REPO_X $REPOé $r');
  });
  it('matches source_file_dependencies as path prefixes with ! exclusions', () => {
    expect(dependenciesMatch(['vllm/'], ['vllm/x.py'])).toBe('vllm/x.py');
    expect(dependenciesMatch(['vllm'], ['vllm_extra/x.py'])).toBeUndefined();
    expect(dependenciesMatch(['vllm/', '!vllm/kv/'], ['vllm/kv/a.py'])).toBeUndefined();
    expect(dependenciesMatch([], ['x'])).toBeUndefined();
  });
  it('orders labels by code point as Python does', () => {
    expect(['\u{1F600}', '\uFFFF', 'a'].sort(comparePy)).toEqual(['a', '\uFFFF', '\u{1F600}']);
  });
  it('did-you-mean knows the old Jinja names', () => {
    expect(didYouMean('num_gpus', STEP_FIELDS)).toBe('num_devices');
    expect(didYouMean('comands', STEP_FIELDS)).toBe('commands');
    expect(didYouMean('zzzzzz', STEP_FIELDS)).toBeUndefined();
  });
  it('fills templates once (a value is never expanded again)', () => {
    expect(fill('{{a}}-{{b|docker_tag}}', (n) => (n === 'a' ? '{{b}}' : 'x/y:z'))).toBe('{{b}}-x-y-z');
  });
});

describe('renameWord', () => {
  it('renames whole words only', async () => {
    const { renameWord } = await import('../../src/pipeline/generate/build.js');
    expect(renameWord('CUDA_VISIBLE_DEVICES=0 MY_CUDA_VISIBLE_DEVICES=1 $CUDA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES')).toBe(
      'HIP_VISIBLE_DEVICES=0 MY_CUDA_VISIBLE_DEVICES=1 $HIP_VISIBLE_DEVICES',
    );
  });
});

describe('pipeline generate --unselected', () => {
  const AREA3 = AREA + '- label: Third\n  source_file_dependencies: [docs/]\n  commands: [echo third]\n  mirror: {amd: {device: mi300_1}}\n';
  const files = { '.buildkite/test_areas/a.yaml': AREA3, '.buildkite/test_areas/b.yaml': BUILD };
  type P = { steps: { group: string; steps: Record<string, any>[] }[] };

  it('group-block: one block per group gates its held steps', async () => {
    const d = repo(files);
    const r = await gen(d, ['--unselected', 'group-block']);
    expect(r.code, r.stderr).toBe(0);
    const p = parse(r.stdout) as P;
    const k = p.steps.find((g) => g.group === 'Kernels')!.steps;
    expect(k.map((s) => s.key)).toEqual(['kernel-test', 'block-group-kernels', 'other', 'third']);
    expect(k[1]).toEqual({ block: 'Run the 2 unselected steps of Kernels', key: 'block-group-kernels', depends_on: [] });
    expect(k[2]!.depends_on).toEqual(['block-group-kernels', 'image-build']);
    expect(k[3]!.depends_on).toEqual(['block-group-kernels', 'image-build']);
    const amd = p.steps.find((g) => g.group === 'Hardware-AMD Tests')!.steps;
    // the AMD group gets its own block, depending on the AMD image build as the per-step blocks do
    expect(amd.map((s) => s.key)).toEqual(['block-group-hardware-amd-tests', 'amd-third']);
    expect(amd[0]!.depends_on).toEqual(['image-build-amd']);
    expect(amd[1]!.depends_on).toEqual(['image-build-amd', 'block-group-hardware-amd-tests']);
  });

  it('skip: held steps carry skip: and the reason, no block steps', async () => {
    const d = repo(files);
    const r = await gen(d, ['--unselected', 'skip']);
    expect(r.code, r.stderr).toBe(0);
    const p = parse(r.stdout) as P;
    const all = p.steps.flatMap((g) => g.steps);
    expect(all.some((s) => 'block' in s)).toBe(false);
    const other = all.find((s) => s.key === 'other')!;
    expect(other.skip).toBe('not selected: no changed file matches source_file_dependencies');
    expect(other.depends_on).toEqual(['image-build']);
    expect(all.find((s) => s.key === 'kernel-test')!.skip).toBeUndefined();
  });

  it('--explain counts the jobs under each choice', async () => {
    const d = repo(files);
    const r = await gen(d, ['--explain']);
    expect(r.code, r.stderr).toBe(0);
    // groups Abuild, Kernels, Hardware-AMD Tests (+1 each); the build and kernel-test run;
    // held: other, third, amd-third (2 jobs each with blocks; 1 each + 1 block per group; 1 each skipped)
    const m = /jobs per --unselected choice: (.*)/.exec(r.stderr);
    expect(m?.[1]).toBe('block 11, group-block 10, skip 8');
  });
});
