// Flag parsing of `bkci build ...` and `bkci queue status` through the runF seam: the checked input
// each command hands its run function, defaults from BUILDKITE_* variables, conflicts, and bad
// values refused with exit 2 naming the flag. No request is made.
import { describe, expect, it } from 'vitest';
import { artifactsCommand } from '../../../src/cli/build/artifacts.js';
import { cancelCommand } from '../../../src/cli/build/cancel.js';
import { getCommand } from '../../../src/cli/build/get.js';
import { listCommand } from '../../../src/cli/build/list.js';
import { logsCommand } from '../../../src/cli/build/logs.js';
import { retryCommand } from '../../../src/cli/build/retry.js';
import { submitCommand } from '../../../src/cli/build/submit.js';
import { summaryCommand } from '../../../src/cli/build/summary.js';
import { waitCommand } from '../../../src/cli/build/wait.js';
import { statusCommand as queueStatusCommand } from '../../../src/cli/queue/status.js';
import { parse } from './harness.js';

const ENV = { BUILDKITE_ORGANIZATION_SLUG: 'env-org', BUILDKITE_PIPELINE_SLUG: 'env-pipe' };

describe('build submit', () => {
  it('takes --branch, the org and the pipeline from BUILDKITE_* when not given', async () => {
    const r = await parse('build', submitCommand, ['submit'], { env: { ...ENV, BUILDKITE_BRANCH: 'release/1.2' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({
      org: 'env-org',
      pipeline: 'env-pipe',
      apiUrl: undefined,
      tokenFile: undefined,
      json: false,
      branch: 'release/1.2',
      commit: 'HEAD',
      message: 'bkci: release/1.2',
      env: {},
      metaData: {},
      wait: false,
      timeoutMs: undefined,
      failFast: false,
    });
  });

  it('flags win over the environment; --env and --meta-data become maps; --timeout is parsed', async () => {
    const r = await parse(
      'build',
      submitCommand,
      [
        'submit',
        '--branch',
        'main',
        '--org',
        'o',
        '--pipeline',
        'p',
        '--env',
        'A=1',
        '--env',
        'B=x=y',
        '--meta-data',
        'k=v',
        '--wait',
        '--timeout',
        '1h30m',
        '--fail-fast',
        '--json',
      ],
      { env: { ...ENV, BUILDKITE_BRANCH: 'other' } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({
      org: 'o',
      pipeline: 'p',
      branch: 'main',
      env: { A: '1', B: 'x=y' },
      metaData: { k: 'v' },
      wait: true,
      timeoutMs: 5_400_000,
      failFast: true,
      json: true,
    });
  });

  it('--branch is required without BUILDKITE_BRANCH (an empty one counts as unset)', async () => {
    for (const env of [{}, { BUILDKITE_BRANCH: '' }] as Record<string, string>[]) {
      const r = await parse('build', submitCommand, ['submit'], { env });
      expect(r.code).toBe(2);
      expect(r.input).toBeUndefined();
      expect(r.stderr).toMatch(/^bkci: --branch is required: the branch to build \(or set BUILDKITE_BRANCH\)$/m);
    }
  });

  it('an unknown flag is reported before the missing --branch', async () => {
    const r = await parse('build', submitCommand, ['submit', '--nope-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: unknown option '--nope-flag'/);
    expect(r.stderr).not.toMatch(/branch/);
  });

  it('an unknown flag is reported before a bad value, wherever it stands', async () => {
    for (const argv of [
      ['submit', '--timeout', 'soon', '--nope'],
      ['submit', '--nope', '--timeout', 'soon'],
    ]) {
      const r = await parse('build', submitCommand, argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^bkci: unknown option '--nope'/);
    }
    // An option's value that looks like a flag is the value, not an unknown option.
    const r = await parse('build', submitCommand, ['submit', '--branch', 'main', '--message', '--not-a-flag']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input?.message).toBe('--not-a-flag');
  });

  it.each([
    [['--branch', 'main', '--env', 'NOEQUALS'], /^bkci: --env "NOEQUALS": expected KEY=VALUE/m],
    [['--branch', 'main', '--meta-data', '=v'], /^bkci: --meta-data "=v": expected KEY=VALUE/m],
    [['--branch', 'main', '--timeout', 'soon'], /^bkci: --timeout "soon": not a duration\nhint: write it like 90, 30s, 10m or 1h30m/m],
    [['--branch', '  '], /^bkci: --branch " {2}": the branch to build is empty/m],
    [['--branch', 'alice:fix'], /^bkci: --branch "alice:fix": a fork branch.*--commit/m],
    [['--branch', 'main', '--org', 'has space'], /^bkci: --org "has space": an organization slug/m],
    [['--branch', 'main', '--timeout'], /^bkci: --timeout needs a value/m],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('build', submitCommand, ['submit', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/Invalid input|expected string|\[object Object\]/);
  });

  it('--token is refused, and its value never printed', async () => {
    const r = await parse('build', submitCommand, ['submit', '--branch', 'main', '--token', 'bkua_secretsecret123']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--token is not accepted/);
    expect(r.stderr).not.toContain('secretsecret');
  });
});

// The commands that take a <build>: a number, or a URL naming org and pipeline.
const BUILD_COMMANDS = [
  ['wait', waitCommand],
  ['get', getCommand],
  ['cancel', cancelCommand],
  ['logs', logsCommand],
  ['artifacts', artifactsCommand],
  ['retry', retryCommand],
  ['summary', summaryCommand],
] as const;

describe.each(BUILD_COMMANDS)('build %s <build>', (name, factory) => {
  it('a number, with org and pipeline from BUILDKITE_*', async () => {
    const r = await parse('build', factory, [name, '42'], { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({ build: { number: 42 }, org: 'env-org', pipeline: 'env-pipe' });
  });

  it('a build URL names org and pipeline (over the environment; flags over both)', async () => {
    const url = 'https://buildkite.com/my-org/my-pipe/builds/7#job';
    let r = await parse('build', factory, [name, url], { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({ build: { number: 7 }, org: 'my-org', pipeline: 'my-pipe' });
    r = await parse('build', factory, [name, url, '--org', 'flag-org'], { env: ENV });
    expect(r.input).toMatchObject({ org: 'flag-org', pipeline: 'my-pipe' });
  });

  it.each(['0', '-1', 'abc', '1.5', '1e3', '99999999999999999999999', 'https://buildkite.com/o/p/builds/x'])('%s is exit 2 naming <build>', async (ref) => {
    const r = await parse('build', factory, [name, ref]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(/^bkci: (?:<build> ".*": expected a build number|unknown option)/m);
  });

  it('an unknown flag is reported before the missing <build>', async () => {
    const r = await parse('build', factory, [name, '--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: unknown option '--nope'/);
  });
});

describe('build list, logs, artifacts, retry, summary, wait', () => {
  it('list: --limit defaults to 30; --state is a list; --limit 0 or x is exit 2', async () => {
    let r = await parse('build', listCommand, ['list', '--state', 'running, failed,', '--branch', 'main'], { env: ENV });
    expect(r.input).toMatchObject({ limit: 30, state: ['running', 'failed'], branch: 'main' });
    for (const bad of ['0', 'x', '-3', '2.5']) {
      r = await parse('build', listCommand, ['list', '--limit', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^bkci: --limit "${bad.replace('.', '\\.')}": expected a whole number of at least 1`, 'm'));
    }
    r = await parse('build', listCommand, ['list', '--state', 'Running']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--state .*lower-case/);
  });

  it('logs: --job and --failed', async () => {
    const r = await parse('build', logsCommand, ['logs', '3', '--job', 'tests', '--failed', '--json'], { env: ENV });
    expect(r.input).toMatchObject({ job: 'tests', failed: true, json: true });
  });

  it('artifacts: --download is made absolute against the working directory', async () => {
    const r = await parse('build', artifactsCommand, ['artifacts', '3', '--download', 'out', '--glob', '**/*.xml'], { cwd: '/srv/here' });
    expect(r.input).toMatchObject({ download: '/srv/here/out', glob: '**/*.xml' });
  });

  it('retry: --failed and --rebuild conflict', async () => {
    let r = await parse('build', retryCommand, ['retry', '3', '--failed', '--rebuild']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: --failed and --rebuild cannot be used together/m);
    r = await parse('build', retryCommand, ['retry', '3', '--rebuild', '--wait', '--timeout', '10m']);
    expect(r.input).toMatchObject({ rebuild: true, wait: true, timeoutMs: 600_000 });
  });

  it('summary: --format json means JSON; --annotate needs BUILDKITE_JOB_ID', async () => {
    let r = await parse('build', summaryCommand, ['summary', '3', '--format', 'json']);
    expect(r.input).toMatchObject({ json: true, annotate: false });
    r = await parse('build', summaryCommand, ['summary', '3', '--annotate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: --annotate .*works only inside a Buildkite job/m);
    r = await parse('build', summaryCommand, ['summary', '3', '--annotate'], { env: { BUILDKITE_JOB_ID: 'j1' } });
    expect(r.input).toMatchObject({ annotate: true, json: false });
    r = await parse('build', summaryCommand, ['summary', '3', '--format', 'html']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--format "html"/);
  });

  it('wait: --fail-fast and --timeout', async () => {
    const r = await parse('build', waitCommand, ['wait', '9', '--fail-fast', '--timeout', '90']);
    expect(r.input).toMatchObject({ failFast: true, timeoutMs: 90_000 });
  });
});

describe('queue status', () => {
  it('the queue and the org from BUILDKITE_ORGANIZATION_SLUG', async () => {
    const r = await parse('queue', queueStatusCommand, ['status', 'h100', '--json'], { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({ queue: 'h100', org: 'env-org', json: true });
  });

  it('a missing queue or an unknown flag is exit 2', async () => {
    let r = await parse('queue', queueStatusCommand, ['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument 'queue'/);
    r = await parse('queue', queueStatusCommand, ['status', '--all']);
    expect(r.stderr).toMatch(/^bkci: unknown option '--all'/);
  });
});
