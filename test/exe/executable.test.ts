// The single executable (scripts/build-exe.mjs, `npm run build:exe`): it runs with nothing on the
// host (no Node, PATH pointing nowhere), and every command group answers exactly as the npm
// package's bin does: the same stdout, stderr and exit code for the same invocation.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBuildkite } from '../helpers/fake-buildkite.js';
import { HOSTS, hostEnv } from '../node/helpers.js';

const ROOT = join(import.meta.dirname, '../..');
const EXE = join(ROOT, 'dist/exe/bkci-linux-x64');
const NPM_BIN = join(ROOT, 'dist/bundle/bin.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Log lines carry the time they were written and how long a build has run: not compared.
const untimed = (s: string) => s.replace(/"(time|elapsed)":"?[^",}]*"?|\b(time|elapsed)=\S+|^\S*\d{2}:\d{2}:\d{2}(\.\d+)?Z? /gm, '<time>');

function run(cmd: string, args: string[], env: Record<string, string>, cwd = ROOT): Run {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 2 ** 20 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: untimed(r.stderr) };
}
const viaExe = (args: string[], env: Record<string, string>, cwd?: string) => run(EXE, args, env, cwd);
// The npm bin started by the Node running the tests, so that PATH need not lead to a node.
const viaNpm = (args: string[], env: Record<string, string>, cwd?: string) => run(process.execPath, [NPM_BIN, ...args], env, cwd);

beforeAll(() => {
  // `npm test` builds it before vitest runs; built here when a test run starts without it.
  if (!existsSync(EXE)) {
    const b = spawnSync(process.execPath, [join(ROOT, 'scripts/build-exe.mjs'), '--arch', 'x64'], { cwd: ROOT, stdio: 'inherit', timeout: 600_000 });
    if (b.status !== 0) throw new Error(`building the executable failed (exit ${b.status})`);
  }
}, 600_000);

describe('the single executable', () => {
  const bare = { PATH: '/nonexistent' };

  it('runs with no Node and nothing on PATH', () => {
    const v = viaExe(['--version'], bare);
    expect(v).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    const r = viaExe(['pipeline', 'render', 'templates/default.j2', 'examples/test-pipeline.yaml'], bare);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^steps:/m);
  });

  it('renders the bundled template from its own assets, with no templates/ on disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bkci-exe-'));
    writeFileSync(join(dir, 'tests.yaml'), readFileSync(join(ROOT, 'examples/test-pipeline.yaml')));
    const exe = viaExe(['pipeline', 'render', 'templates/default.j2', 'tests.yaml'], bare, dir);
    const npm = viaNpm(['pipeline', 'render', 'templates/default.j2', 'tests.yaml'], bare, dir);
    expect(exe.code).toBe(0);
    expect(exe).toEqual(npm);
  });

  it('self install copies it to PREFIX/bin/bkci (0755, atomically) and writes nothing the second time', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'bkci-prefix-'));
    const first = viaExe(['self', 'install', '--prefix', prefix, '--json'], bare);
    expect(first.code).toBe(0);
    const installed = join(prefix, 'bin/bkci');
    const sha = createHash('sha256').update(readFileSync(EXE)).digest('hex');
    expect(JSON.parse(first.stdout)).toEqual({ path: installed, changed: true, sha256: sha });
    const st = statSync(installed);
    expect(st.mode & 0o7777).toBe(0o755);
    expect(readdirSync(join(prefix, 'bin'))).toEqual(['bkci']);
    const again = viaExe(['self', 'install', '--prefix', prefix], bare);
    expect(again).toEqual({ code: 0, stdout: `unchanged ${installed} (sha256 ${sha})\n`, stderr: '' });
    expect(statSync(installed).mtimeMs).toBe(st.mtimeMs);
    expect(run(installed, ['--version'], bare).stdout).toBe(`${VERSION}\n`);
    // From the npm package there is no executable to copy.
    const npm = viaNpm(['self', 'install', '--prefix', prefix], bare);
    expect(npm.code).toBe(2);
    expect(npm.stderr).toMatch(/self install copies the single executable/);
  });

  it('node setup run from the executable names its installed path in the units', () => {
    const root = mkdtempSync(join(tmpdir(), 'bkci-root-'));
    const args = ['node', 'setup', '--queue', 'h100', '--host-root', HOSTS.h100, '--root', root, '--agent-bin', '/usr/bin/buildkite-agent'];
    const r = viaExe(args, hostEnv(HOSTS.h100, { BUILDKITE_AGENT_TOKEN: 'tok-0123456789' }));
    expect(r.code).toBe(0);
    const units = execFileSync('grep', ['-rl', '/usr/local/bin/bkci', join(root, 'etc/systemd/system')], { encoding: 'utf8' });
    expect(units).not.toBe('');
    // grep exits 1 when no file names the file that was run.
    expect(spawnSync('grep', ['-rl', EXE, root]).status).toBe(1);
  });

  it('writes a sha256 file beside the executable that matches it', () => {
    const line = readFileSync(`${EXE}.sha256`, 'utf8');
    const sha = createHash('sha256').update(readFileSync(EXE)).digest('hex');
    expect(line).toBe(`${sha}  bkci-linux-x64\n`);
  });

  it('is an executable file of the host architecture', () => {
    expect(statSync(EXE).mode & 0o777).toBe(0o755);
    const head = readFileSync(EXE).subarray(0, 20);
    expect(head.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // e_machine: 0x3e is x86-64.
    expect(head.readUInt16LE(18)).toBe(0x3e);
  });
});

// The same invocations through both: stdout, stderr and exit code must be equal.
describe('the executable answers as the npm bin does', () => {
  const bare = { PATH: '/nonexistent' };
  const tpl = 'test/fixtures/templates';
  const cases: [string, string[]][] = [
    ['--help', ['--help']],
    ['pipeline --help', ['pipeline', '--help']],
    ['an unknown command', ['frobnicate']],
    ['an unknown flag', ['pipeline', 'render', '--nope']],
    ['render of the example', ['pipeline', 'render', 'templates/default.j2', 'examples/test-pipeline.yaml']],
    ['render with selection', ['pipeline', 'render', 'templates/default.j2', 'examples/test-pipeline.yaml', '--changed-files', '-', '--explain']],
    ['render, json explain', ['pipeline', 'render', 'templates/default.j2', 'examples/test-pipeline.yaml', '--run-all', '--explain', '--json']],
    ['gpu-matrix template', ['pipeline', 'render', `${tpl}/gpu-matrix/pipeline.j2`, `${tpl}/gpu-matrix/tests.yaml`, '-D', 'run_all=1']],
    ['kernel-bench template', ['pipeline', 'render', `${tpl}/kernel-bench/pipeline.j2`, `${tpl}/kernel-bench/data.yaml`, '-D', 'branch=main']],
    ['a missing template', ['pipeline', 'render', 'nope.j2', 'examples/test-pipeline.yaml']],
    ['a template error', ['pipeline', 'render', '-', '-D', 'x=1']],
    ['validate a test list (not a pipeline)', ['pipeline', 'validate', 'examples/test-pipeline.yaml']],
    ['validate, json', ['pipeline', 'validate', 'examples/test-pipeline.yaml', '--json']],
    ['validate a missing file', ['pipeline', 'validate', 'missing.yml']],
  ];
  for (const [name, args] of cases) {
    it(name, () => {
      const stdin = name === 'render with selection' ? 'src/a.py\n' : name === 'a template error' ? '{{ x | nope }}' : '';
      const both = [EXE, process.execPath].map((cmd) => {
        const r = spawnSync(cmd, cmd === EXE ? args : [NPM_BIN, ...args], { cwd: ROOT, env: bare, input: stdin, encoding: 'utf8', timeout: 60_000 });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
      });
      expect(both[0]).toEqual(both[1]);
    });
  }

  it('node setup --dry-run on a fixture host', () => {
    const args = [
      'node',
      'setup',
      '--queue',
      'h100',
      '--host-root',
      HOSTS.h100,
      '--root',
      '/nonexistent-root',
      '--dry-run',
      '--bkci-bin',
      '/usr/local/bin/bkci',
    ];
    const env = hostEnv(HOSTS.h100, { BUILDKITE_AGENT_TOKEN: 'tok-0123456789' });
    const exe = viaExe([...args, '--json'], env);
    const npm = viaNpm([...args, '--json'], env);
    expect(exe.code).toBe(0);
    expect(exe).toEqual(npm);
    expect(exe.stdout).not.toContain('tok-0123456789');
  });

  describe('against a loopback Buildkite API', () => {
    let bk: FakeBuildkite;
    beforeAll(async () => {
      bk = await new FakeBuildkite().start();
      bk.addBuild({ states: ['passed'], number: 7, jobs: [{ name: 'unit', state: 'passed', log: 'ok\n' }] });
      bk.addBuild({ states: ['failed'], number: 8, jobs: [{ name: 'gpu', state: 'failed' }] });
    });
    afterAll(() => bk.close());
    // spawnSync would block the fake server's event loop: these run asynchronously.
    const runAsync = (cmd: string, args: string[]) =>
      new Promise<Run>((resolve, reject) => {
        const p = spawn(cmd, args, { cwd: ROOT, env: { PATH: '/nonexistent', ...bk.env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code, stdout, stderr: untimed(stderr) }));
      });
    for (const args of [
      ['build', 'get', '7', '--json'],
      ['build', 'wait', '8'],
      ['build', 'list', '--json'],
      ['build', 'logs', '7'],
      ['build', 'get', '999'],
    ]) {
      it(args.join(' '), async () => {
        const exe = await runAsync(EXE, args);
        const npm = await runAsync(process.execPath, [NPM_BIN, ...args]);
        expect(exe).toEqual(npm);
        expect(exe.stdout + exe.stderr).not.toContain(bk.token);
      });
    }
  });
});
