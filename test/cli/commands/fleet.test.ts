// Flag parsing of `bkci fleet k8s|elastic|status` through the runF seam. Nothing is read or asked of
// the API.
import { describe, expect, it } from 'vitest';
import { elasticCommand } from '../../../src/cli/fleet/elastic.js';
import { k8sCommand } from '../../../src/cli/fleet/k8s.js';
import { statusCommand } from '../../../src/cli/fleet/status.js';
import { parse } from './harness.js';

describe('fleet k8s', () => {
  it('every queue by default; --queue repeatable; --json', async () => {
    let r = await parse('fleet', k8sCommand, ['k8s', 'fleet.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ file: 'fleet.yaml', queue: [], json: false });
    r = await parse('fleet', k8sCommand, ['k8s', '-', '--queue', 'a100', '--queue', 'l4', '--json']);
    expect(r.input).toEqual({ file: '-', queue: ['a100', 'l4'], json: true });
  });

  it.each([
    [[], /missing required argument 'file'/],
    [[''], /^bkci: <file> is required: a fleet file, or - for stdin/m],
    [['f.yaml', '--queue', ''], /^bkci: --queue "": a queue name/m],
    [['f.yaml', '--format', 'json'], /^bkci: unknown option '--format'/m],
  ])('%j is exit 2', async (argv, message) => {
    const r = await parse('fleet', k8sCommand, ['k8s', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
  });
});

describe('fleet elastic', () => {
  it('--format json by default; --json is the same; terraform with several queues', async () => {
    let r = await parse('fleet', elasticCommand, ['elastic', 'f.yaml', '--queue', 'l4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({ file: 'f.yaml', queue: ['l4'], format: 'json' });
    r = await parse('fleet', elasticCommand, ['elastic', 'f.yaml', '--json']);
    expect(r.input).toEqual({ file: 'f.yaml', queue: [], format: 'json' });
    r = await parse('fleet', elasticCommand, ['elastic', 'f.yaml', '--format', 'terraform', '--queue', 'a', '--queue', 'b']);
    expect(r.input).toEqual({ file: 'f.yaml', queue: ['a', 'b'], format: 'terraform' });
  });

  it.each([
    [['--json', '--format', 'terraform'], /^bkci: --json and --format cannot be used together/m],
    [['--format', 'hcl'], /^bkci: --format "hcl": Allowed choices are json, terraform/m],
    [['--queue'], /^bkci: --queue needs a value/m],
  ])('%j is exit 2 naming the flag', async (argv, message) => {
    const r = await parse('fleet', elasticCommand, ['elastic', 'f.yaml', ...argv]);
    expect(r.code).toBe(2);
    expect(r.input).toBeUndefined();
    expect(r.stderr).toMatch(message);
  });
});

describe('fleet status', () => {
  it('the API flags and their BUILDKITE_* defaults, the file, --queue', async () => {
    const r = await parse('fleet', statusCommand, ['status', 'f.yaml', '--queue', 'h100', '--json', '--token-file', '/run/tok'], {
      env: { BUILDKITE_ORGANIZATION_SLUG: 'env-org' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.input).toEqual({
      org: 'env-org',
      pipeline: undefined,
      apiUrl: undefined,
      tokenFile: '/run/tok',
      json: true,
      file: 'f.yaml',
      queue: ['h100'],
    });
  });

  it('--token is refused (and its value never shown); a bad --org is exit 2 naming it', async () => {
    let r = await parse('fleet', statusCommand, ['status', 'f.yaml', '--token', 'bkua_abcdef1234567890']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: --token is not accepted/m);
    expect(r.stderr).not.toContain('bkua_abcdef1234567890');
    r = await parse('fleet', statusCommand, ['status', 'f.yaml', '--org', 'my org']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bkci: --org "my org": an organization slug/m);
  });
});
