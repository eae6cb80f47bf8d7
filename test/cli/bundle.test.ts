// The package's bin is the bundled CLI (dist/bundle/bin.js, built by `npm run build`): the same
// commands as a real process, as users and CI run them.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tierUpFlags } from '../../src/cli/v8-tuning.js';
import { hostEnv, HOSTS } from '../node/helpers.js';
import { BIN, ROOT, runNode, vllmExpected, vllmRenderArgs, vllmSets } from '../helpers/vllm-render.js';

const bkci = (args: string[], opts: { env?: Record<string, string>; input?: string } = {}) => runNode([BIN], args, opts);

describe('the bundled bkci', () => {
  it('is the package bin', () => {
    expect((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.bkci).toBe('dist/bundle/bin.js');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(execFileSync(process.execPath, [BIN, '--version']).toString()).toBe(`${pkg.version}\n`);
    expect(execFileSync(process.execPath, [join(ROOT, 'dist/cli/bin.js'), '-V']).toString()).toBe(`${pkg.version}\n`);
  });

  it.each(vllmSets.map((s) => [s.name, s] as const))('renders vLLM %s byte for byte, blank lines stripped as bootstrap.sh did', (_n, set) => {
    const r = bkci(vllmRenderArgs(set));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(vllmExpected(set));
  });

  it("tunes only flags this Node's V8 knows (an unknown one would print an error on every run)", () => {
    expect(tierUpFlags('11.3.244.8-node.33')).toBe('--interrupt-budget=1000000');
    expect(tierUpFlags('12.4.254.21-node.33')).toBe('--invocation-count-for-turbofan=30000');
    expect(tierUpFlags('13.6.233.10-node.28')).toBeUndefined();
    expect(tierUpFlags('11.8.172.17-node.19')).toBeUndefined(); // Node 21: not measured, not set
    expect(tierUpFlags('12.9.202.28-node.14')).toBeUndefined();
    const flags = tierUpFlags(process.versions.v8);
    if (flags !== undefined) {
      const known = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8', maxBuffer: 16 << 20 });
      for (const f of flags.split(' ')) expect(known).toContain(`  ${f.split('=')[0]} (`);
    }
    const r = bkci(['pipeline', 'validate', '-'], { input: 'steps:\n  - command: "true"\n' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  // What the launcher did with the code cache, from its debug log line.
  const codeCache = (r: { stderr: string }) =>
    r.stderr
      .split('\n')
      .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { codeCache?: string }) : {}))
      .find((x) => x.codeCache)?.codeCache;
  const validInput = 'steps:\n  - command: "true"\n';
  const debugValidate = (bin = BIN, nodeArgs: string[] = [], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [...nodeArgs, bin, '--log-level', 'debug', '--log-format', 'json', 'pipeline', 'validate', '-'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      input: validInput,
    });

  it('starts from the code cache the build made, when this Node made it', () => {
    const cache = readFileSync(join(ROOT, 'dist/bundle/bkci.cjs.cache'));
    const header = cache.subarray(0, cache.indexOf(10)).toString();
    expect(header).toMatch(/^bkci code cache [0-9a-f]{16} \S+ \S+$/);
    expect(cache.length).toBeGreaterThan(100_000); // V8's code for the render path, not an empty shell
    const r = debugValidate();
    expect(r.status, r.stderr).toBe(0);
    const builtHere = header.endsWith(` ${process.arch} ${process.versions.v8}`);
    expect(codeCache(r)).toBe(builtHere ? 'used' : process.versions.node.startsWith('20.') ? 'none' : "none (Node's compile cache)");
  });

  it('runs the same without the cache, or with one V8 refuses', () => {
    const want = bkci(['pipeline', 'render', join(ROOT, 'templates/default.j2'), join(ROOT, 'examples/test-pipeline.yaml')]);
    expect(want.status, want.stderr).toBe(0);
    const off = bkci(['pipeline', 'render', join(ROOT, 'templates/default.j2'), join(ROOT, 'examples/test-pipeline.yaml')], {
      env: { BKCI_CODE_CACHE: 'off' },
    });
    expect(off.stdout).toBe(want.stdout);
    expect(codeCache(debugValidate(BIN, [], { BKCI_CODE_CACHE: 'off' }))).toMatch(/^none/);
    // Another V8 flag set than the one the cache was made under: V8 says no, the code compiles.
    const header = readFileSync(join(ROOT, 'dist/bundle/bkci.cjs.cache')).toString('latin1').split('\n')[0]!;
    if (header.endsWith(` ${process.arch} ${process.versions.v8}`)) {
      const r = debugValidate(BIN, ['--stack-size=900']);
      expect(r.status, r.stderr).toBe(0);
      expect(codeCache(r)).toBe('rejected by V8');
    }
  });

  it('never uses a cache made for another build of the bundle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-cache-'));
    cpSync(join(ROOT, 'dist/bundle'), join(dir, 'dist/bundle'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const file = join(dir, 'dist/bundle/bkci.cjs.cache');
    const cache = readFileSync(file);
    const nl = cache.indexOf(10);
    const header = cache
      .subarray(0, nl)
      .toString()
      .replace(/ [0-9a-f]{16} /, ' 0123456789abcdef ');
    writeFileSync(file, Buffer.concat([Buffer.from(header), cache.subarray(nl)]));
    const r = debugValidate(join(dir, 'dist/bundle/bin.js'));
    expect(r.status, r.stderr).toBe(0);
    expect(codeCache(r)).toMatch(/^none/);
    // The copy still works as the package does, cache and all.
    writeFileSync(file, cache);
    expect(debugValidate(join(dir, 'dist/bundle/bin.js')).status).toBe(0);
  });

  it('renders the bundled example and rejects an invalid pipeline with exit 1 and a position', () => {
    const ok = bkci(['pipeline', 'render', join(ROOT, 'templates/default.j2'), join(ROOT, 'examples/test-pipeline.yaml')]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^steps:/);
    const bad = bkci(['pipeline', 'validate', '-'], { input: 'steps:\n  - label: x\n    command: y\n    agent: {queue: gpu}\n' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/<stdin>:4:5: .*`agent` is not a valid property.*did you mean `agents`/);
  });

  it('plans a node, naming itself in the health check', () => {
    const r = bkci(
      ['node', 'setup', '--queue', 'h100', '--host-root', HOSTS.l40s, '--root', '/nonexistent-stage', '--agent-bin', '/bin/true', '--dry-run', '--json'],
      {
        env: hostEnv(HOSTS.l40s, { BUILDKITE_AGENT_TOKEN: 'bkat_bundletesttoken' }),
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).agents).toHaveLength(2);
    expect(r.stdout + r.stderr).not.toContain('bkat_bundletesttoken');
    const root = mkdtempSync(join(tmpdir(), 'bkci-bundle-'));
    const staged = bkci(['node', 'setup', '--queue', 'h100', '--host-root', HOSTS.l40s, '--root', root, '--agent-bin', '/bin/true'], {
      env: hostEnv(HOSTS.l40s, { BUILDKITE_AGENT_TOKEN: 'bkat_bundletesttoken' }),
    });
    expect(staged.status, staged.stderr).toBe(0);
    expect(readFileSync(join(root, 'etc/systemd/system/bkci-agent@.service'), 'utf8')).toContain(`ExecStartPre=${process.execPath} ${BIN} node check %i`);
  });
});
