// The pure core of `bkci pipeline upload`: job counting against hand-computed counts of Buildkite's
// documented examples, batching (groups whole, dependencies first, notify once), the rewrite of
// wait/block steps into explicit dependencies, and the YAML the agent reads back unchanged.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { documentJobs, itemJobs, matrixCombinations, stepJobs } from '../../src/pipeline/upload/count.js';
import { dependencyKeys, makeDependenciesExplicit, planUpload, PlanError } from '../../src/pipeline/upload/batch.js';
import { toYaml } from '../../src/pipeline/upload/serialize.js';

const y = (text: string): unknown => parse(text);

describe('counting jobs as the server does', () => {
  // docs: pages/pipelines/configure/workflows/build_matrix.md
  it('a matrix list is one job per element', () => {
    expect(stepJobs(y('{label: "{{matrix}} build", command: "GOOS={{matrix}} go build", matrix: [darwin, Linux, Windows]}'))).toBe(3);
  });
  it('matrix.setup multiplies its dimensions: 2 * 2 * 2 = 8', () => {
    expect(stepJobs(y('{command: x, matrix: {setup: {arch: [amd64, arm64], os: [windows, linux], test: [A, B]}}}'))).toBe(8);
  });
  it('an adjustment that adds a combination adds a job (the Plan 9 example: 9)', () => {
    const s = y(
      '{command: x, matrix: {setup: {arch: [amd64, arm64], os: [windows, linux], test: [A, B]}, adjustments: [{with: {os: "Plan 9", arch: arm64, test: B}}]}}',
    );
    expect(stepJobs(s)).toBe(9);
  });
  it('soft_fail on a combination changes nothing, skip removes it (the "adjustments" example: 7)', () => {
    const s = y(`
command: x
matrix:
  setup: {arch: [amd64, arm64], os: [windows, linux], test: [A, B]}
  adjustments:
    - with: {os: windows, arch: arm64, test: B}
      soft_fail: true
    - with: {os: linux, arch: arm64, test: B}
      skip: true
`);
    expect(stepJobs(s)).toBe(7);
  });
  it('a single-dimension setup list, and adjustments naming scalars', () => {
    expect(matrixCombinations({ setup: ['a', 'b'], adjustments: [{ with: 'c' }, { with: 'a', skip: 'not today' }] })).toBe(2);
    expect(matrixCombinations({ setup: [1, 2], adjustments: [{ with: '2', skip: true }] })).toBe(1);
  });
  it('parallelism: N copies ("a step with parallelism: 10 counts as 10")', () => {
    expect(stepJobs({ command: 'x', parallelism: 10 })).toBe(10);
    expect(stepJobs({ command: 'x', parallelism: 1 })).toBe(1);
  });
  it('wait, block, input and trigger steps are one job each, in every form', () => {
    for (const s of [
      'wait',
      'block',
      'input',
      { wait: null },
      { wait: { key: 'w' } },
      { block: 'ok?' },
      { input: 'who?' },
      { trigger: 'deploy' },
      { type: 'waiter' },
    ])
      expect(stepJobs(s)).toBe(1);
  });
  it('a group is one job of its own plus its steps (docs group_step.md: Security Audits, 4 steps -> 5)', () => {
    const g = y(`
group: ":lock_with_ink_pen: Security Audits"
key: audits
steps:
  - {label: Brakeman, command: .buildkite/steps/brakeman}
  - {label: Bundle Audit, command: .buildkite/steps/bundleaudit}
  - {label: Yarn Audit, command: .buildkite/steps/yarn}
  - {label: Outdated Check, command: .buildkite/steps/outdated}
`);
    expect(itemJobs(g)).toBe(5);
  });
  it('wait steps in a group count ("both Group01 and Group02 contain 3 steps": 4 jobs each)', () => {
    const doc = y(`
steps:
  - group: Group01
    depends_on: tests
    steps: [{command: a.sh}, wait, {command: b.sh}]
  - group: Group02
    depends_on: tests
    id: toast
    steps: [{command: c.sh}, wait, {command: d.sh}]
  - command: yay.sh
    depends_on: toast
`);
    expect(documentJobs(doc)).toBe(4 + 4 + 1);
  });
  it('500 steps in 18 groups are 518 jobs (rayci PR #484)', () => {
    const steps = Array.from({ length: 18 }, (_v, g) => ({
      group: `g${g}`,
      steps: Array.from({ length: g < 14 ? 28 : 27 }, (_w, i) => ({ command: `t${g}-${i}` })),
    }));
    expect(steps.reduce((n, g) => n + g.steps.length, 0)).toBe(500);
    expect(documentJobs({ steps })).toBe(518);
  });
});

describe('depends_on forms', () => {
  it('string, list of strings, list of {step, allow_failure}, null', () => {
    expect(dependencyKeys('a')).toEqual(['a']);
    expect(dependencyKeys(['a', 'b'])).toEqual(['a', 'b']);
    expect(dependencyKeys([{ step: 'a', allow_failure: true }, 'b'])).toEqual(['a', 'b']);
    expect(dependencyKeys(null)).toEqual([]);
    expect(dependencyKeys([])).toEqual([]);
  });
});

const cmd = (key: string, extra: Record<string, unknown> = {}) => ({ label: key, key, command: `run ${key}`, ...extra });

describe('planning batches', () => {
  it('one upload when everything fits, the input untouched', () => {
    const doc = { env: { A: '1' }, steps: [cmd('a'), 'wait', cmd('b')] };
    const plan = planUpload([doc], { maxJobs: 500 });
    expect(plan.split).toBe(false);
    expect(plan.batches).toHaveLength(1);
    expect(plan.batches[0]!.pipeline).toBe(doc);
    expect(plan.totalJobs).toBe(3);
  });

  it('never splits a group, and fills batches up to the limit', () => {
    const groups = Array.from({ length: 7 }, (_v, g) => ({ group: `G${g}`, key: `g${g}`, steps: Array.from({ length: 3 }, (_w, i) => cmd(`s${g}-${i}`)) }));
    const plan = planUpload([{ steps: groups }], { maxJobs: 9 });
    // 4 jobs per group: two groups per batch.
    expect(plan.batches.map((b) => b.jobs)).toEqual([8, 8, 8, 4]);
    expect(plan.batches.map((b) => b.items)).toEqual([[0, 1], [2, 3], [4, 5], [6]]);
    for (const b of plan.batches) expect(b.jobs).toBeLessThanOrEqual(9);
  });

  it('a group alone above the limit is a PlanError naming it, its count and its place', () => {
    const big = { group: 'Kernels', key: 'kernels', steps: [cmd('k1', { parallelism: 8 }), cmd('k2')] };
    expect(() => planUpload([{ steps: [cmd('a'), big] }], { maxJobs: 5 })).toThrowError(/group "Kernels" \(key kernels\) has 10 jobs, more than the 5/);
    try {
      planUpload([{ steps: [cmd('a'), big] }], { maxJobs: 5 });
    } catch (e) {
      expect(e).toBeInstanceOf(PlanError);
      expect((e as PlanError).path).toEqual(['steps', 1]);
    }
  });

  it('orders batches so every key exists before a step depends on it (forward references)', () => {
    // `first` depends on `late`, placed at the end of the document.
    const steps = [cmd('first', { depends_on: [{ step: 'late', allow_failure: true }] }), ...Array.from({ length: 6 }, (_v, i) => cmd(`m${i}`)), cmd('late')];
    const plan = planUpload([{ steps }], { maxJobs: 3 });
    const seen = new Set<string>();
    for (const b of plan.batches) {
      const keys = (b.pipeline.steps as { key: string }[]).map((s) => s.key);
      keys.forEach((k) => seen.add(k));
      for (const s of b.pipeline.steps as { depends_on?: unknown }[]) for (const d of dependencyKeys(s.depends_on)) expect(seen.has(d)).toBe(true);
    }
    expect(plan.batches.flatMap((b) => b.items).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('group-level and nested depends_on tie the group after the key it needs', () => {
    const steps = [{ group: 'A', steps: [cmd('a1', { depends_on: 'z' })] }, { group: 'B', depends_on: ['z'], steps: [cmd('b1')] }, cmd('x'), cmd('z')];
    const plan = planUpload([{ steps }], { maxJobs: 2 });
    const batchOf = (i: number) => plan.batches.findIndex((b) => b.items.includes(i));
    expect(batchOf(3)).toBeLessThanOrEqual(batchOf(0));
    expect(batchOf(3)).toBeLessThanOrEqual(batchOf(1));
  });

  it('a depends_on cycle is a PlanError', () => {
    const steps = [cmd('a', { depends_on: 'b' }), cmd('b', { depends_on: 'a' }), cmd('c')];
    expect(() => planUpload([{ steps }], { maxJobs: 2 })).toThrowError(/cycle/);
  });

  it('notify goes with the first batch only; env, agents and other top-level keys with every batch', () => {
    const doc = {
      env: { A: '1' },
      agents: { queue: 'q' },
      notify: [{ email: 'a@b' }],
      secrets: ['S'],
      steps: Array.from({ length: 5 }, (_v, i) => cmd(`s${i}`)),
    };
    const plan = planUpload([doc], { maxJobs: 2 });
    expect(plan.batches).toHaveLength(3);
    expect(plan.batches[0]!.pipeline).toMatchObject({ env: { A: '1' }, agents: { queue: 'q' }, notify: [{ email: 'a@b' }], secrets: ['S'] });
    for (const b of plan.batches.slice(1)) {
      expect(b.pipeline).toMatchObject({ env: { A: '1' }, agents: { queue: 'q' }, secrets: ['S'] });
      expect(b.pipeline.notify).toBeUndefined();
    }
    // The input is not modified.
    expect(doc.steps).toHaveLength(5);
  });

  it('a list document becomes steps: batches', () => {
    const plan = planUpload([[cmd('a'), cmd('b'), cmd('c')]], { maxJobs: 2 });
    expect(plan.batches.map((b) => Object.keys(b.pipeline))).toEqual([['steps'], ['steps']]);
  });

  it('a key only a later document defines is a PlanError', () => {
    expect(() => planUpload([{ steps: [cmd('a', { depends_on: 'b' }), cmd('c')] }, { steps: [cmd('b')] }], { maxJobs: 1 })).toThrowError(/later YAML document/);
  });
});

describe('wait and block steps across batches', () => {
  it('write the implicit dependencies out: barriers wait for their segment, steps for the barrier', () => {
    const steps: unknown[] = [
      cmd('a'),
      { command: 'b' },
      'wait',
      cmd('c'),
      { command: 'd', depends_on: 'a' },
      { block: 'Deploy?' },
      cmd('e'),
      { input: 'who?' },
    ];
    const added = makeDependenciesExplicit(steps, new Set(['a', 'c', 'e']), 'bk-');
    expect(steps).toEqual([
      { ...cmd('a'), depends_on: [] },
      { command: 'b', key: 'bk-2', depends_on: [] },
      { wait: null, key: 'bk-3', depends_on: ['a', 'bk-2'] },
      { ...cmd('c'), depends_on: ['bk-3'] },
      { command: 'd', depends_on: 'a', key: 'bk-5' },
      { block: 'Deploy?', key: 'bk-6', depends_on: ['c', 'bk-5', 'bk-3'] },
      { ...cmd('e'), depends_on: ['bk-6'] },
      { input: 'who?' },
    ]);
    expect(added.sort()).toEqual(['bk-2', 'bk-3', 'bk-5', 'bk-6']);
  });

  it('continue_on_failure waits let their segment fail; a conditional wait keeps the one before it', () => {
    const steps: unknown[] = [
      cmd('a'),
      { wait: null, key: 'w1' },
      cmd('b'),
      { wait: null, key: 'w2', if: 'build.branch == "main"' },
      cmd('c'),
      { wait: null, key: 'w3', continue_on_failure: true },
      cmd('d'),
    ];
    makeDependenciesExplicit(steps, new Set(['a', 'b', 'c', 'd', 'w1', 'w2', 'w3']), 'bk-');
    expect((steps[4] as { depends_on: unknown }).depends_on).toEqual(['w1', 'w2']);
    expect((steps[5] as { depends_on: unknown }).depends_on).toEqual([{ step: 'b', allow_failure: true }, { step: 'c', allow_failure: true }, 'w1', 'w2']);
    expect((steps[6] as { depends_on: unknown }).depends_on).toEqual(['w3']);
  });

  it('a generated key never collides with an existing one', () => {
    const steps: unknown[] = [{ command: 'x' }, 'wait', cmd('bk-1')];
    makeDependenciesExplicit(steps, new Set(['bk-1']), 'bk-');
    expect((steps[0] as { key: string }).key).toBe('bk-1-2');
  });

  it('a step used twice through a YAML alias gets its own key and depends_on at each place', () => {
    // `*lint` is the same object as `&lint` once parsed: what is written for one place must not land on the other.
    const doc = y(`
steps:
  - &lint {label: lint, command: make lint}
  - wait
  - {label: test, command: make test}
  - wait
  - *lint
`) as { steps: unknown[] };
    expect(doc.steps[0]).toBe(doc.steps[4]);
    const plan = planUpload([doc], { maxJobs: 2 });
    const out = plan.batches.flatMap((b) => b.pipeline.steps as Record<string, unknown>[]);
    const lints = out.filter((s) => s.label === 'lint');
    expect(lints).toHaveLength(2);
    expect(lints[0]).not.toBe(lints[1]);
    expect(lints[0]!.key).not.toBe(lints[1]!.key);
    // The first lint runs before the first wait (no dependencies), the second after the second wait.
    const first = lints.find((s) => Array.isArray(s.depends_on) && s.depends_on.length === 0);
    const second = lints.find((s) => s !== first);
    expect(first).toBeDefined();
    expect(second!.depends_on).toHaveLength(1);
    const keys = out.map((s) => s.key).filter((k) => k !== undefined);
    expect(new Set(keys).size).toBe(keys.length);
    // The parsed input is left as it was.
    expect(doc.steps[0]).toEqual({ label: 'lint', command: 'make lint' });
  });

  it('documents without top-level wait/block are uploaded without any rewrite', () => {
    const steps = Array.from({ length: 4 }, (_v, i) => ({ command: `c${i}` }));
    const plan = planUpload([{ steps }], { maxJobs: 2 });
    expect(plan.generatedKeys).toEqual([]);
    expect(plan.batches.flatMap((b) => b.pipeline.steps as unknown[])).toEqual(steps);
  });
});

describe('YAML for the agent', () => {
  it('reads back the same values under YAML 1.1 and 1.2', () => {
    const v = {
      env: {
        A: 'yes',
        B: '010',
        C: '0o17',
        D: '1e3',
        E: 'on',
        F: 'x: y',
        G: '$$X',
        H: `${'a'.repeat(200)} b c`,
        I: 12,
        J: null,
        K: true,
        L: '',
        M: 'multi\nline\n',
        N: '.inf',
        O: '12:30',
      },
      steps: [{ wait: null }, 'wait', { command: ['echo "hi"', "it's"] }],
    };
    const text = toYaml(v);
    expect(parse(text)).toEqual(v);
    expect(parse(text, { version: '1.1' })).toEqual(v);
    expect(text).not.toMatch(/\n\s+a{10}[^\n]*\n\s+b c/);
  });
});

describe('YAML for the agent, random values', () => {
  it('round-trips 2,000 random documents under YAML 1.1 and 1.2', () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const atoms = [
      'yes',
      'No',
      'on',
      '~',
      'null',
      '010',
      '0o17',
      '0x1F',
      '1e3',
      '1_000',
      '.5',
      '-.inf',
      '12:30',
      '2026-12-07',
      'a: b',
      'a #b',
      '#c',
      '- x',
      '? y',
      '!tag',
      '&a',
      '*b',
      '@x',
      '`x`',
      "it's",
      'say "hi"',
      '',
      ' lead',
      'trail ',
      'x:',
      'multi\nline',
      'tab\there',
      'ü ß 中',
      '$$HOME',
      '${A:-b}',
      '%x',
      '[a]',
      '{b}',
      'a,b',
      'pytest -k "not x"',
      'c:\\dir',
      '\u0007bell',
      '=',
      '<<',
    ];
    const gen = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.4) return pick<unknown>([...atoms, 0, -3, 2.5, 1e21, true, false, null]);
      if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => gen(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [pick(atoms), gen(depth + 1)]));
    };
    for (let i = 0; i < 2000; i++) {
      const v = { steps: [gen(0), gen(0)], env: gen(1) };
      const text = toYaml(v);
      expect(parse(text), text).toEqual(v);
      expect(parse(text, { version: '1.1' }), text).toEqual(v);
    }
  });
});
