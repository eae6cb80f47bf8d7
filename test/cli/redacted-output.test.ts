// Data from the Buildkite API printed by bkci (build get/list/logs, queue status) never carries a
// Buildkite-token-shaped string, a registered secret or the value of a secret-named variable:
// every output is redacted as the logs are (src/util/redact.ts), in JSON and in text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBuildkite } from '../helpers/fake-buildkite.js';
import { runBkci } from '../helpers/io.js';

const USER = 'bkua_0123456789abcdefABCDEF0123456789';
const JOB = 'bkaj_9876543210ZYXWVUTsrqpon';
const SESSION = 'bkaa_abcdefABCDEF0123456789';

let bk: FakeBuildkite;
beforeAll(async () => {
  bk = await new FakeBuildkite().start();
  const b = bk.addBuild({
    states: ['failed'],
    number: 5,
    jobs: [
      { name: 'setup', state: 'passed', log: `token is ${USER}\nexport BUILDKITE_AGENT_ACCESS_TOKEN=${SESSION}\n` },
      { name: `uses ${JOB}`, state: 'failed', log: `first line\n${'x'.repeat(70_000)} ${JOB} end` },
    ],
  });
  b.message = `rotate ${USER}`;
  b.env = { HF_TOKEN: 'hf_plain_but_named_secret', RUN_ALL: '1' };
  bk.agents = [{ id: 'a1', name: 'gpu0', connection_state: 'connected', meta_data: ['queue=h100'], job: { id: 'j1', name: `job ${JOB}` } }];
});
afterAll(() => bk.close());

const run = (argv: string[]) => runBkci(argv, { env: bk.env });
const leaks = (text: string) => [USER, JOB, SESSION, 'hf_plain_but_named_secret', bk.token].filter((t) => text.includes(t));

describe('API data on stdout is redacted', () => {
  it('build get --json: the message, the env and the job names; still valid JSON of the same shape', async () => {
    const r = await run(['build', 'get', '5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(leaks(r.stdout + r.stderr)).toEqual([]);
    const b = JSON.parse(r.stdout);
    expect(b).toMatchObject({ number: 5, message: 'rotate [REDACTED]', env: { HF_TOKEN: '[REDACTED]', RUN_ALL: '1' } });
    expect(b.jobs[1].name).toBe('uses [REDACTED]');
  });

  it('build get and build list as text', async () => {
    for (const argv of [
      ['build', 'get', '5'],
      ['build', 'list'],
      ['build', 'list', '--json'],
    ]) {
      const r = await run(argv);
      expect(r.code, r.stderr).toBe(0);
      expect(leaks(r.stdout + r.stderr), argv.join(' ')).toEqual([]);
    }
  });

  it('build logs: text and --json, a token in a line of 70 000 characters and in a job name', async () => {
    const text = await run(['build', 'logs', '5']);
    expect(text.code, text.stderr).toBe(0);
    expect(leaks(text.stdout + text.stderr)).toEqual([]);
    expect(text.stdout).toContain('token is [REDACTED]\nexport BUILDKITE_AGENT_ACCESS_TOKEN=[REDACTED]\n');
    expect(text.stdout).toContain(`=== uses [REDACTED] (failed, job `);
    expect(text.stdout).toMatch(/x{70000} \[REDACTED\] end\n$/);
    const json = await run(['build', 'logs', '5', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(leaks(json.stdout)).toEqual([]);
    const logs = JSON.parse(json.stdout);
    expect(logs.map((l: { name: string }) => l.name)).toEqual(['setup', 'uses [REDACTED]']);
    expect(logs[1].log).toBe(`first line\n${'x'.repeat(70_000)} [REDACTED] end`);
  });

  it('queue status: what an agent runs', async () => {
    for (const argv of [
      ['queue', 'status', 'h100'],
      ['queue', 'status', 'h100', '--json'],
    ]) {
      const r = await run(argv);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('job [REDACTED]');
      expect(leaks(r.stdout + r.stderr)).toEqual([]);
    }
  });
});
