// Flag parsing of `bkci pipeline render|validate|upload|generate` through the runF seam: the checked
// input each hands its run function (the job limit from BKCI_MAX_UPLOAD_JOBS, the arguments after
// --), conflicts, and bad values refused with exit 2 naming the flag. Nothing is rendered, read or
// uploaded.
import { describe, expect, it } from 'vitest';
import { generateCommand } from '../../../src/cli/pipeline/generate.js';
import { renderCommand } from '../../../src/cli/pipeline/render.js';
import { uploadCommand } from '../../../src/cli/pipeline/upload.js';
import { validateCommand } from '../../../src/cli/pipeline/validate.js';
import { parse } from './harness.js';

describe('pipeline render', () => {
  it('defaults', async () => {
    const r = await parse('pipeline', renderCommand, ['render']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({
      request: {
        template: undefined,
        data: undefined,
        defines: [],
        strictUndefined: false,
        envVariables: false,
        trimBlocks: false,
        lstripBlocks: false,
        autoescape: 'auto',
        select: undefined,
        noInclude: false,
        safePaths: [],
        fuel: undefined,
        changedFiles: undefined,
        diffBase: undefined,
        runAllPaths: undefined,
        runAll: false,
        nightly: false,
        onlySteps: undefined,
        stripBlankLines: false,
        noNewline: false,
        unselected: undefined,
        jobsPerChoice: false,
      },
      explain: false,
      json: false,
      validate: true,
      output: undefined,
      format: 'yaml',
      upload: false,
      maxJobs: undefined,
      agentBin: 'buildkite-agent',
      agentArgs: [],
    });
  });

  it('every flag reaches the request', async () => {
    const r = await parse('pipeline', renderCommand, [
      'render',
      't.j2',
      '-',
      '-D',
      'a=1',
      '--define',
      'b:=[2]',
      '--strict',
      '--env',
      '--trim-blocks',
      '--lstrip-blocks',
      '-a',
      'json',
      '--select',
      'x.y',
      '--no-include',
      '--safe-path',
      'one',
      '--safe-path',
      'two',
      '--fuel',
      '1000',
      '--unselected',
      'group-block',
      '--diff-base',
      'origin/main',
      '--run-all-paths',
      'setup.py, csrc/**',
      '--run-all',
      '--nightly',
      '--only-steps',
      'a,b',
      '--strip-blank-lines',
      '--explain',
      '--json',
      '--no-validate',
      '-o',
      'out.yml',
      '--format',
      'json',
      '-n',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({
      request: {
        template: 't.j2',
        data: '-',
        defines: ['a=1', 'b:=[2]'],
        strictUndefined: true,
        envVariables: true,
        trimBlocks: true,
        lstripBlocks: true,
        autoescape: 'json',
        select: 'x.y',
        noInclude: true,
        safePaths: ['one', 'two'],
        fuel: 1000,
        changedFiles: undefined,
        diffBase: 'origin/main',
        runAllPaths: ['setup.py', 'csrc/**'],
        runAll: true,
        nightly: true,
        onlySteps: ['a', 'b'],
        stripBlankLines: true,
        noNewline: true,
        unselected: 'group-block',
        jobsPerChoice: true,
      },
      explain: true,
      json: true,
      validate: false,
      output: 'out.yml',
      format: 'json',
      upload: false,
      maxJobs: undefined,
      agentBin: 'buildkite-agent',
      agentArgs: [],
    });
  });

  it.each([
    [['--changed-files', 'c.txt', '--diff-base', 'main'], /^bkci: --changed-files and --diff-base cannot be used together/m],
    [['--diff-base', 'main', '--changed-files', '-'], /^bkci: --changed-files and --diff-base cannot be used together/m],
    [['-a', 'xml'], /^bkci: --autoescape "xml": Allowed choices are auto, none, html, json/m],
    [['--format', 'toml'], /^bkci: --format "toml": Allowed choices are yaml, json/m],
    [['-o', ''], /^bkci: --output is required: a file name, or leave -o out for stdout/m],
    [[''], /^bkci: <template> is required: a template file, or - for stdin/m],
    [['t.j2', ''], /^bkci: <data> is required: a data file, or - for stdin/m],
    [['--diff-base', ''], /^bkci: --diff-base is required/m],
    [['--diff-base'], /^bkci: --diff-base needs a value/m],
    [['--fuel', '0'], /^bkci: --fuel "0": a whole number of 1 or more/m],
    [['--unselected', 'all'], /^bkci: --unselected "all": Allowed choices are block, group-block, skip/m],
    [['t.j2', 'd.yaml', 'extra'], /^bkci: unexpected argument 'extra'/m],
    [['t.j2', '--', '--replace'], /^bkci: arguments after -- are for buildkite-agent: they need --upload/m],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('pipeline', renderCommand, ['render', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
  });

  it('an unknown flag is reported before a conflict', async () => {
    const r = await parse('pipeline', renderCommand, ['render', '--changed-files', 'c', '--diff-base', 'm', '--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: unknown option '--nope'/);
  });

  it('- is an argument (stdin), and a negative-looking -D value is a value', async () => {
    const r = await parse('pipeline', renderCommand, ['render', '-', 'd.yaml', '-D', '-x']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input?.request).toMatchObject({ template: '-', data: 'd.yaml', defines: ['-x'] });
  });
});

it('--upload takes the arguments after -- for the agent', async () => {
  const r = await parse('pipeline', renderCommand, ['render', 't.j2', 'd.yaml', '--upload', '--max-jobs', '750', '--', '--replace', 'x']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.input).toMatchObject({ upload: true, maxJobs: '750', agentArgs: ['--replace', 'x'], request: { template: 't.j2', data: 'd.yaml' } });
});

describe('pipeline validate', () => {
  it('stdin by default; a file; --json', async () => {
    let r = await parse('pipeline', validateCommand, ['validate']);
    expect(r.input).toEqual({ file: '-', json: false, fleet: undefined, checkQueues: false });
    r = await parse('pipeline', validateCommand, ['validate', 'p.yml', '--json', '--fleet', 'fleet.yaml', '--check-queues']);
    expect(r.input).toEqual({ file: 'p.yml', json: true, fleet: 'fleet.yaml', checkQueues: true });
  });

  it('an empty file name, an unknown flag, two files: exit 2', async () => {
    let r = await parse('pipeline', validateCommand, ['validate', '']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: <file> is required: a pipeline file, or - for stdin/m);
    r = await parse('pipeline', validateCommand, ['validate', '--strict']);
    expect(r.stderr).toMatch(/^bkci: unknown option '--strict'/);
    r = await parse('pipeline', validateCommand, ['validate', 'a.yml', 'b.yml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/too many arguments/);
  });
});

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
