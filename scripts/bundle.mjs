#!/usr/bin/env node
// Bundles the CLI into dist/bundle/ and makes its code cache. Run by `npm run build` after tsc.
//   bin.js          the package's bin: src/cli/launch.cts, CommonJS (dist/bundle/package.json)
//   bkci.cjs        the whole CLI in one CommonJS script (src/cli/start.ts and all it imports);
//                   the code behind a dynamic import() initialises on first use, as before
//   bkci.cjs.cache  V8's code for it, from one render of the bundled example (see launch.cts)
// One script instead of ~100 ES modules: resolving, loading and compiling modules one by one was
// most of a `bkci pipeline render` on Node 20, which has no module compile cache. Rarely used
// dependencies stay external and load on first use.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonAsParse, lazyChildProcess } from './esbuild-plugins.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bundle');
rmSync(outdir, { recursive: true, force: true });
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
// Ties the code cache to this build: a rebuilt bundle never meets an old cache.
const buildId = randomBytes(8).toString('hex');
const common = { absWorkingDir: root, bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'warning', legalComments: 'none' };

await build({
  ...common,
  entryPoints: ['src/cli/start.ts'],
  outfile: join(outdir, 'bkci.cjs'),
  // Every import() becomes a require() (Node >= 20.19 requires ES modules such as execa too), so
  // the script runs without Node's ES module loader.
  supported: { 'dynamic-import': false },
  // The API client, process runner, logger and general YAML parser load only when needed.
  external: ['undici', 'execa', 'pino', 'yaml'],
  // import.meta.url (templates/, package.json, the bin's own path) is bkci.cjs's URL: paths
  // relative to it keep the depth they have in dist/cli/.
  define: { 'import.meta.url': '__bkciUrl', __BKCI_VERSION__: JSON.stringify(version) },
  banner: { js: 'var __bkciUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [lazyChildProcess, jsonAsParse],
});
let cli = readFileSync(join(outdir, 'bkci.cjs'), 'utf8');
// (Lines where import( stands in a comment, as in a dependency's notes, do not count.)
const importLine = cli.split('\n').find((l) => /\bimport\(/.test(l) && !/^\s*(\/\/|\*|\/\*)/.test(l) && !/\/\/.*\bimport\(/.test(l));
if (importLine) throw new Error(`bkci.cjs still has an import(): it would need the ES module loader: ${importLine.trim().slice(0, 120)}`);
// esbuild escapes non-ASCII text in strings but keeps comments as written: one such character
// makes V8 hold the whole 750 KB script as two-byte text, slower to read and to scan.
cli = cli.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
// The file holds the CommonJS wrapper itself, so the launcher compiles the text as read: wrapping it
// at run time made V8 flatten a 1 MB concatenation, another copy of the bundle in the heap (~300
// page faults, and a heap that grew sooner). Run by V8 as a script (launch.cts) its value is that
// function; required as a module (Node's compile cache on Node >= 22), it calls itself with the
// module's own arguments.
writeFileSync(
  join(outdir, 'bkci.cjs'),
  `((f, a) => (a ? f.apply(a[0], a) : f))(function (exports, require, module, __filename, __dirname) {${cli}\n}, typeof arguments === 'object' ? arguments : undefined);\n`,
);

await build({
  ...common,
  entryPoints: ['src/cli/launch.cts'],
  outfile: join(outdir, 'bin.js'),
  define: { __BKCI_VERSION__: JSON.stringify(version), __BKCI_BUILD_ID__: JSON.stringify(buildId) },
});
// bin.js starts as a POSIX sh script that execs Node on the same file; to JavaScript each of the
// sh lines is a string statement and a comment. It exists for one thing: Node 20 reads the whole
// NODE_EXTRA_CA_CERTS file and builds its root certificate store before running any script
// (~35 ms for a system CA bundle, half of a `pipeline render`; Node 22 does it on first TLS use).
// Commands that make no TLS connection (pipeline, node, help) start Node without the variable;
// launch.cts sets it again in process.env for the processes bkci runs. Global options come before
// the command word; --log-level and --log-format are the ones that take a value. `node bin.js` skips the lines.
const shLines = [
  '#!/bin/sh',
  '":" //; bkci_w_=; bkci_v_=; for bkci_a_ in "$@"; do if [ -n "$bkci_v_" ]; then bkci_v_=; continue; fi; case $bkci_a_ in --log-level|--log-format) bkci_v_=1;; -*) ;; *) bkci_w_=$bkci_a_; break;; esac; done',
  // `pipeline validate --check-queues` asks the agents API: the variable stays.
  '":" //; for bkci_a_ in "$@"; do case $bkci_a_ in --check-queues) bkci_w_=tls;; --) break;; esac; done',
  '":" //; unset BKCI_DEFERRED_NODE_EXTRA_CA_CERTS; case $bkci_w_ in ""|pipeline|node|help) if [ -n "${NODE_EXTRA_CA_CERTS+set}" ]; then BKCI_DEFERRED_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export BKCI_DEFERRED_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi;; esac',
  '":" //; exec node "$0" "$@"',
];
const bin = readFileSync(join(outdir, 'bin.js'), 'utf8');
if (!bin.startsWith('#!')) throw new Error('bin.js lost its #! line: check the sh lines in scripts/bundle.mjs');
writeFileSync(join(outdir, 'bin.js'), shLines.join('\n') + bin.slice(bin.indexOf('\n')));
// esbuild wrote the file, so a mode given to writeFileSync would not apply.
chmodSync(join(outdir, 'bin.js'), 0o755);

// The package is "type": "module"; the bundle is CommonJS.
writeFileSync(join(outdir, 'package.json'), '{ "type": "commonjs" }\n');

// The code cache: one render, with validation, of a template that exercises the language and then
// renders the bundled template over the example test list (scripts/code-cache-training.j2).
const train = spawnSync(
  process.execPath,
  [join(outdir, 'bin.js'), 'pipeline', 'render', 'scripts/code-cache-training.j2', 'examples/test-pipeline.yaml', '--quiet'],
  {
    cwd: root,
    env: { ...process.env, BKCI_CODE_CACHE: 'write' },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
if (train.status !== 0 || !existsSync(join(outdir, 'bkci.cjs.cache'))) throw new Error(`making the code cache failed (exit ${train.status ?? train.signal})`);
