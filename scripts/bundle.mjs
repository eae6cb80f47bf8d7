#!/usr/bin/env node
// Bundles the CLI into dist/bundle/ (one file plus lazily loaded chunks), so a run loads a few
// files instead of ~100 ES modules: Node 20 has no module compile cache, and resolving and
// compiling modules one by one was most of `bkci pipeline render`'s time. Lazily loaded, rarely
// used dependencies stay external. Run by `npm run build` after tsc.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bundle');
rmSync(outdir, { recursive: true, force: true });
// commander requires child_process (and with it net, dgram...) at load time, only to spawn
// executable subcommands, which bkci has none of: ~2 ms of every run. Loaded on first use instead.
const lazyChildProcess = {
  name: 'lazy-child-process-in-commander',
  setup(b) {
    b.onLoad({ filter: /commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const eager = "const childProcess = require('node:child_process');";
      const src = readFileSync(args.path, 'utf8');
      if (!src.includes(eager)) throw new Error(`${args.path}: commander changed; update the lazy child_process patch in scripts/bundle.mjs`);
      return { contents: src.replace(eager, "const childProcess = { get spawn() { return require('node:child_process').spawn; } };"), loader: 'js' };
    });
  },
};

// Large JSON (the pipeline model's JSON Schema) as JSON.parse of a string literal: V8 parses that
// faster than the same data written as a JavaScript object literal.
const jsonAsParse = {
  name: 'json-as-parse',
  setup(b) {
    b.onLoad({ filter: /\.json$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      return { contents: `export default JSON.parse(${JSON.stringify(JSON.stringify(JSON.parse(text)))});`, loader: 'js' };
    });
  },
};

await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/bin.ts'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Chunks sit beside bin.js: paths relative to import.meta.url (package.json, templates/) keep
  // the depth they have in dist/cli/.
  chunkNames: '[name]-[hash]',
  // The API client, process runner, logger and general YAML parser load only when needed.
  external: ['undici', 'execa', 'pino', 'yaml'],
  // CommonJS dependencies (commander, nunjucks) call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bkciRequire } from 'node:module'; const require = __bkciRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
  plugins: [lazyChildProcess, jsonAsParse],
  // `bkci --version` prints this without reading package.json.
  define: { __BKCI_VERSION__: JSON.stringify(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version) },
});
