// `pipeline render --unselected block|group-block|skip` with the bundled template: what is emitted
// for the steps selection does not run, the job count per choice (--explain), and that the template
// stays portable Jinja (minijinja-js renders the same given the same selection).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { selectSteps } from '../../src/pipeline/select.js';
import { blockKey, unselectedEntries } from '../../src/pipeline/unselected.js';
import { documentJobs } from '../../src/pipeline/upload/count.js';
import { runBkci } from '../helpers/io.js';

const require = createRequire(import.meta.url);
const { Environment } = require('minijinja-js') as { Environment: new () => { renderStr(t: string, ctx: unknown): string } };
const TEMPLATE = join(import.meta.dirname, '../../templates/default.j2');

// Six steps in two groups and none; two run (a changed file selects them), one is optional.
const LIST = {
  steps: [
    { label: 'Build', key: 'build', commands: ['make'] },
    { label: 'Kernels A', key: 'ka', group: 'Kernels', source_file_dependencies: ['csrc/a/'], commands: ['pytest a'], parallelism: 2 },
    { label: 'Kernels B', key: 'kb', group: 'Kernels', source_file_dependencies: ['csrc/b/'], commands: ['pytest b'] },
    { label: 'Models (L4)', group: 'Models', source_file_dependencies: ['vllm/models/'], commands: ['pytest m'] },
    { label: 'Models nightly', key: 'mn', group: 'Models', optional: true, commands: ['pytest n'] },
    { label: 'Docs', key: 'docs', source_file_dependencies: ['docs/'], commands: ['mkdocs build'] },
  ],
};

describe('unselectedEntries', () => {
  const decisions = selectSteps({ steps: LIST.steps, changedFiles: ['csrc/a/x.cu'], runAll: false, nightly: false, onlySteps: undefined });
  it('block: a block + command pair for every held step', () => {
    const e = unselectedEntries(LIST.steps, decisions, 'block');
    expect(e.map((x) => [x.run, x.blocked, x.block_key ?? null])).toEqual([
      [true, false, null],
      [true, false, null],
      [true, true, 'block-kb'],
      [true, true, 'block-models--l4-'],
      [true, true, 'block-mn'],
      [true, true, 'block-docs'],
    ]);
  });
  it('group-block: one block per group, emitted with the group’s first held step', () => {
    const e = unselectedEntries(LIST.steps, decisions, 'group-block');
    expect(e.slice(2).map((x) => [x.block_key, x.emit_block, x.block_label])).toEqual([
      ['block-group-kernels', true, 'Run the 1 unselected step of Kernels'],
      ['block-group-models', true, 'Run the 2 unselected steps of Models'],
      ['block-group-models', false, 'Run the 2 unselected steps of Models'],
      ['block-unselected', true, 'Run the 1 unselected step'],
    ]);
  });
  it('skip: emitted with a reason of at most 70 characters', () => {
    const e = unselectedEntries(LIST.steps, decisions, 'skip');
    expect(e[0]!.skip).toBeUndefined();
    for (const x of e.slice(2)) {
      expect(x).toMatchObject({ run: true, blocked: false });
      expect(x.skip).toMatch(/^not selected: /);
      expect(x.skip!.length).toBeLessThanOrEqual(70);
    }
  });
  it('not given: optional steps blocked, unselected ones left out (the output before --unselected)', () => {
    const e = unselectedEntries(LIST.steps, decisions, undefined);
    expect(e.map((x) => [x.run, x.blocked])).toEqual([
      [true, false],
      [true, false],
      [false, false],
      [false, false],
      [true, true],
      [false, false],
    ]);
    expect(blockKey('A (b) $X')).toBe('block-a--b---x');
  });
});

describe('bkci pipeline render --unselected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bkci-unselected-'));
  writeFileSync(join(dir, 'tests.yaml'), YAML.stringify(LIST));
  writeFileSync(join(dir, 'changed.txt'), 'csrc/a/x.cu\n');
  const render = (...flags: string[]) => runBkci(['pipeline', 'render', TEMPLATE, 'tests.yaml', '--changed-files', 'changed.txt', ...flags], { cwd: dir });

  it.each([[[]], [['--unselected', 'block']], [['--unselected', 'group-block']], [['--unselected', 'skip']]])(
    '%j: valid, the count --explain gives, and minijinja renders the same',
    async (flags) => {
      const r = await render(...flags, '--explain', '--json');
      expect(r.code, r.stderr).toBe(0);
      const explained = JSON.parse(r.stderr.slice(r.stderr.indexOf('{\n'))) as { jobsPerChoice: Record<string, number> };
      const mode = (flags[1] as 'block' | 'group-block' | 'skip' | undefined) ?? undefined;
      const jobs = documentJobs(YAML.parse(r.stdout));
      expect(explained.jobsPerChoice[mode ?? 'default']).toBe(jobs);
      // Hand-counted: Build 1 + Kernels A 2 = 3 run; held: Kernels B 1, Models 1, nightly 1, Docs 1.
      expect(explained.jobsPerChoice).toEqual({ default: 3 + 2, block: 3 + 8, 'group-block': 3 + 4 + 3, skip: 3 + 4 });
      const decisions = selectSteps({ steps: LIST.steps, changedFiles: ['csrc/a/x.cu'], runAll: false, nightly: false, onlySteps: undefined });
      const entries = unselectedEntries(LIST.steps, decisions, mode);
      const selection = Object.fromEntries(decisions.map((d, i) => [d.id, entries[i]]));
      const mj = new Environment().renderStr(readFileSync(TEMPLATE, 'utf8'), { ...LIST, selection }) + '\n';
      expect(r.stdout).toBe(mj);
    },
  );

  it('group-block: held steps depend on their group’s block, which depends on nothing', async () => {
    const r = await render('--unselected', 'group-block');
    const steps = (YAML.parse(r.stdout) as { steps: Record<string, unknown>[] }).steps;
    const blocks = steps.filter((s) => 'block' in s);
    expect(blocks.map((b) => b.key)).toEqual(['block-group-kernels', 'block-group-models', 'block-unselected']);
    for (const b of blocks) expect(b.depends_on).toBeNull();
    expect(steps.find((s) => s.key === 'mn')!.depends_on).toEqual(['block-group-models']);
    expect(steps.find((s) => s.key === 'ka')!.depends_on).toBeUndefined();
  });

  it('a bad choice is exit 2', async () => {
    const r = await render('--unselected', 'hide');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--unselected.*hide.*block, group-block, skip/s);
  });
});
