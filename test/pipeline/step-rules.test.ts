// Step-level rules that real pipelines showed bkci got wrong (issue 15 §1), each as Buildkite
// documents it: interpolated step keys, checkout, matrix limits, trigger parallelism, null labels
// and a null top-level env, build-level blocked_builds_as_pending. The quick check (JSON Schema +
// refinements) must give zod's verdict on every step here too.
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { STEP_MODELS } from '../../src/pipeline/model.js';
import { stepPasses } from '../../src/pipeline/precheck.js';
import { stepKeyProblem, withoutInterpolations } from '../../src/pipeline/step-key.js';
import { stepType, validatePipelineText } from '../../src/pipeline/validate.js';

async function errors(text: string): Promise<string[]> {
  const r = await validatePipelineText(text);
  const errs = r.findings.filter((f) => f.severity === 'error').map((f) => `${f.line}:${f.col} ${f.path}: ${f.message}`);
  expect(r.valid).toBe(errs.length === 0);
  // The quick check and zod agree on every step of the pipeline.
  const doc = YAML.parse(text) as { steps?: unknown[] };
  for (const s of doc.steps ?? []) {
    const t = s && typeof s === 'object' ? stepType(s as Record<string, unknown>) : undefined;
    if (t) expect(stepPasses(t.type, t.body), JSON.stringify(s)).toBe(STEP_MODELS[t.type].safeParse(t.body).success);
  }
  return errs;
}

const cmd = (extra: string) => `steps:\n  - command: make\n${extra.replace(/^/gm, '    ')}\n`;

describe('step keys are judged after the agent interpolates them', () => {
  it.each([
    'test_${TRIPLET?}',
    'test_${TRIPLET?}${USE_RR-}${i686_LABEL-}',
    'build_${TRIPLET?must be set}',
    '${TPU_VERSION:-v6}_build',
    '${VAR:?the variable}',
    '${NAME}',
    '$NAME-build',
    'a$$b',
    '${OUTER:-${INNER:-x}}-k',
    '${SLICE:1:2}',
  ])('accepts the key %s', async (key) => {
    expect(stepKeyProblem(key)).toBeUndefined();
    expect(await errors(cmd(`key: ${JSON.stringify(key)}`))).toEqual([]);
  });

  it.each([
    ['has space', /may only contain/],
    ['${X} has space', /may only contain/],
    ['a${b c', /may only contain/],
    ['${A}0b0e5d8e-7e45-4c6c-8f53-4d6f4b1d2a9c', /UUID/],
    ['k'.repeat(101), /at most 100/],
    ['', /empty/],
  ])('rejects the key %j', async (key, re) => {
    expect(stepKeyProblem(key)).toMatch(re);
    const errs = await errors(cmd(`key: ${JSON.stringify(key)}`));
    expect(errs.join('\n')).toMatch(re);
    expect(errs[0]).toMatch(/^3:5 steps\[0\]\.key: /);
  });

  it('removes $NAME and every ${...} form, keeps the escape $$ as one $', () => {
    expect(withoutInterpolations('a_${B?}_$C-d$$e${F:-${G}}')).toEqual({ rest: 'a__-d$e', interpolated: true });
    expect(withoutInterpolations('plain')).toEqual({ rest: 'plain', interpolated: false });
    expect(withoutInterpolations('a${open')).toEqual({ rest: 'a${open', interpolated: false });
  });

  it('applies to group keys and the legacy id/identifier too', async () => {
    const text =
      'steps:\n  - group: g\n    key: "g_${TRIPLET?}"\n    steps:\n      - command: a\n        key: "build_${TRIPLET?}"\n      - command: b\n        id: "x_${A:-b}"\n';
    expect(await errors(text)).toEqual([]);
    expect((await errors('steps:\n  - group: g\n    key: "g h"\n    steps: [{command: a}]\n')).join()).toMatch(/steps\[0\]\.key: a step key may only/);
  });
});

describe('checkout on a command step and at the top level (agent 3.136+)', () => {
  it('accepts every documented attribute', async () => {
    const all =
      'checkout:\n  skip: false\n  submodules: "false"\n  lfs: true\n  depth: 50\n  flags: {clone: "--filter=blob:none", fetch: --prune, checkout: --force, clean: -fxd}\n' +
      '  sparse: {paths: [.buildkite/, src/]}\n  ssh_secret: DEPLOY_KEY\n  commit_verification: strict';
    expect(await errors(cmd(all))).toEqual([]);
    expect(await errors(cmd('checkout: {}'))).toEqual([]);
    expect(await errors(cmd('checkout: {depth: $DEPTH, sparse: {paths: src/}, ssh_secret: $SECRET_NAME}'))).toEqual([]);
    expect(await errors('checkout:\n  submodules: false\n  depth: 1\nsteps:\n  - command: a\n    checkout: {depth: 50}\n')).toEqual([]);
  });

  it.each([
    ['checkout: true', /steps\[0\]\.checkout/],
    ['checkout: skip', /steps\[0\]\.checkout/],
    ['checkout: {submodule: false}', /`submodule` is not a valid property in steps\[0\]\.checkout/],
    ['checkout: {depth: 0}', /steps\[0\]\.checkout\.depth/],
    ['checkout: {flags: {push: x}}', /`push` is not a valid property/],
    ['checkout: {sparse: {path: src/}}', /`path` is not a valid property/],
    ['checkout: {ssh_secret: bk_deploy}', /secret key/],
    ['checkout: {ssh_secret: BUILDKITE_KEY}', /secret key/],
    ['checkout: {ssh_secret: 1key}', /secret key/],
    ['checkout: {ssh_secret: "has space"}', /steps\[0\]\.checkout\.ssh_secret: a secret key/],
  ])('rejects %s, naming the field', async (extra, re) => {
    expect((await errors(cmd(extra))).join('\n')).toMatch(re);
  });

  it('is a command step property only', async () => {
    expect((await errors('steps:\n  - wait: ~\n    checkout: {skip: true}\n')).join()).toMatch(/`checkout` is not a valid property on the `wait` step/);
  });
});

describe('matrix limits (Buildkite docs, build matrix "Matrix limits")', () => {
  const dim = (n: number, p = 'v') => `[${Array.from({ length: n }, (_v, i) => `${p}${i}`).join(', ')}]`;

  it('takes 25 elements per dimension, not 26', async () => {
    expect(await errors(cmd(`matrix: ${dim(25)}`))).toEqual([]);
    expect(await errors(cmd(`matrix:\n  setup:\n    a: ${dim(25)}\n    b: [x, y]`))).toEqual([]);
    expect((await errors(cmd(`matrix: ${dim(26)}`))).join()).toMatch(/3:5 steps\[0\]\.matrix: a matrix dimension has 26 elements; Buildkite allows 25/);
    expect((await errors(cmd(`matrix:\n  setup:\n    a: ${dim(26)}`))).join()).toMatch(/steps\[0\]\.matrix\.setup\.a: a matrix dimension has 26 elements/);
  });

  it('creates at most 50 jobs per matrix step, counting adjustments', async () => {
    expect(await errors(cmd(`matrix:\n  setup:\n    a: ${dim(10)}\n    b: ${dim(5)}`))).toEqual([]);
    expect((await errors(cmd(`matrix:\n  setup:\n    a: ${dim(8)}\n    b: ${dim(9)}`))).join()).toMatch(
      /the matrix creates 72 jobs; Buildkite allows 50 per matrix step/,
    );
    const extra = `matrix:\n  setup:\n    a: ${dim(10)}\n    b: ${dim(5)}\n  adjustments:\n    - with: {a: new, b: v0}`;
    expect((await errors(cmd(extra))).join()).toMatch(/creates 51 jobs/);
    const skipped = `matrix:\n  setup:\n    a: ${dim(17)}\n    b: ${dim(3)}\n  adjustments:\n    - with: {a: v0, b: v0}\n      skip: true`;
    expect(await errors(cmd(skipped))).toEqual([]);
  });

  it('takes elements and dimension names of at most 128 bytes', async () => {
    expect(await errors(cmd(`matrix: [${'x'.repeat(128)}]`))).toEqual([]);
    expect((await errors(cmd(`matrix: [a, ${'x'.repeat(129)}]`))).join()).toMatch(
      /steps\[0\]\.matrix\[1\]: a matrix element is 129 bytes; Buildkite allows 128/,
    );
    expect((await errors(cmd(`matrix: [${'é'.repeat(65)}]`))).join()).toMatch(/130 bytes/);
    expect((await errors(cmd(`matrix:\n  setup:\n    ${'n'.repeat(129)}: [a]`))).join()).toMatch(/dimension name is 129 bytes/);
    expect(await errors(cmd(`matrix: ["\${LONG_VALUE:-${'x'.repeat(140)}}"]`))).toEqual([]);
  });
});

describe('parallelism on a trigger step (documented 2026-04)', () => {
  it('accepts a number or an interpolated value, rejects less than 1 and words', async () => {
    expect(await errors('steps:\n  - trigger: data-generator\n    parallelism: 3\n')).toEqual([]);
    expect(await errors('steps:\n  - trigger: data-generator\n    parallelism: $N\n')).toEqual([]);
    expect((await errors('steps:\n  - trigger: t\n    parallelism: 0\n')).join()).toMatch(/3:5 steps\[0\]\.parallelism: parallelism must be at least 1/);
    expect((await errors('steps:\n  - trigger: t\n    parallelism: three\n')).join()).toMatch(/steps\[0\]\.parallelism/);
  });
});

describe('nulls the agent drops or the server takes', () => {
  it.each([
    'steps:\n  - block: Deploy\n    label: ~\n',
    'steps:\n  - input: Info\n    label: ~\n    fields: [{text: Why, key: why}]\n',
    'steps:\n  - command: make\n    label: ~\n',
    'steps:\n  - command: make\n    name: ~\n    env: ~\n',
    'env: ~\nsteps:\n  - command: make\n',
    'checkout: ~\nsteps:\n  - command: make\n',
  ])('accepts %j', async (text) => {
    expect(await errors(text)).toEqual([]);
  });

  it('still rejects a label that is not a string or null', async () => {
    expect((await errors('steps:\n  - block: b\n    label: 3\n')).join()).toMatch(/steps\[0\]\.label/);
    expect((await errors('steps:\n  - trigger: t\n    label: ~\n')).join()).toMatch(/steps\[0\]\.label/);
  });
});

describe('build-level notify', () => {
  it('takes github_commit_status.blocked_builds_as_pending at the build level only', async () => {
    const build = 'notify:\n  - github_commit_status:\n      context: buildkite/deploy\n      blocked_builds_as_pending: true\nsteps:\n  - command: a\n';
    expect(await errors(build)).toEqual([]);
    expect((await errors(cmd('notify:\n  - github_commit_status: {blocked_builds_as_pending: true}'))).join()).toMatch(/steps\[0\]\.notify/);
  });
});
