#!/usr/bin/env node
// The `bkci` executable: the real process's Io handed to runCli.
import module from 'node:module';
import { tierUpFlags } from './v8-tuning.js';

// The bundle (scripts/bundle.mjs) writes the version in; the unbundled build reads package.json.
declare const __BKCI_VERSION__: string | undefined;

const argv = process.argv.slice(2);

// `bkci --version` answers before anything else loads.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write((typeof __BKCI_VERSION__ === 'string' ? __BKCI_VERSION__ : (await import('./version.js')).VERSION) + '\n');
} else {
  // Node >= 22.1 keeps compiled code between runs (a no-op on Node 20, which lacks the API).
  (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
  const flags = tierUpFlags(process.versions.v8);
  if (flags) (await import('node:v8')).setFlagsFromString(flags);
  const [{ realSleep, wantsColor }, { runCli }] = await Promise.all([import('../util/io.js'), import('./main.js')]);

  // A closed pipe (`bkci ... | head`) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });

  process.exitCode = await runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    color: wantsColor(process.stderr.isTTY === true, process.env),
    now: () => new Date(),
    sleep: realSleep,
    uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
    execPath: process.execPath,
    nodeVersion: process.versions.node,
  });
}
