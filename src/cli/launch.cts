#!/usr/bin/env node
// The package's bin (bundled by scripts/bundle.mjs into dist/bundle/bin.js, CommonJS): starts the
// CLI from dist/bundle/bkci.cjs, the whole CLI in one script, through a V8 code cache.
//
// Node 20 has no compile cache of its own, and compiling bkci's code in every short run was a
// tenth of a `pipeline render`. `npm run build` runs a render once with BKCI_CODE_CACHE=write,
// which stores V8's code for every function that ran (bkci.cjs.cache); later runs hand it to V8,
// which checks it against its own version and flags and the script's length and ignores it when
// it does not fit (another Node than the one that built the package): then the code compiles as
// usual, through Node's compile cache where Node has one (22.1 and later). The cache records the
// build it came from, so a rebuilt bundle never meets an old cache. BKCI_CODE_CACHE=off skips it.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';

// Node >= 22.1 only; @types/node 20 does not declare it.
const enableCompileCache = (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache;
import { join } from 'node:path';
import { Script } from 'node:vm';
import type { StartInfo } from './start.js';
import { tierUpFlags } from './v8-tuning.js';

// Written in by the bundler.
declare const __BKCI_VERSION__: string;
declare const __BKCI_BUILD_ID__: string;

type Start = (argv: string[], info: StartInfo) => Promise<number>;

const argv = process.argv.slice(2);

// The sh lines at the top of the built bin.js (scripts/bundle.mjs) start Node without
// NODE_EXTRA_CA_CERTS for commands that make no TLS connection: Node 20 parses the whole CA file
// (and its own ~140 root certificates) before running any script, ~35 ms for a system bundle. The
// variable is put back here so that the processes bkci starts (git, the GPU tools) see it.
const deferredCa = process.env.BKCI_DEFERRED_NODE_EXTRA_CA_CERTS;
if (deferredCa !== undefined) {
  delete process.env.BKCI_DEFERRED_NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS ??= deferredCa;
}

// `bkci --version` answers before anything else loads.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(__BKCI_VERSION__ + '\n');
} else {
  const flags = tierUpFlags(process.versions.v8);
  if (flags) (require('node:v8') as typeof import('node:v8')).setFlagsFromString(flags);
  const mode = process.env.BKCI_CODE_CACHE;
  const bundle = join(__dirname, 'bkci.cjs');
  const cacheFile = bundle + '.cache';
  // The cache file: this line, then V8's data.
  const header = Buffer.from(`bkci code cache ${__BKCI_BUILD_ID__} ${process.arch} ${process.versions.v8}\n`);

  let cached: Buffer | undefined;
  if (mode !== 'off' && mode !== 'write') {
    try {
      const file = readFileSync(cacheFile);
      if (file.subarray(0, header.length).equals(header)) cached = file.subarray(header.length);
    } catch {
      // No cache (or unreadable): compile as usual.
    }
  }

  let start: Start;
  let codeCache: string;
  let script: Script | undefined;
  if (cached || mode === 'write' || !enableCompileCache) {
    // The bundle, compiled with the cache: run as a script, its value is the function Node would wrap
    // a CommonJS module in (scripts/bundle.mjs writes the wrapper into the file). The file is ASCII
    // (the bundler makes sure), so latin1 reads the same text without UTF-8 decoding, which went
    // through a two-byte copy of the whole 1 MB (~450 page faults more).
    const source = readFileSync(bundle, 'latin1');
    script = new Script(source, { filename: bundle, cachedData: cached });
    const mod = { exports: {} as { start: Start } };
    (script.runInThisContext() as (...a: unknown[]) => void).call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, __dirname);
    start = mod.exports.start;
    codeCache = cached === undefined ? 'none' : script.cachedDataRejected ? 'rejected by V8' : 'used';
  } else {
    enableCompileCache();
    start = (require(bundle) as { start: Start }).start;
    codeCache = "none (Node's compile cache)";
  }

  void start(argv, { codeCache, deferredCa: deferredCa !== undefined }).then((code) => {
    process.exitCode = code;
    if (mode === 'write' && script) {
      // Atomically, so a concurrent run never reads half a cache. A directory that cannot be
      // written (an installed package) keeps what it has: the command itself succeeded.
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, Buffer.concat([header, script.createCachedData()]), { mode: 0o644 });
        renameSync(tmp, cacheFile);
      } catch (err) {
        process.stderr.write(`bkci: the code cache was not written: ${(err as Error).message}\n`);
      }
    }
  });
}
