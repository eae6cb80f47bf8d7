// Flag parsing of `bkci pipeline upload|generate` through the runF seam: the checked input each
// hands its run function (the job limit from BKCI_MAX_UPLOAD_JOBS, the arguments after --),
// conflicts, and bad values refused with exit 2 naming the flag. Nothing is read or uploaded.
import { describe, expect, it } from 'vitest';
import { generateCommand } from '../../../src/cli/pipeline/generate.js';
import { uploadCommand } from '../../../src/cli/pipeline/upload.js';
import { parse } from './harness.js';

describe('pipeline upload', () => {
  it('stdin, 500 jobs, buildkite-agent by default', async () => {
    const r = await parse('pipeline', uploadCommand, ['upload']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ file: '-', maxJobs: 500, dryRun: undefined, agentBin: 'buildkite-agent', agentArgs: [], json: false });
  });

  it('every flag, and the arguments after -- for the agent (not the file)', async () => {
    const r = await parse('pipeline', uploadCommand, [
      'upload',
      'p.yml',
      '--max-jobs',
      '750',
      '--dry-run',
      'batches',
      '--agent-bin',
      '/opt/bk/agent',
      '--json',
      '--',
      '--replace',
      '--job',
      'j1',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ file: 'p.yml', maxJobs: 750, dryRun: 'batches', agentBin: '/opt/bk/agent', agentArgs: ['--replace', '--job', 'j1'], json: true });
    const stdin = await parse('pipeline', uploadCommand, ['upload', '--', 'extra.yml']);
    expect(stdin.input).toMatchObject({ file: '-', agentArgs: ['extra.yml'] });
  });

  it('the limit from BKCI_MAX_UPLOAD_JOBS; --max-jobs wins; an empty variable is unset', async () => {
    let r = await parse('pipeline', uploadCommand, ['upload', 'p.yml'], { env: { BKCI_MAX_UPLOAD_JOBS: '1000' } });
    expect(r.input?.maxJobs).toBe(1000);
    r = await parse('pipeline', uploadCommand, ['upload', 'p.yml', '--max-jobs', '20'], { env: { BKCI_MAX_UPLOAD_JOBS: '1000' } });
    expect(r.input?.maxJobs).toBe(20);
    r = await parse('pipeline', uploadCommand, ['upload', 'p.yml'], { env: { BKCI_MAX_UPLOAD_JOBS: '' } });
    expect(r.input?.maxJobs).toBe(500);
  });

  it.each([
    [['--max-jobs', '0'], /^bkci: --max-jobs "0": expected a whole number of at least 1/m],
    [['--max-jobs', '1e3'], /^bkci: --max-jobs "1e3": expected a whole number of at least 1/m],
    [['--dry-run', ''], /^bkci: --dry-run is required: a directory for the batches/m],
    [['--agent-bin', ''], /^bkci: --agent-bin is required: a buildkite-agent path or name/m],
    [['a.yml', 'b.yml'], /^bkci: unexpected argument 'b.yml'/m],
    [['--replace'], /^bkci: unknown option '--replace'/m],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('pipeline', uploadCommand, ['upload', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
  });

  it('a bad BKCI_MAX_UPLOAD_JOBS is exit 2 naming the variable', async () => {
    const r = await parse('pipeline', uploadCommand, ['upload', 'p.yml'], { env: { BKCI_MAX_UPLOAD_JOBS: 'lots' } });
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(/^bkci: BKCI_MAX_UPLOAD_JOBS "lots": expected a whole number of jobs of at least 1/m);
  });
});

describe('pipeline generate', () => {
  const request = {
    config: '.buildkite/ci_config.yaml',
    profile: 'vllm',
    changedFiles: undefined,
    diffBase: undefined,
    labels: undefined,
    otelBundle: undefined,
    probe: true,
    fileOrder: undefined,
    output: undefined,
    unselected: undefined,
    countChoices: false,
  };

  it('defaults', async () => {
    const r = await parse('pipeline', generateCommand, ['generate']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({
      request,
      explain: false,
      json: false,
      output: undefined,
      format: 'yaml',
      upload: false,
      maxJobs: 500,
      agentBin: 'buildkite-agent',
      agentArgs: [],
    });
  });

  it('every flag reaches the request; the labels from BKCI_PR_LABELS unless --labels', async () => {
    const r = await parse(
      'pipeline',
      generateCommand,
      [
        'generate',
        '--config',
        'ci.yaml',
        '--profile',
        './site.yaml',
        '--changed-files',
        '-',
        '--otel-bundle',
        'otel.b64',
        '--no-probe',
        '--file-order',
        'sorted',
        '--unselected',
        'skip',
        '--explain',
        '--json',
        '-o',
        'out.yaml',
        '--format',
        'json',
      ],
      { env: { BKCI_PR_LABELS: 'ready, run-all,' } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({
      request: {
        config: 'ci.yaml',
        profile: './site.yaml',
        changedFiles: '-',
        diffBase: undefined,
        labels: ['ready', 'run-all'],
        otelBundle: 'otel.b64',
        probe: false,
        fileOrder: 'sorted',
        output: 'out.yaml',
        unselected: 'skip',
        countChoices: true,
      },
      explain: true,
      json: true,
      output: 'out.yaml',
      format: 'json',
      upload: false,
      maxJobs: 500,
      agentBin: 'buildkite-agent',
      agentArgs: [],
    });
    const labels = await parse('pipeline', generateCommand, ['generate', '--labels', 'a,b'], { env: { BKCI_PR_LABELS: 'ready' } });
    expect(labels.input?.request.labels).toEqual(['a', 'b']);
  });

  it('--upload with the job limit, the agent and the arguments after --', async () => {
    const r = await parse('pipeline', generateCommand, ['generate', '--diff-base', 'origin/main', '--upload', '--max-jobs', '750', '--', '--replace'], {
      env: { BKCI_MAX_UPLOAD_JOBS: '9' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({ upload: true, maxJobs: 750, agentArgs: ['--replace'], request: { diffBase: 'origin/main' } });
  });

  it.each([
    [['--changed-files', 'c.txt', '--diff-base', 'main'], /^bkci: --changed-files and --diff-base cannot be used together/m],
    [['--upload', '-o', 'p.yaml'], /^bkci: --upload and --output cannot be used together/m],
    [['--', '--replace'], /^bkci: arguments after -- are for buildkite-agent: they need --upload/m],
    [['extra'], /^bkci: unexpected argument 'extra'/m],
    [['--format', 'toml'], /^bkci: --format "toml": Allowed choices are yaml, json/m],
    [['--file-order', 'random'], /^bkci: --file-order "random": Allowed choices are directory, sorted/m],
    [['--unselected', 'all'], /^bkci: --unselected "all": Allowed choices are block, group-block, skip/m],
    [['--upload', '--max-jobs', '-1'], /^bkci: --max-jobs "-1": expected a whole number of at least 1/m],
    [['--config', ''], /^bkci: --config is required: a generator config file/m],
    [['--profile', ''], /^bkci: --profile is required: a bundled profile name/m],
    [['-o', ''], /^bkci: --output is required: a file name, or leave -o out for stdout/m],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('pipeline', generateCommand, ['generate', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
  });
});
