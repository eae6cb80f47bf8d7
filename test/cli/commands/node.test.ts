// Flag parsing of `bkci node ...` through the runF seam: the checked input, defaults, and bad values
// refused with exit 2 naming the flag. Nothing is detected, planned or written.
import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../../src/cli/node/check.js';
import { doctorCommand } from '../../../src/cli/node/doctor.js';
import { setupCommand } from '../../../src/cli/node/setup.js';
import { statusCommand } from '../../../src/cli/node/status.js';
import { teardownCommand } from '../../../src/cli/node/teardown.js';
import { parse } from './harness.js';

const GiB = 2 ** 30;

describe('node setup', () => {
  it('defaults', async () => {
    const r = await parse('node', setupCommand, ['setup', '--queue', 'h100']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({
      queue: 'h100',
      gpusPerAgent: 1,
      vendor: 'auto',
      agents: 1,
      tags: [],
      memoryReserve: 4 * GiB,
      cpuReserve: 0,
      user: 'buildkite-agent',
      buildRoot: '/var/lib/buildkite-agent/builds',
      minFreeDisk: 20 * GiB,
      mig: false,
      root: '/',
      staging: false,
      hostRoot: '/',
      dryRun: false,
      start: true,
      json: false,
    });
    expect(r.input?.agentBin).toBeUndefined();
    expect(r.input?.bkciBin[0]).toBe('/usr/bin/node');
  });

  it('values parsed: sizes, numbers, tags, paths against the working directory', async () => {
    const r = await parse(
      'node',
      setupCommand,
      [
        'setup',
        '--queue=mi300',
        '--gpus-per-agent',
        '2',
        '--vendor',
        'amd',
        '--memory-reserve',
        '16G',
        '--min-free-disk',
        '512M',
        '--cpu-reserve',
        '2',
        '--tags',
        'a=1, b=x=y',
        '--root',
        'stage',
        '--host-root',
        'fake',
        '--agent-bin',
        'bin/agent',
        '--bkci-bin',
        '/opt/bkci',
        '--build-root',
        '/data/builds//',
        '--dry-run',
        '--no-start',
        '--mig',
        '--disk-cleanup',
        'docker image prune -af',
        '--json',
      ],
      { cwd: '/w' },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toMatchObject({
      queue: 'mi300',
      gpusPerAgent: 2,
      vendor: 'amd',
      memoryReserve: 16 * GiB,
      minFreeDisk: 512 * 2 ** 20,
      cpuReserve: 2,
      tags: [
        ['a', '1'],
        ['b', 'x=y'],
      ],
      root: '/w/stage',
      staging: true,
      hostRoot: '/w/fake',
      agentBin: '/w/bin/agent',
      bkciBin: ['/opt/bkci'],
      buildRoot: '/data/builds',
      dryRun: true,
      start: false,
      mig: true,
      diskCleanup: 'docker image prune -af',
      json: true,
    });
  });

  it.each([
    [[], /^bkci: --queue is required: the queue these agents serve/m],
    [['--queue', 'has space'], /^bkci: --queue "has space": use letters, digits and \._-/m],
    [['--queue', 'q', '--gpus-per-agent', '0'], /^bkci: --gpus-per-agent "0": expected a whole number of at least 1/m],
    [['--queue', 'q', '--agents', 'two'], /^bkci: --agents "two": expected a whole number/m],
    [['--queue', 'q', '--cpu-reserve', '-1'], /^bkci: --cpu-reserve "-1": expected a whole number/m],
    [['--queue', 'q', '--memory-reserve', 'lots'], /^bkci: --memory-reserve "lots": not a size\nhint: write it like 4G/m],
    [['--queue', 'q', '--min-free-disk', '1X'], /^bkci: --min-free-disk "1X": not a size/m],
    [['--queue', 'q', '--vendor', 'intel'], /^bkci: --vendor "intel": not a vendor bkci knows\nhint: use one of auto, nvidia, amd, ascend, none/m],
    [['--queue', 'q', '--tags', 'a=1,nokey'], /^bkci: --tags "a=1,nokey": expected key=value, not "nokey"/m],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('node', setupCommand, ['setup', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/Invalid input|expected string|\[object Object\]/);
  });

  // Control characters, relative build roots and the like are refused by the domain
  // (src/node, test/node/hostile.test.ts): the values reach it as given.
  it('values are handed on as given for the domain to judge', async () => {
    const r = await parse('node', setupCommand, ['setup', '--queue', 'q', '--name', 'a\nb', '--build-root', 'rel/']);
    expect(r.input).toMatchObject({ name: 'a\nb', buildRoot: 'rel' });
  });

  it('an unknown flag is reported first', async () => {
    for (const argv of [['--nope'], ['--gpus-per-agent', '0', '--nope'], ['--nope', '--vendor', 'intel']]) {
      const r = await parse('node', setupCommand, ['setup', ...argv]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bkci: unknown option '--nope'/);
    }
  });
});

describe('node status, teardown, doctor, check', () => {
  it('status and teardown: --root stages; flags as booleans', async () => {
    let r = await parse('node', statusCommand, ['status', '--root', 'st', '--json'], { cwd: '/w' });
    expect(r.input).toEqual({ root: '/w/st', staging: true, json: true });
    r = await parse('node', teardownCommand, ['teardown']);
    expect(r.input).toEqual({
      root: '/',
      staging: false,
      purge: false,
      queues: [],
      dryRun: false,
      json: false,
      noBlock: false,
      timeoutMs: undefined,
      agents: [],
      force: false,
      hostRoot: '/',
    });
    r = await parse('node', teardownCommand, ['teardown', '--purge', '--dry-run', '--queue', 'upload', '--queue', 'lint']);
    expect(r.input).toMatchObject({ purge: true, dryRun: true, queues: ['upload', 'lint'] });
    // --timeout: a duration (infinity is the default, no limit); --no-block excludes it.
    r = await parse('node', teardownCommand, ['teardown', '--timeout', '45min']);
    expect(r.input).toMatchObject({ timeoutMs: 45 * 60_000, noBlock: false });
    r = await parse('node', teardownCommand, ['teardown', '--timeout', 'infinity']);
    expect(r.input).toMatchObject({ timeoutMs: undefined });
    r = await parse('node', teardownCommand, ['teardown', '--no-block']);
    expect(r.input).toMatchObject({ noBlock: true });
    r = await parse('node', teardownCommand, ['teardown', '--timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--timeout "soon" is not a duration/);
    r = await parse('node', teardownCommand, ['teardown', '--timeout', '1h', '--no-block']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--no-block and --timeout exclude each other/);
    r = await parse('node', teardownCommand, ['teardown', '--agent', 'gpu2', '--agent', '0000:3a:00.0', '--force', '--host-root', 'h'], { cwd: '/w' });
    expect(r.input).toMatchObject({ agents: ['gpu2', '0000:3a:00.0'], force: true, hostRoot: '/w/h' });
    for (const argv of [['--agent', 'gpu2', '--queue', 'h100'], ['--force']]) {
      r = await parse('node', teardownCommand, ['teardown', ...argv]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bkci: --(agent and --queue exclude each other|force is for --agent)/m);
    }
  });

  it('doctor: --host-root against the working directory', async () => {
    const r = await parse('node', doctorCommand, ['doctor', '--host-root', 'h'], { cwd: '/w' });
    expect(r.input).toEqual({ root: '/', staging: false, hostRoot: '/w/h', json: false });
  });

  it('check: --max-used-memory defaults to 1024; --backoff uses $RUNTIME_DIRECTORY only', async () => {
    let r = await parse('node', checkCommand, ['check', 'gpu0']);
    expect(r.input).toEqual({ agent: 'gpu0', root: '/', hostRoot: '/', maxUsedMiB: 1024, backoffDir: undefined, json: false });
    r = await parse('node', checkCommand, ['check', 'gpu0', '--backoff'], { env: { RUNTIME_DIRECTORY: '/run/a:/run/b' } });
    expect(r.input?.backoffDir).toBe('/run/a');
    r = await parse('node', checkCommand, ['check', 'gpu0'], { env: { RUNTIME_DIRECTORY: '/run/a' } });
    expect(r.input?.backoffDir).toBeUndefined();
    r = await parse('node', checkCommand, ['check', 'gpu0', '--backoff']);
    expect(r.input?.backoffDir).toBeUndefined();
  });

  it('check: bad values are exit 2 naming the flag or argument', async () => {
    let r = await parse('node', checkCommand, ['check', 'gpu0', '--max-used-memory', '1GB']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: --max-used-memory "1GB": expected a whole number/m);
    r = await parse('node', checkCommand, ['check', '../etc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: <agent> "\.\.\/etc": an agent instance or name/m);
    r = await parse('node', checkCommand, ['check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument 'agent'/);
    r = await parse('node', checkCommand, ['check', '--nope']);
    expect(r.stderr).toMatch(/^bkci: unknown option '--nope'/);
  });
});
