// `bkci pipeline upload` end to end: the CLI runs a stand-in buildkite-agent
// (test/helpers/fake-buildkite-agent.mjs) that applies the server's rules (the job limit, counted
// on its own; depends_on keys that must already exist; keys used once) and records each upload.
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runBkci } from '../helpers/io.js';

const AGENT = join(import.meta.dirname, '../helpers/fake-buildkite-agent.mjs');

interface State {
  keys: string[];
  uploads: { args: string[]; pipeline: { steps: Record<string, unknown>[]; [k: string]: unknown }; jobs: number }[];
  build: unknown[];
}

function setup(pipeline: unknown, opts: { keys?: string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-upload-'));
  const file = join(dir, 'pipeline.yml');
  writeFileSync(file, typeof pipeline === 'string' ? pipeline : stringify(pipeline));
  const statePath = join(dir, 'state.json');
  writeFileSync(statePath, JSON.stringify({ keys: opts.keys ?? [], uploads: [], build: [] }));
  const env = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', FAKE_AGENT_STATE: statePath, ...extra });
  const state = (): State => JSON.parse(readFileSync(statePath, 'utf8')) as State;
  return { dir, file, env, state };
}

const upload = (file: string, env: Record<string, string>, ...extra: string[]) =>
  runBkci(['pipeline', 'upload', file, '--agent-bin', AGENT, ...extra], { env });

// A 2,000-step pipeline: 40 groups of 40 steps (every 7th step parallelism 3, every 11th a 2x2
// matrix), then 400 top-level steps, some depending on keys of groups.
function bigPipeline() {
  const groups = Array.from({ length: 40 }, (_v, g) => ({
    group: `Area ${g}`,
    key: `area-${g}`,
    steps: Array.from({ length: 40 }, (_w, i) => {
      const s: Record<string, unknown> = { label: `area ${g} test ${i}`, key: `a${g}-t${i}`, command: `pytest tests/a${g}/t${i}.py`, agents: { queue: 'gpu' } };
      if (i % 7 === 3) s.parallelism = 3;
      else if (i % 11 === 5) s.matrix = { setup: { py: ['3.11', '3.12'], cuda: ['12.4', '12.8'] } };
      return s;
    }),
  }));
  const tail = Array.from({ length: 400 }, (_v, i) => ({
    label: `tail ${i}`,
    key: `tail-${i}`,
    command: `make t${i}`,
    ...(i % 50 === 0 ? { depends_on: [`area-${(i / 50) * 5}`, { step: `a1-t${i % 40}`, allow_failure: true }] } : {}),
  }));
  return { env: { PYTHONUNBUFFERED: '1' }, agents: { queue: 'default' }, notify: [{ slack: '#ci' }], steps: [...groups, ...tail] };
}
// 40 groups x (1 + 40 steps: 6 with parallelism 3 -> +12, 3 with a 4-combination matrix -> +9) + 400.
const BIG_JOBS = 40 * (1 + 40 + 12 + 9) + 400;

describe('bkci pipeline upload', () => {
  it('uploads a 2,000-step pipeline in batches the server accepts, groups whole, dependencies first', async () => {
    const p = bigPipeline();
    const stepCount = p.steps.reduce((n, s) => n + ('steps' in s ? s.steps.length : 1), 0);
    expect(stepCount).toBe(2000);
    const { file, env, state } = setup(p);
    const r = await upload(file, env());
    expect(r.stderr).not.toMatch(/bkci: /);
    expect(r.code).toBe(0);
    const s = state();
    const n = s.uploads.length;
    expect(n).toBeGreaterThanOrEqual(Math.ceil(BIG_JOBS / 500));
    // Logged per batch, with the job count the server counted.
    s.uploads.forEach((u, i) => {
      expect(u.jobs).toBeLessThanOrEqual(500);
      expect(r.stderr).toContain(`batch ${i + 1}/${n}: ${u.jobs} jobs`);
    });
    expect(s.uploads.reduce((a, u) => a + u.jobs, 0)).toBe(BIG_JOBS);
    // Every step uploaded once, every group whole in one upload.
    const uploaded = s.uploads.flatMap((u) => u.pipeline.steps);
    expect(uploaded.map((x) => x.key).sort()).toEqual(p.steps.map((x) => x.key).sort());
    for (const g of uploaded.filter((x) => 'group' in x)) expect((g.steps as unknown[]).length).toBe(40);
    // Top-level keys: env and agents on every batch, notify once.
    for (const u of s.uploads) expect(u.pipeline).toMatchObject({ env: { PYTHONUNBUFFERED: '1' }, agents: { queue: 'default' } });
    expect(s.uploads.filter((u) => u.pipeline.notify).length).toBe(1);
    // No wait/block steps here: the steps are uploaded as they were written.
    const byKey = new Map(p.steps.map((x) => [x.key, x]));
    for (const x of uploaded) expect(x).toEqual(byKey.get(x.key as string));
  });

  it('a group alone above the limit is exit 1 naming it, its count and file:line; nothing is uploaded', async () => {
    const big = { group: 'Kernels', key: 'kernels', steps: Array.from({ length: 30 }, (_v, i) => ({ label: `k${i}`, command: 'x', parallelism: 20 })) };
    const { file, env, state } = setup({ steps: [{ label: 'first', command: 'x' }, big] });
    const r = await upload(file, env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pipeline\.yml:\d+:\d+: group "Kernels" \(key kernels\) has 601 jobs, more than the 500 one upload may create/);
    expect(r.stderr).toMatch(/hint: split it into smaller groups/);
    expect(state().uploads).toHaveLength(0);
    // With a higher limit (an organization at 750) it goes up in one batch.
    const ok = await upload(file, env({ FAKE_AGENT_LIMIT: '750' }), '--max-jobs', '750');
    expect(ok.code).toBe(0);
    expect(state().uploads).toHaveLength(1);
  });

  it('a failing second batch stops the run: exit 1 with the batch number, what was uploaded and the agent message', async () => {
    const { file, env, state } = setup(bigPipeline());
    const r = await upload(file, env({ FAKE_AGENT_FAIL_AT: '2' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bkci: batch 2\/\d+ \(\d+ jobs\) failed: .*fake-buildkite-agent\.mjs exited with 1: .*503 Service Unavailable/);
    expect(r.stderr).toMatch(/already uploaded: batch 1 \(\d+ jobs\); batches 2-\d+ were not uploaded/);
    expect(r.stderr).toMatch(/hint: the build keeps what was uploaded/);
    expect(r.stderr).not.toMatch(/batch 3\/\d+:/);
    expect(state().uploads).toHaveLength(1);
  });

  it('the stand-in refuses what the server refuses (so the tests above mean something)', async () => {
    const over = setup({
      steps: [
        { command: 'x', parallelism: 400 },
        { group: 'g', steps: [{ command: 'y', parallelism: 100 }] },
      ],
    });
    const r1 = await runBkci(['pipeline', 'upload', over.file, '--agent-bin', AGENT, '--max-jobs', '1000'], { env: over.env({ FAKE_AGENT_LIMIT: '500' }) });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/exceeds your organization limit of 500/);
    const dep = setup({ steps: [{ command: 'x', depends_on: 'elsewhere' }] });
    const r2 = await upload(dep.file, dep.env());
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/Step dependencies not found: elsewhere/);
    const seeded = setup({ steps: [{ command: 'x', depends_on: 'elsewhere' }] }, { keys: ['elsewhere'] });
    expect((await upload(seeded.file, seeded.env())).code).toBe(0);
  });

  it('a key defined late in the document is uploaded before the steps that need it', async () => {
    const steps = [
      { label: 'report', key: 'report', command: 'x', depends_on: ['late'] },
      ...Array.from({ length: 9 }, (_v, i) => ({ label: `s${i}`, key: `s${i}`, command: 'x' })),
      { label: 'late', key: 'late', command: 'x' },
    ];
    const { file, env, state } = setup({ steps });
    const r = await upload(file, env(), '--max-jobs', '4');
    expect(r.code).toBe(0);
    const s = state();
    expect(s.uploads.length).toBe(3);
    expect(s.uploads.flatMap((u) => u.pipeline.steps.map((x) => x.key)).sort()).toEqual(steps.map((x) => x.key).sort());
  });

  it('everything within the limit: one upload of the input exactly as written', async () => {
    const text = '# a comment\nsteps:\n  - command: "echo $$HOME"\n    key: a\n  - wait\n  - command: echo b\n';
    const { file, env, state } = setup(text);
    const r = await upload(file, env());
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('batch 1/1: 3 jobs');
    expect(state().uploads[0]!.pipeline).toEqual(parse(text));
  });

  it('--replace goes to the first batch only (on a later one it would remove the batches before it)', async () => {
    const { file, env, state } = setup({ steps: Array.from({ length: 5 }, (_v, i) => ({ command: `c${i}` })) });
    const r = await runBkci(['pipeline', 'upload', file, '--agent-bin', AGENT, '--max-jobs', '2', '--', '--replace', '--job', 'j1'], { env: env() });
    expect(r.code).toBe(0);
    expect(state().uploads.map((u) => u.args)).toEqual([
      ['--replace', '--job', 'j1'],
      ['--job', 'j1'],
      ['--job', 'j1'],
    ]);
  });

  it('reads stdin, and BKCI_MAX_UPLOAD_JOBS sets the limit', async () => {
    const { env, state } = setup('');
    const text = stringify({ steps: Array.from({ length: 6 }, (_v, i) => ({ command: `c${i}` })) });
    const r = await runBkci(['pipeline', 'upload', '--agent-bin', AGENT], { env: env({ BKCI_MAX_UPLOAD_JOBS: '4' }), stdin: text });
    expect(r.code).toBe(0);
    expect(state().uploads.map((u) => u.jobs)).toEqual([4, 2]);
  });

  it('bad input: invalid pipeline exit 1 with findings, bad --max-jobs or a missing agent exit 2', async () => {
    const { file, env, state } = setup('steps:\n  - comand: x\n');
    const r = await upload(file, env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pipeline\.yml:2:\d+: error: /);
    expect(r.stderr).toMatch(/is invalid; nothing was uploaded/);
    expect(state().uploads).toHaveLength(0);
    const ok = setup({ steps: [{ command: 'x' }] });
    const bad = await upload(ok.file, ok.env(), '--max-jobs', 'many');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-jobs "many": expected a whole number/);
    const badEnv = await upload(ok.file, ok.env({ BKCI_MAX_UPLOAD_JOBS: '0' }));
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/BKCI_MAX_UPLOAD_JOBS "0"/);
    const missing = await runBkci(['pipeline', 'upload', ok.file, '--agent-bin', join(ok.dir, 'no-agent')], { env: ok.env() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no-agent: not found; nothing was uploaded/);
  });

  it('--dry-run DIR writes batch-001.yml ... atomically, uploads nothing, and a re-run writes nothing', async () => {
    const { dir, file, env, state } = setup(bigPipeline());
    const out = join(dir, 'batches');
    writeFileSync(join(dir, 'stale'), '');
    const r = await runBkci(['pipeline', 'upload', file, '--dry-run', out, '--agent-bin', join(dir, 'no-agent')], { env: env(), cwd: dir });
    expect(r.code).toBe(0);
    const files = readdirSync(out).sort();
    expect(files[0]).toBe('batch-001.yml');
    expect(files.every((f) => /^batch-\d{3}\.yml$/.test(f))).toBe(true);
    expect(r.stdout.trim().split('\n')).toEqual(files.map((f) => join(out, f)));
    expect(state().uploads).toHaveLength(0);
    const docs = files.map((f) => parse(readFileSync(join(out, f), 'utf8')) as { steps: unknown[] });
    expect(docs.reduce((n, d) => n + d.steps.length, 0)).toBe(40 + 400);
    for (const f of files) expect(statSync(join(out, f)).mode & 0o777).toBe(0o644);
    // The files are what the agent would get: uploading them in order passes the stand-in.
    const up = setup('');
    for (const f of files) {
      const x = await runBkci(['pipeline', 'upload', join(out, f), '--agent-bin', AGENT], { env: up.env() });
      expect(x.code).toBe(0);
    }
    expect(up.state().uploads).toHaveLength(files.length);
    // Re-run: nothing rewritten; a stale later batch is removed.
    const mtimes = files.map((f) => statSync(join(out, f)).mtimeMs);
    writeFileSync(join(out, 'batch-099.yml'), 'steps: []\n');
    const again = await runBkci(['pipeline', 'upload', file, '--dry-run', out], { env: env(), cwd: dir });
    expect(again.code).toBe(0);
    expect(files.map((f) => statSync(join(out, f)).mtimeMs)).toEqual(mtimes);
    expect(existsSync(join(out, 'batch-099.yml'))).toBe(false);
    // --json: the plan on stdout.
    const js = await runBkci(['pipeline', 'upload', file, '--dry-run', out, '--json'], { env: env(), cwd: dir });
    const report = JSON.parse(js.stdout) as { totalJobs: number; batches: { jobs: number }[]; dryRun: boolean };
    expect(report).toMatchObject({ totalJobs: BIG_JOBS, dryRun: true });
    expect(report.batches.length).toBe(files.length);
  });
});

// The dependency model of Buildkite's scheduler, applied to a build's top-level step order:
// explicit depends_on names keys; otherwise a wait/block waits for every step before it and any
// other step (but an input) for the nearest wait/block before it. Returns, for each step named by
// its label, the labels of the (non-wait/block) steps that must finish before it may start.
function mustRunAfter(build: unknown[]): Map<string, string[]> {
  const items = build.map((s) => (typeof s === 'string' ? { [s]: null } : (s as Record<string, unknown>)));
  const bodyOf = (s: Record<string, unknown>) =>
    Object.keys(s).length === 1 && typeof Object.values(s)[0] === 'object' && Object.values(s)[0] !== null
      ? (Object.values(s)[0] as Record<string, unknown>)
      : s;
  const bodies = items.map(bodyOf);
  const isBarrier = (b: Record<string, unknown>) => 'wait' in b || 'block' in b || b.type === 'block' || b.type === 'wait' || Object.keys(b).length === 0;
  const byKey = new Map<string, number>();
  bodies.forEach((b, i) => {
    const k = b.key ?? b.identifier ?? b.id;
    if (typeof k === 'string') byKey.set(k, i);
  });
  const direct = bodies.map((b, i): number[] => {
    if (Object.hasOwn(b, 'depends_on')) {
      const d = b.depends_on;
      const list = Array.isArray(d) ? d : d == null ? [] : [d];
      return list.map((x) => byKey.get(typeof x === 'string' ? x : (x as { step: string }).step)!).filter((x) => x !== undefined);
    }
    if (isBarrier(b)) return Array.from({ length: i }, (_v, j) => j);
    if ('input' in b) return [];
    for (let j = i - 1; j >= 0; j--) if (isBarrier(bodies[j]!)) return [j];
    return [];
  });
  const memo = new Map<number, Set<number>>();
  const anc = (i: number): Set<number> => {
    let s = memo.get(i);
    if (s) return s;
    s = new Set();
    memo.set(i, s);
    for (const d of direct[i]!) {
      s.add(d);
      for (const x of anc(d)) s.add(x);
    }
    return s;
  };
  const label = (i: number) => String(bodies[i]!.label ?? bodies[i]!.group ?? bodies[i]!.input);
  const out = new Map<string, string[]>();
  bodies.forEach((b, i) => {
    if (isBarrier(b)) return;
    out.set(
      label(i),
      [...anc(i)]
        .filter((j) => !isBarrier(bodies[j]!))
        .map(label)
        .sort(),
    );
  });
  return out;
}

describe('wait and block steps across batches', () => {
  // Waits and blocks between steps, keyed and not, an input, groups with waits inside, a
  // continue_on_failure wait, a conditional wait, an explicit depends_on.
  const steps: unknown[] = [];
  for (let seg = 0; seg < 6; seg++) {
    for (let i = 0; i < 7; i++) steps.push(i % 2 ? { label: `s${seg}-${i}`, key: `s${seg}-${i}`, command: 'x' } : { label: `s${seg}-${i}`, command: 'x' });
    steps.push({ group: `G${seg}`, steps: [{ label: `g${seg}a`, command: 'x' }, 'wait', { label: `g${seg}b`, command: 'x' }] });
    if (seg === 1) steps.push({ input: 'who?', fields: [{ text: 'name', key: 'name' }] });
    if (seg === 2) steps.push({ label: 'early', command: 'x', depends_on: 's0-1' });
    steps.push(
      seg === 2
        ? { block: 'Go on?' }
        : seg === 3
          ? { wait: null, continue_on_failure: true }
          : seg === 4
            ? { wait: null, if: 'build.branch == "main"' }
            : 'wait',
    );
  }
  steps.push({ label: 'last', command: 'x' });

  it('keep every "runs after" of one upload, though later uploads land before earlier ones', async () => {
    const { file, env, state } = setup({ steps });
    const r = await upload(file, env(), '--max-jobs', '7');
    expect(r.code).toBe(0);
    const s = state();
    expect(s.uploads.length).toBeGreaterThan(5);
    const single = mustRunAfter(steps);
    const batched = mustRunAfter(s.build);
    expect(batched).toEqual(single);
    // The model has teeth: the batches as plain slices of the document, uploaded in order, would not give it.
    const naive: unknown[] = [];
    for (let i = 0; i < steps.length; i += 7) naive.unshift(...steps.slice(i, i + 7));
    expect(mustRunAfter(naive)).not.toEqual(single);
  });

  it('a step used twice through a YAML alias is uploaded as two steps with keys of their own', async () => {
    const text = [
      'steps:',
      ...Array.from({ length: 6 }, (_v, i) => `  - {label: a${i}, command: x}`),
      '  - &shared {label: shared, command: make check}',
      '  - wait',
      ...Array.from({ length: 6 }, (_v, i) => `  - {label: b${i}, command: x}`),
      '  - wait',
      '  - *shared',
      '',
    ].join('\n');
    const { file, env, state } = setup(text);
    const r = await upload(file, env(), '--max-jobs', '5');
    expect(r.code, r.stderr).toBe(0);
    const s = state();
    expect(s.uploads.length).toBeGreaterThan(2);
    const shared = s.uploads.flatMap((u) => u.pipeline.steps).filter((st) => st.label === 'shared');
    expect(shared).toHaveLength(2);
    expect(shared[0]!.key).not.toBe(shared[1]!.key);
    // The first runs with nothing before it; the second after the second wait, which waits for the b steps.
    const deps = shared.map((st) => (st.depends_on ?? []) as string[]).sort((x, y) => x.length - y.length);
    expect(deps[0]).toEqual([]);
    expect(deps[1]).toHaveLength(1);
    const wait = s.uploads.flatMap((u) => u.pipeline.steps).find((st) => st.key === deps[1]![0]) as { wait?: unknown; depends_on?: string[] };
    expect(wait && 'wait' in wait).toBe(true);
    expect(wait.depends_on).toHaveLength(7);
  });

  it('the rewritten batches are valid pipelines', async () => {
    const { dir, file, env } = setup({ steps });
    const r = await runBkci(['pipeline', 'upload', file, '--max-jobs', '7', '--dry-run', 'out'], { env: env(), cwd: dir });
    expect(r.code).toBe(0);
    const files = readdirSync(join(dir, 'out'));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const v = await runBkci(['pipeline', 'validate', join(dir, 'out', f)]);
      expect(v.code, v.stderr).toBe(0);
    }
  });
});

describe('bkci pipeline render --upload', () => {
  const TEMPLATE = join(import.meta.dirname, '../../templates/default.j2');

  it('renders and uploads in one command: a bootstrap past the limit', async () => {
    const { dir, env, state } = setup('');
    const tests = {
      steps: Array.from({ length: 620 }, (_v, i) => ({ label: `Test ${i}`, key: `t${i}`, commands: [`pytest t${i}`], ...(i ? { depends_on: 't0' } : {}) })),
    };
    writeFileSync(join(dir, 'tests.yaml'), stringify(tests));
    const r = await runBkci(['pipeline', 'render', TEMPLATE, 'tests.yaml', '--upload', '--agent-bin', AGENT, '--', '--job', 'j1'], { env: env(), cwd: dir });
    expect(r.stderr).not.toMatch(/bkci: /);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const s = state();
    expect(s.uploads.map((u) => u.jobs)).toEqual([500, 120]);
    expect(s.uploads.map((u) => u.args)).toEqual([
      ['--job', 'j1'],
      ['--job', 'j1'],
    ]);
    expect(r.stderr).toContain('batch 2/2: 120 jobs');
  });

  it('arguments after -- without --upload, or a third operand, are usage errors', async () => {
    const { dir, env } = setup('');
    writeFileSync(join(dir, 'tests.yaml'), 'steps: []\n');
    const r = await runBkci(['pipeline', 'render', TEMPLATE, 'tests.yaml', '--', '--job', 'j'], { env: env(), cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/need --upload/);
    const r2 = await runBkci(['pipeline', 'render', TEMPLATE, 'tests.yaml', 'extra'], { env: env(), cwd: dir });
    expect(r2.code).toBe(2);
  });
});
