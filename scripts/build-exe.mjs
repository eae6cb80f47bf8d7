#!/usr/bin/env node
// Builds bkci as a single executable per platform (Node's single executable applications):
//   dist/exe/bkci-linux-x64     (and bkci-linux-arm64 when its runtime can be had from the registry)
//   dist/exe/<name>.sha256      sha256sum's format, for the release recipe in docs/install.md
// 1. esbuild bundles src/cli/sea.ts with every dependency into one CommonJS script;
// 2. the Node runtime comes from the npm registry (node-linux-<arch>, pinned by version and
//    integrity below), never from this machine: the package cache is node_modules/.cache/bkci-exe;
// 3. that runtime writes the preparation blob: the small main script (src/cli/sea.ts) and, as
//    assets, the bundle, the bundled template and (for the host's architecture, made by one
//    training render of a first build) V8's code cache for the bundle; postject injects it into a
//    copy of the runtime. The training render runs the executable itself: for the host's
//    architecture directly, for the other one under qemu-user where it is installed (qemu-aarch64
//    with an aarch64 C library, Debian's qemu-user and libc6-arm64-cross / libstdc++6-arm64-cross);
//    without qemu that executable is built without a cache (correct, only slower to start).
// Usage: node scripts/build-exe.mjs [--arch x64|arm64|all]   (default: all that can be had)
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { arch as hostArch } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleCreatedRequires, jsonAsParse, lazyChildProcess } from './esbuild-plugins.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/exe');
const cacheDir = join(root, 'node_modules/.cache/bkci-exe');

// The runtime: Node 24, an LTS line (Node 20, which the npm package still runs on, is end-of-life).
// The integrity is the registry's sha512 of each tarball, checked before it is unpacked.
const NODE_VERSION = '24.22.3';
const RUNTIMES = {
  x64: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  arm64: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
};
// Bundled files carried as assets (src/util/bundled.ts reads them by these names).
const ASSETS = ['templates/default.j2'];
// postject's marker: the fuse Node checks to know it carries a blob.
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function fail(message) {
  process.stderr.write(`build-exe: ${message}\n`);
  process.exit(1);
}

const archArg = process.argv.includes('--arch') ? process.argv[process.argv.indexOf('--arch') + 1] : 'all';
const archs = archArg === 'all' ? Object.keys(RUNTIMES) : [archArg];
for (const a of archs) if (!(a in RUNTIMES)) fail(`--arch ${a}: expected x64, arm64 or all`);
// The blob is made by a runtime of the host's architecture (of the same Node version).
if (!(hostArch() in RUNTIMES)) fail(`this machine's architecture (${hostArch()}) has no runtime here to make the blob with`);

// The runtime's node binary, unpacked from the registry's node-linux-<arch> package (cached).
function runtime(arch) {
  const dir = join(cacheDir, `node-v${NODE_VERSION}-linux-${arch}`);
  const bin = join(dir, 'package/bin/node');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const spec = `node-linux-${arch}@${NODE_VERSION}`;
  let packed;
  try {
    packed = JSON.parse(execFileSync('npm', ['pack', spec, '--json', '--pack-destination', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  } catch (err) {
    return { missing: `npm pack ${spec} failed (${err.status ?? err.code}): the registry does not have it` };
  }
  const info = packed[0];
  if (info.integrity !== RUNTIMES[arch]) fail(`${spec}: integrity ${info.integrity} is not the pinned ${RUNTIMES[arch]}`);
  const tarball = join(dir, info.filename);
  const sha512 = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64');
  if (sha512 !== RUNTIMES[arch]) fail(`${tarball}: sha512 does not match the pinned integrity`);
  execFileSync('tar', ['-xzf', tarball, '-C', dir, 'package/bin/node', 'package/LICENSE']);
  rmSync(tarball);
  return bin;
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
mkdirSync(outdir, { recursive: true });
// A work directory of this run's own: two builds at once (test files that each build what is
// missing) do not share one.
const work = mkdtempSync(join(outdir, '.work-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node24',
  logLevel: 'warning',
  legalComments: 'none',
  // Comments and white space out (a smaller script to read); names stay as written.
  minifyWhitespace: true,
  // Every import() becomes a require() of bundled code: no ES module loader in the executable.
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__bkciUrl', __BKCI_VERSION__: JSON.stringify(pkg.version), __BKCI_EXECUTABLE__: 'true' },
};
// The CLI with every dependency: an asset that the main script compiles with its code cache.
const cliBundle = join(work, 'bkci.cjs');
await build({
  ...common,
  entryPoints: ['src/cli/start.ts'],
  outfile: cliBundle,
  banner: { js: 'var __bkciUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [lazyChildProcess, jsonAsParse, bundleCreatedRequires],
});
// As scripts/bundle.mjs does: ASCII only, so V8 holds the script as one-byte text (and the main
// script reads it as latin1, without UTF-8 decoding), and the CommonJS wrapper written in, so the
// text is compiled as read (a wrapper added at run time made V8 flatten another copy of it).
const ascii = readFileSync(cliBundle, 'utf8').replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
writeFileSync(cliBundle, `(function (exports, require, module, __filename, __dirname) {${ascii}\n})`);
// The main script: the --version answer and the loader (src/cli/sea.ts).
const main = join(work, 'sea-main.cjs');
await build({ ...common, entryPoints: ['src/cli/sea.ts'], outfile: main });

// How to run an executable of `arch` on this machine: directly for the host's architecture, under
// qemu-user for another one (the emulator on PATH, and a C library tree for the target: QEMU_LD_PREFIX
// or the Debian cross-library directory), or not at all. test/exe/arm64.test.ts looks the same way.
const QEMU = {
  arm64: { emulator: 'qemu-aarch64', sysroot: '/usr/aarch64-linux-gnu', loader: 'lib/ld-linux-aarch64.so.1' },
  x64: { emulator: 'qemu-x86_64', sysroot: '/usr/x86_64-linux-gnu', loader: 'lib64/ld-linux-x86-64.so.2' },
};
function runner(arch) {
  if (arch === hostArch()) return (exe, args) => [exe, args];
  const q = QEMU[arch];
  const sysroot = process.env.QEMU_LD_PREFIX || q.sysroot;
  const emulator = (process.env.PATH ?? '')
    .split(':')
    .filter(Boolean)
    .map((d) => join(d, q.emulator))
    .find((f) => existsSync(f));
  if (!emulator || !existsSync(join(sysroot, q.loader))) return undefined;
  return (exe, args) => [emulator, ['-L', sysroot, exe, ...args]];
}

const hostNode = runtime(hostArch());
if (typeof hostNode !== 'string') fail(hostNode.missing);
const built = [];
for (const arch of archs) {
  const node = runtime(arch);
  if (typeof node !== 'string') {
    if (archArg !== 'all') fail(node.missing);
    process.stderr.write(`build-exe: skipping linux-${arch}: ${node.missing}\n`);
    continue;
  }
  const name = `bkci-linux-${arch}`;
  // One executable from a blob of the main script and the assets (and the code cache, if any).
  // The blob records the main script's path as given: relative to the work directory, so that it
  // does not carry the build machine's paths and is the same for both architectures.
  const inject = (assets, target) => {
    const blob = join(work, `${name}.blob`);
    const config = { main: basename(main), output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, assets };
    writeFileSync(join(work, `${name}.json`), JSON.stringify(config));
    execFileSync(hostNode, ['--experimental-sea-config', join(work, `${name}.json`)], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    copyFileSync(node, target);
    chmodSync(target, 0o755);
    // postject warns about a section it does not know in Node's ELF notes ('.note.100'), harmlessly.
    execFileSync(process.execPath, [join(root, 'node_modules/postject/dist/cli.js'), target, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  };
  const assets = { 'bkci.cjs': cliBundle, ...Object.fromEntries(ASSETS.map((a) => [a, join(root, a)])) };
  const tmp = join(work, name);
  inject(assets, tmp);
  // V8's code cache only fits the architecture that made it: one training render by the executable
  // itself (as scripts/bundle.mjs trains the npm bin's) writes it, and a second blob carries it.
  const run = runner(arch);
  if (run) {
    const cache = join(work, `${name}.cache`);
    const [cmd, args] = run(tmp, ['pipeline', 'render', 'scripts/code-cache-training.j2', 'examples/test-pipeline.yaml', '--quiet']);
    const train = spawnSync(cmd, args, {
      cwd: root,
      env: { PATH: '/nonexistent', BKCI_CODE_CACHE: 'write', BKCI_CODE_CACHE_FILE: cache },
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 600_000,
    });
    if (train.status !== 0 || !existsSync(cache)) fail(`the training render of ${name} failed (exit ${train.status ?? train.signal})`);
    inject({ ...assets, 'bkci.cjs.cache': cache }, tmp);
  } else {
    process.stderr.write(`build-exe: ${name} carries no code cache: no ${QEMU[arch].emulator} with a C library tree to run it here\n`);
  }
  const exe = join(outdir, name);
  renameSync(tmp, exe);
  const sha = createHash('sha256').update(readFileSync(exe)).digest('hex');
  writeFileSync(join(outdir, `${name}.sha256`), `${sha}  ${name}\n`);
  built.push(`${name} (${(readFileSync(exe).length / 2 ** 20).toFixed(1)} MiB, ${run ? 'code cache' : 'no code cache'}, sha256 ${sha.slice(0, 12)}...)`);
}
// The runtime's licence travels with the executables.
copyFileSync(join(dirname(dirname(hostNode)), 'LICENSE'), join(outdir, 'NODE-LICENSE'));
rmSync(work, { recursive: true, force: true });
process.stderr.write(`build-exe: Node ${NODE_VERSION}: ${built.join(', ')}\n`);
