// The main script of the single executable (scripts/build-exe.mjs): what the npm bin's launcher
// (src/cli/launch.cts) does, with the bundle and its V8 code cache read from the executable's own
// assets instead of files. This script is small, so `--version` answers before the ~2.1 MB bundle
// (every dependency included) is even read; the bundle is compiled with the code cache that the
// build made from one render (BKCI_CODE_CACHE=write), so the functions a render runs are not
// compiled again on every start. BKCI_CODE_CACHE=off starts without it.
import { writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import type { StartInfo } from './start.js';
import { tierUpFlags } from './v8-tuning.js';

declare const __BKCI_VERSION__: string;

interface Sea {
  getAsset(key: string, encoding: string): string;
  getRawAsset(key: string): ArrayBuffer;
}
type Start = (argv: string[], info: StartInfo) => Promise<number>;

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  // Written to fd 1 directly: process.stdout for a pipe would load Node's socket and stream code
  // for one line. A full non-blocking pipe (EAGAIN) goes through the stream; a closed one (EPIPE)
  // or no stdout at all (EBADF) has nowhere to take it.
  try {
    writeSync(1, __BKCI_VERSION__ + '\n');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') process.stdout.write(__BKCI_VERSION__ + '\n');
  }
} else {
  const flags = tierUpFlags(process.versions.v8);
  if (flags) setFlagsFromString(flags);
  // In a single executable, require() loads Node's built-in modules only; the bundle needs no more.
  const builtin = createRequire(process.execPath);
  const sea = builtin('node:sea') as Sea;
  const mode = process.env.BKCI_CODE_CACHE;
  let cached: Buffer | undefined;
  if (mode !== 'off' && mode !== 'write') {
    try {
      cached = Buffer.from(sea.getRawAsset('bkci.cjs.cache'));
    } catch {
      // Built without one (an executable for another architecture than the build machine's).
    }
  }
  // The asset is the bundle inside its CommonJS wrapper, in ASCII (scripts/build-exe.mjs): read as
  // latin1 it becomes a string outside V8's heap (Node makes large latin1 strings external) with no
  // UTF-8 decoding (which went through a two-byte copy) and no concatenation for V8 to flatten.
  const source = Buffer.from(sea.getRawAsset('bkci.cjs')).toString('latin1');
  const script = new Script(source, { filename: 'bkci.cjs', cachedData: cached });
  const codeCache = cached === undefined ? 'none' : script.cachedDataRejected ? 'rejected by V8' : 'used';
  const mod = { exports: {} as { start: Start } };
  (script.runInThisContext() as (...a: unknown[]) => void).call(mod.exports, mod.exports, builtin, mod, process.execPath, '/');
  void mod.exports.start(argv, { codeCache }).then((code) => {
    process.exitCode = code;
    // The build's training run: V8's code for every function that ran, for the next build step.
    if (mode === 'write' && process.env.BKCI_CODE_CACHE_FILE) writeFileSync(process.env.BKCI_CODE_CACHE_FILE, script.createCachedData());
  });
}
