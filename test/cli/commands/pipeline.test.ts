// Flag parsing of `bkci pipeline render|validate` through the runF seam. Nothing is rendered.
import { describe, expect, it } from 'vitest';
import { renderCommand } from '../../../src/cli/pipeline/render.js';
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
