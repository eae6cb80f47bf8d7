// esbuild plugins shared by the npm bundle (scripts/bundle.mjs) and the single executable
// (scripts/build-exe.mjs).
import { readFileSync } from 'node:fs';

// commander requires child_process (and with it net, dgram...) at load time, only to spawn
// executable subcommands, which bkci has none of: ~2 ms of every run. Loaded on first use instead.
export const lazyChildProcess = {
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
export const jsonAsParse = {
  name: 'json-as-parse',
  setup(b) {
    b.onLoad({ filter: /\.json$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      return { contents: `export default JSON.parse(${JSON.stringify(JSON.stringify(JSON.parse(text)))});`, loader: 'js' };
    });
  },
};

// The single executable bundles every dependency: `const require = createRequire(import.meta.url)`
// (how the ES module sources load pino and yaml lazily) would make esbuild leave those require()
// calls to run time, where a single executable can load only Node's built-in modules. Without the
// line, they are the bundle's own require() calls and esbuild bundles what they name.
const CREATED_REQUIRE = 'const require = createRequire(import.meta.url);';
export const bundleCreatedRequires = {
  name: 'bundle-created-requires',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      if (!src.includes(CREATED_REQUIRE)) return undefined;
      return { contents: src.replace(CREATED_REQUIRE, ''), loader: 'ts' };
    });
  },
};
