// Situations for `bkci pipeline generate --profile vllm` against vLLM's generator: each builds a
// temporary git repository from test/fixtures/vllm-test-areas (plus a synthetic test area that
// exercises what the vendored files do not), sets the environment, and runs either program.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const AREAS = join(ROOT, 'test/fixtures/vllm-test-areas');
export const DRIVER = join(ROOT, 'test/fixtures/vllm-generator/driver.py');
export const EXPECTED = join(ROOT, 'test/fixtures/vllm-generator/expected');

export interface Situation {
  name: string;
  branch: string; // 'main' or a feature branch
  env: Record<string, string>;
  // Committed on the branch (main: the last commit; else on top of origin/main).
  changes: string[];
  // Left in the work tree, not committed (the generator stages them with `git add .`).
  uncommitted?: string[];
  existingTags?: string[];
  labels?: string;
  synthetic?: boolean;
}

const PR = { BUILDKITE_PULL_REQUEST: '4242', BUILDKITE_PULL_REQUEST_BASE_BRANCH: 'main', BUILDKITE_COMMIT: 'abc123' };
const FEATURE = 'feature/x';

export const SITUATIONS: Situation[] = [
  { name: 'pr-one-area', branch: FEATURE, env: { ...PR }, changes: ['vllm/lora/layers.py'] },
  { name: 'pr-run-all-pattern', branch: FEATURE, env: { ...PR }, changes: ['setup.py'] },
  { name: 'pr-run-all-excluded', branch: FEATURE, env: { ...PR }, changes: ['csrc/cpu/x.cpp'] },
  { name: 'pr-docs-only', branch: FEATURE, env: { ...PR }, changes: ['docs/usage.md', 'README.md'] },
  { name: 'pr-docs-only-disabled', branch: FEATURE, env: { ...PR, DOCS_ONLY_DISABLE: '1' }, changes: ['docs/usage.md'] },
  { name: 'main', branch: 'main', env: { BUILDKITE_COMMIT: 'abc123' }, changes: ['vllm/lora/layers.py'] },
  { name: 'run-all', branch: FEATURE, env: { ...PR, RUN_ALL: '1' }, changes: ['tests/lora/test_x.py'] },
  { name: 'nightly', branch: 'main', env: { BUILDKITE_COMMIT: 'abc123', NIGHTLY: '1' }, changes: ['README.md'] },
  { name: 'torch-nightly', branch: 'main', env: { BUILDKITE_COMMIT: 'abc123', TORCH_NIGHTLY: '1' }, changes: ['vllm/x.py'] },
  {
    name: 'only-step-keys',
    branch: FEATURE,
    env: { ...PR, VLLM_CI_ONLY_STEP_KEYS: '["basic-correctness-cumem","torch-stable-abi-audit"]' },
    changes: ['docs/x.md'],
  },
  { name: 'skip-timeout', branch: FEATURE, env: { ...PR, SKIP_TIMEOUT: '1' }, changes: ['vllm/v1/attention/x.py'] },
  { name: 'continue-on-failure', branch: FEATURE, env: { ...PR, CONTINUE_ON_FAILURE: '1' }, changes: ['vllm/plugins/x.py'] },
  { name: 'priority-high', branch: FEATURE, env: { ...PR, PRIORITY: 'HIGH' }, changes: ['tests/samplers/t.py'] },
  {
    name: 'fork-pr',
    branch: 'octocat:my-feature',
    env: { ...PR, BUILDKITE_PULL_REQUEST: '77', BUILDKITE_PULL_REQUEST_BASE_BRANCH: 'release/v1' },
    changes: ['vllm/lora/x.py'],
    existingTags: ['936637512419.dkr.ecr.us-east-1.amazonaws.com/vllm-ci-test-cache:release-v1'],
  },
  { name: 'amd-mirror-area', branch: FEATURE, env: { ...PR }, changes: ['csrc/rocm/attention.cu', 'vllm/platforms/rocm.py'] },
  { name: 'amd-rocm-base', branch: FEATURE, env: { ...PR }, changes: ['docker/Dockerfile.rocm_base'] },
  { name: 'run-all-label', branch: FEATURE, env: { ...PR }, changes: ['vllm/lora/x.py'], labels: 'ready-run-all-tests,documentation' },
  { name: 'noauto', branch: FEATURE, env: { ...PR, NOAUTO: '1' }, changes: ['setup.py'] },
  {
    name: 'branch-build-cache-hit',
    branch: 'my-branch',
    env: { BUILDKITE_COMMIT: 'abc123', BUILDKITE_PULL_REQUEST: 'false' },
    changes: ['vllm/lora/x.py'],
    uncommitted: ['tests/lora/new_test.py'],
    existingTags: ['936637512419.dkr.ecr.us-east-1.amazonaws.com/vllm-ci-test-cache:my-branch'],
  },
  { name: 'merge-base-env', branch: FEATURE, env: { ...PR, MERGE_BASE_COMMIT: 'HEAD~2' }, changes: ['vllm/lora/a.py', 'vllm/plugins/b.py'] },
  { name: 'area-file-changed', branch: FEATURE, env: { ...PR }, changes: ['.buildkite/test_areas/torch_abi.yaml'] },
  // The synthetic test area: native AMD jobs, multi-node, agent tags, concurrency, custom retry, ...
  { name: 'synthetic-pr', branch: FEATURE, env: { ...PR, VLLM_CI_ENABLE_ROCM_DEBUG_AGENT: '1' }, changes: ['vllm/synth/a.py'], synthetic: true },
  { name: 'synthetic-main', branch: 'main', env: { BUILDKITE_COMMIT: 'abc123', ROCM_BASE_REFRESH_SKIP: '1' }, changes: ['other/z.py'], synthetic: true },
  {
    name: 'synthetic-native-runtime',
    branch: FEATURE,
    env: { ...PR, CONTINUE_ON_FAILURE: '1', SKIP_TIMEOUT: '1' },
    changes: ['.buildkite/scripts/hardware_ci/run-amd-test.sh'],
    synthetic: true,
  },
];

// Steps vLLM's real files do not show, written in the same format (bkci's own fixture).
export const SYNTHETIC_AREA = `group: Synthetic
depends_on:
  - image-build
steps:
- label: "Native AMD job"
  key: native-amd
  device: mi325_2
  dind: false
  num_devices: 2
  env:
    DOCKER_IMAGE_NAME: dropped
    HF_HOME: /custom
  agent_tags:
    rack: r1
  source_file_dependencies: [vllm/synth/]
  commands:
  - pytest -v -s 'synth -k x'
- label: "DinD AMD job"
  device: mi300_1
  source_file_dependencies: [vllm/other/]
  concurrency: 1
  concurrency_group: amd-lock
  timeout_in_minutes: 300
  commands: [echo hi]
- label: "AMD no plugin"
  device: mi250_1
  no_plugin: true
  no_gpu: true
  env: {A: b}
  commands: [echo np]
- label: 2 Node Test (4 GPUs)
  timeout_in_minutes: 30
  working_dir: "/vllm-workspace/tests"
  num_devices: 2
  num_nodes: 2
  no_plugin: true
  source_file_dependencies: [vllm/distributed/]
  commands:
  - ./.buildkite/scripts/run-multi-node-test.sh /vllm-workspace/tests 2 2 img "pytest -k 'a b'" "echo 'x'"
- label: Benchmarks
  device: h200
  source_file_dependencies: [vllm/synth/]
  commands: [bash run-benchmarks.sh]
- label: "Intel GPU (XPU)"
  device: intel_gpu
  agent_tags: {queue: ignored, model: b580}
  soft_fail: true
  retry:
    automatic:
      exit_status: 7
      limit: 3
    manual:
      permit_on_passed: true
  commands: [echo xpu]
- label: "AMD CPU"
  device: amd_cpu
  retry:
    automatic:
      - exit_status: -1
        limit: 4
  commands: [echo amdcpu]
- label: "Refresh ROCm base"
  key: refresh-rocm-base-amd
  device: cpu
  commands: [echo refresh]
- label: "Zen5 two devices"
  device: zen5
  num_devices: 2
  mount_buildkite_agent: true
  parallelism: 3
  commands: [echo zen]
- label: "Spark"
  device: dgx-spark
  commands: [echo spark]
- label: "CPU medium, $REPO at $BRANCH"
  device: cpu-medium
  source_file_dependencies: [vllm/synth/a.py]
  commands: ["echo $REGISTRY/$REPO:$BUILDKITE_COMMIT $IMAGE_TAG $CACHE_FROM $CACHE_TO $IMAGE_TAG_LATEST $REPOSITORY", "echo $$BUILDKITE_COMMIT"]
- label: "Optional H100 x8"
  device: h100
  num_devices: 8
  optional: true
  source_file_dependencies: [vllm/synth/]
  commands: [echo h100]
  mirror:
    amd:
      device: mi355_8
      num_gpus: 8
      env: {X: "1"}
      soft_fail: true
      working_dir: /ignored
- label: "Mirror with own selection"
  source_file_dependencies: [vllm/nothing/]
  commands: ["echo 'quoted'"]
  mirror:
    amd:
      device: mi325_4
      dind: false
      optional: false
      no_gpu: true
      agent_tags: {pool: big}
      depends_on: [image-build, other-thing]
      source_file_dependencies: [vllm/synth/]
      commands: [echo mirrored]
- label: ":docker: Build arm64 thing"
  key: image-build-arm64-x
  depends_on: []
  commands: [echo build]
- label: "Docs"
  group: ignored
  device: cpu-small
  commands: [echo docs]
`;

export const SYNTHETIC_EXTRA = `steps:
- label: "Ungrouped step"
  key: ungrouped-one
  depends_on: [other-thing]
  source_file_dependencies: [other/]
  commands: [echo u]
- label: "Other thing"
  key: other-thing
  commands: [echo o]
- label: Documentation Build
  commands: [mkdocs build]
`;

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
  });
}

function touch(dir: string, rel: string, text: string): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

export interface Repo {
  dir: string;
  bin: string;
  env: Record<string, string>;
  cleanup(): void;
}

// The two commits every situation starts from (one repository per kind, copied for each situation).
const templates = new Map<boolean, string>();
function template(synthetic: boolean): string {
  const have = templates.get(synthetic);
  if (have && existsSync(have)) return have;
  const dir = mkdtempSync(join(tmpdir(), 'bkci-gen-template-'));
  cpSync(join(AREAS, '.buildkite'), join(dir, '.buildkite'), { recursive: true });
  if (synthetic) {
    touch(dir, '.buildkite/test_areas/synthetic.yaml', SYNTHETIC_AREA);
    touch(dir, '.buildkite/test_areas/more/extra.yaml', SYNTHETIC_EXTRA);
  }
  for (const f of ['setup.py', 'vllm/__init__.py', 'docs/usage.md', 'README.md', 'csrc/rocm/attention.cu', 'docker/Dockerfile.rocm_base']) touch(dir, f, 'x\n');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'base');
  touch(dir, 'vllm/base2.py', 'y\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'base 2');
  git(dir, 'update-ref', 'refs/remotes/origin/main', 'HEAD');
  templates.set(synthetic, dir);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A repository in the state the situation describes, and stand-ins for aws, docker and buildkite-agent.
export function makeRepo(s: Situation): Repo {
  const root = mkdtempSync(join(tmpdir(), 'bkci-gen-'));
  const dir = join(root, 'repo');
  const bin = join(root, 'bin');
  mkdirSync(bin);
  cpSync(template(Boolean(s.synthetic)), dir, { recursive: true });
  if (s.branch !== 'main') git(dir, 'checkout', '-q', '-b', 'work');
  for (const f of s.changes) touch(dir, f, existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') + '# changed\n' : 'new\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'change');
  for (const f of s.uncommitted ?? []) touch(dir, f, 'untracked\n');
  const log = join(root, 'calls.log');
  const sh = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  sh('aws', `echo "aws $*" >> '${log}'; echo password`);
  sh(
    'docker',
    `echo "docker $*" >> '${log}'
if [ "$1" = login ]; then cat >/dev/null; exit 0; fi
if [ "$1" = manifest ]; then for t in $BKCI_FAKE_EXISTING_TAGS; do [ "$t" = "$3" ] && exit 0; done; exit 1; fi
exit 0`,
  );
  sh('buildkite-agent', `echo "buildkite-agent $*" >> '${log}'`);
  const env: Record<string, string> = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: process.env.HOME ?? root,
    BUILDKITE_BRANCH: s.branch,
    BKCI_FAKE_EXISTING_TAGS: (s.existingTags ?? []).join(' '),
    BKCI_PR_LABELS: s.labels ?? '',
    ...s.env,
  };
  return { dir, bin, env, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface RunOutput {
  status: number;
  stderr: string;
  // The written pipeline, or undefined when nothing was written (docs-only).
  pipeline?: string;
  docsOnlyMarker: boolean;
  calls: string;
}

function collect(repo: Repo, status: number | null, stderr: string, out: string): RunOutput {
  const calls = join(dirname(repo.bin), 'calls.log');
  return {
    status: status ?? -1,
    stderr,
    pipeline: existsSync(out) ? readFileSync(out, 'utf8') : undefined,
    docsOnlyMarker: existsSync(join(dirname(out), '.docs_only')),
    calls: existsSync(calls) ? readFileSync(calls, 'utf8') : '',
  };
}

export function runBkci(repo: Repo, extra: string[] = []): RunOutput {
  const out = join(repo.dir, '.buildkite', 'pipeline.yaml');
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'dist/bundle/bin.js'), 'pipeline', 'generate', '--config', '.buildkite/ci_config.yaml', '--profile', 'vllm', '-o', out, ...extra],
    { cwd: repo.dir, env: repo.env, encoding: 'utf8' },
  );
  return collect(repo, r.status, r.stderr, out);
}

// A Python that can import the generator's dependencies (pydantic 1 or 2, click, requests, yaml).
export function findPython(): string | undefined {
  for (const py of [process.env.BKCI_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    const r = spawnSync(py, ['-c', 'import pydantic, click, requests, yaml, typing_extensions'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

export function runPython(repo: Repo, python: string, generatorDir: string, extraEnv: Record<string, string> = {}): RunOutput {
  const out = join(repo.dir, '.buildkite', 'pipeline.yaml');
  const r = spawnSync(python, [DRIVER, generatorDir, '.buildkite/ci_config.yaml', out], {
    cwd: repo.dir,
    env: { ...repo.env, ...extraEnv },
    encoding: 'utf8',
  });
  return collect(repo, r.status, r.stderr + r.stdout, out);
}

export function otelBundle(python: string, generatorDir: string): string {
  return execFileSync(python, [DRIVER, generatorDir], { env: { ...process.env, BKCI_PRINT_OTEL_BUNDLE: '1' }, encoding: 'utf8' }).trim();
}
