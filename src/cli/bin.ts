#!/usr/bin/env node
// The `bkci` executable of the compiled sources (dist/cli/bin.js). The package's bin is the
// bundle's launcher, src/cli/launch.cts, which does the same with a code cache.
import module from 'node:module';
import { tierUpFlags } from './v8-tuning.js';

const argv = process.argv.slice(2);

// `bkci --version` answers before anything else loads.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write((await import('./version.js')).VERSION + '\n');
} else {
  // Node >= 22.1 keeps compiled code between runs (a no-op on Node 20, which lacks the API).
  (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
  const flags = tierUpFlags(process.versions.v8);
  if (flags) (await import('node:v8')).setFlagsFromString(flags);
  process.exitCode = await (await import('./start.js')).start(argv);
}
