#!/usr/bin/env node
// `npm run bench`: whole-process wall times (median of N round-robin runs) of bkci against the other ways of
// rendering vLLM's template, plus a 5,000-step render+validate and `bkci --version`.
// Writes bench/results.md and prints it. Needs `npm run build` first; vLLM's inputs are test/fixtures/vllm.
// `bkci` is the bundled CLI (dist/bundle/bin.js, the package's bin) executed as users run it; one
// row runs it as `node bin.js`, one the unbundled tsc output, for comparison.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vllm = join(root, 'test/fixtures/vllm');
const runs = Number(process.env.BENCH_RUNS ?? 15);
const bin = join(root, 'dist/bundle/bin.js');
const unbundled = join(root, 'dist/cli/bin.js');
const tmp = mkdtempSync(join(tmpdir(), 'bkci-bench-'));

const set = JSON.parse(readFileSync(join(vllm, 'variable-sets.json'), 'utf8')).sets[1];
const defs = set.defines.flatMap(([k, v]) => ['-D', `${k}=${v}`]);

function python() {
  for (const p of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(p, ['-c', 'import jinja2, yaml']).status === 0) return p;
  }
  return undefined;
}

// Python's Jinja2 with an Undefined that orders like minijinja (undefined < anything).
const jinja2Script = join(tmp, 'j2.py');
writeFileSync(
  jinja2Script,
  `
import sys, yaml, jinja2
class U(jinja2.Undefined):
    def __lt__(self, o): return True
    def __le__(self, o): return True
    def __gt__(self, o): return False
    def __ge__(self, o): return False
def split(s, sep=None): return s.split(sep)
env = jinja2.Environment(undefined=U, keep_trailing_newline=False)
env.filters['split'] = split
t = env.from_string(open(sys.argv[1]).read())
ctx = yaml.safe_load(open(sys.argv[2]))
for d in sys.argv[3:]:
    k, v = d.split('=', 1); ctx[k] = v
sys.stdout.write(t.render(**ctx) + '\\n')
`,
);

// minijinja-js (the MiniJinja engine) as a script.
const mjScript = join(tmp, 'mj.mjs');
writeFileSync(
  mjScript,
  `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(join(root, 'package.json'))});
const { Environment } = require('minijinja-js');
const YAML = require('yaml');
const fs = require('node:fs');
const [t, d, ...defs] = process.argv.slice(2);
const ctx = YAML.parse(fs.readFileSync(d, 'utf8'));
for (const x of defs) { const i = x.indexOf('='); ctx[x.slice(0, i)] = x.slice(i + 1); }
process.stdout.write(new Environment().renderStr(fs.readFileSync(t, 'utf8'), ctx) + '\\n');
`,
);

// 5,000 synthetic steps through the bundled template.
const big = join(tmp, 'big.yaml');
writeFileSync(
  big,
  'steps:\n' +
    Array.from(
      { length: 5000 },
      (_v, i) => `  - label: step ${i}\n    key: s${i}\n    commands: [pytest tests/t${i}.py]\n    source_file_dependencies: [src/m${i % 50}/]\n`,
    ).join(''),
);
const changed = join(tmp, 'changed.txt');
writeFileSync(changed, 'src/m1/a.py\n');

// One timed run of a command: wall ms and peak RSS MB (from /usr/bin/time).
function runOnce(c) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', c.cmd, ...c.args], { encoding: 'utf8', maxBuffer: 1 << 28, env: c.env ?? process.env, cwd: c.cwd });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${c.cmd} ${c.args.join(' ')} failed: ${r.stderr.slice(-500)}`);
  return { ms, rss: Number(r.stderr.trim().split('\n').pop()) / 1024 };
}

if (!existsSync('/usr/bin/time')) {
  console.error('bench: /usr/bin/time is needed (apt-get install -y time)');
  process.exit(2);
}
const node = process.execPath;
const py = python();
const cases = [];
const bench = (name, cmd, args, env) => {
  const c = { name, cmd, args, env, times: [], rss: 0 };
  cases.push(c);
  return c;
};
const bare = bench('node -e 0 (floor)', node, ['-e', '0']);
// bkci as users run it: the bin executed (its sh lines exec `node` from PATH on the same file),
// with this Node first on PATH. The sh lines start Node without NODE_EXTRA_CA_CERTS for commands
// that make no TLS connection (see scripts/bundle.mjs); `node bin.js` skips them.
const binEnv = (extra = {}) => ({ ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...extra });
// The vLLM render as bkci runs it (template, test list, the set's -D definitions).
const vllmRender = [join(vllm, 'test-template-ci.j2'), join(vllm, 'test-pipeline.yaml'), ...defs];
const bk = bench('bkci: vLLM render + validate', bin, ['pipeline', 'render', ...vllmRender], binEnv());
const bkNode = bench('node dist/bundle/bin.js (Node started as is): vLLM render + validate', node, [bin, 'pipeline', 'render', ...vllmRender]);
bench('bkci (unbundled dist/cli, node dist/cli/bin.js): vLLM render + validate', node, [unbundled, 'pipeline', 'render', ...vllmRender]);
bench(
  'bkci without its code cache (BKCI_CODE_CACHE=off): vLLM render + validate',
  bin,
  ['pipeline', 'render', ...vllmRender],
  binEnv({ BKCI_CODE_CACHE: 'off' }),
);
bench('bkci: vLLM render --no-validate', bin, ['pipeline', 'render', '--no-validate', ...vllmRender], binEnv());
const j2 = py
  ? bench('Python Jinja2: vLLM render', py, [
      jinja2Script,
      join(vllm, 'test-template-ci.j2'),
      join(vllm, 'test-pipeline.yaml'),
      ...set.defines.map(([k, v]) => `${k}=${v}`),
    ])
  : undefined;
bench('minijinja-js: vLLM render', node, [
  mjScript,
  join(vllm, 'test-template-ci.j2'),
  join(vllm, 'test-pipeline.yaml'),
  ...set.defines.map(([k, v]) => `${k}=${v}`),
]);
const big5k = bench(
  'bkci: 5,000 steps, bundled template + selection + validate',
  bin,
  ['pipeline', 'render', join(root, 'templates/default.j2'), big, '--changed-files', changed],
  binEnv(),
);
const ver = bench('bkci --version', bin, ['--version'], binEnv());

// pipeline generate on vLLM's test areas (the 9 vendored files, each copied 5 times under other group
// names and keys: about the size of vLLM's 45 files), in a git repository on a PR branch, against
// vLLM's Python generator (BKCI_VLLM_GENERATOR: a checkout of ci-infra's buildkite/pipeline_generator;
// its code is not in this repository). aws/docker/buildkite-agent are stand-ins on PATH for both.
const genRepo = join(tmp, 'gen-repo');
const genBin = join(tmp, 'gen-bin');
{
  const { cpSync, mkdirSync, readdirSync, chmodSync } = await import('node:fs');
  const areas = join(root, 'test/fixtures/vllm-test-areas/.buildkite');
  mkdirSync(join(genRepo, '.buildkite/test_areas'), { recursive: true });
  cpSync(join(areas, 'ci_config.yaml'), join(genRepo, '.buildkite/ci_config.yaml'));
  cpSync(join(areas, 'image_build'), join(genRepo, '.buildkite/image_build'), { recursive: true });
  for (const f of readdirSync(join(areas, 'test_areas')))
    for (let i = 0; i < 5; i++) {
      const text = readFileSync(join(areas, 'test_areas', f), 'utf8')
        .replace(/^group: (.*)$/m, `group: $1 ${i}`)
        .replace(/^(\s*-?\s*label: ["']?)/gm, `$1${i} `)
        .replace(/^(\s*key: )(.*)$/gm, `$1$2-${i}`);
      writeFileSync(join(genRepo, '.buildkite/test_areas', `${i}-${f}`), text);
    }
  mkdirSync(join(genRepo, 'vllm'), { recursive: true });
  writeFileSync(join(genRepo, 'vllm/a.py'), 'x\n');
  const git = (...a) =>
    spawnSync('git', a, {
      cwd: genRepo,
      env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' },
    });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-q', '-m', 'base');
  git('update-ref', 'refs/remotes/origin/main', 'HEAD');
  git('checkout', '-q', '-b', 'work');
  writeFileSync(join(genRepo, 'vllm/a.py'), 'y\n');
  git('commit', '-qam', 'change');
  mkdirSync(genBin);
  for (const [name, body] of [
    ['aws', 'echo pw'],
    ['docker', 'if [ "$1" = login ]; then cat >/dev/null; exit 0; fi; exit 1'],
    ['buildkite-agent', 'exit 0'],
  ]) {
    writeFileSync(join(genBin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(genBin, name), 0o755);
  }
}
const genEnv = {
  ...binEnv(),
  PATH: `${genBin}:${dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  BUILDKITE_BRANCH: 'feature',
  BUILDKITE_PULL_REQUEST: '4242',
  BUILDKITE_COMMIT: 'abc',
  BUILDKITE_PULL_REQUEST_BASE_BRANCH: 'main',
};
const inRepo = (c) => ({ ...c, cwd: genRepo });
const genBk = bench('bkci: pipeline generate --profile vllm (vLLM test areas x5, PR)', bin, ['pipeline', 'generate', '-o', join(tmp, 'gen-bkci.yaml')], genEnv);
genBk.cwd = genRepo;
let genPy;
const genPython = process.env.BKCI_VLLM_GENERATOR
  ? [process.env.BKCI_PYTHON, 'python3', '/usr/bin/python3']
      .filter(Boolean)
      .find((p) => spawnSync(p, ['-c', 'import pydantic, click, requests, yaml']).status === 0)
  : undefined;
if (genPython) {
  genPy = bench(
    'vLLM pipeline generator (Python): same input',
    genPython,
    [join(root, 'test/fixtures/vllm-generator/driver.py'), process.env.BKCI_VLLM_GENERATOR, '.buildkite/ci_config.yaml', join(tmp, 'gen-py.yaml')],
    genEnv,
  );
  genPy.cwd = genRepo;
}
void inRepo;
// Node 20 reads NODE_EXTRA_CA_CERTS at start-up (Node 22+ only when TLS is first used): where it
// is set (as on the development machine), `node -e 0` and the `node bin.js` row pay for it. The
// same rows without it show the floor and bkci's time as a machine without it would see them.
let noCa;
if (process.env.NODE_EXTRA_CA_CERTS) {
  const env = binEnv();
  delete env.NODE_EXTRA_CA_CERTS;
  noCa = {
    bare: bench('node -e 0, NODE_EXTRA_CA_CERTS unset', node, ['-e', '0'], env),
    bk: bench('bkci: vLLM render + validate, NODE_EXTRA_CA_CERTS unset', bin, ['pipeline', 'render', ...vllmRender], env),
  };
}

// The single executable (npm run build:exe), against `node -e 0` of its own Node (the runtime it
// was built from, node_modules/.cache/bkci-exe) and the npm bin, all without NODE_EXTRA_CA_CERTS
// (issue 13's targets are for a machine that does not set it).
const builtExe = join(root, 'dist/exe/bkci-linux-x64');
const exeNode = join(root, 'node_modules/.cache/bkci-exe');
let sea;
if (existsSync(builtExe)) {
  const { readdirSync, openSync, writeSync, closeSync, chmodSync, statSync } = await import('node:fs');
  const runtime = readdirSync(exeNode).find((d) => d.endsWith('-linux-x64'));
  const env = binEnv();
  delete env.NODE_EXTRA_CA_CERTS;
  // The rows run a copy written in 64 KiB pieces, as a download writes it. postject writes the
  // built file in one piece, and on kernels whose page cache keeps such a file in large folios
  // every page fault on it maps a whole folio: its peak RSS reads ~18 MB higher (shared page-cache
  // pages of the file, not memory the process allocates; no time difference measured).
  const exe = join(tmp, 'bkci-linux-x64');
  const bytes = readFileSync(builtExe);
  const fd = openSync(exe, 'w', 0o755);
  for (let off = 0; off < bytes.length; off += 65536) writeSync(fd, bytes, off, Math.min(65536, bytes.length - off));
  closeSync(fd);
  chmodSync(exe, 0o755);
  sea = {
    bare: bench(`node -e 0 of the executable's runtime (${runtime}), NODE_EXTRA_CA_CERTS unset`, join(exeNode, runtime, 'package/bin/node'), ['-e', '0'], env),
    render: bench('executable: vLLM render + validate, NODE_EXTRA_CA_CERTS unset', exe, ['pipeline', 'render', ...vllmRender], env),
    noCache: bench(
      'executable without its code cache (BKCI_CODE_CACHE=off): vLLM render + validate, NODE_EXTRA_CA_CERTS unset',
      exe,
      ['pipeline', 'render', ...vllmRender],
      { ...env, BKCI_CODE_CACHE: 'off' },
    ),
    npm: bench('npm bin: vLLM render + validate, NODE_EXTRA_CA_CERTS unset', bin, ['pipeline', 'render', ...vllmRender], env),
    version: bench('executable: --version, NODE_EXTRA_CA_CERTS unset', exe, ['--version'], env),
    size: statSync(builtExe).size,
  };
} else console.error('bench: no dist/exe/bkci-linux-x64 (npm run build:exe): the executable rows are left out');

// Round-robin: every round runs each command once, so a burst of load on the machine slows all
// rows alike instead of the one that happened to be running (the ratios are what count). One
// untimed round first warms the file cache.
for (const c of cases) runOnce(c);
for (let i = 0; i < runs; i++) {
  for (const c of cases) {
    const r = runOnce(c);
    c.times.push(r.ms);
    c.rss = Math.max(c.rss, r.rss);
  }
}
for (const c of cases) {
  const t = [...c.times].sort((x, y) => x - y);
  c.median = t[Math.floor(t.length / 2)];
}
const rows = cases.map((c) => [c.name, c.median.toFixed(1), c.rss.toFixed(0)]);

const ratio = (a, b) => (a.median / b.median).toFixed(2);
const lines = [
  `# bkci benchmark`,
  '',
  `Machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; median of ${runs} runs; ${new Date().toISOString()}`,
  '',
  '| command | median wall ms | peak RSS MB |',
  '| --- | ---: | ---: |',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
  'Ratios (targets in parentheses):',
  `- vLLM render / bare node: ${ratio(bk, bare)} (<= 2); node bin.js: ${ratio(bkNode, bare)}${noCa ? `; both without NODE_EXTRA_CA_CERTS: ${ratio(noCa.bk, noCa.bare)}` : ''}`,
  j2
    ? `- vLLM render / Python Jinja2: ${ratio(bk, j2)} (<= 0.5); node bin.js: ${ratio(bkNode, j2)}${noCa ? `; without NODE_EXTRA_CA_CERTS: ${ratio(noCa.bk, j2)}` : ''}`
    : '- Python Jinja2 not available',
  `- bkci --version / bare node: ${ratio(ver, bare)} (<= 1.3)`,
  `- 5,000 steps render+validate: ${big5k.median.toFixed(0)} ms (< 1000), ${big5k.rss.toFixed(0)} MB (< 200)`,
  sea
    ? `- executable (${(sea.size / 2 ** 20).toFixed(1)} MiB): vLLM render / its node -e 0: ${ratio(sea.render, sea.bare)} (<= 2); --version / its node -e 0: ${ratio(sea.version, sea.bare)} (<= 1.5); render / npm bin's: ${ratio(sea.render, sea.npm)} (<= 1); without its code cache: ${ratio(sea.noCache, sea.bare)}`
    : '- executable not built',
  genPy
    ? `- pipeline generate / vLLM's Python generator: ${ratio(genBk, genPy)} (<= 0.5)`
    : `- pipeline generate: ${genBk.median.toFixed(0)} ms; the Python generator was not run (set BKCI_VLLM_GENERATOR to a checkout of ci-infra's buildkite/pipeline_generator)`,
  '',
];
writeFileSync(join(root, 'bench/results.md'), lines.join('\n'));
process.stdout.write(lines.join('\n'));
