// The fleet commands through the CLI: exit codes, stdout, and the agents API over loopback.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { FakeBuildkite } from '../helpers/fake-buildkite.js';
import { runBkci } from '../helpers/io.js';

const FLEET = join(import.meta.dirname, '../fixtures/fleet/example-fleet.yaml');

describe('bkci fleet k8s / elastic', () => {
  it('prints Helm values, one document per queue, or JSON', async () => {
    const r = await runBkci(['fleet', 'k8s', FLEET, '--queue', 'h100', '--queue', 'upload']);
    expect(r.code).toBe(0);
    expect(r.stdout.split(/^---$/m).map((d) => parseDocument(d).toJS().config.queue)).toEqual(['h100', 'upload']);
    const j = await runBkci(['fleet', 'k8s', FLEET, '--json']);
    expect(JSON.parse(j.stdout).map((x: { queue: string }) => x.queue)).toEqual(['h100', 'a100-k8s', 'l4', 'upload']);
  });

  it('prints one stack as CloudFormation JSON, all as an HCL map', async () => {
    const r = await runBkci(['fleet', 'elastic', FLEET]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toContainEqual({ ParameterKey: 'BuildkiteQueue', ParameterValue: 'l4' });
    const t = await runBkci(['fleet', 'elastic', FLEET, '--format', 'terraform']);
    expect(t.stdout).toMatch(/^ {2}"l4" = \{$/m);
  });

  it('is exit 2 with the place for a bad fleet file, an unknown queue, or a queue without elastic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-fleet-'));
    writeFileSync(join(dir, 'f.yaml'), 'queues:\n  x:\n    vendor: nvidia\n    gpuz: 1\n');
    const bad = await runBkci(['fleet', 'k8s', 'f.yaml'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('f.yaml:4:5: queues.x.gpuz: unknown key `gpuz` (did you mean `gpus`?)');
    expect(bad.stdout).toBe('');
    const unknown = await runBkci(['fleet', 'k8s', FLEET, '--queue', 'l5']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--queue l5: .* has no such queue \(did you mean l4\?\)/);
    const noElastic = await runBkci(['fleet', 'elastic', FLEET, '--queue', 'h100']);
    expect(noElastic.code).toBe(2);
    expect(noElastic.stderr).toMatch(/--queue h100: queue h100 of \S*example-fleet\.yaml has no elastic section[\s\S]*or name a queue that has one: l4/);
    const missing = await runBkci(['fleet', 'k8s', 'nope.yaml'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml: cannot read the fleet file: no such file/);
  });
});

describe('pipeline validate --fleet', () => {
  it('is exit 1 naming each job no agent will take, exit 0 when all queues exist', async () => {
    const ok = await runBkci(['pipeline', 'validate', '--fleet', FLEET, '-'], { stdin: 'steps:\n  - command: x\n    agents: {queue: h100}\n' });
    expect(ok.code).toBe(0);
    const bad = await runBkci(['pipeline', 'validate', '--fleet', FLEET, '-'], {
      stdin: 'steps:\n  - command: x\n    agents: {queue: h100}\n  - command: y\n    agents: {queue: l5}\n',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('<stdin>:5:14: error: steps[1].agents.queue: queue `l5` is not in');
    const json = await runBkci(['pipeline', 'validate', '--fleet', FLEET, '--json', '-'], { stdin: 'steps:\n  - command: y\n    agents: {queue: l5}\n' });
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: false, findings: [{ severity: 'error', line: 3 }] });
  });
});

describe('pipeline render --fleet', () => {
  const tpl = 'steps:\n  - command: x\n    agents: {queue: {{ q }}}\n';
  it('checks the rendered jobs against the fleet: exit 1 naming the job, nothing printed; exit 0 when they fit', async () => {
    const bad = await runBkci(['pipeline', 'render', '-', '-D', 'q=l5', '--fleet', FLEET], { stdin: tpl });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('<rendered pipeline>:3:14: error: steps[0].agents.queue: queue `l5` is not in');
    const ok = await runBkci(['pipeline', 'render', '-', '-D', 'q=l4', '--fleet', FLEET], { stdin: tpl });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('queue: l4');
  });

  it('--fleet with --no-validate is bad usage', async () => {
    const r = await runBkci(['pipeline', 'render', '-', '--no-validate', '--fleet', FLEET], { stdin: tpl });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--fleet.*--no-validate|--no-validate.*--fleet/);
  });
});

describe('against a loopback agents API', () => {
  let bk: FakeBuildkite;
  beforeAll(async () => {
    bk = await new FakeBuildkite().start();
    const agent = (name: string, tags: string[], job: unknown = null) => ({ id: name, name, connection_state: 'connected', meta_data: tags, job });
    bk.agents = [
      agent('h100-gpu0', ['queue=h100', 'cuda=12'], { id: 'j1', name: 'test' }),
      agent('h100-gpu1', ['queue=h100', 'cuda=12']),
      agent('u1', ['queue=upload']),
    ];
  });
  afterAll(() => bk.close());

  it('fleet status: agents per queue, empty queues flagged', async () => {
    const r = await runBkci(['fleet', 'status', FLEET, '--json'], { env: bk.env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).map((q: { queue: string; total: number; busy: number; empty: boolean }) => [q.queue, q.total, q.busy, q.empty])).toEqual([
      ['h100', 2, 1, false],
      ['a100-k8s', 0, 0, true],
      ['l4', 0, 0, true],
      ['upload', 1, 0, false],
    ]);
    const text = await runBkci(['fleet', 'status', FLEET], { env: bk.env });
    expect(text.stdout).toContain('a100-k8s\t0\t0\t0\tNO AGENTS\n');
    expect(text.stderr + text.stdout).not.toContain(bk.token);
  });

  it('pipeline validate --check-queues warns for jobs no connected agent matches', async () => {
    const r = await runBkci(['pipeline', 'validate', '--check-queues', '-'], {
      env: bk.env,
      stdin: 'steps:\n  - command: x\n    agents: {queue: h100, cuda: "12"}\n  - command: y\n    agents: {queue: h100, cuda: "13"}\n',
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('<stdin>:4:5: warning: steps[1]: no connected agent matches queue=h100, cuda=13 (0 agents now)');
  });
});
