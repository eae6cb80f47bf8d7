// Fuzzing `node setup|status|teardown`: mutated sysfs files, vendor-tool output, flags and
// manifests, on copies of the fixture hosts. Every outcome must be success or a named error with
// exit 1 or 2: never "internal error", a stack trace, a hang, the token in output, or a file
// written outside the staging root. Fixed seed; BKCI_FUZZ_CASES=N runs N cases per suite
// (default 60 setups, 100 manifests) and BKCI_FUZZ_SEED another seed.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBkci, type CliRun } from '../helpers/io.js';
import { randomInts } from '../helpers/random.js';
import { hostEnv, HOSTS, standInAgent } from './helpers.js';

// Each setup case runs the stand-in vendor tools and stages, reads back and tears down a tree
// (~0.3 s on 2 cores), so the default run is small; the manifest cases are cheaper.
const SETUP_CASES = Number(process.env.BKCI_FUZZ_CASES ?? 60);
const MANIFEST_CASES = Number(process.env.BKCI_FUZZ_CASES ?? 100);
const SEED = Number(process.env.BKCI_FUZZ_SEED ?? 15_004);
const TOKEN = 'bkat_Fuzz9secretAgentToken77';
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const agentBin = standInAgent();

type Rand = (k: number) => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[r(xs.length)]!;

// Values that break parsers: empty, huge numbers, negatives, garbage, control characters, long runs.
const NASTY = [
  '',
  '\n',
  '-1',
  '0',
  '4294967296',
  '99999999999999999999999',
  '0-999999999',
  '3-1',
  '0-6:0',
  '0-15:2/4',
  '1,,2',
  ',',
  'abc',
  'N/A',
  '[N/A]',
  '[Not Supported]',
  'ｇｐｕ',
  '\u0000',
  'a\nb',
  'x'.repeat(5000),
  '0'.repeat(400),
  '../../../etc',
  '"quoted"',
  '$(reboot)',
  '-',
  'GPU-',
];

function mutateText(r: Rand, text: string): string {
  const lines = text.split('\n');
  switch (r(9)) {
    case 0: // drop a line
      lines.splice(r(lines.length), 1);
      break;
    case 1: // duplicate a line
      {
        const i = r(lines.length);
        lines.splice(i, 0, lines[r(lines.length)]!);
      }
      break;
    case 2: // replace a field (comma, space or pipe separated) with a nasty value
      {
        const i = r(lines.length);
        const parts = lines[i]!.split(/(,\s*|\s+|\|)/);
        if (parts.length) parts[2 * r(Math.ceil(parts.length / 2))] = pick(r, NASTY);
        lines[i] = parts.join('');
      }
      break;
    case 3: // truncate
      return text.slice(0, r(text.length + 1));
    case 4: // the whole file a nasty value
      return pick(r, NASTY);
    case 5: // a garbage line
      lines.splice(r(lines.length + 1), 0, pick(r, NASTY));
      break;
    case 6: // swap two lines
      {
        const a = r(lines.length);
        const b = r(lines.length);
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      }
      break;
    case 7: {
      // flip a character
      const i = r(text.length + 1);
      return text.slice(0, i) + String.fromCharCode(r(128)) + text.slice(i + 1);
    }
    default: // digits replaced by large ones
      return text.replace(/\d+/g, (d) => (r(3) === 0 ? String(Number(d) * 1000003) : d));
  }
  return lines.join('\n');
}

function files(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p, base));
    else if (e.isFile()) out.push(p.slice(base.length + 1));
  }
  return out;
}

function judge(r: CliRun, what: string): void {
  expect([0, 1, 2], `${what}\n${r.stderr}`).toContain(r.code);
  const all = r.stdout + r.stderr;
  expect(all, what).not.toContain(TOKEN);
  expect(r.stderr, what).not.toMatch(/internal error|Maximum call stack|\n\s+at .+:\d+:\d+/);
  if (r.code !== 0) expect(r.stderr, what).toMatch(/^bkci: \S/m);
}

// The files worth mutating on a host: sysfs/procfs text and the stand-in tools' outputs.
const MUTABLE = /(cpulist|online|thread_siblings_list|core_cpus_list|numa_node|meminfo|hostname|information|properties|\.csv|\.txt|\.json)$/;

describe('fuzz: node setup on mutated hosts and flags', () => {
  it(
    `${SETUP_CASES} cases: every outcome is success or a named error (seed ${SEED})`,
    async () => {
      const r = randomInts(SEED);
      const hosts = [HOSTS.h100, HOSTS.l40s, HOSTS.amd, HOSTS.ascend, HOSTS.mig, HOSTS.cpu].map((h) => {
        const copy = tmp('bkci-fuzzhost-');
        cpSync(h, copy, { recursive: true });
        return { copy, mutable: files(copy).filter((f) => MUTABLE.test(f) && !f.startsWith('bin/')) };
      });
      const outside = tmp('bkci-fuzz-outside-');
      for (let i = 0; i < SETUP_CASES; i++) {
        const h = pick(r, hosts);
        const changed: [string, string][] = [];
        for (let n = 1 + r(2); n > 0; n--) {
          const f = pick(r, h.mutable);
          const p = join(h.copy, f);
          const before = readFileSync(p, 'utf8');
          changed.push([p, before]);
          writeFileSync(p, mutateText(r, before));
        }
        const flags: string[] = [];
        if (r(3) === 0) flags.push('--gpus-per-agent', pick(r, ['1', '2', '3', '4', '8', '0', '-1', 'x', '99999999999']));
        if (r(4) === 0) flags.push('--name', pick(r, ['ci', ...NASTY.filter((v) => v !== '')]));
        if (r(4) === 0) flags.push('--tags', pick(r, ['a=b', 'a=b,c=d', 'queue=x', '=x', 'a', 'a=b\nc', 'gpu=1', 'k=' + 'v'.repeat(3000)]));
        if (r(5) === 0) flags.push('--memory-reserve', pick(r, ['0', '1G', '1T', '-1G', '9999999999T', 'lots', '1.5G']));
        if (r(5) === 0) flags.push('--cpu-reserve', pick(r, ['0', '2', '1000', '-3', 'x']));
        if (r(6) === 0) flags.push('--build-root', pick(r, ['/nvme/builds', '/', 'rel/dir', '/a/../b', '/a//b', '/x y']));
        if (r(6) === 0) flags.push('--vendor', pick(r, ['nvidia', 'amd', 'ascend', 'none', 'auto']));
        if (r(8) === 0) flags.push('--agents', pick(r, ['1', '3', '0', '100000']));
        if (r(6) === 0) flags.push('--mig');
        const dry = r(2) === 0;
        const root = join(outside, `stage-${i}`);
        const what = `case ${i}: ${changed.map(([p]) => p.slice(h.copy.length)).join(', ')} ${JSON.stringify(flags)}${dry ? ' --dry-run' : ''}`;
        const res = await runBkci(
          ['node', 'setup', '--queue', 'q', '--host-root', h.copy, '--root', root, '--agent-bin', agentBin, ...flags, ...(dry ? ['--dry-run'] : [])],
          { env: hostEnv(h.copy, { BUILDKITE_AGENT_TOKEN: TOKEN, BKCI_TOOL_TIMEOUT: '10' }) },
        );
        judge(res, what);
        if (dry || res.code !== 0) expect(existsSync(root), what).toBe(false);
        // Nothing outside the staging roots.
        expect(
          readdirSync(outside).filter((n) => !n.startsWith('stage-')),
          what,
        ).toEqual([]);
        if (res.code === 0 && !dry) {
          // status and teardown read back what setup wrote; teardown --purge leaves the root empty.
          judge(await runBkci(['node', 'status', '--root', root, '--json']), `${what} (status)`);
          const t = await runBkci(['node', 'teardown', '--root', root, '--purge']);
          judge(t, `${what} (teardown)`);
          expect(t.code, `${what} (teardown)`).toBe(0);
          expect(readdirSync(root), what).toEqual([]);
        }
        rmSync(root, { recursive: true, force: true });
        for (const [p, before] of changed.reverse()) writeFileSync(p, before);
      }
    },
    Math.max(120_000, 2_000 * Math.max(SETUP_CASES, MANIFEST_CASES)),
  );
});

describe('fuzz: status and teardown on mutated manifests', () => {
  it(
    `${MANIFEST_CASES} cases: a mutated manifest is read or refused by name, never followed outside the root`,
    async () => {
      const r = randomInts(SEED + 1);
      const base = tmp('bkci-fuzzman-');
      const root0 = join(base, 'root');
      const s = await runBkci(['node', 'setup', '--queue', 'q', '--host-root', HOSTS.l40s, '--root', root0, '--agent-bin', agentBin], {
        env: hostEnv(HOSTS.l40s, { BUILDKITE_AGENT_TOKEN: TOKEN }),
      });
      expect(s.code, s.stderr).toBe(0);
      const manifest = readFileSync(join(root0, 'etc/buildkite-agent/bkci/manifest.json'), 'utf8');
      const sentinel = join(base, 'sentinel');
      const values = [...NASTY, '/etc/passwd', `/etc/buildkite-agent/bkci/../../../../../../..${sentinel}`, sentinel, '/', 1e300, -1, null, true, [], {}];
      for (let i = 0; i < MANIFEST_CASES; i++) {
        writeFileSync(sentinel, 'keep');
        const root = join(base, `r${i}`);
        cpSync(root0, root, { recursive: true });
        let text: string;
        if (r(3) === 0) text = mutateText(r, manifest);
        else {
          // Structured: a random leaf of the JSON replaced with a nasty value.
          const m = JSON.parse(manifest) as Record<string, unknown>;
          let node: unknown = m;
          let parent: Record<string, unknown> | unknown[] = m;
          let key: string | number = 'queue';
          for (let depth = 0; depth < 4 && typeof node === 'object' && node !== null; depth++) {
            const keys: (string | number)[] = Array.isArray(node) ? node.map((_, k) => k) : Object.keys(node);
            if (!keys.length) break;
            parent = node as Record<string, unknown>;
            key = pick(r, keys);
            node = (node as Record<string | number, unknown>)[key];
          }
          (parent as Record<string | number, unknown>)[key] = pick(r, values);
          text = JSON.stringify(m);
        }
        writeFileSync(join(root, 'etc/buildkite-agent/bkci/manifest.json'), text);
        const cmd = pick(r, [['status', '--json'], ['teardown'], ['teardown', '--purge'], ['teardown', '--dry-run', '--json'], ['doctor']]);
        const res = await runBkci(['node', ...cmd, '--root', root, ...(cmd[0] === 'doctor' ? ['--host-root', HOSTS.l40s] : [])], { env: hostEnv(HOSTS.l40s) });
        judge(res, `case ${i}: node ${cmd.join(' ')} on ${text.slice(0, 300)}`);
        expect(readFileSync(sentinel, 'utf8'), `case ${i}`).toBe('keep');
        expect(
          readdirSync(base)
            .filter((n) => !/^r\d+$/.test(n))
            .sort(),
        ).toEqual(['root', 'sentinel']);
        rmSync(root, { recursive: true, force: true });
      }
    },
    Math.max(120_000, 2_000 * Math.max(SETUP_CASES, MANIFEST_CASES)),
  );
});
