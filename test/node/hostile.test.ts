// Hostile input to `node setup|status|teardown` (issue 15 §4): control characters in values that
// reach generated files, symbolic links where bkci writes, manifests that name paths outside,
// inconsistent or hanging vendor tools, bad sysfs CPU lists, --root being a file, and a setup
// killed with SIGKILL at random points, then re-run and torn down.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci } from '../helpers/io.js';
import { randomInts } from '../helpers/random.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

const TOKEN = 'bkat_Zx9secretAgentToken42';
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const agentBin = standInAgent();

function copyHost(host: string): string {
  const h = tmp('bkci-host-');
  cpSync(host, h, { recursive: true });
  return h;
}

const setupArgs = (host: string, root: string, extra: string[] = []) => [
  'node',
  'setup',
  '--queue',
  'q',
  '--host-root',
  host,
  '--root',
  root,
  '--agent-bin',
  agentBin,
  ...extra,
];
const setup = (host: string, root: string, extra: string[] = [], env: Record<string, string> = {}) =>
  runBkci(setupArgs(host, root, extra), { env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: TOKEN, ...env }) });

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...walk(p));
  }
  return out;
}

// Every failure is a named error, never an internal one or a stack.
function cleanError(stderr: string): void {
  expect(stderr).not.toMatch(/internal error|\n\s+at .*:\d+:\d+/);
  expect(stderr).toMatch(/^bkci: /m);
}

describe('control characters never reach a generated file', () => {
  it('--name, --tags, --build-root and the hostname with a newline are exit 2 naming the source; nothing is written', async () => {
    const cases: [string[], RegExp][] = [
      [['--name', 'ci\nBUILDKITE_AGENT_TOKEN=x'], /--name "ci\\nBUILDKITE_AGENT_TOKEN=x" has a control character \(U\+000A/],
      [['--name', 'ci\u0000x'], /--name .* has a control character \(U\+0000/],
      [['--tags', 'arch=sm90\nspawn=8'], /--tags .* has a control character/],
      [['--build-root', '/srv/b\nuilds'], /--build-root .* has a control character/],
      [['--build-root', '/srv/../etc'], /--build-root "\/srv\/\.\.\/etc": expected an absolute path without \. or \.\. parts/],
      [['--queue', 'q\nx'], /--queue/],
    ];
    for (const [args, msg] of cases) {
      const root = join(tmp('bkci-root-'), 'stage');
      const r = await setup(HOSTS.l40s, root, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
      cleanError(r.stderr);
      expect(existsSync(root)).toBe(false);
    }
    const host = copyHost(HOSTS.l40s);
    writeFileSync(join(host, 'proc/sys/kernel/hostname'), 'box\rX=1\n');
    const root = join(tmp('bkci-root-'), 'stage');
    let r = await setup(host, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the hostname "box\\rX=1" has a control character[\s\S]*hint: pass --name NAME/);
    expect(existsSync(root)).toBe(false);
    // With --name the hostname is not used, and setup goes ahead.
    r = await setup(host, root, ['--name', 'box']);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('symbolic links where bkci writes', () => {
  it('a token.env linked outside is refused, and the outside file keeps its mode and content', async () => {
    const root = tmp('bkci-root-');
    expect((await setup(HOSTS.l40s, root)).code).toBe(0);
    const outside = join(tmp('bkci-outside-'), 'precious');
    writeFileSync(outside, 'keep\n', { mode: 0o644 });
    const token = join(root, 'etc/buildkite-agent/bkci/token.env');
    const { rmSync } = await import('node:fs');
    rmSync(token);
    symlinkSync(outside, token);
    const r = await setup(HOSTS.l40s, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`bkci: ${token} is a symbolic link`);
    cleanError(r.stderr);
    expect(statSync(outside).mode & 0o777).toBe(0o644);
    expect(readFileSync(outside, 'utf8')).toBe('keep\n');
    // teardown removes the link itself (unlink never follows one); the outside file stays.
    const t = await runBkci(['node', 'teardown', '--root', root]);
    expect(t.code, t.stderr).toBe(0);
    expect(existsSync(token)).toBe(false);
    expect(readFileSync(outside, 'utf8')).toBe('keep\n');
  });

  it('<root>/etc/buildkite-agent linked outside receives nothing, on setup or teardown', async () => {
    const root = tmp('bkci-root-');
    const outside = tmp('bkci-outside-');
    mkdirSync(join(root, 'etc'), { recursive: true });
    symlinkSync(outside, join(root, 'etc/buildkite-agent'));
    let r = await setup(HOSTS.l40s, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(root, 'etc/buildkite-agent')} is a symbolic link`);
    expect(readdirSync(outside)).toEqual([]);
    r = await setup(HOSTS.l40s, root, ['--dry-run']);
    expect(r.code).toBe(2);
    // A link made after setup: teardown does not reach through it.
    const root2 = tmp('bkci-root-');
    expect((await setup(HOSTS.l40s, root2)).code).toBe(0);
    const { renameSync } = await import('node:fs');
    renameSync(join(root2, 'etc/buildkite-agent'), join(outside, 'moved'));
    symlinkSync(join(outside, 'moved'), join(root2, 'etc/buildkite-agent'));
    r = await runBkci(['node', 'teardown', '--root', root2]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a symbolic link/);
    expect(existsSync(join(outside, 'moved/bkci/token.env'))).toBe(true);
  });

  it('a build directory linked elsewhere is refused (named), not chmod/chown-ed through', async () => {
    const root = tmp('bkci-root-');
    const outside = tmp('bkci-outside-');
    chmodSync(outside, 0o700);
    mkdirSync(join(root, 'var/lib/buildkite-agent/builds'), { recursive: true });
    symlinkSync(outside, join(root, 'var/lib/buildkite-agent/builds/gpu0'));
    const r = await setup(HOSTS.l40s, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('var/lib/buildkite-agent/builds/gpu0 is a symbolic link');
    expect(statSync(outside).mode & 0o777).toBe(0o700);
  });
});

describe('manifests that are corrupted or name paths outside', () => {
  async function staged() {
    const root = tmp('bkci-root-');
    expect((await setup(HOSTS.l40s, root)).code).toBe(0);
    const path = join(root, 'etc/buildkite-agent/bkci/manifest.json');
    return { root, path, m: JSON.parse(readFileSync(path, 'utf8')) };
  }

  it('teardown refuses a manifest with ../ or a path setup never writes; nothing outside is removed', async () => {
    const victim = join(tmp('bkci-victim-'), 'victim');
    writeFileSync(victim, 'keep');
    for (const bad of [`/etc/buildkite-agent/bkci/../../../../../../../../..${victim}`, '/etc/passwd', '/etc/buildkite-agent/bkci//x']) {
      const { root, path, m } = await staged();
      m.files[2].path = bad;
      writeFileSync(path, JSON.stringify(m));
      for (const cmd of [['teardown'], ['status'], ['teardown', '--purge']]) {
        const r = await runBkci(['node', ...cmd, '--root', root]);
        expect(r.code, `${cmd} ${bad}`).toBe(2);
        expect(r.stderr).toMatch(/manifest\.json: corrupted bkci manifest: files\[2\]\.path/);
        cleanError(r.stderr);
      }
      expect(readFileSync(victim, 'utf8')).toBe('keep');
    }
    // A build directory that is not an agent's: --purge would rm -r it.
    const { root, path, m } = await staged();
    m.dirs.push({ path: '/home', mode: 0o755, owner: 'root', kind: 'build', created: true });
    writeFileSync(path, JSON.stringify(m));
    const r = await runBkci(['node', 'teardown', '--root', root, '--purge']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/dirs\[\d+\]\.path "\/home" is marked a build directory but is no agent's/);
  });

  it('a truncated or mistyped manifest is a clear error in status and teardown, naming the field', async () => {
    const cases: [(m: Record<string, unknown>, text: string) => string, RegExp][] = [
      [(_m, t) => t.slice(0, t.length / 2), /corrupted bkci manifest: not JSON/],
      [(m) => JSON.stringify({ ...m, agents: [{ ...(m.agents as object[])[0], gpuIndices: 'zero' }] }), /agents\[0\]\.gpuIndices: /],
      [(m) => JSON.stringify({ ...m, files: 7 }), /corrupted bkci manifest: files: /],
      [(m) => JSON.stringify({ ...m, managedBy: 'someone' }), /managedBy: /],
      [() => '[]', /corrupted bkci manifest: \(top level\)|corrupted bkci manifest: .*expected object/],
    ];
    for (const [mutate, msg] of cases) {
      const { root, path, m } = await staged();
      writeFileSync(path, mutate(m, readFileSync(path, 'utf8')));
      for (const cmd of ['status', 'teardown']) {
        const r = await runBkci(['node', cmd, '--root', root]);
        expect(r.code, cmd).toBe(2);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr).toMatch(/hint: restore it from a backup, or move it aside/);
        cleanError(r.stderr);
      }
    }
  });
});

describe('vendor tools that lie or hang', () => {
  it('a duplicate index in nvidia-smi output is an error naming the tool and the line', async () => {
    const host = copyHost(HOSTS.h100);
    const q = join(host, 'out/nvidia-query.csv');
    const lines = readFileSync(q, 'utf8').trim().split('\n');
    lines[3] = lines[3]!.replace(/^3,/, '0,');
    writeFileSync(q, lines.join('\n') + '\n');
    const root = join(tmp('bkci-root-'), 'stage');
    const r = await setup(host, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bkci: nvidia-smi --query-gpu=\S+ line 4: index 0 was already given on line 1 \("0, GPU-.*"\): inconsistent output/);
    expect(existsSync(root)).toBe(false);
    // The same bus id twice (a UUID changed): also refused.
    lines[3] = lines[0]!.replace(/GPU-\w+/, 'GPU-other').replace(/^0,/, '3,');
    writeFileSync(q, lines.join('\n') + '\n');
    const r2 = await setup(host, root);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/line 4: bus id 0000:18:00\.0 was already given on line 1/);
  });

  it('amd-smi and npu-smi listing one GPU twice are errors naming the tool', async () => {
    const amd = copyHost(HOSTS.amd);
    const list = JSON.parse(readFileSync(join(amd, 'out/amd-list.json'), 'utf8'));
    list[2].gpu = list[1].gpu;
    writeFileSync(join(amd, 'out/amd-list.json'), JSON.stringify(list));
    let r = await setup(amd, join(tmp('bkci-root-'), 's'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/amd-smi list --json: entry 3 \(GPU 1, .*\) repeats the index 1 of entry 2/);
    const asc = copyHost(HOSTS.ascend);
    const info = readFileSync(join(asc, 'out/npu-info.txt'), 'utf8').replace(
      '| 0                         | 0000:01:00.0',
      '| 0                         | 0000:C1:00.0',
    );
    writeFileSync(join(asc, 'out/npu-info.txt'), info);
    r = await setup(asc, join(tmp('bkci-root-'), 's'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/npu-smi info line \d+: bus id 0000:c1:00\.0 was already listed on line \d+/);
  });

  it('a tool that hangs and keeps a child alive: its process group is killed, exit 1 naming the tool', async () => {
    const host = copyHost(HOSTS.l40s);
    const pids = join(host, 'pids');
    // Forks a sleeping child that holds stdout open, then hangs itself.
    writeFileSync(join(host, 'bin/nvidia-smi'), `#!/bin/sh\nsleep 300 &\necho $! >> ${pids}\necho $$ >> ${pids}\nsleep 300\n`, { mode: 0o755 });
    const started = Date.now();
    const r = await setup(host, join(tmp('bkci-root-'), 's'), [], { BKCI_TOOL_TIMEOUT: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bkci: nvidia-smi --query-gpu=\S+ --format=csv,noheader,nounits did not finish within 1 s \(killed it and its children\)/);
    expect(Date.now() - started).toBeLessThan(20_000);
    const alive = readFileSync(pids, 'utf8')
      .trim()
      .split('\n')
      .map(Number)
      // Alive: in the process table and not a zombie waiting for a parent to reap it.
      .filter((pid) => existsSync(`/proc/${pid}/stat`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    expect(alive).toEqual([]);
    // A bad BKCI_TOOL_TIMEOUT is bad input.
    const bad = await setup(host, join(tmp('bkci-root-'), 's'), [], { BKCI_TOOL_TIMEOUT: 'soon' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/BKCI_TOOL_TIMEOUT="soon": expected seconds/);
  });
});

describe('sysfs and --root', () => {
  it('bad CPU lists are exit 2 naming the file; a huge range is refused at once', async () => {
    const cases: [string, string, RegExp][] = [
      ['sys/devices/system/node/node0/cpulist', '0-abc\n', /node0\/cpulist: "0-abc" is not a CPU list/],
      ['sys/devices/system/node/node0/cpulist', '0-4294967295\n', /node0\/cpulist: .* is not a CPU list \(/],
      ['sys/devices/system/node/node0/cpulist', '0-65535,0-65535:0/1\n', /is not a CPU list \(bad step or group/],
      ['sys/devices/system/cpu/online', '15-0\n', /cpu\/online: "15-0" is not a CPU list \(range 15-0 runs backwards\)/],
      ['sys/devices/system/cpu/cpu3/topology/thread_siblings_list', '3,\u0000\n', /thread_siblings_list: .* is not a CPU list/],
    ];
    for (const [file, content, msg] of cases) {
      const host = copyHost(HOSTS.l40s);
      writeFileSync(join(host, file), content);
      const started = Date.now();
      const r = await setup(host, join(tmp('bkci-root-'), 's'), ['--dry-run']);
      expect(r.code, file + content).toBe(2);
      expect(r.stderr).toMatch(msg);
      cleanError(r.stderr);
      expect(Date.now() - started).toBeLessThan(10_000);
    }
    // The largest range allowed stays cheap: 65536 CPUs in a list parse in milliseconds.
    const { parseCpuList } = await import('../../src/node/cpulist.js');
    expect(parseCpuList('0-65535')).toHaveLength(65536);
    expect(parseCpuList('0-15:2/4')).toEqual([0, 1, 4, 5, 8, 9, 12, 13]);
  });

  it('--root being a file is exit 2 for every command', async () => {
    const file = join(tmp('bkci-root-'), 'file');
    writeFileSync(file, 'x');
    const runs = [
      await setup(HOSTS.l40s, file),
      await runBkci(['node', 'status', '--root', file]),
      await runBkci(['node', 'teardown', '--root', file]),
      await runBkci(['node', 'doctor', '--root', file, '--host-root', HOSTS.l40s], { env: hostEnv(HOSTS.l40s) }),
      await runBkci(['node', 'check', 'gpu0', '--root', file, '--host-root', HOSTS.l40s], { env: hostEnv(HOSTS.l40s) }),
    ];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--root .*file: not a directory|--root .*file/);
      cleanError(r.stderr);
    }
    expect(readFileSync(file, 'utf8')).toBe('x');
  });
});

describe('SIGKILL during setup, then a re-run and teardown', () => {
  const bin = join(import.meta.dirname, '../../dist/bundle/bin.js');

  // Runs setup as a real child process and kills it with SIGKILL after the k-th change seen under
  // the root (k from the seed), or at a random delay when the run makes fewer changes.
  async function killedSetup(host: string, root: string, next: (k: number) => number): Promise<string> {
    mkdirSync(root, { recursive: true });
    const child = spawn(process.execPath, [bin, ...setupArgs(host, root)], {
      env: hostEnv(host, { BUILDKITE_AGENT_TOKEN: TOKEN }),
      stdio: 'ignore',
    });
    const k = 1 + next(40);
    const delay = next(40);
    let seen = 0;
    let timer: NodeJS.Timeout | undefined;
    // Killed at the k-th change seen, or `delay` ms after the first (changes in new directories
    // can go unseen), so every kill lands while setup writes or just after.
    const watcher = watch(root, { recursive: true }, () => {
      seen++;
      if (seen === 1) timer = setTimeout(() => child.kill('SIGKILL'), delay);
      if (seen === k) child.kill('SIGKILL');
    });
    const how = await new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
    clearTimeout(timer);
    watcher.close();
    return `${how} after ${seen} changes (k=${k})`;
  }

  it('every seed: the re-run removes temp files and converges; teardown --purge leaves nothing', async () => {
    const next = randomInts(20261207);
    const outcomes: string[] = [];
    for (let seed = 0; seed < 6; seed++) {
      const root = join(tmp('bkci-kill-'), 'stage');
      outcomes.push(await killedSetup(HOSTS.h100, root, next));
      const r = await setup(HOSTS.h100, root);
      expect(r.code, r.stderr).toBe(0);
      const files = walk(root).map((p) => p.slice(root.length));
      expect(
        files.filter((p) => /\.tmp$|journal/.test(p)),
        outcomes.at(-1),
      ).toEqual([]);
      expect((await setup(HOSTS.h100, root)).stderr).toMatch(/nothing to change/);
      const t = await runBkci(['node', 'teardown', '--root', root, '--purge']);
      expect(t.code, t.stderr).toBe(0);
      expect(walk(root), outcomes.at(-1)).toEqual([]);
    }
    // At least some kills landed while files were being written (not all before or after).
    expect(outcomes.some((o) => o.startsWith('SIGKILL'))).toBe(true);
  }, 120_000);

  it('a setup killed before it wrote its manifest is torn down from its journal', async () => {
    const { planNodeSetup } = await import('../../src/node/plan.js');
    const { detectHost } = await import('../../src/node/detect/index.js');
    const { writeFileSafe, mkdirSafe } = await import('../../src/node/safe-fs.js');
    const { quietIo } = await import('./helpers.js');
    const root = tmp('bkci-root-');
    const io = quietIo(hostEnv(HOSTS.l40s));
    const facts = await detectHost(HOSTS.l40s, 'auto', io);
    const opts = {
      queue: 'q',
      gpusPerAgent: 1,
      agents: 1,
      tags: [] as [string, string][],
      memoryReserve: 1 << 30,
      cpuReserve: 0,
      user: 'ci',
      agentBin,
      bkciBin: ['/usr/bin/bkci'],
      buildRoot: '/var/lib/buildkite-agent/builds',
      mig: false,
      minFreeDisk: 1,
      token: TOKEN,
    };
    const plan = planNodeSetup(facts, opts, { files: new Map(), dirs: new Set(), manifest: undefined, userExists: true });
    // What a run killed after its first few steps leaves: the journal, some directories, a temp file.
    await writeFileSafe(root, '/.bkci-setup-journal.json', JSON.stringify(plan.journal), 0o644);
    for (const d of plan.dirs.slice(0, 6)) await mkdirSafe(root, d.path, d.mode);
    writeFileSync(join(root, 'etc/..bkci-setup-journal.json.bkci-0123456789ab.tmp'), '{');
    writeFileSync(join(root, 'etc/.unrelated.0123456789ab.tmp'), 'not ours');
    const r = await runBkci(['node', 'teardown', '--root', root, '--purge']);
    expect(r.code, r.stderr).toBe(0);
    expect(walk(root).map((p) => p.slice(root.length))).toEqual(['/etc', '/etc/.unrelated.0123456789ab.tmp']);
    expect(lstatSync(join(root, 'etc')).isDirectory()).toBe(true);
  });
});
