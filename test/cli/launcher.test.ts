// The bin as users run it: dist/bundle/bin.js executed directly (its #!/bin/sh lines exec Node on
// the same file), through a symlink as npm installs it. The sh lines start Node without
// NODE_EXTRA_CA_CERTS for commands that make no TLS connection; these tests hold that such
// commands still hand the variable to the processes they start, and that a command that talks to
// the API over HTTPS still trusts the extra CA file.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBuildkite } from '../helpers/fake-buildkite.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'dist/bundle/bin.js');
const TLS = join(ROOT, 'test/fixtures/tls');
const work = mkdtempSync(join(tmpdir(), 'bkci-launcher-'));
// As npm links a bin: node_modules/.bin/bkci -> the package's dist/bundle/bin.js.
const linked = join(work, '.bin/bkci');
mkdirSync(join(work, '.bin'));
symlinkSync(BIN, linked);
const PATH = process.env.PATH ?? '/usr/bin:/bin';
const pipelineFile = join(work, 'pipeline.yml');
writeFileSync(pipelineFile, 'steps:\n  - command: "true"\n');

const run = (args: string[], env: Record<string, string> = {}, bin = linked) => spawnSync(bin, args, { encoding: 'utf8', env: { PATH, ...env } });
const deferredLine = /started without NODE_EXTRA_CA_CERTS/;
// Node 20 reads the file at start-up and warns when it cannot; Node 22 and later read it on first TLS use.
const nodeWarning = /Ignoring extra certs/;

describe('the bin as an executable', () => {
  it('runs through a symlink, as npm installs it, and as `node bin.js`', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(run(['--version']).stdout).toBe(`${version}\n`);
    expect(run(['--version'], {}, BIN).stdout).toBe(`${version}\n`);
    const viaNode = spawnSync(process.execPath, [BIN, 'pipeline', 'validate', pipelineFile], { encoding: 'utf8', env: { PATH } });
    expect(viaNode.status, viaNode.stderr).toBe(0);
    const r = run(['pipeline', 'validate', pipelineFile]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('passes arguments through untouched, spaces, quotes and globs included', () => {
    const withInput = spawnSync(linked, ['pipeline', 'render', '-', '-D', 'x=a  b "c" * $HOME', '--no-validate'], {
      encoding: 'utf8',
      env: { PATH },
      input: '{{ x }}',
    });
    expect(withInput.status, withInput.stderr).toBe(0);
    expect(withInput.stdout).toBe('a  b "c" * $HOME\n');
  });

  it.each([
    ['pipeline', ['--log-level', 'debug', 'pipeline', 'validate', pipelineFile]],
    ['pipeline, options before it', ['-q', '--log-level=debug', '--debug', 'pipeline', 'validate', pipelineFile]],
    ['node', ['--log-level', 'debug', 'node', 'teardown', '--help']],
  ])('%s: starts Node without NODE_EXTRA_CA_CERTS', (_name, args) => {
    const r = run(args, { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(nodeWarning);
    expect(r.stderr).toMatch(deferredLine);
    if (args.includes('teardown')) expect(r.stdout).toMatch(/Usage: bkci node teardown/);
  });

  it('a BKCI_DEFERRED_NODE_EXTRA_CA_CERTS from outside is dropped, never handed on as NODE_EXTRA_CA_CERTS', () => {
    const r = run(['--log-level', 'debug', 'build', 'get', '1'], { BKCI_DEFERRED_NODE_EXTRA_CA_CERTS: '/elsewhere/ca.pem' });
    expect(r.stderr).not.toMatch(deferredLine);
  });

  it('an API command starts Node with it (and says nothing about deferring)', () => {
    const r = run(['--log-level', 'debug', 'build', 'get', '1'], { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bkci: no API token: BUILDKITE_API_TOKEN is not set/m);
    expect(r.stderr).not.toMatch(deferredLine);
  });

  it('the processes a deferred command starts see NODE_EXTRA_CA_CERTS again', () => {
    // A stand-in git on PATH that records the variable and answers --diff-base's two calls.
    const fakeBin = join(work, 'fake-git');
    mkdirSync(fakeBin, { recursive: true });
    const seen = join(work, 'git-saw');
    writeFileSync(
      join(fakeBin, 'git'),
      `#!/bin/sh\nprintf '%s|%s\\n' "\${NODE_EXTRA_CA_CERTS-unset}" "\${BKCI_DEFERRED_NODE_EXTRA_CA_CERTS-unset}" >> '${seen}'\ncase "$1" in merge-base) echo 0123456789abcdef0123456789abcdef01234567;; diff) printf 'src/a.py\\0';; esac\n`,
    );
    chmodSync(join(fakeBin, 'git'), 0o755);
    const r = spawnSync(linked, ['pipeline', 'render', '-', '--diff-base', 'main', '--no-validate'], {
      encoding: 'utf8',
      cwd: work,
      env: { PATH: `${fakeBin}:${PATH}`, NODE_EXTRA_CA_CERTS: '/etc/bkci-test/ca.pem' },
      input: '{{ changed_files | join(",") }}',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('src/a.py\n');
    expect(readFileSync(seen, 'utf8')).toBe('/etc/bkci-test/ca.pem|unset\n/etc/bkci-test/ca.pem|unset\n');
  });
});

describe('an API command over HTTPS', () => {
  const bk = new FakeBuildkite();
  beforeAll(async () => {
    await bk.start({ tls: { key: readFileSync(join(TLS, 'server.key'), 'utf8'), cert: readFileSync(join(TLS, 'server.pem'), 'utf8') } });
    bk.addBuild({ states: ['passed'], number: 7 });
  });
  afterAll(() => bk.close());

  // Asynchronously: the fake API answers from this process.
  const runAsync = async (args: string[], env: Record<string, string>) => {
    const { execa } = await import('execa');
    const r = await execa(linked, args, { env: { PATH, ...env }, extendEnv: false, reject: false, timeout: 30_000 });
    return { status: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };

  it('pipeline validate --check-queues starts Node with it and asks the agents API over TLS', async () => {
    const ok = await runAsync(['--log-level', 'debug', 'pipeline', 'validate', '--check-queues', pipelineFile], {
      ...bk.env,
      NODE_EXTRA_CA_CERTS: join(TLS, 'ca.pem'),
    });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).not.toMatch(deferredLine);
    expect(ok.stderr).not.toMatch(/TLS certificate/);
    expect(bk.requests.some((q) => q.path.endsWith('/agents'))).toBe(true);
  });

  it('trusts the CA named by NODE_EXTRA_CA_CERTS, and only with it', async () => {
    expect(bk.url).toMatch(/^https:/);
    const ok = await runAsync(['build', 'get', '7', '--json'], { ...bk.env, NODE_EXTRA_CA_CERTS: join(TLS, 'ca.pem') });
    expect(ok.status, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as { number: number }).number).toBe(7);
    const untrusted = await runAsync(['build', 'get', '7', '--json'], { ...bk.env });
    // Without it: a user error naming the fix, at once (a certificate is not retried).
    expect(untrusted.status).toBe(1);
    expect(untrusted.stdout).toBe('');
    expect(untrusted.stderr).toMatch(
      /^bkci: GET \/v2\/\S+\/builds\/7: the TLS certificate of https:\/\/127\.0\.0\.1:\d+ was not accepted: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)\nhint: .*NODE_EXTRA_CA_CERTS/m,
    );
    expect(untrusted.stderr).not.toMatch(/retrying|internal error/);
  });

  it('a create refused for its certificate was not sent: said so, not "may or may not have been processed"', async () => {
    const before = bk.requests.length;
    const r = await runAsync(['build', 'submit', '--branch', 'main'], bk.env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^bkci: POST \S+: the TLS certificate of https:\/\/127\.0\.0\.1:\d+ was not accepted/m);
    expect(r.stderr).not.toMatch(/may or may not/);
    expect(bk.requests.length).toBe(before);
  });
});

// The sh lines defer the variable for `pipeline`, `node` and `help` on the promise that these make
// no TLS connection: nothing their code imports, directly or not, may reach the API client, undici
// or Node's TLS modules.
describe('the commands started without NODE_EXTRA_CA_CERTS', () => {
  const importsOf = (file: string): string[] => {
    const src = readFileSync(file, 'utf8');
    // Type-only imports leave nothing behind at run time.
    const code = src.replace(/^import type [^;]+;/gm, '');
    return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
  };
  const reach = (entry: string, behindTheirFlag: string[] = []) => {
    const seen = new Set<string>(behindTheirFlag.map((f) => join(ROOT, f)));
    const external = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of importsOf(file)) {
        if (spec.startsWith('.')) walk(join(file, '..', spec.replace(/\.js$/, '.ts')));
        else external.add(spec);
      }
    };
    walk(entry);
    const skipped = new Set(behindTheirFlag);
    return { files: [...seen].map((f) => f.slice(ROOT.length + 1)).filter((f) => !skipped.has(f)), external: [...external] };
  };

  // One exception, behind a flag the sh lines look for: `pipeline validate --check-queues`
  // (src/cli/pipeline/fleet-findings.ts) asks the agents API, and the bin keeps the variable when
  // that flag is on the command line (tested above).
  it.each(['src/cli/pipeline/index.ts', 'src/cli/node/index.ts'])('%s reaches no TLS code', (entry) => {
    const { files, external } = reach(join(ROOT, entry), ['src/cli/pipeline/fleet-findings.ts']);
    expect(files.length).toBeGreaterThan(10);
    expect(files.filter((f) => f.startsWith('src/api/'))).toEqual([]);
    expect(external.filter((x) => /^(?:node:)?(?:https|tls|http2)$|^undici/.test(x))).toEqual([]);
  });

  it('(the check sees an API command reach them)', () => {
    const { files, external } = reach(join(ROOT, 'src/cli/build/index.ts'));
    expect(files).toContain('src/api/client.ts');
    expect(external).toContain('undici');
  });
});
